// One row per exportable op family: a tiny module applying the op is exported with batch 3 and run
// in ONNX Runtime at batch 5; the output must match Kiln's. Catches a wrong line in the op table
// (argument order, attribute names, broadcasting) op by op rather than inside a big model.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "export_helpers.h"

namespace kiln::test {
namespace {

// fp32 ops on values of order 1: a few ulps (transcendental functions differ by ~1 ulp between
// Eigen's and ONNX Runtime's implementations; reductions sum in another order).
constexpr double kFp32Tol = 1e-5;

using OpFn = std::function<Tensor(const Tensor&)>;

// forward(x) = fn(x) with one parameter `w` (6) so ops can mix input and weights.
class OpModule : public nn::Module {
 public:
  explicit OpModule(OpFn fn) : Module("OpModule"), fn_(std::move(fn)) {
    w = register_parameter("w", randn({6}));
  }
  Tensor forward(const Tensor& x) override { return fn_(x); }
  Tensor w;

 private:
  OpFn fn_;
};

struct OpCase {
  const char* name;
  std::function<Tensor(const Tensor&, const Tensor&)> fn;  // (x (B, 4, 6), w (6))
};

Tensor pos(const Tensor& x) {
  return abs(x) + 0.5;
}

const OpCase kCases[] = {
    {"binary", [](auto& x, auto& w) { return (x + w) * (x - w) / (abs(w) + 1.0); }},
    {"pow_max_min", [](auto& x, auto& w) { return maximum(pow(pos(x), pos(w)), minimum(x, w)); }},
    {"scalars",
     [](auto& x, auto&) { return 2.0 - (x * 3.0 + 1.0) / 2.0 + 1.5 / pos(x) + x.pow(2.0); }},
    {"unary",
     [](auto& x, auto&) { return neg(exp(x * 0.5)) + log(pos(x)) + log1p(pos(x)) + sqrt(pos(x)); }},
    {"unary2",
     [](auto& x, auto&) {
       return rsqrt(pos(x)) + square(x) + reciprocal(pos(x)) + sin(x) + cos(x);
     }},
    {"activations",
     [](auto& x, auto&) { return erf(x) + tanh(x) + sigmoid(x) + relu(x) + leaky_relu(x, 0.2); }},
    {"gelu_silu", [](auto& x, auto&) { return gelu(x) + gelu(x, "tanh") + silu(x); }},
    {"clamp_where",
     [](auto& x, auto& w) {
       return where(gt(x, w), clamp(x, -0.5, 0.7), masked_fill(x, lt(x, 0.0), 2.0));
     }},
    {"compare",
     [](auto& x, auto& w) {
       return (eq(x, x).to(kFloat32) + ne(x, w).to(kFloat32) + le(x, w).to(kFloat32) +
               ge(x, w).to(kFloat32) + logical_and(logical_not(gt(x, 0.3)), lt(x, w)).to(kFloat32));
     }},
    {"reductions",
     [](auto& x, auto&) {
       return sum(x, {2}) + mean(x, {1, 2}, false).unsqueeze(1) + amax(x, {2}) + amin(x, {-1}) +
              var(x, {2}) + logsumexp(x, {2}) + norm(x, 2.0, {2}) + norm(x, 1.0, {2});
     }},
    {"max_argmax",
     [](auto& x, auto&) {
       return max(x, 2).values + min(x, 2, false).values + argmax(x, 2).to(kFloat32) +
              argmin(x, 2, true).squeeze(2).to(kFloat32);
     }},
    {"shapes",
     [](auto& x, auto&) {
       Tensor y = x.permute({0, 2, 1}).reshape({-1, 4, 3, 2}).transpose(2, 3);  // (B, 4, 2, 3)
       return y.slice(1, 1, 4, 2).flatten(1) + y.select(1, -1).sum({1, 2}, true);
     }},
    {"expand_cat_stack",
     [](auto& x, auto& w) {
       Tensor e = w.reshape({1, 1, 6}).expand({x.size(0), 4, 6});
       return cat({stack({x, e}, 1).flatten(1, 2), x}, 1);
     }},
    {"split_chunk",
     [](auto& x, auto&) {
       auto a = split(x, 2, 2);
       auto b = chunk(x, 2, 1);
       return a[0] * a[2] + cat({b[1], b[0]}, 1).narrow(2, 1, 2);
     }},
    {"indexing",
     [](auto& x, auto&) {
       Tensor idx = tensor({2, 0, 5});
       Tensor g = tensor({0, 3, 1, 1, 2, 0}, {1, 1, 6}).expand({x.size(0), 4, 6});
       return index_select(x, 2, idx).sum({2}) + gather(x, 2, g.narrow(2, 0, 4)).sum({2});
     }},
    {"topk_pad",
     [](auto& x, auto&) {
       return pad(topk(x, 3, -1).values, {1, 2}, 0.25);
     }},
    {"matmul_linear",
     [](auto& x, auto& w) {
       Tensor m = matmul(x, x.transpose(1, 2));                             // (B, 4, 4)
       return linear(m, w.narrow(0, 0, 4).reshape({1, 4}).expand({3, 4}));  // no bias, 3-D
     }},
    {"softmaxes", [](auto& x, auto&) { return softmax(x, 1) + log_softmax(x, -1); }},
    {"layer_norm_no_affine",
     [](auto& x, auto&) {
       return layer_norm(x, {4, 6}, {}, {}, 1e-3);
     }},
    {"batch_norm_eval_no_affine",
     [](auto& x, auto& w) {
       Tensor rm = tensor({0.1f, -0.2f, 0.3f, 0.0f}), rv = tensor({1.5f, 0.5f, 2.0f, 1.0f});
       return batch_norm(x + w, rm, rv, {}, {}, /*training=*/false);
     }},
    {"conv1d_pools",
     [](auto& x, auto& w) {
       Tensor k =
           w.reshape({2, 1, 3}).expand({2, 2, 3}).contiguous() * 0.5;  // (C_out 2, C_in/g 2, 3)
       Tensor y = conv1d(x, cat({k, k}, 0), {}, 1, 1, 1, 2);           // groups 2: (B, 4, 6)
       return max_pool1d(y, 2, 2) + max_pool1d(x, 3, 2, 1);
     }},
    {"pool2d",
     [](auto& x, auto&) {
       Tensor img = x.unsqueeze(1);  // (B, 1, 4, 6)
       return max_pool2d(img, {2, 2}, {1, 2}, {1, 0}).flatten(1).sum({1}, true) +
              avg_pool2d(img, {2, 3}, {2, 3}, {0, 1}).flatten(1).sum({1}, true) +
              adaptive_avg_pool2d(img, {2, 3}).flatten(1);
     }},
    {"cast_identity",
     [](auto& x, auto&) {
       return clone(x).to(kFloat64).to(kFloat32) +
              contiguous(x.transpose(1, 2)).sum({1}).unsqueeze(2);
     }},
};

void PrintTo(const OpCase& c, std::ostream* os) {
  *os << c.name;
}

class ExportOps : public ::testing::TestWithParam<OpCase> {};

TEST_P(ExportOps, OrtMatchesKilnAtAnotherBatchSize) {
  const OpCase& c = GetParam();
  manual_seed(71);
  OpModule m([&m, &c](const Tensor& x) { return c.fn(x, m.w); });
  onnx::ExportOptions o;
  o.dynamic_axes = {{"input", {{0, "batch"}}}};
  const std::string path = export_path(std::string("op_") + c.name);
  onnx::export_model(m, {randn({3, 4, 6})}, path, o);
  expect_checker_passes(path);
  Compared r = compare_with_ort(m, path, {"input"}, {randn({5, 4, 6})});
  EXPECT_EQ(r.ort_shape, r.kiln_shape);
  EXPECT_EQ(r.ort_shape.at(0), 5);
  EXPECT_LE(r.max_abs_diff, kFp32Tol * std::max(1.0, r.max_abs_value));
}

INSTANTIATE_TEST_SUITE_P(Table, ExportOps, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace kiln::test
