#pragma once
// Keras-style layers (namespace kiln::layers): Dense, Dropout, Flatten, Activation, Conv2D,
// MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, BatchNormalization, LayerNormalization,
// Embedding.
//
//   kiln::Sequential model({kiln::layers::Conv2D(6, 5, 1, "same", "relu"),
//                           kiln::layers::MaxPooling2D(2),
//                           kiln::layers::Flatten(), kiln::layers::Dense(10)});
//
// Each factory (Dense(...), Conv2D(...), ...) returns a std::shared_ptr to the layer class
// (DenseLayer, Conv2DLayer, ...), an nn::Module, so layers also compose inside custom modules:
//   fc = register_module("fc", kiln::layers::Dense(128, "relu"));
//
// Conventions (documented choices):
// - Lazy building, as Keras: a layer whose sizes depend on its input (Dense's in_features, Conv2D's
//   in_channels, the norms' feature count) creates its parameters on the first forward (or
//   build(shape)).
// - PyTorch layouts and names, so a state_dict is interchangeable with nn::Linear / nn::Conv2d
//   and torch:
//   Dense "weight" (units, in) and "bias" (units); Conv2D "weight" (filters, C_in, kh, kw) and
//   "bias"; BatchNormalization "weight", "bias" and buffers "running_mean", "running_var",
//   "num_batches_tracked"; LayerNormalization "weight", "bias"; Embedding "weight" (input_dim,
//   output_dim). Images are NCHW.
// - Keras initialisers and defaults: kernels glorot_uniform (Glorot & Bengio, 2010; U(±√(6/(fan_in
// +
//   fan_out)))), biases zeros, Embedding U(±0.05), norms' weight ones and bias zeros;
//   BatchNormalization momentum 0.99 and epsilon 1e-3 (PyTorch momentum = 1 − 0.99; running
//   variance unbiased, as PyTorch), LayerNormalization epsilon 1e-3 over the last dim. Random draws
//   use the default generator (seed it with kiln::manual_seed) unless reset_parameters(gen) is
//   given one.
// - Activations by name: "" or "linear" (none), "relu", "relu6", "leaky_relu", "sigmoid", "tanh",
//   "softmax" and "log_softmax" (over the last dim, as Keras' axis=-1), "gelu", "silu" / "swish",
//   "softplus", "exponential".
// Legend: B = batch, C = channels, H/W = height/width, D = features, T = tokens, * = any dims.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/io/json.h"
#include "kiln/nn/module.h"
#include "kiln/nn/options.h"

namespace kiln::layers {

/// Applies the activation named `name` (see above) to x. Throws listing the names when unknown.
Tensor activation(const std::string& name, const Tensor& x);
/// Throws when `name` is not an activation; `where` names the caller in the message.
void check_activation(const std::string& name, const std::string& where);

/// Base of the Keras-style layers: an nn::Module that builds itself from its first input's shape.
class Layer : public nn::Module {
 public:
  using nn::Module::forward;
  /// Builds on the first call (from x's shape), then computes the layer. Records the output shape.
  Tensor forward(const Tensor& x) final;
  /// Creates the parameters for inputs of `input_shape` (batch dim included; its size is not used).
  /// A no-op when already built for the same non-batch dims; an error for different ones.
  void build(const Shape& input_shape);
  bool built() const { return built_; }
  /// The shape the layer was built for (empty before).
  const Shape& input_shape() const { return input_shape_; }
  /// The last output's shape (empty before the first forward).
  const Shape& output_shape() const { return output_shape_; }
  /// Re-draws the parameters with the layer's Keras initialisers (no-op before build).
  void reset_parameters(Generator* gen = nullptr) override;

  /// The constructor arguments as JSON ({"units": 128, "activation": "relu", ...}); with name() as
  /// the class name, from_config() rebuilds the layer. This is what model.save() stores.
  virtual json::Value config() const = 0;
  /// The dtype this layer takes (Embedding: int64).
  virtual DType input_dtype() const { return kFloat32; }
  /// The activation applied last ("" = none): the model reads it to tell logits from probabilities.
  virtual std::string output_activation() const { return ""; }
  /// Reseeds the layer's random source (Dropout); fit() calls it every epoch with a seed derived
  /// from (fit seed, epoch, layer index) so a resumed run draws the same masks.
  virtual void reseed(uint64_t seed) { (void)seed; }

 protected:
  explicit Layer(std::string class_name) : nn::Module(std::move(class_name)) {}
  /// Registers the parameters for `input_shape` (called once).
  virtual void build_impl(const Shape& input_shape) { (void)input_shape; }
  /// Draws the initial values (called after build_impl and by reset_parameters).
  virtual void init_parameters(Generator* gen) { (void)gen; }
  /// The computation, once built.
  virtual Tensor call(const Tensor& x) = 0;
  /// Marks a layer whose parameters need no input (Embedding) as built.
  void mark_built() { built_ = true; }

 private:
  bool built_ = false;
  Shape input_shape_;
  Shape output_shape_;
};

/// y = activation(x·Wᵀ + b).   x: (*, D)  W: (units, D)  b: (units)  y: (*, units)
class DenseLayer : public Layer {
 public:
  DenseLayer(int64_t units, std::string activation = "", bool use_bias = true);
  json::Value config() const override;
  std::string output_activation() const override { return activation_; }
  std::string extra_repr() const override;
  int64_t units() const { return units_; }

  Tensor weight;  // (units, D), after build
  Tensor bias;    // (units) or undefined

 protected:
  void build_impl(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;
  Tensor call(const Tensor& x) override;

 private:
  int64_t units_;
  std::string activation_;
  bool use_bias_;
};

/// Inverted dropout with probability `rate` during training; the identity in eval mode. Any shape.
/// Draws from its own generator (seeded by `seed`, or by construction order when seed < 0), which
/// fit() reseeds every epoch.
class DropoutLayer : public Layer {
 public:
  explicit DropoutLayer(double rate, int64_t seed = -1);
  json::Value config() const override;
  void reseed(uint64_t seed) override { gen_->manual_seed(seed); }
  std::string extra_repr() const override;
  double rate() const { return rate_; }

 protected:
  Tensor call(const Tensor& x) override;

 private:
  double rate_;
  int64_t seed_;
  std::unique_ptr<Generator> gen_;
};

/// (B, d1, d2, ...) -> (B, d1·d2·...); (B) -> (B, 1).
class FlattenLayer : public Layer {
 public:
  FlattenLayer() : Layer("Flatten") {}
  json::Value config() const override { return json::Value::object(); }

 protected:
  Tensor call(const Tensor& x) override;
};

/// activation(x), any shape.
class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(std::string activation);
  json::Value config() const override;
  std::string output_activation() const override { return activation_; }
  std::string extra_repr() const override { return activation_; }

 protected:
  Tensor call(const Tensor& x) override;

 private:
  std::string activation_;
};

struct Conv2DOptions {
  Conv2DOptions(int64_t filters, int64_t kernel_size)
      : filters_(filters), kernel_size_{kernel_size, kernel_size} {}
  Conv2DOptions(int64_t filters, std::vector<int64_t> kernel_size)
      : filters_(filters), kernel_size_(std::move(kernel_size)) {}
  KILN_ARG(int64_t, filters);
  /// {kh, kw}.
  KILN_ARG(std::vector<int64_t>, kernel_size);
  /// {sh, sw}.
  KILN_ARG(std::vector<int64_t>, strides) = {1, 1};
  /// "valid" (no padding) or "same" (TensorFlow's: H_out = ⌈H / s⌉, the odd pixel padded at the
  /// bottom / right).
  KILN_ARG(std::string, padding) = "valid";
  KILN_ARG(std::vector<int64_t>, dilation_rate) = {1, 1};
  KILN_ARG(std::string, activation) = "";
  KILN_ARG(bool, use_bias) = true;
};

/// 2-d convolution.   x: (B, C, H, W)  W: (filters, C, kh, kw)  b: (filters)  y: (B, filters,
/// H_out, W_out) "valid": H_out = ⌊(H − d·(kh − 1) − 1) / s⌋ + 1;  "same": H_out = ⌈H / s⌉.
class Conv2DLayer : public Layer {
 public:
  explicit Conv2DLayer(Conv2DOptions options);
  json::Value config() const override;
  std::string output_activation() const override { return options_.activation(); }
  std::string extra_repr() const override;
  const Conv2DOptions& options() const { return options_; }

  Tensor weight;  // (filters, C, kh, kw), after build
  Tensor bias;    // (filters) or undefined

 protected:
  void build_impl(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;
  Tensor call(const Tensor& x) override;

 private:
  Conv2DOptions options_;
};

struct Pooling2DOptions {
  explicit Pooling2DOptions(int64_t pool_size = 2) : pool_size_{pool_size, pool_size} {}
  explicit Pooling2DOptions(std::vector<int64_t> pool_size) : pool_size_(std::move(pool_size)) {}
  /// {ph, pw}.
  KILN_ARG(std::vector<int64_t>, pool_size);
  /// {sh, sw}; empty = pool_size (Keras' strides=None).
  KILN_ARG(std::vector<int64_t>, strides) = {};
  /// "valid" or "same" (TensorFlow's; max pooling pads with −∞, average pooling leaves padding out
  /// of the count).
  KILN_ARG(std::string, padding) = "valid";
};

/// Max or average pooling over windows.   x: (B, C, H, W)  y: (B, C, H_out, W_out), sizes as
/// Conv2D's.
class Pooling2DLayer : public Layer {
 public:
  Pooling2DLayer(std::string class_name, Pooling2DOptions options);
  json::Value config() const override;
  std::string extra_repr() const override;

 protected:
  Tensor call(const Tensor& x) override;

 private:
  bool is_max_;
  Pooling2DOptions options_;
};

/// Mean over H and W.   x: (B, C, H, W)  y: (B, C)  (or (B, C, 1, 1) with keepdims)
class GlobalAveragePooling2DLayer : public Layer {
 public:
  explicit GlobalAveragePooling2DLayer(bool keepdims = false)
      : Layer("GlobalAveragePooling2D"), keepdims_(keepdims) {}
  json::Value config() const override;

 protected:
  Tensor call(const Tensor& x) override;

 private:
  bool keepdims_;
};

/// Batch normalisation over the channel dim 1.   x: (B, C) or (B, C, *)  weight, bias: (C)
/// Training normalises with the batch statistics and updates running_mean / running_var
/// (running = momentum·running + (1 − momentum)·batch, Keras' convention); eval uses the running
/// ones.
class BatchNormalizationLayer : public Layer {
 public:
  explicit BatchNormalizationLayer(double momentum = 0.99, double epsilon = 1e-3,
                                   bool center = true, bool scale = true);
  json::Value config() const override;
  std::string extra_repr() const override;

  Tensor weight, bias;                                    // (C) or undefined
  Tensor running_mean, running_var, num_batches_tracked;  // (C), (C), () int64

 protected:
  void build_impl(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;
  Tensor call(const Tensor& x) override;

 private:
  double momentum_, epsilon_;
  bool center_, scale_;
};

/// Layer normalisation over the last dim (Ba et al., 2016).   x: (*, D)  weight, bias: (D)
class LayerNormalizationLayer : public Layer {
 public:
  explicit LayerNormalizationLayer(double epsilon = 1e-3, bool center = true, bool scale = true);
  json::Value config() const override;
  std::string extra_repr() const override;

  Tensor weight, bias;  // (D) or undefined

 protected:
  void build_impl(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;
  Tensor call(const Tensor& x) override;

 private:
  double epsilon_;
  bool center_, scale_;
};

/// A lookup table.   ids: int64 (*) in [0, input_dim)  weight: (input_dim, output_dim)  y: (*,
/// output_dim) Built at construction (its sizes do not depend on the input).
class EmbeddingLayer : public Layer {
 public:
  EmbeddingLayer(int64_t input_dim, int64_t output_dim);
  json::Value config() const override;
  DType input_dtype() const override { return kInt64; }
  std::string extra_repr() const override;

  Tensor weight;  // (input_dim, output_dim)

 protected:
  void init_parameters(Generator* gen) override;
  Tensor call(const Tensor& x) override;

 private:
  int64_t input_dim_, output_dim_;
};

// ---------------------------------------------------------------- factories (Keras' names)
std::shared_ptr<DenseLayer> Dense(int64_t units, std::string activation = "", bool use_bias = true);
std::shared_ptr<DropoutLayer> Dropout(double rate, int64_t seed = -1);
std::shared_ptr<FlattenLayer> Flatten();
std::shared_ptr<ActivationLayer> Activation(std::string activation);
std::shared_ptr<Conv2DLayer> Conv2D(int64_t filters, int64_t kernel_size, int64_t strides = 1,
                                    std::string padding = "valid", std::string activation = "");
std::shared_ptr<Conv2DLayer> Conv2D(Conv2DOptions options);
std::shared_ptr<Pooling2DLayer> MaxPooling2D(int64_t pool_size = 2, int64_t strides = -1,
                                             std::string padding = "valid");
std::shared_ptr<Pooling2DLayer> MaxPooling2D(Pooling2DOptions options);
std::shared_ptr<Pooling2DLayer> AveragePooling2D(int64_t pool_size = 2, int64_t strides = -1,
                                                 std::string padding = "valid");
std::shared_ptr<Pooling2DLayer> AveragePooling2D(Pooling2DOptions options);
std::shared_ptr<GlobalAveragePooling2DLayer> GlobalAveragePooling2D(bool keepdims = false);
std::shared_ptr<BatchNormalizationLayer> BatchNormalization(double momentum = 0.99,
                                                            double epsilon = 1e-3);
std::shared_ptr<LayerNormalizationLayer> LayerNormalization(double epsilon = 1e-3);
std::shared_ptr<EmbeddingLayer> Embedding(int64_t input_dim, int64_t output_dim);

// ---------------------------------------------------------------- configs
/// {"class_name": "Dense", "config": {...}} for a Layer; throws naming the module for other
/// modules.
json::Value serialize(const nn::Module& layer);
/// Rebuilds a layer from serialize() output (built-in classes and those added by register_layer).
std::shared_ptr<Layer> deserialize(const json::Value& spec);
/// Makes a custom Layer subclass loadable by deserialize() / load_model().
void register_layer(const std::string& class_name,
                    std::function<std::shared_ptr<Layer>(const json::Value& config)> factory);

}  // namespace kiln::layers
