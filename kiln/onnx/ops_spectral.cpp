// ONNX spectral ops for import_model (see import_ops_internal.h): DFT and STFT as products with
// cosine and sine matrices (Kiln's matmul, so both pass gradients; O(N²) per transform, fine for
// the frame lengths audio front ends use), and MelWeightMatrix (a constant). Complex tensors are
// ONNX's (..., 2) [real, imaginary] layout; a real input is (..., 1).
#include <fmt/ranges.h>

#include <cmath>
#include <numbers>

#include "kiln/onnx/import_ops_internal.h"

namespace kiln::onnx::detail {
namespace {

using Outs = std::vector<Tensor>;

struct Complex {
  Tensor re, im;  // im undefined for a real signal
};

// The DFT of the last dim of z (..., N) at length L (the signal cut or zero-padded to L):
// Y[k] = Σ_n z[n]·e^(∓2πi·kn/L), k < L (or L/2 + 1 when onesided); the inverse has e^(+...) and
// a 1/L factor. Computed in float64.
Complex dft_last(const Complex& z, int64_t L, bool inverse, bool onesided) {
  const int64_t N = std::min(z.re.size(-1), L), K = onesided ? L / 2 + 1 : L;
  Array c(Shape{N, K}, kFloat64), s(Shape{N, K}, kFloat64);
  const double scale = inverse ? 1.0 / static_cast<double>(L) : 1.0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      // kn mod L keeps the angle small, so cos/sin stay accurate for long transforms.
      const double a =
          2.0 * std::numbers::pi * static_cast<double>((k * n) % L) / static_cast<double>(L);
      c.data<double>()[n * K + k] = std::cos(a) * scale;
      s.data<double>()[n * K + k] = (inverse ? 1.0 : -1.0) * std::sin(a) * scale;
    }
  const Tensor C(c), S(s);
  auto cut = [N](const Tensor& t) {
    return to_dtype(t.size(-1) == N ? t : slice(t, -1, 0, N), kFloat64);
  };
  const Tensor re = cut(z.re);
  // (re + i·im)(C + i·S) = (re·C - im·S) + i(re·S + im·C)
  Complex y{matmul(re, C), matmul(re, S)};
  if (z.im.defined()) {
    const Tensor im = cut(z.im);
    y.re = sub(y.re, matmul(im, S));
    y.im = add(y.im, matmul(im, C));
  }
  return y;
}

// Splits x (..., 1 | 2) into its real and imaginary parts.
Complex complex_of(const NodeContext& n, const Tensor& x) {
  KILN_CHECK_SHAPE(x.dim() >= 2 && (x.size(-1) == 1 || x.size(-1) == 2),
                   "{}: input [{}] must end in a dim of 1 (real) or 2 (complex)", n.where(),
                   fmt::join(x.shape(), ", "));
  KILN_CHECK_TYPE(is_floating(x.dtype()), "{}: input must be float, got {}", n.where(), x.dtype());
  return {select(x, -1, 0), x.size(-1) == 2 ? select(x, -1, 1) : Tensor()};
}

// (re, im) -> (..., 2) in `dtype`.
Tensor stack_complex(const Complex& y, DType dtype) {
  return to_dtype(stack({y.re, y.im}, -1), dtype);
}

// DFT(input (..., 1 | 2), dft_length?) along `axis` (an attribute, default 1, at opset 17; an
// input, default -2, from 20).
Outs dft_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  const Complex z = complex_of(n, x);
  int64_t a = n.opset >= 20 ? (in.size() > 2 && in[2].defined()
                                   ? static_cast<int64_t>(scalar_value(n, in[2], "axis"))
                                   : -2)
                            : n.i("axis", 1);
  a = axis(n, a, x.dim());
  KILN_CHECK_SHAPE(a < x.dim() - 1, "{}: axis {} is the complex dim", n.where(), a);
  const bool inverse = n.i("inverse", 0) != 0, onesided = n.i("onesided", 0) != 0;
  KILN_CHECK(!(inverse && onesided), "{}: an inverse onesided DFT is not supported", n.where());
  const int64_t L = in.size() > 1 && in[1].defined()
                        ? static_cast<int64_t>(scalar_value(n, in[1], "dft_length"))
                        : x.size(a);
  KILN_CHECK_SHAPE(L > 0, "{}: dft_length {} must be positive", n.where(), L);
  auto last = [a](const Tensor& t) { return t.defined() ? transpose(t, a, -1) : t; };
  Complex y = dft_last({last(z.re), last(z.im)}, L, inverse, onesided);
  y = {transpose(y.re, a, -1), transpose(y.im, a, -1)};
  return {contiguous(stack_complex(y, x.dtype()))};
}

// STFT(signal (B, T, 1 | 2), frame_step, window?, frame_length?) -> (B, frames, bins, 2): frames
// of frame_length samples every frame_step, times the window, each transformed (bins =
// frame_length/2 + 1 when onesided, the default).
Outs stft_op(const NodeContext& n, const Inputs& in) {
  const Tensor& x = required(n, in, 0);
  KILN_CHECK_SHAPE(x.dim() == 3, "{}: signal [{}] must be (B, T, 1 | 2)", n.where(),
                   fmt::join(x.shape(), ", "));
  const Complex z = complex_of(n, x);
  const auto step = static_cast<int64_t>(scalar_value(n, required(n, in, 1), "frame_step"));
  const Tensor window = in.size() > 2 && in[2].defined() ? in[2] : Tensor();
  const int64_t len = in.size() > 3 && in[3].defined()
                          ? static_cast<int64_t>(scalar_value(n, in[3], "frame_length"))
                          : (window.defined() ? window.numel() : x.size(1));
  KILN_CHECK_SHAPE(
      step > 0 && len > 0 && len <= x.size(1) && (!window.defined() || window.numel() == len),
      "{}: frame_step {} and frame_length {} (window of {}) do not fit a signal of {}", n.where(),
      step, len, window.defined() ? window.numel() : len, x.size(1));
  const bool onesided = n.i("onesided", 1) != 0;
  const int64_t frames = 1 + (x.size(1) - len) / step;
  auto framed = [&](const Tensor& t) -> Tensor {  // (B, T) -> (B, frames, len) · window
    if (!t.defined()) return t;
    std::vector<Tensor> fs;
    for (int64_t f = 0; f < frames; ++f) fs.push_back(slice(t, 1, f * step, f * step + len));
    Tensor y = stack(fs, 1);
    return window.defined() ? mul(y, to_dtype(window, t.dtype())) : y;
  };
  const Complex y = dft_last({framed(z.re), framed(z.im)}, len, false, onesided);
  return {stack_complex(y, x.dtype())};
}

// MelWeightMatrix(num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz)
// -> (dft_length/2 + 1, num_mel_bins): triangular filters whose corners are num_mel_bins + 2
// points equally spaced in mel (2595·log10(1 + f/700)) between the edges, each mapped to the
// spectrogram bin floor((dft_length + 1)·f / sample_rate), as the spec's reference computes it.
Outs mel_weight_matrix_op(const NodeContext& n, const Inputs& in) {
  const auto mels = static_cast<int64_t>(scalar_value(n, required(n, in, 0), "num_mel_bins"));
  const auto dft = static_cast<int64_t>(scalar_value(n, required(n, in, 1), "dft_length"));
  const double rate = scalar_value(n, required(n, in, 2), "sample_rate"),
               lo = scalar_value(n, required(n, in, 3), "lower_edge_hertz"),
               hi = scalar_value(n, required(n, in, 4), "upper_edge_hertz");
  KILN_CHECK(mels > 0 && dft > 0 && rate > 0 && lo >= 0 && hi > lo,
             "{}: needs num_mel_bins, dft_length, sample_rate > 0 and 0 <= lower < upper edge",
             n.where());
  const int64_t bins = dft / 2 + 1;
  auto mel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
  const double mlo = mel(lo), step = (mel(hi) - mlo) / static_cast<double>(mels + 2);
  std::vector<int64_t> corner;
  for (int64_t i = 0; i < mels + 2; ++i) {
    const double f = 700.0 * (std::pow(10.0, (static_cast<double>(i) * step + mlo) / 2595.0) - 1);
    corner.push_back(static_cast<int64_t>(std::floor(static_cast<double>(dft + 1) * f / rate)));
  }
  Array out(Shape{bins, mels}, kFloat64);
  out.zero_();
  double* o = out.data<double>();
  auto at = [&](int64_t j, int64_t i) -> double& {
    KILN_CHECK_SHAPE(j >= 0 && j < bins, "{}: filter corner {} is outside the {} bins", n.where(),
                     j, bins);
    return o[j * mels + i];
  };
  for (int64_t i = 0; i < mels; ++i) {
    const int64_t left = corner[static_cast<size_t>(i)], mid = corner[static_cast<size_t>(i + 1)],
                  right = corner[static_cast<size_t>(i + 2)];
    if (mid == left)
      at(mid, i) = 1.0;
    else
      for (int64_t j = left; j <= mid; ++j)
        at(j, i) = static_cast<double>(j - left) / static_cast<double>(mid - left);
    for (int64_t j = mid; j < right; ++j)
      at(j, i) = static_cast<double>(right - j) / static_cast<double>(right - mid);
  }
  const int64_t t = n.i("output_datatype", 1);
  KILN_CHECK_TYPE(t == 1 || t == 11, "{}: output_datatype {} is not supported (float, double)",
                  n.where(), t);
  return {nondiff(n, in, out.to(t == 1 ? kFloat32 : kFloat64))};
}

}  // namespace

void register_spectral_ops(OpTable& t) {
  t["DFT"] = dft_op;
  t["STFT"] = stft_op;
  t["MelWeightMatrix"] = mel_weight_matrix_op;
}

}  // namespace kiln::onnx::detail
