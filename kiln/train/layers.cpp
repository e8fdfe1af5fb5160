#include "kiln/train/layers.h"

#include <atomic>
#include <cmath>
#include <limits>

#include "kiln/autograd/grad_mode.h"
#include "kiln/nn/init.h"
#include "kiln/tensor/error.h"

namespace kiln::layers {

// ---------------------------------------------------------------- activations

namespace {

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names = {
      "linear",      "relu", "relu6", "leaky_relu", "sigmoid",  "tanh",       "softmax",
      "log_softmax", "gelu", "silu",  "swish",      "softplus", "exponential"};
  return names;
}

std::string tuple_str(const std::vector<int64_t>& v) {
  return fmt::format("({})", fmt::join(v, ", "));
}

json::Value int_list(const std::vector<int64_t>& v) {
  json::Value a = json::Value::array();
  for (int64_t x : v) a.push_back(x);
  return a;
}

void check_pair(const std::vector<int64_t>& v, const std::string& where, const char* what,
                bool allow_empty = false) {
  if (allow_empty && v.empty()) return;
  KILN_CHECK(v.size() == 2 && v[0] > 0 && v[1] > 0,
             "{}: {} must be two positive sizes {{h, w}}, got {}", where, what, v);
}

// TensorFlow's "same" padding along one dim: output ⌈in / s⌉, the total split with the extra pixel
// on the right (bottom). Returns {left, right}.
std::pair<int64_t, int64_t> same_padding(int64_t in, int64_t k, int64_t s, int64_t d) {
  const int64_t out = (in + s - 1) / s;
  const int64_t total = std::max<int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
  return {total / 2, total - total / 2};
}

}  // namespace

void check_activation(const std::string& name, const std::string& where) {
  if (name.empty()) return;
  const auto& names = activation_names();
  KILN_CHECK(std::find(names.begin(), names.end(), name) != names.end(),
             "{}: unknown activation \"{}\" (known: \"\", {})", where, name,
             fmt::join(names, ", "));
}

Tensor activation(const std::string& name, const Tensor& x) {
  if (name.empty() || name == "linear") return x;
  if (name == "relu") return relu(x);
  if (name == "relu6") return clamp(x, 0.0, 6.0);
  if (name == "leaky_relu") return leaky_relu(x, 0.2);  // Keras' default negative_slope
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return tanh(x);
  if (name == "softmax") return softmax(x, -1);
  if (name == "log_softmax") return log_softmax(x, -1);
  if (name == "gelu") return gelu(x);
  if (name == "silu" || name == "swish") return silu(x);
  // softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^(−|x|)), stable for large |x|.
  if (name == "softplus") return relu(x) + log1p(exp(neg(abs(x))));
  if (name == "exponential") return exp(x);
  check_activation(name, "activation");
  return x;
}

// ---------------------------------------------------------------- Layer

Tensor Layer::forward(const Tensor& x) {
  if (!built_) build(x.shape());
  Tensor y = call(x);
  output_shape_ = y.shape();
  return y;
}

void Layer::build(const Shape& input_shape) {
  if (built_) {
    if (input_shape_.empty()) return;  // built without an input (Embedding)
    const bool same =
        input_shape.size() == input_shape_.size() &&
        std::equal(input_shape.begin() + 1, input_shape.end(), input_shape_.begin() + 1);
    KILN_CHECK_SHAPE(same,
                     "{}: build({}) does not match the input shape {} the layer was built for",
                     where(), input_shape, input_shape_);
    return;
  }
  KILN_CHECK_SHAPE(!input_shape.empty(),
                   "{}: build() needs an input shape with a batch dim, got []", where());
  build_impl(input_shape);
  input_shape_ = input_shape;
  built_ = true;
  init_parameters(nullptr);
}

void Layer::reset_parameters(Generator* gen) {
  if (built_) init_parameters(gen);
}

// ---------------------------------------------------------------- Dense

DenseLayer::DenseLayer(int64_t units, std::string activation, bool use_bias)
    : Layer("Dense"), units_(units), activation_(std::move(activation)), use_bias_(use_bias) {
  KILN_CHECK(units > 0, "Dense: units must be positive, got {}", units);
  check_activation(activation_, "Dense");
}

void DenseLayer::build_impl(const Shape& input_shape) {
  const int64_t in = input_shape.back();
  KILN_CHECK_SHAPE(input_shape.size() >= 2 && in > 0,
                   "{}: input must be (B, D) or (B, *, D) with D > 0, got {}", where(),
                   input_shape);
  weight = register_parameter("weight", zeros({units_, in}));
  if (use_bias_) bias = register_parameter("bias", zeros({units_}));
}

void DenseLayer::init_parameters(Generator* gen) {
  nn::init::xavier_uniform_(weight, 1.0, gen);
  if (bias.defined()) nn::init::zeros_(bias);
}

Tensor DenseLayer::call(const Tensor& x) {
  KILN_CHECK_SHAPE(
      x.dim() >= 1 && x.size(-1) == weight.size(1),
      "{}: input {} has {} features in its last dim, but the layer was built for {} (input {})",
      where(), x.shape(), x.dim() >= 1 ? x.size(-1) : 0, weight.size(1), input_shape());
  return activation(activation_, linear(x, weight, bias));
}

json::Value DenseLayer::config() const {
  json::Value c = json::Value::object();
  c["units"] = units_;
  c["activation"] = activation_.empty() ? "linear" : activation_;
  c["use_bias"] = use_bias_;
  return c;
}

std::string DenseLayer::extra_repr() const {
  return fmt::format("units={}, activation={}{}", units_,
                     activation_.empty() ? "linear" : activation_,
                     use_bias_ ? "" : ", use_bias=false");
}

// ---------------------------------------------------------------- Dropout

DropoutLayer::DropoutLayer(double rate, int64_t seed) : Layer("Dropout"), rate_(rate), seed_(seed) {
  KILN_CHECK(rate >= 0.0 && rate < 1.0, "Dropout: rate must be in [0, 1), got {}", rate);
  // Unseeded layers get distinct, reproducible streams by construction order.
  static std::atomic<uint64_t> counter{0};
  uint64_t s = seed >= 0 ? static_cast<uint64_t>(seed) : 0x5eed0000ULL + counter.fetch_add(1);
  gen_ = std::make_unique<Generator>(s);
  mark_built();
}

Tensor DropoutLayer::call(const Tensor& x) {
  if (!is_training() || rate_ == 0.0) return x;
  return dropout(x, rate_, true, gen_.get());
}

json::Value DropoutLayer::config() const {
  json::Value c = json::Value::object();
  c["rate"] = rate_;
  if (seed_ >= 0) c["seed"] = seed_;
  return c;
}

std::string DropoutLayer::extra_repr() const {
  return fmt::format("rate={}", rate_);
}

// ---------------------------------------------------------------- Flatten, Activation

Tensor FlattenLayer::call(const Tensor& x) {
  KILN_CHECK_SHAPE(x.dim() >= 1, "{}: input must have a batch dim, got a scalar", where());
  if (x.dim() == 1) return x.reshape({x.size(0), 1});
  return x.flatten(1, -1);
}

ActivationLayer::ActivationLayer(std::string activation)
    : Layer("Activation"), activation_(std::move(activation)) {
  check_activation(activation_, "Activation");
}

Tensor ActivationLayer::call(const Tensor& x) {
  return activation(activation_, x);
}

json::Value ActivationLayer::config() const {
  json::Value c = json::Value::object();
  c["activation"] = activation_.empty() ? "linear" : activation_;
  return c;
}

// ---------------------------------------------------------------- Conv2D

Conv2DLayer::Conv2DLayer(Conv2DOptions options) : Layer("Conv2D"), options_(std::move(options)) {
  const auto& o = options_;
  KILN_CHECK(o.filters() > 0, "Conv2D: filters must be positive, got {}", o.filters());
  check_pair(o.kernel_size(), "Conv2D", "kernel_size");
  check_pair(o.strides(), "Conv2D", "strides");
  check_pair(o.dilation_rate(), "Conv2D", "dilation_rate");
  KILN_CHECK(o.padding() == "valid" || o.padding() == "same",
             "Conv2D: padding must be \"valid\" or \"same\", got \"{}\"", o.padding());
  check_activation(o.activation(), "Conv2D");
}

void Conv2DLayer::build_impl(const Shape& input_shape) {
  KILN_CHECK_SHAPE(input_shape.size() == 4 && input_shape[1] > 0,
                   "{}: input must be (B, C, H, W) (NCHW), got {}", where(), input_shape);
  const auto& k = options_.kernel_size();
  weight = register_parameter("weight", zeros({options_.filters(), input_shape[1], k[0], k[1]}));
  if (options_.use_bias()) bias = register_parameter("bias", zeros({options_.filters()}));
}

void Conv2DLayer::init_parameters(Generator* gen) {
  nn::init::xavier_uniform_(weight, 1.0, gen);
  if (bias.defined()) nn::init::zeros_(bias);
}

Tensor Conv2DLayer::call(const Tensor& x) {
  const auto& o = options_;
  KILN_CHECK_SHAPE(x.dim() == 4 && x.size(1) == weight.size(1),
                   "{}: input {} must be (B, C, H, W) with C = {} (the layer was built for {})",
                   where(), x.shape(), weight.size(1), input_shape());
  Tensor in = x;
  std::vector<int64_t> padding{0, 0};
  if (o.padding() == "same") {
    auto [top, bottom] =
        same_padding(x.size(2), o.kernel_size()[0], o.strides()[0], o.dilation_rate()[0]);
    auto [left, right] =
        same_padding(x.size(3), o.kernel_size()[1], o.strides()[1], o.dilation_rate()[1]);
    if (top == bottom && left == right) {
      padding = {top, left};
    } else {
      in = pad(x, {left, right, top, bottom});
    }
  }
  return activation(o.activation(),
                    conv2d(in, weight, bias, o.strides(), padding, o.dilation_rate()));
}

json::Value Conv2DLayer::config() const {
  const auto& o = options_;
  json::Value c = json::Value::object();
  c["filters"] = o.filters();
  c["kernel_size"] = int_list(o.kernel_size());
  c["strides"] = int_list(o.strides());
  c["padding"] = o.padding();
  c["dilation_rate"] = int_list(o.dilation_rate());
  c["activation"] = o.activation().empty() ? "linear" : o.activation();
  c["use_bias"] = o.use_bias();
  return c;
}

std::string Conv2DLayer::extra_repr() const {
  const auto& o = options_;
  return fmt::format("filters={}, kernel_size={}, strides={}, padding={}, activation={}",
                     o.filters(), tuple_str(o.kernel_size()), tuple_str(o.strides()), o.padding(),
                     o.activation().empty() ? "linear" : o.activation());
}

// ---------------------------------------------------------------- pooling

Pooling2DLayer::Pooling2DLayer(std::string class_name, Pooling2DOptions options)
    : Layer(std::move(class_name)),
      is_max_(name() == "MaxPooling2D"),
      options_(std::move(options)) {
  KILN_CHECK(name() == "MaxPooling2D" || name() == "AveragePooling2D",
             "Pooling2DLayer: class must be MaxPooling2D or AveragePooling2D, got {}", name());
  check_pair(options_.pool_size(), name(), "pool_size");
  check_pair(options_.strides(), name(), "strides", /*allow_empty=*/true);
  KILN_CHECK(options_.padding() == "valid" || options_.padding() == "same",
             "{}: padding must be \"valid\" or \"same\", got \"{}\"", name(), options_.padding());
  mark_built();
}

Tensor Pooling2DLayer::call(const Tensor& x) {
  const auto& k = options_.pool_size();
  const std::vector<int64_t> s = options_.strides().empty() ? k : options_.strides();
  KILN_CHECK_SHAPE(x.dim() == 4, "{}: input must be (B, C, H, W), got {}", where(), x.shape());
  if (options_.padding() == "valid") {
    KILN_CHECK_SHAPE(x.size(2) >= k[0] && x.size(3) >= k[1],
                     "{}: input {} is smaller than the pool window {} (padding \"valid\")", where(),
                     x.shape(), k);
    return is_max_ ? max_pool2d(x, k, s) : avg_pool2d(x, k, s);
  }
  auto [top, bottom] = same_padding(x.size(2), k[0], s[0], 1);
  auto [left, right] = same_padding(x.size(3), k[1], s[1], 1);
  const std::vector<int64_t> pads{left, right, top, bottom};
  if (is_max_) return max_pool2d(pad(x, pads, -std::numeric_limits<double>::infinity()), k, s);
  // Average over the real pixels only: divide the zero-padded window sums by the count of real
  // pixels.
  Tensor counts;
  {
    NoGradGuard no_grad;
    counts = avg_pool2d(pad(ones({1, 1, x.size(2), x.size(3)}, x.dtype()), pads), k, s);
  }
  return avg_pool2d(pad(x, pads), k, s) / counts;
}

json::Value Pooling2DLayer::config() const {
  json::Value c = json::Value::object();
  c["pool_size"] = int_list(options_.pool_size());
  c["strides"] = options_.strides().empty() ? json::Value() : int_list(options_.strides());
  c["padding"] = options_.padding();
  return c;
}

std::string Pooling2DLayer::extra_repr() const {
  return fmt::format(
      "pool_size={}, strides={}, padding={}", tuple_str(options_.pool_size()),
      tuple_str(options_.strides().empty() ? options_.pool_size() : options_.strides()),
      options_.padding());
}

Tensor GlobalAveragePooling2DLayer::call(const Tensor& x) {
  KILN_CHECK_SHAPE(x.dim() == 4, "{}: input must be (B, C, H, W), got {}", where(), x.shape());
  return mean(x, {2, 3}, keepdims_);
}

json::Value GlobalAveragePooling2DLayer::config() const {
  json::Value c = json::Value::object();
  c["keepdims"] = keepdims_;
  return c;
}

// ---------------------------------------------------------------- normalisation

BatchNormalizationLayer::BatchNormalizationLayer(double momentum, double epsilon, bool center,
                                                 bool scale)
    : Layer("BatchNormalization"),
      momentum_(momentum),
      epsilon_(epsilon),
      center_(center),
      scale_(scale) {
  KILN_CHECK(momentum >= 0.0 && momentum <= 1.0 && epsilon > 0.0,
             "BatchNormalization: momentum must be in [0, 1] and epsilon positive, got {} and {}",
             momentum, epsilon);
}

void BatchNormalizationLayer::build_impl(const Shape& input_shape) {
  KILN_CHECK_SHAPE(input_shape.size() >= 2 && input_shape[1] > 0,
                   "{}: input must be (B, C) or (B, C, *) (channels in dim 1), got {}", where(),
                   input_shape);
  const int64_t C = input_shape[1];
  if (scale_) weight = register_parameter("weight", ones({C}));
  if (center_) bias = register_parameter("bias", zeros({C}));
  running_mean = register_buffer("running_mean", zeros({C}));
  running_var = register_buffer("running_var", ones({C}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
}

void BatchNormalizationLayer::init_parameters(Generator* gen) {
  (void)gen;
  if (weight.defined()) nn::init::ones_(weight);
  if (bias.defined()) nn::init::zeros_(bias);
  running_mean.fill_(0.0);
  running_var.fill_(1.0);
  num_batches_tracked.fill_(0.0);
}

Tensor BatchNormalizationLayer::call(const Tensor& x) {
  KILN_CHECK_SHAPE(x.dim() >= 2 && x.size(1) == running_mean.size(0),
                   "{}: input {} must be (B, C, *) with C = {} (the layer was built for {})",
                   where(), x.shape(), running_mean.size(0), input_shape());
  if (is_training()) {
    Array n = num_batches_tracked.data();
    n.fill_(static_cast<double>(n.item<int64_t>() + 1));
  }
  // Keras' momentum m keeps m of the old statistic; PyTorch's keeps 1 − m.
  return batch_norm(x, running_mean, running_var, weight, bias, is_training(), 1.0 - momentum_,
                    epsilon_);
}

json::Value BatchNormalizationLayer::config() const {
  json::Value c = json::Value::object();
  c["momentum"] = momentum_;
  c["epsilon"] = epsilon_;
  c["center"] = center_;
  c["scale"] = scale_;
  return c;
}

std::string BatchNormalizationLayer::extra_repr() const {
  return fmt::format("momentum={}, epsilon={}", momentum_, epsilon_);
}

LayerNormalizationLayer::LayerNormalizationLayer(double epsilon, bool center, bool scale)
    : Layer("LayerNormalization"), epsilon_(epsilon), center_(center), scale_(scale) {
  KILN_CHECK(epsilon > 0.0, "LayerNormalization: epsilon must be positive, got {}", epsilon);
}

void LayerNormalizationLayer::build_impl(const Shape& input_shape) {
  KILN_CHECK_SHAPE(input_shape.size() >= 2 && input_shape.back() > 0,
                   "{}: input must be (B, *, D) with D > 0, got {}", where(), input_shape);
  if (scale_) weight = register_parameter("weight", ones({input_shape.back()}));
  if (center_) bias = register_parameter("bias", zeros({input_shape.back()}));
}

void LayerNormalizationLayer::init_parameters(Generator* gen) {
  (void)gen;
  if (weight.defined()) nn::init::ones_(weight);
  if (bias.defined()) nn::init::zeros_(bias);
}

Tensor LayerNormalizationLayer::call(const Tensor& x) {
  const int64_t D = input_shape().back();
  KILN_CHECK_SHAPE(x.dim() >= 1 && x.size(-1) == D,
                   "{}: input {} must end in D = {} (the layer was built for {})", where(),
                   x.shape(), D, input_shape());
  return layer_norm(x, {D}, weight, bias, epsilon_);
}

json::Value LayerNormalizationLayer::config() const {
  json::Value c = json::Value::object();
  c["epsilon"] = epsilon_;
  c["center"] = center_;
  c["scale"] = scale_;
  return c;
}

std::string LayerNormalizationLayer::extra_repr() const {
  return fmt::format("epsilon={}", epsilon_);
}

// ---------------------------------------------------------------- Embedding

EmbeddingLayer::EmbeddingLayer(int64_t input_dim, int64_t output_dim)
    : Layer("Embedding"), input_dim_(input_dim), output_dim_(output_dim) {
  KILN_CHECK(input_dim > 0 && output_dim > 0,
             "Embedding: input_dim and output_dim must be positive, got {} and {}", input_dim,
             output_dim);
  weight = register_parameter("weight", zeros({input_dim, output_dim}));
  mark_built();
  init_parameters(nullptr);
}

void EmbeddingLayer::init_parameters(Generator* gen) {
  nn::init::uniform_(weight, -0.05, 0.05, gen);
}

Tensor EmbeddingLayer::call(const Tensor& x) {
  KILN_CHECK_TYPE(x.dtype() == kInt64 || x.dtype() == kInt32,
                  "{}: ids must be int64 token ids, got {} of shape {}", where(), x.dtype(),
                  x.shape());
  return embedding(weight, x.dtype() == kInt64 ? x : x.to(kInt64));
}

json::Value EmbeddingLayer::config() const {
  json::Value c = json::Value::object();
  c["input_dim"] = input_dim_;
  c["output_dim"] = output_dim_;
  return c;
}

std::string EmbeddingLayer::extra_repr() const {
  return fmt::format("{}, {}", input_dim_, output_dim_);
}

// ---------------------------------------------------------------- factories

std::shared_ptr<DenseLayer> Dense(int64_t units, std::string activation, bool use_bias) {
  return std::make_shared<DenseLayer>(units, std::move(activation), use_bias);
}
std::shared_ptr<DropoutLayer> Dropout(double rate, int64_t seed) {
  return std::make_shared<DropoutLayer>(rate, seed);
}
std::shared_ptr<FlattenLayer> Flatten() {
  return std::make_shared<FlattenLayer>();
}
std::shared_ptr<ActivationLayer> Activation(std::string activation) {
  return std::make_shared<ActivationLayer>(std::move(activation));
}
std::shared_ptr<Conv2DLayer> Conv2D(int64_t filters, int64_t kernel_size, int64_t strides,
                                    std::string padding, std::string activation) {
  return std::make_shared<Conv2DLayer>(Conv2DOptions(filters, kernel_size)
                                           .strides({strides, strides})
                                           .padding(std::move(padding))
                                           .activation(std::move(activation)));
}
std::shared_ptr<Conv2DLayer> Conv2D(Conv2DOptions options) {
  return std::make_shared<Conv2DLayer>(std::move(options));
}

static Pooling2DOptions pool_options(int64_t pool_size, int64_t strides, std::string padding) {
  Pooling2DOptions o(pool_size);
  if (strides > 0) o.strides({strides, strides});
  o.padding(std::move(padding));
  return o;
}
std::shared_ptr<Pooling2DLayer> MaxPooling2D(int64_t pool_size, int64_t strides,
                                             std::string padding) {
  return MaxPooling2D(pool_options(pool_size, strides, std::move(padding)));
}
std::shared_ptr<Pooling2DLayer> MaxPooling2D(Pooling2DOptions options) {
  return std::make_shared<Pooling2DLayer>("MaxPooling2D", std::move(options));
}
std::shared_ptr<Pooling2DLayer> AveragePooling2D(int64_t pool_size, int64_t strides,
                                                 std::string padding) {
  return AveragePooling2D(pool_options(pool_size, strides, std::move(padding)));
}
std::shared_ptr<Pooling2DLayer> AveragePooling2D(Pooling2DOptions options) {
  return std::make_shared<Pooling2DLayer>("AveragePooling2D", std::move(options));
}
std::shared_ptr<GlobalAveragePooling2DLayer> GlobalAveragePooling2D(bool keepdims) {
  return std::make_shared<GlobalAveragePooling2DLayer>(keepdims);
}
std::shared_ptr<BatchNormalizationLayer> BatchNormalization(double momentum, double epsilon) {
  return std::make_shared<BatchNormalizationLayer>(momentum, epsilon);
}
std::shared_ptr<LayerNormalizationLayer> LayerNormalization(double epsilon) {
  return std::make_shared<LayerNormalizationLayer>(epsilon);
}
std::shared_ptr<EmbeddingLayer> Embedding(int64_t input_dim, int64_t output_dim) {
  return std::make_shared<EmbeddingLayer>(input_dim, output_dim);
}

}  // namespace kiln::layers
