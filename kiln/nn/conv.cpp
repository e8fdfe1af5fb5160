#include "kiln/nn/conv.h"

#include <algorithm>
#include <cmath>

#include "kiln/nn/init.h"
#include "kiln/nn/padding.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {

template <size_t N>
std::vector<int64_t> ConvOptions<N>::expand(const std::vector<int64_t>& v, const char* what) {
  KILN_CHECK(v.size() == 1 || v.size() == N, "Conv{}dOptions: {} needs 1 or {} values, got {}", N,
             what, N, v);
  return v.size() == 1 ? std::vector<int64_t>(N, v[0]) : v;
}

template <size_t N>
ConvOptions<N>& ConvOptions<N>::padding_mode(const std::string& mode) {
  KILN_CHECK(mode == "same" || mode == "valid",
             "Conv{}dOptions: padding must be \"same\", \"valid\" or sizes, got \"{}\"", N, mode);
  padding_mode_ = mode;
  padding_.assign(N, 0);
  return *this;
}

template <size_t N>
ConvNd<N>::ConvNd(std::string type_name, ConvOptions<N> options)
    : Module(std::move(type_name)), options_(std::move(options)) {
  const auto& o = options_;
  KILN_CHECK(o.in_channels() > 0 && o.out_channels() > 0 && o.groups() > 0,
             "{}: in_channels, out_channels and groups must be positive, got {}, {}, {}", name(),
             o.in_channels(), o.out_channels(), o.groups());
  KILN_CHECK(o.in_channels() % o.groups() == 0 && o.out_channels() % o.groups() == 0,
             "{}: in_channels={} and out_channels={} must both be divisible by groups={}", name(),
             o.in_channels(), o.out_channels(), o.groups());
  for (size_t i = 0; i < N; ++i)
    KILN_CHECK(
        o.kernel_size()[i] > 0 && o.stride()[i] > 0 && o.dilation()[i] > 0 && o.padding()[i] >= 0,
        "{}: kernel_size {}, stride {} and dilation {} must be positive and padding {} "
        "non-negative",
        name(), o.kernel_size(), o.stride(), o.dilation(), o.padding());
  Shape w{o.out_channels(), o.in_channels() / o.groups()};
  w.insert(w.end(), o.kernel_size().begin(), o.kernel_size().end());
  weight = register_parameter("weight", zeros(w));
  if (o.bias()) bias = register_parameter("bias", zeros({o.out_channels()}));
  reset_parameters();
}

template <size_t N>
void ConvNd<N>::reset_parameters(Generator* gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), init::FanMode::FanIn, "leaky_relu", gen);
  if (bias.defined()) {
    auto [fan_in, fan_out] = init::calculate_fan_in_and_fan_out(weight);
    double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    init::uniform_(bias, -bound, bound, gen);
  }
}

template <size_t N>
std::pair<Tensor, std::vector<int64_t>> ConvNd<N>::prepare(const Tensor& x) const {
  const auto& o = options_;
  KILN_CHECK_SHAPE(x.dim() == static_cast<int64_t>(N) + 2 && x.size(1) == o.in_channels(),
                   "{}: expected input {} with C_in={}, got shape {}", where(),
                   N == 1 ? "(B, C_in, L)" : "(B, C_in, H, W)", o.in_channels(), x.shape());
  if (o.padding_mode() != "same") return {x, o.padding()};
  // "same" (padding.h): the symmetric part goes to the op; where the total is odd, the input is
  // padded by the one extra pixel at the end.
  std::vector<int64_t> pads = same_pads(x.shape(), o.kernel_size(), o.stride(), o.dilation());
  std::vector<int64_t> begin(N), extra(2 * N, 0);
  bool asymmetric = false;
  for (size_t i = 0; i < N; ++i) {
    const size_t j = 2 * (N - 1 - i);  // pad() lists the last dim first
    begin[i] = pads[j];
    extra[j + 1] = pads[j + 1] - pads[j];
    asymmetric = asymmetric || extra[j + 1] != 0;
  }
  return {asymmetric ? pad(x, extra) : x, begin};
}

template <size_t N>
std::string ConvNd<N>::extra_repr() const {
  const auto& o = options_;
  auto tup = [](const std::vector<int64_t>& v) {
    return v.size() == 1 ? fmt::format("({},)", v[0]) : fmt::format("({})", fmt::join(v, ", "));
  };
  std::string s = fmt::format("{}, {}, kernel_size={}, stride={}", o.in_channels(),
                              o.out_channels(), tup(o.kernel_size()), tup(o.stride()));
  if (!o.padding_mode().empty()) {
    s += fmt::format(", padding={}", o.padding_mode());
  } else if (std::any_of(o.padding().begin(), o.padding().end(),
                         [](int64_t p) { return p != 0; })) {
    s += ", padding=" + tup(o.padding());
  }
  if (std::any_of(o.dilation().begin(), o.dilation().end(), [](int64_t d) { return d != 1; }))
    s += ", dilation=" + tup(o.dilation());
  if (o.groups() != 1) s += fmt::format(", groups={}", o.groups());
  if (!o.bias()) s += ", bias=false";
  return s;
}

template struct ConvOptions<1>;
template struct ConvOptions<2>;
template class ConvNd<1>;
template class ConvNd<2>;

Tensor Conv1d::forward(const Tensor& x) {
  auto [input, padding] = prepare(x);
  const auto& o = options_;
  return conv1d(input, weight, bias, o.stride()[0], padding[0], o.dilation()[0], o.groups());
}

Tensor Conv2d::forward(const Tensor& x) {
  auto [input, padding] = prepare(x);
  const auto& o = options_;
  return conv2d(input, weight, bias, o.stride(), padding, o.dilation(), o.groups());
}

}  // namespace kiln::nn
