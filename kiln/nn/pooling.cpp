#include "kiln/nn/pooling.h"

#include <algorithm>
#include <limits>

#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/padding.h"
#include "kiln/tensor/error.h"

namespace kiln::nn {
namespace {
std::vector<int64_t> pair_of(const std::vector<int64_t>& v, const char* what) {
  KILN_CHECK(v.size() == 1 || v.size() == 2, "Pool2dOptions: {} needs 1 or 2 values, got {}", what,
             v);
  return v.size() == 1 ? std::vector<int64_t>{v[0], v[0]} : v;
}
std::string tup(const std::vector<int64_t>& v) {
  return fmt::format("({})", fmt::join(v, ", "));
}
void check_input(const Module& m, const Tensor& x, int64_t dims, const char* layout) {
  KILN_CHECK_SHAPE(x.dim() == dims, "{}: expected a {}-d input {}, got shape {}", m.where(), dims,
                   layout, x.shape());
}
}  // namespace

MaxPool1d::MaxPool1d(MaxPool1dOptions options) : Module("MaxPool1d"), options_(options) {
  KILN_CHECK(options.kernel_size() > 0 && options.padding() >= 0 &&
                 options.padding() <= options.kernel_size() / 2,
             "MaxPool1d: kernel_size must be positive and 0 <= padding <= kernel_size/2, got "
             "kernel_size={} padding={}",
             options.kernel_size(), options.padding());
  KILN_CHECK(options.padding_mode().empty() || options.padding_mode() == "same" ||
                 options.padding_mode() == "valid",
             "MaxPool1d: padding_mode must be \"\", \"same\" or \"valid\", got \"{}\"",
             options.padding_mode());
  if (options_.stride() <= 0) options_.stride(options_.kernel_size());
}

Tensor MaxPool1d::forward(const Tensor& x) {
  check_input(*this, x, 3, "(B, C, L)");
  const auto& o = options_;
  if (o.padding_mode() == "valid") return max_pool1d(x, o.kernel_size(), o.stride(), 0);
  if (o.padding_mode() != "same") return max_pool1d(x, o.kernel_size(), o.stride(), o.padding());
  const std::vector<int64_t> pads = same_pads(x.shape(), {o.kernel_size()}, {o.stride()}, {1});
  return max_pool1d(pad(x, pads, -std::numeric_limits<double>::infinity()), o.kernel_size(),
                    o.stride(), 0);
}

std::string MaxPool1d::extra_repr() const {
  return fmt::format("kernel_size={}, stride={}, padding={}", options_.kernel_size(),
                     options_.stride(),
                     options_.padding_mode().empty() ? fmt::format("{}", options_.padding())
                                                     : options_.padding_mode());
}

Pool2dOptions::Pool2dOptions(std::vector<int64_t> kernel_size)
    : kernel_size_(pair_of(kernel_size, "kernel_size")) {}
Pool2dOptions& Pool2dOptions::stride(std::vector<int64_t> s) {
  stride_ = pair_of(s, "stride");
  return *this;
}
Pool2dOptions& Pool2dOptions::padding(std::vector<int64_t> p) {
  padding_ = pair_of(p, "padding");
  padding_mode_.clear();
  return *this;
}
Pool2dOptions& Pool2dOptions::padding_mode(const std::string& mode) {
  KILN_CHECK(mode == "same" || mode == "valid",
             "Pool2dOptions: padding must be \"same\", \"valid\" or sizes, got \"{}\"", mode);
  padding_mode_ = mode;
  padding_ = {0, 0};
  return *this;
}

namespace {
// The pads for pad() ({left, right, top, bottom}): "same" from padding.h, else the symmetric ones.
std::vector<int64_t> explicit_pads(const Pool2dOptions& o, const Tensor& x) {
  if (o.padding_mode() == "same") return same_pads(x.shape(), o.kernel_size(), o.stride(), {1, 1});
  return {o.padding()[1], o.padding()[1], o.padding()[0], o.padding()[0]};
}
bool any_pad(const std::vector<int64_t>& pads) {
  return std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; });
}
}  // namespace

namespace {
Pool2dOptions checked(Pool2dOptions o, const char* op) {
  if (o.stride().empty()) o.stride(o.kernel_size());
  for (int i = 0; i < 2; ++i)
    KILN_CHECK(o.kernel_size()[i] > 0 && o.stride()[i] > 0 && o.padding()[i] >= 0 &&
                   o.padding()[i] <= o.kernel_size()[i] / 2,
               "{}: kernel_size and stride must be positive and 0 <= padding <= kernel_size/2, got "
               "kernel_size={} "
               "stride={} padding={}",
               op, o.kernel_size(), o.stride(), o.padding());
  return o;
}
}  // namespace

MaxPool2d::MaxPool2d(MaxPool2dOptions options)
    : Module("MaxPool2d"), options_(checked(options, "MaxPool2d")) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  check_input(*this, x, 4, "(B, C, H, W)");
  if (options_.padding_mode() != "same")
    return max_pool2d(x, options_.kernel_size(), options_.stride(), options_.padding());
  const std::vector<int64_t> pads = explicit_pads(options_, x);
  return max_pool2d(pad(x, pads, -std::numeric_limits<double>::infinity()), options_.kernel_size(),
                    options_.stride());
}

namespace {
std::string pool2d_repr(const Pool2dOptions& o) {
  return fmt::format("kernel_size={}, stride={}, padding={}", tup(o.kernel_size()), tup(o.stride()),
                     o.padding_mode().empty() ? tup(o.padding()) : o.padding_mode());
}
}  // namespace

std::string MaxPool2d::extra_repr() const {
  return pool2d_repr(options_);
}

AvgPool2d::AvgPool2d(AvgPool2dOptions options)
    : Module("AvgPool2d"), options_(checked(options, "AvgPool2d")) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  check_input(*this, x, 4, "(B, C, H, W)");
  const auto& k = options_.kernel_size();
  const auto& s = options_.stride();
  const std::vector<int64_t> pads = explicit_pads(options_, x);
  if (!any_pad(pads) || (options_.count_include_pad() && options_.padding_mode() != "same"))
    return avg_pool2d(x, k, s, options_.padding());
  if (options_.count_include_pad()) return avg_pool2d(pad(x, pads), k, s);
  // Padding left out of the count: the zero-padded window means times k_h·k_w are the sums of the
  // real pixels; divide by how many real pixels each window holds (the same pooling over ones).
  Tensor counts;
  {
    NoGradGuard no_grad;
    counts = avg_pool2d(pad(ones({1, 1, x.size(2), x.size(3)}, x.dtype()), pads), k, s);
  }
  return avg_pool2d(pad(x, pads), k, s) / counts;
}

std::string AvgPool2d::extra_repr() const {
  return pool2d_repr(options_) + (options_.count_include_pad() ? "" : ", count_include_pad=false");
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(std::vector<int64_t> output_size)
    : Module("AdaptiveAvgPool2d"), output_size_(pair_of(output_size, "output_size")) {
  KILN_CHECK(output_size_[0] > 0 && output_size_[1] > 0,
             "AdaptiveAvgPool2d: output_size must be positive, got {}", output_size_);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  check_input(*this, x, 4, "(B, C, H, W)");
  return adaptive_avg_pool2d(x, output_size_);
}

std::string AdaptiveAvgPool2d::extra_repr() const {
  return "output_size=" + tup(output_size_);
}

Tensor GlobalAvgPool::forward(const Tensor& x) {
  KILN_CHECK_SHAPE(x.dim() >= 3,
                   "{}: expected an input (B, C, *) with at least one spatial dim, got shape {}",
                   where(), x.shape());
  Dims dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return mean(x, dims, options_.keepdim());
}

std::string GlobalAvgPool::extra_repr() const {
  return options_.keepdim() ? "keepdim=true" : "";
}

}  // namespace kiln::nn
