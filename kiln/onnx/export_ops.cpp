// ONNX export's lowering rules: one function per Kiln op (or a family of them), and the op table
// that maps each recorded op name to its rule. The driver that calls them is export.cpp; the
// helpers they build nodes with are Lowering's (export_internal.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kiln/onnx/export_internal.h"
#include "kiln/tensor/error.h"

namespace kiln::onnx::export_detail {
namespace {

// ---------------------------------------------------------------- lowerings
Lower unary(std::string op) {
  return [op](Lowering& l) { l.node(op, {l.in(0)}, {}, {l.out()}); };
}
Lower binary(std::string op) {
  return [op](Lowering& l) { l.node(op, {l.in(0), l.in(1)}, {}, {l.out()}); };
}
// x (op) scalar attribute `value`; `scalar_first` for s - x, s / x.
Lower with_scalar(std::string op, std::string attr, bool scalar_first = false) {
  return [op, attr, scalar_first](Lowering& l) {
    std::string x = l.in(0), s = l.scalar(l.attr_float(attr), l.in_dtype(0));
    l.node(op, scalar_first ? std::vector{s, x} : std::vector{x, s}, {}, {l.out()});
  };
}
// Comparisons: binary, or against the scalar attribute `value` when there is one input.
Lower compare(std::string op, bool negate = false) {
  return [op, negate](Lowering& l) {
    std::string b = l.num_inputs() > 1 ? l.in(1) : l.scalar(l.attr_float("value"), l.in_dtype(0));
    if (!negate) {
      l.node(op, {l.in(0), b}, {}, {l.out()});
    } else {
      l.node("Not", {l.node(op, {l.in(0), b})}, {}, {l.out()});
    }
  };
}
// Reductions with an `axes` attribute (opset 13..17: ReduceSum takes axes as an input).
std::vector<AttributeProto> reduce_attrs(Lowering& l, bool keep) {
  std::vector<AttributeProto> a{attr_int("keepdims", keep)};
  auto axes = l.attr_ints("axes");
  if (!axes.empty()) a.push_back(attr_ints("axes", axes));
  return a;
}
Lower reduce(std::string op) {
  return [op](Lowering& l) {
    const bool keep = l.attr_int("keepdims") != 0;
    if (op == "ReduceSum") {
      auto axes = l.attr_ints("axes");
      std::vector<std::string> ins{l.in(0)};
      if (!axes.empty()) ins.push_back(l.ints(axes));
      l.node(op, ins, {attr_int("keepdims", keep)}, {l.out()});
      return;
    }
    l.node(op, {l.in(0)}, reduce_attrs(l, keep), {l.out()});
  };
}

void lower_var(Lowering& l) {
  const bool keep = l.attr_int("keepdims") != 0;
  const int64_t correction = l.attr_int("correction");
  auto axes = l.attr_ints("axes");
  auto d = l.in_dims(0);
  int64_t n = 1;
  for (size_t i = 0; i < d.size(); ++i) {
    const bool reduced =
        axes.empty() || std::any_of(axes.begin(), axes.end(), [&](int64_t a) {
          return (a < 0 ? a + static_cast<int64_t>(d.size()) : a) == static_cast<int64_t>(i);
        });
    if (!reduced) continue;
    if (d[i].dynamic()) l.fail("variance over a dynamic axis is not supported");
    n *= d[i].a;
  }
  std::vector<AttributeProto> keep1{attr_int("keepdims", 1)};
  if (!axes.empty()) keep1.push_back(attr_ints("axes", axes));
  const DType t = l.in_dtype(0);
  std::string x = l.in(0);
  std::string m = l.node("ReduceMean", {x}, keep1);
  std::string dx = l.node("Sub", {x, m});
  std::string sq = l.node("Mul", {dx, dx});
  std::string mean_sq = l.node("ReduceMean", {sq}, reduce_attrs(l, keep));
  const double scale =
      static_cast<double>(n) / static_cast<double>(std::max<int64_t>(n - correction, 0));
  l.node("Mul", {mean_sq, l.scalar(scale, t)}, {}, {l.out()});
}

void lower_norm(Lowering& l) {
  const double p = l.attr_float("p");
  const bool keep = l.attr_int("keepdims") != 0;
  if (p == 2.0) {
    l.node("ReduceL2", {l.in(0)}, reduce_attrs(l, keep), {l.out()});
  } else if (p == 1.0) {
    l.node("ReduceL1", {l.in(0)}, reduce_attrs(l, keep), {l.out()});
  } else {
    l.fail(fmt::format("norm with p = {} has no ONNX mapping (p = 1 and 2 do)", p));
  }
}

// max / min along an axis: (values, indices).
Lower reduce_with_index(std::string reduce_op, std::string arg_op) {
  return [reduce_op, arg_op](Lowering& l) {
    const int64_t axis = l.attr_int("axis"), keep = l.attr_int("keepdims");
    l.node(reduce_op, {l.in(0)}, {attr_ints("axes", {axis}), attr_int("keepdims", keep)},
           {l.out(0)});
    l.node(arg_op, {l.in(0)}, {attr_int("axis", axis), attr_int("keepdims", keep)}, {l.out(1)});
  };
}
Lower arg(std::string op) {
  return [op](Lowering& l) {
    l.node(op, {l.in(0)},
           {attr_int("axis", l.attr_int("axis")), attr_int("keepdims", l.attr_int("keepdims"))},
           {l.out()});
  };
}

void lower_reshape(Lowering& l) {
  auto [s1, s2] = l.attr_ints_both("shape");
  auto x = l.in_dims(0);
  std::vector<int64_t> spec;
  std::vector<DimPair> full;
  int64_t unknown = 0;
  for (size_t i = 0; i < s1.size(); ++i) {
    DimPair d{s1[i], s2[i]};
    full.push_back(d);
    if (!d.dynamic()) {
      spec.push_back(d.a);
    } else if (i < x.size() && x[i] == d) {
      spec.push_back(0);  // copy the input's dim
    } else {
      spec.push_back(-1);
      ++unknown;
    }
  }
  const bool has_zero = std::any_of(full.begin(), full.end(), [](DimPair d) { return d.a == 0; });
  std::string shape = unknown <= 1 && !has_zero ? l.ints(spec) : l.shape_value(full);
  l.node("Reshape", {l.in(0), shape}, {}, {l.out()});
}

void lower_expand(Lowering& l) {
  auto [s1, s2] = l.attr_ints_both("shape");
  auto x = l.in_dims(0);
  std::vector<DimPair> target;
  const size_t off = s1.size() - x.size();
  bool dynamic = false;
  for (size_t i = 0; i < s1.size(); ++i) {
    DimPair d{s1[i], s2[i]};
    // Expand broadcasts both ways: 1 keeps the input's own (possibly dynamic) size.
    if (i >= off && x[i - off] == d) d = {1, 1};
    dynamic = dynamic || d.dynamic();
    target.push_back(d);
  }
  std::vector<int64_t> st;
  for (auto d : target) st.push_back(d.a);
  l.node("Expand", {l.in(0), dynamic ? l.shape_value(target) : l.ints(st)}, {}, {l.out()});
}

void lower_slice(Lowering& l) {
  auto [st1, st2] = l.attr_ints_both("starts");
  auto [en1, en2] = l.attr_ints_both("ends");
  auto axes = l.attr_ints("axes");
  auto steps = l.attr_ints("steps");
  auto x = l.in_dims(0);
  // Bounds are static, relative to the end of a dynamic axis, or (a slice of a table up to a
  // dynamic length, e.g. positions[:T]) read from a dynamic dim at run time.
  std::vector<std::string> bounds;
  for (const auto& [b1, b2, is_end] : {std::tuple{st1, st2, false}, std::tuple{en1, en2, true}}) {
    std::vector<int64_t> fixed;
    bool run_time = false;
    for (size_t i = 0; i < axes.size(); ++i) {
      const DimPair n = x[static_cast<size_t>(axes[i])];
      const int64_t a = b1[i], b = b2[i];
      if (a == b && !n.dynamic()) {
        fixed.push_back(a);
      } else if (is_end && a == n.a && b == n.b) {
        fixed.push_back(std::numeric_limits<int64_t>::max());
      } else if (a - n.a == b - n.b) {
        fixed.push_back(a - n.a);
      } else if (a == b && a < n.a && a < n.b) {
        fixed.push_back(a);
      } else if (axes.size() == 1) {
        run_time = true;
      } else {
        l.fail("a slice bound follows a dynamic axis in a way ONNX Slice cannot express");
      }
    }
    bounds.push_back(run_time ? l.shape_value({DimPair{b1[0], b2[0]}}) : l.ints(fixed));
  }
  l.node("Slice", {l.in(0), bounds[0], bounds[1], l.ints(axes), l.ints(steps)}, {}, {l.out()});
}

void lower_select(Lowering& l) {
  const int64_t axis = l.attr_int("axis");
  auto [i1, i2] = l.attr_int_both("index");
  const DimPair n = l.in_dims(0)[static_cast<size_t>(axis)];
  int64_t index = i1;
  if (n.dynamic() && i1 != i2) {
    if (i1 - n.a != i2 - n.b) l.fail("the selected index follows a dynamic axis");
    index = i1 - n.a;
  }
  // Gather with a 0-d index drops the axis, as select does.
  std::string idx = l.scalar(static_cast<double>(index), kInt64);
  l.node("Gather", {l.in(0), idx}, {attr_int("axis", axis)}, {l.out()});
}

void lower_linear(Lowering& l) {
  const bool bias = l.has_input(2);
  if (l.in_rank(0) == 2) {
    std::vector<std::string> ins{l.in(0), l.in(1)};
    if (bias) ins.push_back(l.in(2));
    l.node("Gemm", ins, {attr_int("transB", 1)}, {l.out()});
    return;
  }
  std::string wt = l.node("Transpose", {l.in(1)}, {attr_ints("perm", {1, 0})});
  if (!bias) {
    l.node("MatMul", {l.in(0), wt}, {}, {l.out()});
    return;
  }
  std::string y = l.node("MatMul", {l.in(0), wt});
  l.node("Add", {y, l.in(2)}, {}, {l.out()});
}

void lower_gelu(Lowering& l) {
  const DType t = l.in_dtype(0);
  std::string x = l.in(0);
  std::string inner;
  if (l.attr_string("approximate") == "tanh") {
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    std::string x3 = l.node("Mul", {l.node("Mul", {x, x}), x});
    std::string u = l.node("Add", {x, l.node("Mul", {x3, l.scalar(0.044715, t)})});
    inner = l.node("Tanh", {l.node("Mul", {u, l.scalar(std::sqrt(2.0 / std::numbers::pi), t)})});
  } else {
    // 0.5·x·(1 + erf(x/√2)) — the Gelu op needs opset 20.
    inner = l.node("Erf", {l.node("Div", {x, l.scalar(std::numbers::sqrt2, t)})});
  }
  std::string half_x = l.node("Mul", {x, l.scalar(0.5, t)});
  l.node("Mul", {half_x, l.node("Add", {inner, l.scalar(1.0, t)})}, {}, {l.out()});
}

void lower_clamp(Lowering& l) {
  const DType t = l.in_dtype(0);
  l.node("Clip", {l.in(0), l.scalar(l.attr_float("min"), t), l.scalar(l.attr_float("max"), t)}, {},
         {l.out()});
}

void lower_masked_fill(Lowering& l) {
  std::string mask = l.in(1);
  if (l.in_dtype(1) != kBool) mask = l.node("Cast", {mask}, {attr_int("to", TensorProto::BOOL)});
  l.node("Where", {mask, l.scalar(l.attr_float("value"), l.in_dtype(0)), l.in(0)}, {}, {l.out()});
}

void lower_stack(Lowering& l) {
  const int64_t axis = l.attr_int("axis");
  std::vector<std::string> ins;
  for (size_t i = 0; i < l.num_inputs(); ++i)
    ins.push_back(l.node("Unsqueeze", {l.in(i), l.ints({axis})}));
  l.node("Concat", ins, {attr_int("axis", axis)}, {l.out()});
}

void lower_split(Lowering& l) {
  std::vector<std::string> outs;
  for (size_t i = 0; i < l.event().outputs.size(); ++i) outs.push_back(l.out(i));
  l.node("Split", {l.in(0), l.ints(l.attr_ints("split"))}, {attr_int("axis", l.attr_int("axis"))},
         outs);
}

void lower_topk(Lowering& l) {
  l.node("TopK", {l.in(0), l.ints({l.attr_int("k")})},
         {attr_int("axis", l.attr_int("axis")), attr_int("largest", l.attr_int("largest")),
          attr_int("sorted", 1)},
         {l.out(0), l.out(1)});
}

void lower_pad(Lowering& l) {
  if (l.attr_string("mode") != "constant") l.fail("only constant padding is exported");
  l.node("Pad",
         {l.in(0), l.ints(l.attr_ints("pads")), l.scalar(l.attr_float("value"), l.in_dtype(0))},
         {attr_string("mode", "constant")}, {l.out()});
}

void lower_layer_norm(Lowering& l) {
  const int64_t axis = l.attr_int("axis");
  const double eps = l.attr_float("epsilon");
  const auto shape = l.attr_ints("normalized_shape");
  const DType t = l.in_dtype(0);
  std::string w = l.has_input(1) ? l.in(1) : l.node("Expand", {l.scalar(1.0, t), l.ints(shape)});
  if (l.opset() >= 17) {
    std::vector<std::string> ins{l.in(0), w};
    if (l.has_input(2)) ins.push_back(l.in(2));
    l.node("LayerNormalization", ins, {attr_int("axis", axis), attr_float("epsilon", eps)},
           {l.out()});
    return;
  }
  std::vector<int64_t> axes;
  for (int64_t a = axis; a < l.in_rank(0); ++a) axes.push_back(a);
  std::vector<AttributeProto> keep{attr_ints("axes", axes), attr_int("keepdims", 1)};
  std::string x = l.in(0);
  std::string d = l.node("Sub", {x, l.node("ReduceMean", {x}, keep)});
  std::string var = l.node("ReduceMean", {l.node("Mul", {d, d})}, keep);
  std::string rstd =
      l.node("Reciprocal", {l.node("Sqrt", {l.node("Add", {var, l.scalar(eps, t)})})});
  std::string y = l.node("Mul", {l.node("Mul", {d, rstd}), w});
  if (l.has_input(2)) {
    l.node("Add", {y, l.in(2)}, {}, {l.out()});
  } else {
    l.node("Identity", {y}, {}, {l.out()});
  }
}

void lower_dropout(Lowering& l) {
  if (l.attr_int("training") != 0 && l.attr_float("p") > 0)
    l.fail(
        "dropout in training mode (export traces in eval mode; is a submodule forced to train?)");
  l.node("Identity", {l.in(0)}, {}, {l.out()});
}

void lower_batch_norm(Lowering& l) {
  if (l.attr_int("training") != 0)
    l.fail("batch_norm in training mode (export needs running statistics, eval mode)");
  if (!l.has_input(3) || !l.has_input(4))
    l.fail("batch_norm without running statistics (track_running_stats=false) has no eval form");
  const DType t = l.in_dtype(0);
  const int64_t C = l.input(3).numel();
  std::string w = l.has_input(1) ? l.in(1) : l.node("Expand", {l.scalar(1.0, t), l.ints({C})});
  std::string b = l.has_input(2) ? l.in(2) : l.node("Expand", {l.scalar(0.0, t), l.ints({C})});
  l.node("BatchNormalization", {l.in(0), w, b, l.in(3), l.in(4)},
         {attr_float("epsilon", l.attr_float("epsilon"))}, {l.out()});
}

void lower_attention(Lowering& l) {
  if (l.attr_int("training") != 0 && l.attr_float("dropout_p") > 0)
    l.fail("attention dropout in training mode");
  const DType t = l.in_dtype(0);
  const int64_t r = l.in_rank(1);
  std::vector<int64_t> perm;
  for (int64_t i = 0; i < r; ++i) perm.push_back(i);
  std::swap(perm[static_cast<size_t>(r - 1)], perm[static_cast<size_t>(r - 2)]);
  std::string kt = l.node("Transpose", {l.in(1)}, {attr_ints("perm", perm)});
  std::string s =
      l.node("Mul", {l.node("MatMul", {l.in(0), kt}), l.scalar(l.attr_float("scale"), t)});
  if (l.has_input(3)) {
    std::string m = l.in(3);
    if (l.in_dtype(3) == kBool) {
      m = l.node("Where",
                 {m, l.scalar(0.0, t), l.scalar(-std::numeric_limits<double>::infinity(), t)});
    } else if (l.in_dtype(3) != t) {
      m = l.node("Cast", {m}, {attr_int("to", onnx_type(t))});
    }
    s = l.node("Add", {s, m});
  }
  std::string p = l.node("Softmax", {s}, {attr_int("axis", -1)});
  if (l.has_input(3)) {
    // A fully masked row attends to nothing (zeros), as Kiln's kernel does, not NaN.
    p = l.node("Where", {l.node("IsNaN", {p}), l.scalar(0.0, t), p});
  }
  l.node("MatMul", {p, l.in(2)}, {}, {l.out()});
}

void lower_conv(Lowering& l) {
  std::vector<std::string> ins{l.in(0), l.in(1)};
  if (l.has_input(2)) ins.push_back(l.in(2));
  l.node("Conv", ins,
         {attr_ints("kernel_shape", l.attr_ints("kernel_shape")),
          attr_ints("strides", l.attr_ints("strides")), attr_ints("pads", l.attr_ints("pads")),
          attr_ints("dilations", l.attr_ints("dilations")), attr_int("group", l.attr_int("group"))},
         {l.out()});
}

Lower pool(std::string op) {
  return [op](Lowering& l) {
    std::vector<AttributeProto> a{attr_ints("kernel_shape", l.attr_ints("kernel_shape")),
                                  attr_ints("strides", l.attr_ints("strides")),
                                  attr_ints("pads", l.attr_ints("pads"))};
    if (l.has_attr("count_include_pad"))
      a.push_back(attr_int("count_include_pad", l.attr_int("count_include_pad")));
    l.node(op, {l.in(0)}, std::move(a), {l.out()});
  };
}

void lower_adaptive_avg_pool(Lowering& l) {
  const auto o = l.attr_ints("output_size");
  if (o == std::vector<int64_t>{1, 1}) {
    l.node("GlobalAveragePool", {l.in(0)}, {}, {l.out()});
    return;
  }
  auto d = l.in_dims(0);
  const DimPair h = d[2], w = d[3];
  if (h.dynamic() || w.dynamic() || h.a % o[0] != 0 || w.a % o[1] != 0)
    l.fail(
        fmt::format("adaptive_avg_pool2d to {} needs static spatial sizes divisible by it "
                    "(or output 1x1)",
                    dims_str(o)));
  const std::vector<int64_t> k{h.a / o[0], w.a / o[1]};
  l.node("AveragePool", {l.in(0)}, {attr_ints("kernel_shape", k), attr_ints("strides", k)},
         {l.out()});
}

void lower_cast(Lowering& l) {
  l.node("Cast", {l.in(0)}, {attr_int("to", onnx_type(static_cast<DType>(l.attr_int("to"))))},
         {l.out()});
}

void lower_embedding(Lowering& l) {
  // embedding(weight, ids): rows of weight -> Gather(weight, ids, axis 0).
  l.node("Gather", {l.in(0), l.in(1)}, {attr_int("axis", 0)}, {l.out()});
}

// Composites of a few ONNX ops.
void lower_log1p(Lowering& l) {
  l.node("Log", {l.node("Add", {l.in(0), l.scalar(1.0, l.in_dtype(0))})}, {}, {l.out()});
}
void lower_rsqrt(Lowering& l) {
  l.node("Reciprocal", {l.node("Sqrt", {l.in(0)})}, {}, {l.out()});
}
void lower_square(Lowering& l) {
  l.node("Mul", {l.in(0), l.in(0)}, {}, {l.out()});
}
void lower_silu(Lowering& l) {
  l.node("Mul", {l.in(0), l.node("Sigmoid", {l.in(0)})}, {}, {l.out()});
}
void lower_where(Lowering& l) {
  l.node("Where", {l.in(0), l.in(1), l.in(2)}, {}, {l.out()});
}
void lower_transpose(Lowering& l) {
  l.node("Transpose", {l.in(0)}, {attr_ints("perm", l.attr_ints("perm"))}, {l.out()});
}
// One ONNX op taking every input, with the Kiln attribute `from` (a float) as ONNX `to`.
Lower with_float_attr(std::string op, std::string from, std::string to) {
  return [op, from, to](Lowering& l) {
    l.node(op, {l.in(0)}, {attr_float(to, l.attr_float(from))}, {l.out()});
  };
}
// One ONNX op taking every input, with Kiln's `axis` attribute.
Lower with_axis(std::string op) {
  return [op](Lowering& l) {
    std::vector<std::string> ins;
    for (size_t i = 0; i < l.num_inputs(); ++i) ins.push_back(l.in(i));
    l.node(op, ins, {attr_int("axis", l.attr_int("axis"))}, {l.out()});
  };
}

}  // namespace

// The one op table: Kiln op name -> ONNX lowering (one line per op). An op missing here makes
// export fail naming it; adding an op to Kiln = one line here if it is exportable.
const std::unordered_map<std::string, Lower>& op_table() {
  // clang-format off
  static const std::unordered_map<std::string, Lower> kOpTable = {
      {"add",         binary("Add")},
      {"sub",         binary("Sub")},
      {"mul",         binary("Mul")},
      {"div",         binary("Div")},
      {"pow",         binary("Pow")},
      {"maximum",     binary("Max")},
      {"minimum",     binary("Min")},
      {"add_scalar",  with_scalar("Add", "value")},
      {"mul_scalar",  with_scalar("Mul", "value")},
      {"pow_scalar",  with_scalar("Pow", "exponent")},
      {"rsub_scalar", with_scalar("Sub", "value", /*scalar_first=*/true)},
      {"rdiv_scalar", with_scalar("Div", "value", /*scalar_first=*/true)},
      {"neg",         unary("Neg")},
      {"abs",         unary("Abs")},
      {"exp",         unary("Exp")},
      {"log",         unary("Log")},
      {"log1p",       lower_log1p},                  // Log(x + 1)
      {"sqrt",        unary("Sqrt")},
      {"rsqrt",       lower_rsqrt},                  // Reciprocal(Sqrt(x))
      {"square",      lower_square},                 // x * x
      {"reciprocal",  unary("Reciprocal")},
      {"sin",         unary("Sin")},
      {"cos",         unary("Cos")},
      {"erf",         unary("Erf")},
      {"tanh",        unary("Tanh")},
      {"sigmoid",     unary("Sigmoid")},
      {"relu",        unary("Relu")},
      {"leaky_relu",  with_float_attr("LeakyRelu", "alpha", "alpha")},
      {"gelu",        lower_gelu},                   // Erf form (Gelu needs opset 20)
      {"silu",        lower_silu},                   // x * Sigmoid(x)
      {"clamp",       lower_clamp},                  // Clip
      {"where",       lower_where},
      {"masked_fill", lower_masked_fill},            // Where(mask, value, x)
      {"eq",          compare("Equal")},
      {"ne",          compare("Equal", /*negate=*/true)},
      {"lt",          compare("Less")},
      {"le",          compare("LessOrEqual")},
      {"gt",          compare("Greater")},
      {"ge",          compare("GreaterOrEqual")},
      {"logical_not", unary("Not")},
      {"logical_and", binary("And")},
      {"sum",         reduce("ReduceSum")},
      {"mean",        reduce("ReduceMean")},
      {"amax",        reduce("ReduceMax")},
      {"amin",        reduce("ReduceMin")},
      {"var",         lower_var},                    // mean of squared deviations, rescaled
      {"logsumexp",   reduce("ReduceLogSumExp")},
      {"norm",        lower_norm},                   // ReduceL1 / ReduceL2
      {"max",         reduce_with_index("ReduceMax", "ArgMax")},
      {"min",         reduce_with_index("ReduceMin", "ArgMin")},
      {"argmax",      arg("ArgMax")},
      {"argmin",      arg("ArgMin")},
      {"reshape",     lower_reshape},                // also view, flatten, squeeze, unsqueeze
      {"transpose",   lower_transpose},              // also permute
      {"slice",       lower_slice},                  // also narrow
      {"select",      lower_select},                 // Gather with a 0-d index
      {"expand",      lower_expand},
      {"identity",    unary("Identity")},            // contiguous, clone
      {"cast",        lower_cast},
      {"matmul",      binary("MatMul")},
      {"linear",      lower_linear},                 // Gemm (2-D) or MatMul + Add
      {"cat",         with_axis("Concat")},
      {"stack",       lower_stack},                  // Unsqueeze each + Concat
      {"split",       lower_split},                  // also chunk
      {"index_select", with_axis("Gather")},
      {"gather",      with_axis("GatherElements")},
      {"embedding",   lower_embedding},              // Gather(weight, ids)
      {"topk",        lower_topk},
      {"pad",         lower_pad},
      {"softmax",     with_axis("Softmax")},
      {"log_softmax", with_axis("LogSoftmax")},
      {"layer_norm",  lower_layer_norm},             // LayerNormalization (opset 17)
      {"dropout",     lower_dropout},                // Identity in eval mode
      {"batch_norm",  lower_batch_norm},             // BatchNormalization with running stats
      {"scaled_dot_product_attention", lower_attention},  // MatMul, Softmax, MatMul
      {"conv1d",      lower_conv},
      {"conv2d",      lower_conv},
      {"max_pool1d",  pool("MaxPool")},
      {"max_pool2d",  pool("MaxPool")},
      {"avg_pool2d",  pool("AveragePool")},
      {"adaptive_avg_pool2d", lower_adaptive_avg_pool},  // GlobalAveragePool or AveragePool
  };
  // clang-format on
  return kOpTable;
}

}  // namespace kiln::onnx::export_detail
