// Fused loss kernels (loss.h). Legend: N loss rows, K classes. Inner loops run on Eigen arrays
// (vectorised exp) or on float64 lanes (nn_internal.h). The naive float64 twin of cross-entropy
// (*_reference) follows it.
#include "kiln/tensor/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kiln/tensor/creation.h"
#include "kiln/tensor/kernels/nn_internal.h"

namespace kiln::kernels {
using namespace nn_detail;

namespace {

// Class weights as float64 (1 each when undefined), checked against K.
std::vector<double> class_weights(const Array& weight, int64_t K, const char* op) {
  std::vector<double> w(static_cast<size_t>(K), 1.0);
  if (!weight.defined()) return w;
  KILN_CHECK_SHAPE(weight.dim() == 1 && weight.size(0) == K,
                   "{}: weight {} does not match {} classes (weight must be (K))", op,
                   weight.shape(), K);
  Array wd = weight.to(kFloat64).contiguous();
  std::copy(wd.data<double>(), wd.data<double>() + K, w.begin());
  return w;
}

// Targets as int64, each checked to be a class id or ignore_index (clear error, never UB). Returns
// Σ w_t over rows that are not ignored.
double check_targets(const Array& tgt, int64_t K, int64_t ignore_index,
                     const std::vector<double>& w, const char* op) {
  const int64_t* t = tgt.data<int64_t>();
  double total = 0;
  for (int64_t i = 0; i < tgt.numel(); ++i) {
    if (t[i] == ignore_index) continue;
    KILN_CHECK(
        t[i] >= 0 && t[i] < K,
        "{}: target[{}] = {} is out of range for {} classes (class ids must be in [0, {}) or equal "
        "ignore_index {})",
        op, i, t[i], K, K, ignore_index);
    total += w[static_cast<size_t>(t[i])];
  }
  return total;
}

void check_loss_inputs(const Array& x, const Array& target, const char* op) {
  check_float(x, op);
  KILN_CHECK_SHAPE(x.dim() == 2, "{}: input must be (N, K), got {}", op, x.shape());
  KILN_CHECK_TYPE(is_integral(target.dtype()), "{}: target must hold integer class ids, got {}", op,
                  target.dtype());
  KILN_CHECK_SHAPE(target.dim() == 1 && target.size(0) == x.size(0),
                   "{}: target {} does not match input {} (target must be (N) for input (N, K))",
                   op, target.shape(), x.shape());
}

}  // namespace

// ==================================================================== softmax cross-entropy, NLL
CrossEntropyForward softmax_cross_entropy(const Array& logits, const Array& target_in,
                                          const Array& weight, int64_t ignore_index, double eps,
                                          bool compute_grad) {
  check_loss_inputs(logits, target_in, "cross_entropy");
  const DType dt = logits.dtype();
  const int64_t N = logits.size(0), K = logits.size(1);
  Array x = logits.contiguous(), tgt = contiguous_as(target_in, kInt64);
  const std::vector<double> w = class_weights(weight, K, "cross_entropy");
  double wsum = 0;
  for (double v : w) wsum += v;
  CrossEntropyForward out;
  out.total_weight = check_targets(tgt, K, ignore_index, w, "cross_entropy");
  out.loss = Array({N}, dt);
  if (compute_grad) out.grad = Array({N, K}, dt);
  if (N == 0) return out;
  KILN_CHECK_SHAPE(K >= 1, "cross_entropy: logits {} have no classes", logits.shape());
  const double a = 1.0 - eps, b = eps / static_cast<double>(K);
  KILN_DISPATCH_FLOATING(dt, "cross_entropy", [&] {
    using T = scalar_t;
    const T* xp = x.data<T>();
    const int64_t* tp = tgt.data<int64_t>();
    T* lp = out.loss.data<T>();
    T* gp = compute_grad ? out.grad.data<T>() : nullptr;
    Vec<T> wv = Eigen::Map<const Eigen::ArrayXd>(w.data(), K).cast<T>();
    const bool weighted = weight.defined();
    parallel_for(0, N, row_grain(K), [&](int64_t i0, int64_t i1) {
      Vec<T> scratch(compute_grad ? 0 : K);
      for (int64_t i = i0; i < i1; ++i) {
        const T* xr = xp + i * K;
        T* e = compute_grad ? gp + i * K : scratch.data();
        const int64_t t = tp[i];
        if (t == ignore_index) {
          lp[i] = T(0);
          if (compute_grad) std::fill(e, e + K, T(0));
          continue;
        }
        // One pass over the row computes exp(x − max) into the gradient buffer; everything else
        // reuses it.
        const T m = max_of(xr, K);
        MMap<T> em(e, K);
        em = (CMap<T>(xr, K) - m).exp();
        const double s = sum_f64(e, K);
        const double lse = static_cast<double>(m) + std::log(s);
        const double wt = w[static_cast<size_t>(t)];
        double loss = a * wt * (lse - static_cast<double>(xr[t]));
        if (eps > 0) {
          const double wx = weighted ? dot_f64(wv.data(), xr, K) : sum_f64(xr, K);
          loss += b * (wsum * lse - wx);
        }
        lp[i] = static_cast<T>(loss);
        if (!compute_grad) continue;
        // grad_c = p_c·(a·w_t + b·Σw) − b·w_c − a·w_t·[c == t],  p_c = e_c / s.
        const T scale = static_cast<T>((a * wt + b * wsum) / s);
        if (weighted && eps > 0)
          em = em * scale - static_cast<T>(b) * wv;
        else
          em = em * scale - static_cast<T>(b);
        e[t] -= static_cast<T>(a * wt);
      }
    });
  });
  return out;
}

CrossEntropyForward softmax_cross_entropy_reference(const Array& logits, const Array& target_in,
                                                    const Array& weight, int64_t ignore_index,
                                                    double eps) {
  check_loss_inputs(logits, target_in, "cross_entropy");
  const int64_t N = logits.size(0), K = logits.size(1);
  Array x = logits.to(kFloat64).contiguous(), tgt = contiguous_as(target_in, kInt64);
  const std::vector<double> w = class_weights(weight, K, "cross_entropy");
  CrossEntropyForward out{Array({N}, kFloat64), zeros({N, K}, kFloat64),
                          check_targets(tgt, K, ignore_index, w, "cross_entropy")};
  const double* xp = x.data<double>();
  const int64_t* tp = tgt.data<int64_t>();
  for (int64_t i = 0; i < N; ++i) {
    out.loss.data<double>()[i] = 0;
    if (tp[i] == ignore_index) continue;
    std::vector<double> logp(K), p(K);
    double m = -kInf, s = 0;
    for (int64_t c = 0; c < K; ++c) m = std::max(m, xp[i * K + c]);
    for (int64_t c = 0; c < K; ++c) s += std::exp(xp[i * K + c] - m);
    for (int64_t c = 0; c < K; ++c) {
      logp[c] = xp[i * K + c] - m - std::log(s);
      p[c] = std::exp(logp[c]);
    }
    // PyTorch: (1 − ε)·nll + ε/K · (−Σ_c w_c log p_c); gradient of each term written out
    // separately.
    const int64_t t = tp[i];
    double smooth = 0;
    for (int64_t c = 0; c < K; ++c) smooth -= w[c] * logp[c];
    out.loss.data<double>()[i] = (1 - eps) * -w[t] * logp[t] + eps / K * smooth;
    for (int64_t c = 0; c < K; ++c) {
      double gs = 0;
      for (int64_t k = 0; k < K; ++k) gs += w[k] * (p[c] - (c == k));
      out.grad.data<double>()[i * K + c] = (1 - eps) * w[t] * (p[c] - (c == t)) + eps / K * gs;
    }
  }
  out.loss = out.loss.to(logits.dtype());
  out.grad = out.grad.to(logits.dtype());
  return out;
}

Array scale_rows(const Array& grad_in, const Array& row_scale) {
  KILN_CHECK_SHAPE(
      grad_in.dim() == 2 && (row_scale.numel() == 1 || row_scale.numel() == grad_in.size(0)),
      "scale_rows: scale {} does not fit rows of {} (one value, or one per row)", row_scale.shape(),
      grad_in.shape());
  Array g = grad_in.contiguous(), sc = contiguous_as(row_scale, kFloat64),
        out(g.shape(), g.dtype());
  const int64_t N = g.size(0), K = g.size(1);
  const bool one = sc.numel() == 1;
  KILN_DISPATCH_FLOATING(g.dtype(), "scale_rows", [&] {
    const scalar_t* gp = g.data<scalar_t>();
    scalar_t* op = out.data<scalar_t>();
    const double* sp = sc.data<double>();
    parallel_for(0, N, row_grain(K, kGrainSize), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        MMap<scalar_t>(op + i * K, K) =
            CMap<scalar_t>(gp + i * K, K) * static_cast<scalar_t>(sp[one ? 0 : i]);
    });
  });
  return out;
}

CrossEntropyForward nll_loss(const Array& log_probs, const Array& target_in, const Array& weight,
                             int64_t ignore_index) {
  check_loss_inputs(log_probs, target_in, "nll_loss");
  const int64_t N = log_probs.size(0), K = log_probs.size(1);
  Array x = log_probs.contiguous(), tgt = contiguous_as(target_in, kInt64);
  const std::vector<double> w = class_weights(weight, K, "nll_loss");
  CrossEntropyForward out;
  out.total_weight = check_targets(tgt, K, ignore_index, w, "nll_loss");
  out.loss = Array({N}, x.dtype());
  KILN_DISPATCH_FLOATING(x.dtype(), "nll_loss", [&] {
    const scalar_t* xp = x.data<scalar_t>();
    const int64_t* tp = tgt.data<int64_t>();
    scalar_t* lp = out.loss.data<scalar_t>();
    for (int64_t i = 0; i < N; ++i)
      lp[i] = tp[i] == ignore_index
                  ? scalar_t(0)
                  : static_cast<scalar_t>(-w[tp[i]] * static_cast<double>(xp[i * K + tp[i]]));
  });
  return out;
}

Array nll_loss_backward(const Array& g_in, const Array& target_in, const Array& weight,
                        int64_t ignore_index, int64_t K, DType dtype) {
  Array tgt = contiguous_as(target_in, kInt64), g = contiguous_as(g_in, kFloat64);
  const int64_t N = tgt.numel();
  KILN_CHECK_SHAPE(g.numel() == 1 || g.numel() == N,
                   "nll_loss_backward: gradient {} does not fit target {}", g.shape(), tgt.shape());
  const std::vector<double> w = class_weights(weight, K, "nll_loss");
  check_targets(tgt, K, ignore_index, w, "nll_loss");
  Array dx = zeros({N, K}, dtype);
  KILN_DISPATCH_FLOATING(dtype, "nll_loss_backward", [&] {
    scalar_t* dp = dx.data<scalar_t>();
    const int64_t* tp = tgt.data<int64_t>();
    const double* gp = g.data<double>();
    for (int64_t i = 0; i < N; ++i)
      if (tp[i] != ignore_index)
        dp[i * K + tp[i]] = static_cast<scalar_t>(-w[tp[i]] * gp[g.numel() == 1 ? 0 : i]);
  });
  return dx;
}

}  // namespace kiln::kernels
