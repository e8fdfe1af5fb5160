#include "kiln/train/layers.h"

#include <atomic>

#include "kiln/nn/dropout.h"
#include "kiln/nn/init.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/normalization.h"
#include "kiln/tensor/error.h"

namespace kiln::layers {

namespace {

// Keras' kernel_initializer="glorot_uniform", bias_initializer="zeros".
void glorot_uniform_and_zeros(Tensor& weight, Tensor& bias, Generator* gen) {
  nn::init::xavier_uniform_(weight, 1.0, gen);
  if (bias.defined()) nn::init::zeros_(bias);
}

json::Value int_list(const std::vector<int64_t>& v) {
  json::Value a = json::Value::array();
  for (int64_t x : v) a.push_back(x);
  return a;
}

}  // namespace

nn::ActivationOptions keras_activation_options() {
  return nn::ActivationOptions().negative_slope(0.2);
}

// ---------------------------------------------------------------- Layer

Layer::Layer(std::string class_name, std::string activation)
    : nn::Module(std::move(class_name)), activation_(std::move(activation)) {
  if (activation_ == "linear") activation_.clear();
  nn::check_activation(activation_, name());
}

Tensor Layer::forward(const Tensor& x) {
  if (!built()) build(x.shape());
  Tensor y;
  try {
    y = nn::activation(activation_, call(x), keras_activation_options());
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{} (built for input {}): {}", where(), input_shape_, e.what()));
  }
  output_shape_ = y.shape();
  return y;
}

void Layer::build(const Shape& input_shape) {
  if (built()) {
    if (input_shape_.empty()) return;  // built without an input (Dropout, pooling, Embedding)
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
  adopt(make_module(input_shape));
  input_shape_ = input_shape;
}

void Layer::build_without_input() {
  adopt(make_module({}));
}

// The module's parameters and buffers become the layer's, under the same names (the layer's
// state_dict is the module's), and Keras' initialisers overwrite nn's.
void Layer::adopt(nn::ModulePtr module) {
  module_ = std::move(module);
  module_->train(is_training());
  for (auto& [n, p] : module_->named_parameters()) {
    if (exposes(n)) {
      register_parameter(n, p);
    } else {
      p.requires_grad_(false);
    }
  }
  for (auto& [n, b] : module_->named_buffers()) register_buffer(n, b);
  init_parameters(nullptr);
}

void Layer::reset_parameters(Generator* gen) {
  if (built()) init_parameters(gen);
}

void Layer::train(bool on) {
  nn::Module::train(on);
  if (module_) module_->train(on);
}

std::string Layer::extra_repr() const {
  std::vector<std::string> parts;
  for (const auto& [k, v] : config().members()) parts.push_back(fmt::format("{}={}", k, v.dump()));
  return fmt::format("{}", fmt::join(parts, ", "));
}

ModuleLayer::ModuleLayer(std::string class_name, json::Value config, MakeModule make,
                         std::string activation, bool shape_free)
    : Layer(std::move(class_name), std::move(activation)),
      config_(std::move(config)),
      make_(std::move(make)) {
  if (shape_free) build_without_input();
}

// ---------------------------------------------------------------- Dense

DenseLayer::DenseLayer(int64_t units, std::string activation, bool use_bias)
    : Layer("Dense", std::move(activation)), units_(units), use_bias_(use_bias) {
  KILN_CHECK(units > 0, "Dense: units must be positive, got {}", units);
}

nn::ModulePtr DenseLayer::make_module(const Shape& input_shape) {
  KILN_CHECK_SHAPE(input_shape.size() >= 2 && input_shape.back() > 0,
                   "{}: input must be (B, D) or (B, *, D) with D > 0, got {}", where(),
                   input_shape);
  auto m = nn::init::skip_init<nn::Linear>(
      nn::LinearOptions(input_shape.back(), units_).bias(use_bias_));
  weight = m->weight;
  bias = m->bias;
  return m;
}

void DenseLayer::init_parameters(Generator* gen) {
  glorot_uniform_and_zeros(weight, bias, gen);
}

json::Value DenseLayer::config() const {
  json::Value c = json::Value::object();
  c["units"] = units_;
  c["activation"] = output_activation().empty() ? "linear" : output_activation();
  c["use_bias"] = use_bias_;
  return c;
}

// ---------------------------------------------------------------- Dropout, Flatten, Activation

DropoutLayer::DropoutLayer(double rate, int64_t seed) : Layer("Dropout"), rate_(rate), seed_(seed) {
  KILN_CHECK(rate >= 0.0 && rate < 1.0, "Dropout: rate must be in [0, 1), got {}", rate);
  // Unseeded layers get distinct, reproducible streams by construction order.
  static std::atomic<uint64_t> counter{0};
  uint64_t s = seed >= 0 ? static_cast<uint64_t>(seed) : 0x5eed0000ULL + counter.fetch_add(1);
  gen_ = std::make_unique<Generator>(s);
  build_without_input();
}

nn::ModulePtr DropoutLayer::make_module(const Shape&) {
  return std::make_shared<nn::Dropout>(nn::DropoutOptions(rate_).generator(gen_.get()));
}

json::Value DropoutLayer::config() const {
  json::Value c = json::Value::object();
  c["rate"] = rate_;
  if (seed_ >= 0) c["seed"] = seed_;
  return c;
}

nn::ModulePtr FlattenLayer::make_module(const Shape&) {
  return std::make_shared<nn::Flatten>();
}

Tensor FlattenLayer::call(const Tensor& x) {
  KILN_CHECK_SHAPE(x.dim() >= 1, "{}: input must have a batch dim, got a scalar", where());
  return x.dim() == 1 ? x.reshape({x.size(0), 1}) : module()->forward(x);
}

// ---------------------------------------------------------------- Conv2D

Conv2DLayer::Conv2DLayer(nn::Conv2dOptions options, std::string activation)
    : Layer("Conv2D", std::move(activation)), options_(std::move(options)) {
  const auto& o = options_;
  KILN_CHECK(o.out_channels() > 0, "Conv2D: filters must be positive, got {}", o.out_channels());
  KILN_CHECK(!o.padding_mode().empty() || (o.padding()[0] == 0 && o.padding()[1] == 0),
             "Conv2D: padding must be \"valid\" or \"same\", got {}", o.padding());
}

nn::ModulePtr Conv2DLayer::make_module(const Shape& input_shape) {
  KILN_CHECK_SHAPE(input_shape.size() == 4 && input_shape[1] > 0,
                   "{}: input must be (B, C, H, W) (NCHW), got {}", where(), input_shape);
  nn::Conv2dOptions o = options_;
  auto m = nn::init::skip_init<nn::Conv2d>(o.in_channels(input_shape[1]));
  weight = m->weight;
  bias = m->bias;
  return m;
}

void Conv2DLayer::init_parameters(Generator* gen) {
  glorot_uniform_and_zeros(weight, bias, gen);
}

json::Value Conv2DLayer::config() const {
  const auto& o = options_;
  json::Value c = json::Value::object();
  c["filters"] = o.out_channels();
  c["kernel_size"] = int_list(o.kernel_size());
  c["strides"] = int_list(o.stride());
  c["padding"] = o.padding_mode().empty() ? "valid" : o.padding_mode();
  c["dilation_rate"] = int_list(o.dilation());
  if (o.groups() != 1) c["groups"] = o.groups();
  c["activation"] = output_activation().empty() ? "linear" : output_activation();
  c["use_bias"] = o.bias();
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

nn::ModulePtr BatchNormalizationLayer::make_module(const Shape& input_shape) {
  KILN_CHECK_SHAPE(input_shape.size() >= 2 && input_shape[1] > 0,
                   "{}: input must be (B, C) or (B, C, *) (channels in dim 1), got {}", where(),
                   input_shape);
  // Keras' momentum m keeps m of the old statistic; PyTorch's keeps 1 − m.
  auto m = std::make_shared<nn::BatchNorm>(
      nn::BatchNormOptions(input_shape[1]).eps(epsilon_).momentum(1.0 - momentum_));
  if (scale_) weight = m->weight;
  if (center_) bias = m->bias;
  running_mean = m->running_mean;
  running_var = m->running_var;
  num_batches_tracked = m->num_batches_tracked;
  return m;
}

void BatchNormalizationLayer::init_parameters(Generator* gen) {
  module()->reset_parameters(gen);  // weight ones, bias zeros, running statistics reset
}

bool BatchNormalizationLayer::exposes(const std::string& name) const {
  return (name != "weight" || scale_) && (name != "bias" || center_);
}

json::Value BatchNormalizationLayer::config() const {
  json::Value c = json::Value::object();
  c["momentum"] = momentum_;
  c["epsilon"] = epsilon_;
  c["center"] = center_;
  c["scale"] = scale_;
  return c;
}

LayerNormalizationLayer::LayerNormalizationLayer(double epsilon, bool center, bool scale)
    : Layer("LayerNormalization"), epsilon_(epsilon), center_(center), scale_(scale) {
  KILN_CHECK(epsilon > 0.0, "LayerNormalization: epsilon must be positive, got {}", epsilon);
}

nn::ModulePtr LayerNormalizationLayer::make_module(const Shape& input_shape) {
  KILN_CHECK_SHAPE(input_shape.size() >= 2 && input_shape.back() > 0,
                   "{}: input must be (B, *, D) with D > 0, got {}", where(), input_shape);
  auto m = std::make_shared<nn::LayerNorm>(nn::LayerNormOptions(input_shape.back()).eps(epsilon_));
  if (scale_) weight = m->weight;
  if (center_) bias = m->bias;
  return m;
}

void LayerNormalizationLayer::init_parameters(Generator* gen) {
  module()->reset_parameters(gen);  // weight ones, bias zeros
}

bool LayerNormalizationLayer::exposes(const std::string& name) const {
  return (name != "weight" || scale_) && (name != "bias" || center_);
}

json::Value LayerNormalizationLayer::config() const {
  json::Value c = json::Value::object();
  c["epsilon"] = epsilon_;
  c["center"] = center_;
  c["scale"] = scale_;
  return c;
}

// ---------------------------------------------------------------- Embedding

EmbeddingLayer::EmbeddingLayer(int64_t input_dim, int64_t output_dim)
    : Layer("Embedding"), input_dim_(input_dim), output_dim_(output_dim) {
  KILN_CHECK(input_dim > 0 && output_dim > 0,
             "Embedding: input_dim and output_dim must be positive, got {} and {}", input_dim,
             output_dim);
  build_without_input();
}

nn::ModulePtr EmbeddingLayer::make_module(const Shape&) {
  auto m = nn::init::skip_init<nn::Embedding>(nn::EmbeddingOptions(input_dim_, output_dim_));
  weight = m->weight;
  return m;
}

void EmbeddingLayer::init_parameters(Generator* gen) {
  nn::init::uniform_(weight, -0.05, 0.05, gen);  // Keras' embeddings_initializer="uniform"
}

json::Value EmbeddingLayer::config() const {
  json::Value c = json::Value::object();
  c["input_dim"] = input_dim_;
  c["output_dim"] = output_dim_;
  return c;
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
std::shared_ptr<Layer> Activation(std::string activation) {
  json::Value c = json::Value::object();
  c["activation"] = activation.empty() ? "linear" : activation;
  return std::make_shared<ModuleLayer>(
      "Activation", std::move(c), [](const Shape&) { return std::make_shared<nn::Identity>(); },
      std::move(activation));  // Layer::forward applies the activation
}
std::shared_ptr<Conv2DLayer> Conv2D(int64_t filters, int64_t kernel_size, int64_t strides,
                                    std::string padding, std::string activation) {
  return Conv2D(nn::Conv2dOptions(0, filters, kernel_size).stride(strides).padding_mode(padding),
                std::move(activation));
}
std::shared_ptr<Conv2DLayer> Conv2D(nn::Conv2dOptions options, std::string activation) {
  return std::make_shared<Conv2DLayer>(std::move(options), std::move(activation));
}

namespace {
std::shared_ptr<Layer> pooling_layer(const std::string& class_name, nn::Pool2dOptions options) {
  KILN_CHECK(!options.padding_mode().empty() || (options.padding() == std::vector<int64_t>{0, 0}),
             "{}: padding must be \"valid\" or \"same\", got {}", class_name, options.padding());
  json::Value c = json::Value::object();
  c["pool_size"] = int_list(options.kernel_size());
  c["strides"] = options.stride().empty() ? json::Value() : int_list(options.stride());
  c["padding"] = options.padding_mode().empty() ? "valid" : options.padding_mode();
  auto make = [class_name, options](const Shape&) -> nn::ModulePtr {
    if (class_name == "MaxPooling2D") return std::make_shared<nn::MaxPool2d>(options);
    // TensorFlow's "same" average leaves the padding out of the count.
    return std::make_shared<nn::AvgPool2d>(nn::Pool2dOptions(options).count_include_pad(false));
  };
  return std::make_shared<ModuleLayer>(class_name, std::move(c), make, "", /*shape_free=*/true);
}

nn::Pool2dOptions keras_pool_options(int64_t pool_size, int64_t strides,
                                     const std::string& padding) {
  nn::Pool2dOptions o(pool_size);
  if (strides > 0) o.stride(strides);
  return o.padding_mode(padding);
}
}  // namespace

std::shared_ptr<Layer> MaxPooling2D(int64_t pool_size, int64_t strides, std::string padding) {
  return MaxPooling2D(keras_pool_options(pool_size, strides, padding));
}
std::shared_ptr<Layer> MaxPooling2D(nn::Pool2dOptions options) {
  return pooling_layer("MaxPooling2D", std::move(options));
}
std::shared_ptr<Layer> AveragePooling2D(int64_t pool_size, int64_t strides, std::string padding) {
  return AveragePooling2D(keras_pool_options(pool_size, strides, padding));
}
std::shared_ptr<Layer> AveragePooling2D(nn::Pool2dOptions options) {
  return pooling_layer("AveragePooling2D", std::move(options));
}
std::shared_ptr<Layer> GlobalAveragePooling2D(bool keepdims) {
  json::Value c = json::Value::object();
  c["keepdims"] = keepdims;
  auto make = [keepdims](const Shape& input_shape) {
    KILN_CHECK_SHAPE(input_shape.size() == 4,
                     "GlobalAveragePooling2D: input must be (B, C, H, W), got {}", input_shape);
    return std::make_shared<nn::GlobalAvgPool>(nn::GlobalAvgPoolOptions().keepdim(keepdims));
  };
  return std::make_shared<ModuleLayer>("GlobalAveragePooling2D", std::move(c), make);
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
