// ONNX neural-network ops for import_model (see import_ops_internal.h): Gemm/MatMul on Kiln's fused
// linear and GEMM, Conv on conv1d/conv2d, ConvTranspose as a conv over the stride-dilated input,
// pooling (asymmetric pads and ceil_mode by explicit padding), normalisations, LRN and Resize
// (separable per-axis gathers, so every mode is differentiable). Spatial ops take 1-D and 2-D
// inputs (3-D volumes are refused with an error).
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kiln/onnx/import_ops_internal.h"
#include "kiln/tensor/ops.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;
constexpr double kInf = std::numeric_limits<double>::infinity();

Outs matmul_op(const NodeContext& n, const Inputs& in) {
  const Tensor &a = required(n, in, 0), &b = required(n, in, 1);
  if (!is_floating(a.dtype()))
    return {
        nondiff(n, in, matmul(to_dtype(a, kFloat64), to_dtype(b, kFloat64)).data().to(a.dtype()))};
  return {matmul(a, b)};
}

// Gemm: Y = alpha·A'·B' + beta·C. The common PyTorch form (transB = 1, alpha = beta = 1, C of
// length N) is Kiln's fused linear.
Outs gemm_op(const NodeContext& n, const Inputs& in) {
  Tensor a = required(n, in, 0), b = required(n, in, 1);
  const Tensor c = in.size() > 2 ? in[2] : Tensor();
  const double alpha = n.f("alpha", 1.0), beta = n.f("beta", 1.0);
  const bool ta = n.i("transA", 0) != 0, tb = n.i("transB", 0) != 0;
  KILN_CHECK_SHAPE(a.dim() == 2 && b.dim() == 2, "{}: A [{}] and B [{}] must be 2-D", n.where(),
                   fmt::join(a.shape(), ", "), fmt::join(b.shape(), ", "));
  if (ta) a = transpose(a, 0, 1);
  if (alpha == 1.0 && beta == 1.0 && tb &&
      (!c.defined() || (c.dim() == 1 && c.size(0) == b.size(0))))
    return {linear(a, b, c)};
  Tensor y = matmul(a, tb ? transpose(b, 0, 1) : b);
  if (alpha != 1.0) y = mul(y, alpha);
  if (c.defined()) y = add(y, beta == 1.0 ? c : mul(c, beta));
  return {y};
}

// Pads of a spatial op, [begin..., end...], from `pads` or `auto_pad` (SAME_* split the total so
// the output is ceil(in / stride)).
std::vector<int64_t> spatial_pads(const NodeContext& n, const Shape& x,
                                  const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                                  const std::vector<int64_t>& d) {
  const size_t r = k.size();
  std::vector<int64_t> pads = n.ints("pads", std::vector<int64_t>(2 * r, 0));
  KILN_CHECK_SHAPE(pads.size() == 2 * r, "{}: {} pads for {} spatial dims", n.where(), pads.size(),
                   r);
  const std::string mode = n.s("auto_pad", "NOTSET");
  if (mode == "SAME_UPPER" || mode == "SAME_LOWER") {
    for (size_t i = 0; i < r; ++i) {
      const int64_t in = x[i + 2], out = (in + s[i] - 1) / s[i];
      const int64_t total = std::max<int64_t>(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - in);
      pads[i] = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[i + r] = total - pads[i];
    }
  } else if (mode == "VALID") {
    std::fill(pads.begin(), pads.end(), 0);
  }
  for (int64_t p : pads)
    KILN_CHECK_SHAPE(p >= 0, "{}: negative pad in [{}]", n.where(), fmt::join(pads, ", "));
  return pads;
}

// Explicit padding of the spatial dims (x: (B, C, *)), pads [begin..., end...].
Tensor pad_spatial(const Tensor& x, const std::vector<int64_t>& pads, double value) {
  const size_t r = pads.size() / 2;
  std::vector<int64_t> kp;
  for (size_t i = r; i-- > 0;) {
    kp.push_back(pads[i]);
    kp.push_back(pads[i + r]);
  }
  bool any = false;
  for (int64_t p : kp) any = any || p != 0;
  return any ? pad(x, kp, value) : x;
}

struct Spatial {
  std::vector<int64_t> k, s, d, pads;
};
Spatial spatial(const NodeContext& n, const Tensor& x, std::vector<int64_t> kernel) {
  KILN_CHECK_SHAPE(x.dim() >= 3 && x.dim() <= 5,
                   "{}: Kiln runs 1-D, 2-D and 3-D {} (input of rank 3 to 5), got [{}]", n.where(),
                   n.op_type, fmt::join(x.shape(), ", "));
  const size_t r = static_cast<size_t>(x.dim() - 2);
  Spatial sp;
  sp.k = kernel;
  KILN_CHECK_SHAPE(sp.k.size() == r, "{}: kernel_shape [{}] for {} spatial dims", n.where(),
                   fmt::join(sp.k, ", "), r);
  sp.s = n.ints("strides", std::vector<int64_t>(r, 1));
  sp.d = n.ints("dilations", std::vector<int64_t>(r, 1));
  KILN_CHECK_SHAPE(sp.s.size() == r && sp.d.size() == r, "{}: strides/dilations need {} values",
                   n.where(), r);
  for (size_t i = 0; i < r; ++i)
    KILN_CHECK_SHAPE(sp.k[i] > 0 && sp.s[i] > 0 && sp.d[i] > 0,
                     "{}: kernel, strides and dilations must be positive", n.where());
  sp.pads = spatial_pads(n, x.shape(), sp.k, sp.s, sp.d);
  return sp;
}

// 3-D convolution as a sum over the kernel's depth taps of 2-D convolutions: tap j sees the
// depth slices j·dilation, j·dilation + stride, ... folded into the batch.
//   xp: (B, C, D, H, W) already padded   w: (Co, C/g, kd, kh, kw)   ->  (B, Co, OD, OH, OW)
Tensor conv3d(const NodeContext& n, const Tensor& xp, const Tensor& w, const Tensor& b,
              const Spatial& sp, int64_t g) {
  const int64_t B = xp.size(0), C = xp.size(1), D = xp.size(2), H = xp.size(3), W = xp.size(4);
  const int64_t span = (sp.k[0] - 1) * sp.d[0] + 1;
  KILN_CHECK_SHAPE(D >= span, "{}: depth {} is smaller than the kernel span {}", n.where(), D,
                   span);
  const int64_t OD = (D - span) / sp.s[0] + 1;
  Tensor acc;
  for (int64_t j = 0; j < sp.k[0]; ++j) {
    const int64_t start = j * sp.d[0];
    Tensor xs = slice(xp, 2, start, start + (OD - 1) * sp.s[0] + 1, sp.s[0]);
    xs = reshape(permute(xs, {0, 2, 1, 3, 4}), {B * OD, C, H, W});
    Tensor y = conv2d(xs, select(w, 2, j), {}, {sp.s[1], sp.s[2]}, {0, 0}, {sp.d[1], sp.d[2]}, g);
    acc = j == 0 ? y : add(acc, y);
  }
  Tensor y = permute(reshape(acc, {B, OD, acc.size(1), acc.size(2), acc.size(3)}), {0, 2, 1, 3, 4});
  if (b.defined()) y = add(y, reshape(b, {b.size(0), 1, 1, 1}));
  return contiguous(y);
}

Outs conv_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &w = required(n, in, 1);
  const Tensor b = in.size() > 2 ? in[2] : Tensor();
  KILN_CHECK_SHAPE(w.dim() == x.dim(), "{}: weight [{}] and input [{}] ranks differ", n.where(),
                   fmt::join(w.shape(), ", "), fmt::join(x.shape(), ", "));
  Spatial sp = spatial(n, x, std::vector<int64_t>(w.shape().begin() + 2, w.shape().end()));
  const int64_t g = n.i("group", 1);
  const size_t r = sp.k.size();
  bool symmetric = true;
  std::vector<int64_t> sym(r);
  for (size_t i = 0; i < r; ++i) {
    symmetric = symmetric && sp.pads[i] == sp.pads[i + r];
    sym[i] = sp.pads[i];
  }
  Tensor xp = x;
  if (!symmetric || r == 3) {
    xp = pad_spatial(x, sp.pads, 0.0);
    std::fill(sym.begin(), sym.end(), 0);
  }
  if (r == 1) return {conv1d(xp, w, b, sp.s[0], sym[0], sp.d[0], g)};
  if (r == 2) return {conv2d(xp, w, b, sp.s, sym, sp.d, g)};
  return {conv3d(n, xp, w, b, sp, g)};
}

// 3-D ConvTranspose by the same steps as the 1-D/2-D path below, one spatial dim at a time:
// stride-dilate, pad (or crop) by d·(k - 1) - pad (+ output_padding at the end), then conv3d
// with the kernel flipped and its in/out channels swapped per group.
//   x: (B, C, D, H, W)   w: (C, Co/g, kd, kh, kw)
Tensor conv_transpose_3d(const NodeContext& n, Tensor x, const Tensor& w, const Tensor& b,
                         const std::vector<int64_t>& s, const std::vector<int64_t>& d,
                         const std::vector<int64_t>& outpad, const std::vector<int64_t>& pads,
                         int64_t g) {
  const int64_t C = x.size(1);
  const std::vector<int64_t> k(w.shape().begin() + 2, w.shape().end());
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t dim = i + 2, L = x.size(dim);
    const auto u = static_cast<size_t>(i);
    if (s[u] > 1) {  // (.., L, ..) -> (.., L, s, ..) zero-padded -> (.., L·s, ..) cut to (L-1)·s+1
      Shape one = x.shape(), merged = x.shape();
      one.insert(one.begin() + dim + 1, 1);
      merged[static_cast<size_t>(dim)] = L * s[u];
      std::vector<int64_t> p(2 * static_cast<size_t>(x.dim() - dim - 1), 0);
      p.push_back(0);
      p.push_back(s[u] - 1);
      x = narrow(reshape(pad(reshape(x, one), p), merged), dim, 0, (L - 1) * s[u] + 1);
    }
    const int64_t edge = d[u] * (k[u] - 1);
    int64_t before = edge - pads[u], after = edge - pads[u + 3] + outpad[u];
    if (before < 0) x = narrow(x, dim, -before, x.size(dim) + before), before = 0;
    if (after < 0) x = narrow(x, dim, 0, x.size(dim) + after), after = 0;
    KILN_CHECK_SHAPE(x.size(dim) >= 0, "{}: pads crop away the whole input", n.where());
    if (before || after) {
      std::vector<int64_t> p(2 * static_cast<size_t>(x.dim() - dim - 1), 0);
      p.push_back(before);
      p.push_back(after);
      x = pad(x, p);
    }
  }
  const int64_t cin_g = C / g, cout_g = w.size(1);
  Tensor wk = reshape(transpose(reshape(w, {g, cin_g, cout_g, k[0], k[1], k[2]}), 1, 2),
                      {g * cout_g, cin_g, k[0], k[1], k[2]});
  for (int64_t i = 0; i < 3; ++i) {
    std::vector<int64_t> rev;
    for (int64_t j = k[static_cast<size_t>(i)] - 1; j >= 0; --j) rev.push_back(j);
    if (rev.size() > 1) wk = index_select(wk, i + 2, index_tensor(rev));
  }
  return conv3d(n, x, wk, b, Spatial{k, {1, 1, 1}, d, {0, 0, 0, 0, 0, 0}}, g);
}

// ConvTranspose = conv over the input with (stride - 1) zeros between elements, padded by
// dilation·(k - 1) - pad on each side (plus output_padding at the end), with the kernel flipped
// and its in/out channels swapped per group.
Outs conv_transpose_op(const NodeContext& n, const Inputs& in) {
  Tensor x = required(n, in, 0), w = required(n, in, 1);
  const Tensor b = in.size() > 2 ? in[2] : Tensor();
  const bool one_d = x.dim() == 3;
  KILN_CHECK_SHAPE((x.dim() >= 3 && x.dim() <= 5) && w.dim() == x.dim(),
                   "{}: Kiln runs 1-D, 2-D and 3-D ConvTranspose; input [{}], weight [{}]",
                   n.where(), fmt::join(x.shape(), ", "), fmt::join(w.shape(), ", "));
  const size_t r = static_cast<size_t>(x.dim() - 2);
  const int64_t g = n.i("group", 1);
  KILN_CHECK_SHAPE(g > 0 && x.size(1) == w.size(0) && w.size(0) % g == 0,
                   "{}: input channels {} must equal weight[0] = {} (divisible by group {})",
                   n.where(), x.size(1), w.size(0), g);
  const std::vector<int64_t> k(w.shape().begin() + 2, w.shape().end());
  const auto s = n.ints("strides", std::vector<int64_t>(r, 1));
  const auto d = n.ints("dilations", std::vector<int64_t>(r, 1));
  auto outpad = n.ints("output_padding", std::vector<int64_t>(r, 0));
  auto pads = n.ints("pads", std::vector<int64_t>(2 * r, 0));
  KILN_CHECK_SHAPE(s.size() == r && d.size() == r && outpad.size() == r && pads.size() == 2 * r,
                   "{}: strides/dilations/output_padding/pads do not match {} spatial dims",
                   n.where(), r);
  const std::string mode = n.s("auto_pad", "NOTSET");
  const auto out_shape = n.ints("output_shape");
  for (size_t i = 0; i < r; ++i) {
    KILN_CHECK_SHAPE(s[i] > 0 && d[i] > 0, "{}: strides and dilations must be positive", n.where());
    const int64_t full =
        s[i] * (x.size(static_cast<int64_t>(i) + 2) - 1) + outpad[i] + (k[i] - 1) * d[i] + 1;
    if (!out_shape.empty() || mode == "SAME_UPPER" || mode == "SAME_LOWER") {
      const int64_t target = !out_shape.empty() ? out_shape[out_shape.size() - r + i]
                                                : x.size(static_cast<int64_t>(i) + 2) * s[i];
      const int64_t total = full - target;
      const int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2);  // floor(total / 2)
      if (mode == "SAME_UPPER") {
        pads[i] = half;
        pads[i + r] = total - half;
      } else {
        pads[i] = total - half;
        pads[i + r] = half;
      }
    } else if (mode == "VALID") {
      pads[i] = pads[i + r] = 0;
    }
  }
  if (r == 3) return {conv_transpose_3d(n, x, w, b, s, d, outpad, pads, g)};
  if (one_d) {
    x = unsqueeze(x, 2);
    w = unsqueeze(w, 2);
  }
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  // Non-overlapping windows (stride = kernel, no dilation, padding or groups; DBNet's 2x2/2
  // upsampling): each input pixel writes its own k_h x k_w block, so the whole op is one GEMM
  //   (B·H·W, C_in) x (C_in, C_out·kh·kw)  ->  blocks rearranged to (B, C_out, H·kh, W·kw).
  const bool blocks = g == 1 && !one_d && s[0] == k[0] && s[1] == k[1] && d[0] == 1 && d[1] == 1 &&
                      outpad[0] == 0 && outpad[1] == 0 &&
                      std::all_of(pads.begin(), pads.end(), [](int64_t p) { return p == 0; });
  if (blocks) {
    const int64_t Co = w.size(1);
    Tensor cols = matmul(reshape(permute(x, {0, 2, 3, 1}), {B * H * W, C}),
                         reshape(w, {C, Co * k[0] * k[1]}));
    Tensor y = permute(reshape(cols, {B, H, W, Co, k[0], k[1]}), {0, 3, 1, 4, 2, 5});
    y = reshape(y, {B, Co, H * k[0], W * k[1]});
    if (b.defined()) y = add(y, reshape(b, {Co, 1, 1}));
    return {y};
  }
  const std::vector<int64_t> s2 = one_d ? std::vector<int64_t>{1, s[0]} : s;
  const std::vector<int64_t> d2 = one_d ? std::vector<int64_t>{1, d[0]} : d;
  const std::vector<int64_t> k2 = one_d ? std::vector<int64_t>{1, k[0]} : k;
  const std::vector<int64_t> op2 = one_d ? std::vector<int64_t>{0, outpad[0]} : outpad;
  const std::vector<int64_t> pb =
      one_d ? std::vector<int64_t>{0, pads[0]} : std::vector<int64_t>{pads[0], pads[1]};
  const std::vector<int64_t> pe =
      one_d ? std::vector<int64_t>{0, pads[1]} : std::vector<int64_t>{pads[2], pads[3]};
  // 1. stride-dilate the input.
  if (s2[0] > 1 || s2[1] > 1) {
    x = reshape(x, {B, C, H, 1, W, 1});
    x = pad(x, {0, s2[1] - 1, 0, 0, 0, s2[0] - 1});
    x = reshape(x, {B, C, H * s2[0], W * s2[1]});
    x = narrow(narrow(x, 2, 0, (H - 1) * s2[0] + 1), 3, 0, (W - 1) * s2[1] + 1);
  }
  // 2. pad (or crop) by d·(k-1) - pad, output_padding at the end.
  for (int64_t a = 0; a < 2; ++a) {
    const int64_t edge = d2[static_cast<size_t>(a)] * (k2[static_cast<size_t>(a)] - 1);
    int64_t before = edge - pb[static_cast<size_t>(a)],
            after = edge - pe[static_cast<size_t>(a)] + op2[static_cast<size_t>(a)];
    const int64_t dim = 2 + a;
    if (before < 0) x = narrow(x, dim, -before, x.size(dim) + before), before = 0;
    if (after < 0) x = narrow(x, dim, 0, x.size(dim) + after), after = 0;
    KILN_CHECK_SHAPE(x.size(dim) >= 0, "{}: pads crop away the whole input", n.where());
    if (before || after)
      x = pad(x, a == 0 ? std::vector<int64_t>{0, 0, before, after}
                        : std::vector<int64_t>{before, after});
  }
  // 3. kernel: (C_in, C_out/g, kh, kw) -> (C_out, C_in/g, kh, kw), flipped.
  const int64_t cin_g = C / g, cout_g = w.size(1);
  Tensor wk = reshape(transpose(reshape(w, {g, cin_g, cout_g, k2[0], k2[1]}), 1, 2),
                      {g * cout_g, cin_g, k2[0], k2[1]});
  std::vector<int64_t> rh, rw;
  for (int64_t i = k2[0] - 1; i >= 0; --i) rh.push_back(i);
  for (int64_t i = k2[1] - 1; i >= 0; --i) rw.push_back(i);
  if (k2[0] > 1) wk = index_select(wk, 2, index_tensor(rh));
  if (k2[1] > 1) wk = index_select(wk, 3, index_tensor(rw));
  Tensor y = conv2d(x, wk, b, {1, 1}, {0, 0}, d2, g);
  return {one_d ? squeeze(y, 2) : y};
}

// Output length of a pooling window sweep, and the extra end padding ceil_mode needs.
struct PoolGeometry {
  std::vector<int64_t> pads;  // [begin..., end...] including ceil_mode's extra
  std::vector<int64_t> extra;
};
PoolGeometry pool_geometry(const NodeContext& n, const Tensor& x, const Spatial& sp) {
  const size_t r = sp.k.size();
  PoolGeometry g{sp.pads, std::vector<int64_t>(r, 0)};
  const bool ceil_mode = n.i("ceil_mode", 0) != 0;
  for (size_t i = 0; i < r; ++i) {
    const int64_t in = x.size(static_cast<int64_t>(i) + 2) + sp.pads[i] + sp.pads[i + r];
    const int64_t span = (sp.k[i] - 1) * sp.d[i] + 1;
    KILN_CHECK_SHAPE(in >= span, "{}: window {} is larger than the padded input {}", n.where(),
                     span, in);
    if (!ceil_mode) continue;
    int64_t out = (in - span + sp.s[i] - 1) / sp.s[i] + 1;
    if ((out - 1) * sp.s[i] >= x.size(static_cast<int64_t>(i) + 2) + sp.pads[i]) --out;
    g.extra[i] = std::max<int64_t>(0, (out - 1) * sp.s[i] + span - in);
    g.pads[i + r] += g.extra[i];
  }
  return g;
}

Tensor as_2d(const Tensor& x) {
  return x.dim() == 3 ? unsqueeze(x, 2) : x;
}

// Pooling of any rank and dilation: combine (max or sum) the strided slices of the padded input
// for every kernel offset. Used where Kiln's 2-D pooling kernels do not apply (3-D, dilation).
template <bool Max>
Tensor pool_by_slices(const Tensor& xp, const Spatial& sp) {
  const size_t r = sp.k.size();
  std::vector<int64_t> out(r);
  int64_t taps = 1;
  for (size_t i = 0; i < r; ++i) {
    out[i] = (xp.size(static_cast<int64_t>(i) + 2) - ((sp.k[i] - 1) * sp.d[i] + 1)) / sp.s[i] + 1;
    taps *= sp.k[i];
  }
  Tensor acc;
  for (int64_t t = 0; t < taps; ++t) {
    Tensor v = xp;
    int64_t rem = t;
    for (size_t i = r; i-- > 0;) {
      const int64_t o = rem % sp.k[i];
      rem /= sp.k[i];
      const int64_t start = o * sp.d[i];
      v = slice(v, static_cast<int64_t>(i) + 2, start, start + (out[i] - 1) * sp.s[i] + 1, sp.s[i]);
    }
    acc = t == 0 ? v : (Max ? maximum(acc, v) : add(acc, v));
  }
  return contiguous(acc);
}
bool needs_generic_pool(const Tensor& x, const Spatial& sp) {
  if (x.dim() == 5) return true;
  for (int64_t d : sp.d)
    if (d != 1) return true;
  return false;
}
std::vector<int64_t> pair2(const std::vector<int64_t>& v, int64_t one) {
  return v.size() == 1 ? std::vector<int64_t>{one, v[0]} : v;
}

// MaxPool's Indices output: for each window the flat index into X (N·C·D1·...·Dn, spatial dims
// row-major, or column-major with storage_order = 1) of its first largest element, found by
// sweeping the kernel offsets as pool_by_slices does. A constant (no gradient).
Tensor max_pool_indices(const NodeContext& n, const Tensor& x, const Spatial& sp,
                        const PoolGeometry& g) {
  const bool column_major = n.i("storage_order", 0) != 0;
  const int64_t r = x.dim() - 2;
  Shape order = x.shape();  // the layout the index counts in
  if (column_major) std::reverse(order.begin() + 2, order.end());
  Tensor flat = reshape(arange(0, static_cast<double>(x.numel()), 1.0, kFloat64), order);
  if (column_major) {
    std::vector<int64_t> back = {0, 1};
    for (int64_t d = r; d-- > 0;) back.push_back(d + 2);
    flat = contiguous(permute(flat, back));
  }
  const Tensor xp = pad_spatial(to_dtype(x, kFloat64), g.pads, -kInf),
               ip = pad_spatial(flat, g.pads, -1.0);
  std::vector<int64_t> out(static_cast<size_t>(r));
  int64_t taps = 1;
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = (xp.size(static_cast<int64_t>(i) + 2) - ((sp.k[i] - 1) * sp.d[i] + 1)) / sp.s[i] + 1;
    taps *= sp.k[i];
  }
  Tensor best, at;
  for (int64_t t = 0; t < taps; ++t) {
    Tensor v = xp, i = ip;
    int64_t rem = t;
    for (size_t a = out.size(); a-- > 0;) {
      const int64_t o = rem % sp.k[a], start = o * sp.d[a], dim = static_cast<int64_t>(a) + 2;
      rem /= sp.k[a];
      v = slice(v, dim, start, start + (out[a] - 1) * sp.s[a] + 1, sp.s[a]);
      i = slice(i, dim, start, start + (out[a] - 1) * sp.s[a] + 1, sp.s[a]);
    }
    if (t == 0) {
      best = v;
      at = i;
      continue;
    }
    const Tensor larger = gt(v, best);  // strict: ties keep the first
    best = where(larger, v, best);
    at = where(larger, i, at);
  }
  return nondiff(n, {x}, at.data().to(kInt64));
}

Outs max_pool_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  Spatial sp = spatial(n, x, n.ints("kernel_shape"));
  const PoolGeometry g = pool_geometry(n, x, sp);
  Tensor y;
  if (needs_generic_pool(x, sp) || !is_floating(x.dtype())) {
    const Tensor xp = pad_spatial(x, g.pads, is_floating(x.dtype()) ? -kInf : -1e18);
    y = pool_by_slices<true>(xp, sp);
  } else {
    Tensor xp = as_2d(pad_spatial(x, g.pads, -kInf));
    y = max_pool2d(xp, pair2(sp.k, 1), pair2(sp.s, 1), {0, 0});
    if (x.dim() == 3) y = squeeze(y, 2);
  }
  if (n.n_outputs < 2) return {y};
  return {y, max_pool_indices(n, x, sp, g)};
}

// AveragePool = window sums of the zero-padded input / window counts, where the counts come from
// pooling a 0/1 mask (explicit pads count only with count_include_pad; ceil_mode's overhang never).
Outs avg_pool_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  Spatial sp = spatial(n, x, n.ints("kernel_shape"));
  const PoolGeometry g = pool_geometry(n, x, sp);
  const size_t r = sp.k.size();
  const bool generic = needs_generic_pool(x, sp);
  auto avg = [&](const Tensor& t) {
    if (!generic) return avg_pool2d(as_2d(t), pair2(sp.k, 1), pair2(sp.s, 1), {0, 0});
    double taps = 1;
    for (int64_t k : sp.k) taps *= static_cast<double>(k);
    return div(pool_by_slices<false>(t, sp), taps);
  };
  Tensor y = avg(pad_spatial(x, g.pads, 0.0));
  bool any_pad = false;
  for (int64_t p : g.pads) any_pad = any_pad || p != 0;
  if (any_pad) {
    Shape ms{1, 1};
    for (size_t i = 0; i < r; ++i) ms.push_back(x.size(static_cast<int64_t>(i) + 2));
    Tensor mask = ones(ms, x.dtype());
    if (n.i("count_include_pad", 0) != 0) {
      mask = pad_spatial(mask, sp.pads, 1.0);
      std::vector<int64_t> ex(2 * r, 0);
      for (size_t i = 0; i < r; ++i) ex[i + r] = g.extra[i];
      mask = pad_spatial(mask, ex, 0.0);
    } else {
      mask = pad_spatial(mask, g.pads, 0.0);
    }
    Tensor count = avg(mask);
    y = div(y, Tensor(count.data()));
  }
  return {x.dim() == 3 && !generic ? squeeze(y, 2) : y};
}

Dims spatial_dims(const Tensor& x) {
  Dims d;
  for (int64_t k = 2; k < x.dim(); ++k) d.push_back(k);
  return d;
}
Outs global_avg_pool_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {mean(x, spatial_dims(x), true)};
}
Outs global_max_pool_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  return {amax(x, spatial_dims(x), true)};
}

// BatchNormalization: running statistics in inference; with training_mode (opset 14+) batch
// statistics and the updated running ones as extra outputs. When the imported module is in
// training mode, the running statistics are updated in place as in PyTorch (ONNX's momentum m
// is PyTorch's 1 - m).
Outs batch_norm_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &scale = required(n, in, 1), &bias = required(n, in, 2),
               &rm = required(n, in, 3), &rv = required(n, in, 4);
  const double eps = n.f("epsilon", 1e-5), momentum = n.f("momentum", 0.9);
  const bool train_attr = n.i("training_mode", 0) != 0;
  if (!train_attr && !(n.training && n.n_outputs == 1 && x.dim() >= 2 &&
                       x.numel() / std::max<int64_t>(x.size(1), 1) > 1))
    return {batch_norm(x, rm, rv, scale, bias, false, 1.0 - momentum, eps)};
  if (!train_attr) return {batch_norm(x, rm, rv, scale, bias, true, 1.0 - momentum, eps)};
  Tensor mean_c = Tensor(rm.data().clone()), var_c = Tensor(rv.data().clone());
  Tensor y = batch_norm(x, mean_c, var_c, scale, bias, true, 1.0 - momentum, eps);
  // Kiln's running variance is unbiased (PyTorch); ONNX's reference uses the biased one.
  Dims dims{0};
  for (int64_t k = 2; k < x.dim(); ++k) dims.push_back(k);
  Tensor bm = mean(x.detach(), dims), bv = var(x.detach(), dims, 0);
  Tensor new_mean = add(mul(rm, momentum), mul(bm, 1.0 - momentum));
  Tensor new_var = add(mul(rv, momentum), mul(bv, 1.0 - momentum));
  return {y, new_mean, new_var};
}

Outs instance_norm_op(const NodeContext& n, const Inputs& in) {
  const Tensor &x = required(n, in, 0), &scale = required(n, in, 1), &bias = required(n, in, 2);
  KILN_CHECK_SHAPE(x.dim() >= 3, "{}: input must be (B, C, *)", n.where());
  const Dims d = spatial_dims(x);
  Shape cs{x.size(1)};
  for (int64_t k = 2; k < x.dim(); ++k) cs.push_back(1);
  const Tensor mu = mean(x, d, true);
  const Tensor xc = sub(x, mu);
  const Tensor y = mul(xc, rsqrt(add(mean(square(xc), d, true), n.f("epsilon", 1e-5))));
  return {add(mul(y, reshape(scale, cs)), reshape(bias, cs))};
}

Outs layer_norm_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const Tensor& scale = required(n, in, 1);
  const Tensor bias = in.size() > 2 ? in[2] : Tensor();
  const int64_t a = axis(n, n.i("axis", -1), x.dim());
  const double eps = n.f("epsilon", 1e-5);
  const Shape norm(x.shape().begin() + a, x.shape().end());
  if (n.n_outputs == 1 && scale.shape() == norm && (!bias.defined() || bias.shape() == norm))
    return {layer_norm(x, norm, scale, bias, eps)};
  Dims d;
  for (int64_t k = a; k < x.dim(); ++k) d.push_back(k);
  const Tensor mu = mean(x, d, true);
  const Tensor xc = sub(x, mu);
  const Tensor inv = rsqrt(add(mean(square(xc), d, true), eps));
  Tensor y = mul(mul(xc, inv), scale);
  if (bias.defined()) y = add(y, bias);
  return {y, mu, inv};
}

// LRN: x / (bias + alpha/size · Σ_window x²)^beta over a window of `size` channels.
Outs lrn_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_SHAPE(x.dim() >= 3, "{}: input must be (B, C, *)", n.where());
  const int64_t size = n.i("size", 1);
  KILN_CHECK(size > 0, "{}: size must be positive", n.where());
  const double alpha = n.f("alpha", 1e-4), beta = n.f("beta", 0.75), bias = n.f("bias", 1.0);
  const int64_t B = x.size(0), C = x.size(1), rest = C == 0 || B == 0 ? 0 : x.numel() / (B * C);
  Tensor sq = reshape(square(x), {B, 1, C, rest});
  sq = pad(sq, {0, 0, (size - 1) / 2, size - 1 - (size - 1) / 2});
  Tensor win = mul(avg_pool2d(sq, {size, 1}, {1, 1}, {0, 0}), static_cast<double>(size));
  Tensor den =
      pow(add(mul(reshape(win, x.shape()), alpha / static_cast<double>(size)), bias), beta);
  return {div(x, den)};
}

}  // namespace

void register_nn_ops(OpTable& t) {
  t["MatMul"] = matmul_op;
  t["Gemm"] = gemm_op;
  t["Conv"] = conv_op;
  t["ConvTranspose"] = conv_transpose_op;
  t["MaxPool"] = max_pool_op;
  t["AveragePool"] = avg_pool_op;
  t["GlobalAveragePool"] = global_avg_pool_op;
  t["GlobalMaxPool"] = global_max_pool_op;
  t["BatchNormalization"] = batch_norm_op;
  t["InstanceNormalization"] = instance_norm_op;
  t["LayerNormalization"] = layer_norm_op;
  t["LRN"] = lrn_op;
}

}  // namespace kiln::onnx::detail
