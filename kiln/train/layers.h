#pragma once
// Keras-style layers (namespace kiln::layers): Dense, Dropout, Flatten, Activation, Conv2D,
// MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, BatchNormalization, LayerNormalization,
// Embedding — Keras' names over kiln::nn's modules.
//
//   kiln::Sequential model({kiln::layers::Conv2D(6, 5, 1, "same", "relu"),
//                           kiln::layers::MaxPooling2D(2),
//                           kiln::layers::Flatten(), kiln::layers::Dense(10)});
//
// Each layer is an adapter: it keeps Keras' constructor arguments (its config(), which model.save()
// stores and summary() prints), builds its kiln::nn module on the first call, when the input shape
// is known (as PyTorch's lazy modules do), applies Keras' initialisers to it and forwards to it.
// The computation lives once, in nn: Dense -> nn::Linear, Conv2D -> nn::Conv2d, the poolings ->
// nn::MaxPool2d / nn::AvgPool2d, GlobalAveragePooling2D -> nn::GlobalAvgPool, BatchNormalization
// -> nn::BatchNorm, LayerNormalization -> nn::LayerNorm, Dropout -> nn::Dropout, Flatten ->
// nn::Flatten, Embedding -> nn::Embedding; activations by name and "same" padding are nn's
// (nn/activation.h, nn/padding.h). Factories (Dense(...), Conv2D(...), ...) return a shared_ptr to
// the layer class (DenseLayer, ...; ModuleLayer for those that are only a config and a module), an
// nn::Module, so layers also compose inside custom modules.
//
// Conventions (documented choices):
// - Parameters are the nn module's, registered on the layer under the same names, so a state_dict
//   is interchangeable with nn::Linear / nn::Conv2d and torch: Dense "weight" (units, in) and
//   "bias"; Conv2D "weight" (filters, C_in, kh, kw) and "bias"; BatchNormalization "weight", "bias"
//   and buffers "running_mean", "running_var", "num_batches_tracked"; LayerNormalization "weight",
//   "bias"; Embedding "weight" (input_dim, output_dim). Images are NCHW.
// - Keras initialisers and defaults: kernels glorot_uniform (Glorot & Bengio, 2010;
//   U(±√(6/(fan_in + fan_out)))), biases zeros, Embedding U(±0.05), norms' weight ones and bias
//   zeros; BatchNormalization momentum 0.99 and epsilon 1e-3 (PyTorch momentum = 1 − 0.99; running
//   variance unbiased, as PyTorch), LayerNormalization epsilon 1e-3 over the last dim. Random draws
//   use the default generator (seed it with kiln::manual_seed) unless reset_parameters(gen) is
//   given one.
// - Activations by name (nn::activation's table) with Keras' defaults: leaky_relu's slope is 0.2
//   (PyTorch's 0.01), softmax and log_softmax act on the last dim.
// - "same" padding is TensorFlow's for every stride: H_out = ⌈H / s⌉, the odd pixel padded at the
//   bottom / right; "same" average pooling leaves the padding out of the count.
// Legend: B = batch, C = channels, H/W = height/width, D = features, T = tokens, * = any dims.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kiln/io/json.h"
#include "kiln/nn/activation.h"
#include "kiln/nn/conv.h"
#include "kiln/nn/module.h"
#include "kiln/nn/options.h"
#include "kiln/nn/pooling.h"

namespace kiln::layers {

/// Keras' defaults for nn::activation's table: leaky_relu's negative_slope 0.2.
nn::ActivationOptions keras_activation_options();

/// Base of the Keras-style layers: builds its nn module from its first input's shape, then
/// forwards to it and applies the layer's activation.
class Layer : public nn::Module {
 public:
  using nn::Module::forward;
  /// Builds on the first call (from x's shape), then computes the layer. Records the output shape.
  Tensor forward(const Tensor& x) final;
  /// Builds the nn module for inputs of `input_shape` (batch dim included; its size is not used).
  /// A no-op when already built for the same non-batch dims; an error for different ones.
  void build(const Shape& input_shape);
  bool built() const { return module_ != nullptr; }
  /// The shape the layer was built for (empty before, or when built without an input).
  const Shape& input_shape() const { return input_shape_; }
  /// The last output's shape (empty before the first forward).
  const Shape& output_shape() const { return output_shape_; }
  /// The nn module the layer forwards to (null before build).
  const nn::ModulePtr& module() const { return module_; }
  /// Re-draws the parameters with the layer's Keras initialisers (no-op before build).
  void reset_parameters(Generator* gen = nullptr) override;
  void train(bool on = true) override;
  /// "units=8, activation=relu, use_bias=true": the config's entries.
  std::string extra_repr() const override;

  /// The constructor arguments as JSON ({"units": 128, "activation": "relu", ...}); with name() as
  /// the class name, from_config() rebuilds the layer. This is what model.save() stores.
  virtual json::Value config() const = 0;
  /// The dtype this layer takes (Embedding: int64).
  virtual DType input_dtype() const { return kFloat32; }
  /// The activation applied last ("" = none): the model reads it to tell logits from probabilities.
  const std::string& output_activation() const { return activation_; }
  /// Reseeds the layer's random source (Dropout); fit() calls it every epoch with a seed derived
  /// from (fit seed, epoch, layer index) so a resumed run draws the same masks.
  virtual void reseed(uint64_t seed) { (void)seed; }

 protected:
  /// `activation` (checked against nn's table) is applied to the module's output.
  explicit Layer(std::string class_name, std::string activation = "");
  /// The nn module for inputs of `input_shape` (called once, by build()).
  virtual nn::ModulePtr make_module(const Shape& input_shape) = 0;
  /// Keras' initialisers over the module's tensors (after build and by reset_parameters).
  virtual void init_parameters(Generator* gen) { (void)gen; }
  /// Whether the module's parameter `name` is the layer's (BatchNormalization / LayerNormalization
  /// without center or scale leave nn's bias at 0 or weight at 1, frozen and unsaved).
  virtual bool exposes(const std::string& name) const {
    (void)name;
    return true;
  }
  /// The computation once built: the module's forward (Flatten adds Keras' (B) -> (B, 1)).
  virtual Tensor call(const Tensor& x) { return module_->forward(x); }
  /// Builds at construction, for layers whose module does not depend on the input.
  void build_without_input();

 private:
  void adopt(nn::ModulePtr module);
  std::string activation_;
  nn::ModulePtr module_;
  Shape input_shape_;
  Shape output_shape_;
};

/// A layer that is its config and a function building the nn module from the input shape, for
/// layers with no Keras initialisers of their own: Activation (nn::Identity, then the activation),
/// MaxPooling2D / AveragePooling2D (nn::MaxPool2d / nn::AvgPool2d; x: (B, C, H, W), sizes as
/// Conv2D's, strides defaulting to the pool size) and GlobalAveragePooling2D (nn::GlobalAvgPool:
/// (B, C, H, W) -> (B, C), or (B, C, 1, 1) with keepdims).
class ModuleLayer : public Layer {
 public:
  using MakeModule = std::function<nn::ModulePtr(const Shape& input_shape)>;
  /// With shape_free, the module is built at once (it does not depend on the input).
  ModuleLayer(std::string class_name, json::Value config, MakeModule make,
              std::string activation = "", bool shape_free = false);
  json::Value config() const override { return config_; }

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override { return make_(input_shape); }

 private:
  json::Value config_;
  MakeModule make_;
};

/// y = activation(x·Wᵀ + b) by nn::Linear.   x: (*, D)  W: (units, D)  b: (units)  y: (*, units)
class DenseLayer : public Layer {
 public:
  DenseLayer(int64_t units, std::string activation = "", bool use_bias = true);
  json::Value config() const override;
  int64_t units() const { return units_; }

  Tensor weight;  // (units, D), after build
  Tensor bias;    // (units) or undefined

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;

 private:
  int64_t units_;
  bool use_bias_;
};

/// nn::Dropout with probability `rate`, drawing from the layer's own generator (seeded by `seed`,
/// or by construction order when seed < 0), which fit() reseeds every epoch. Any shape.
class DropoutLayer : public Layer {
 public:
  explicit DropoutLayer(double rate, int64_t seed = -1);
  json::Value config() const override;
  void reseed(uint64_t seed) override { gen_->manual_seed(seed); }
  double rate() const { return rate_; }

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override;

 private:
  double rate_;
  int64_t seed_;
  std::unique_ptr<Generator> gen_;
};

/// nn::Flatten: (B, d1, d2, ...) -> (B, d1·d2·...); (B) -> (B, 1).
class FlattenLayer : public Layer {
 public:
  FlattenLayer() : Layer("Flatten") {}
  json::Value config() const override { return json::Value::object(); }

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override;
  Tensor call(const Tensor& x) override;
};

/// 2-d convolution by nn::Conv2d.   x: (B, C, H, W)  W: (filters, C, kh, kw)  b: (filters)
/// y: (B, filters, H_out, W_out);  "valid": H_out = ⌊(H − d·(kh − 1) − 1) / s⌋ + 1, "same": ⌈H / s⌉.
/// The options are nn's, in_channels left 0: it comes from the first input.
class Conv2DLayer : public Layer {
 public:
  Conv2DLayer(nn::Conv2dOptions options, std::string activation = "");
  json::Value config() const override;
  const nn::Conv2dOptions& options() const { return options_; }

  Tensor weight;  // (filters, C, kh, kw), after build
  Tensor bias;    // (filters) or undefined

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;

 private:
  nn::Conv2dOptions options_;
};

/// nn::BatchNorm over the channel dim 1.   x: (B, C) or (B, C, *)  weight, bias: (C)
/// Training normalises with the batch statistics and updates running_mean / running_var
/// (running = momentum·running + (1 − momentum)·batch, Keras' convention); eval uses the running
/// ones.
class BatchNormalizationLayer : public Layer {
 public:
  explicit BatchNormalizationLayer(double momentum = 0.99, double epsilon = 1e-3,
                                   bool center = true, bool scale = true);
  json::Value config() const override;

  Tensor weight, bias;                                    // (C) or undefined
  Tensor running_mean, running_var, num_batches_tracked;  // (C), (C), () int64

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;
  bool exposes(const std::string& name) const override;

 private:
  double momentum_, epsilon_;
  bool center_, scale_;
};

/// nn::LayerNorm over the last dim (Ba et al., 2016).   x: (*, D)  weight, bias: (D)
class LayerNormalizationLayer : public Layer {
 public:
  explicit LayerNormalizationLayer(double epsilon = 1e-3, bool center = true, bool scale = true);
  json::Value config() const override;

  Tensor weight, bias;  // (D) or undefined

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;
  bool exposes(const std::string& name) const override;

 private:
  double epsilon_;
  bool center_, scale_;
};

/// nn::Embedding.   ids: int64 (*) in [0, input_dim)  weight: (input_dim, output_dim)
/// y: (*, output_dim). Built at construction (its sizes do not depend on the input).
class EmbeddingLayer : public Layer {
 public:
  EmbeddingLayer(int64_t input_dim, int64_t output_dim);
  json::Value config() const override;
  DType input_dtype() const override { return kInt64; }

  Tensor weight;  // (input_dim, output_dim)

 protected:
  nn::ModulePtr make_module(const Shape& input_shape) override;
  void init_parameters(Generator* gen) override;

 private:
  int64_t input_dim_, output_dim_;
};

// ---------------------------------------------------------------- factories (Keras' names)
std::shared_ptr<DenseLayer> Dense(int64_t units, std::string activation = "", bool use_bias = true);
std::shared_ptr<DropoutLayer> Dropout(double rate, int64_t seed = -1);
std::shared_ptr<FlattenLayer> Flatten();
std::shared_ptr<Layer> Activation(std::string activation);
std::shared_ptr<Conv2DLayer> Conv2D(int64_t filters, int64_t kernel_size, int64_t strides = 1,
                                    std::string padding = "valid", std::string activation = "");
/// E.g. Conv2D(nn::Conv2dOptions(0, 16, {3, 5}).stride({2, 1}).padding("same"), "relu"): nn's
/// options, in_channels 0 (taken from the first input).
std::shared_ptr<Conv2DLayer> Conv2D(nn::Conv2dOptions options, std::string activation = "");
std::shared_ptr<Layer> MaxPooling2D(int64_t pool_size = 2, int64_t strides = -1,
                                    std::string padding = "valid");
std::shared_ptr<Layer> MaxPooling2D(nn::Pool2dOptions options);
std::shared_ptr<Layer> AveragePooling2D(int64_t pool_size = 2, int64_t strides = -1,
                                        std::string padding = "valid");
/// nn's options; "same" leaves the padding out of the count (TensorFlow's rule).
std::shared_ptr<Layer> AveragePooling2D(nn::Pool2dOptions options);
std::shared_ptr<Layer> GlobalAveragePooling2D(bool keepdims = false);
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
