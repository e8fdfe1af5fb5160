#pragma once
// Small CNNs for image classification, as nn::Modules usable with kiln::Model:
//
//   kiln::Model model(vision::lenet5({.in_channels = 1, .num_classes = 10}));
//   model.compile(kiln::optimizers::Adam(1e-3), "sparse_categorical_crossentropy", {"accuracy"});
//   model.fit(x, y);   // x: (N, 1, 28, 28) float32, y: (N) int64
//
// Every model maps x: (B, C, H, W) float32 to logits (B, num_classes) and names its parameters as
// the same architecture written with PyTorch's nn.Sequential would ("0.weight", "3.conv1.weight",
// "3.downsample.0.weight"), so parameter counts and state_dicts line up with PyTorch's
// (tests/golden/make_vision_golden.py builds the twins). Legend: B = batch, C = channels,
// H/W = height/width, K = classes.
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "kiln/nn/module.h"

namespace kiln::vision {

struct LeNetOptions {
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  /// Side of the (square) input; 28 with padding 2 (MNIST) or 32 with padding 0 (LeCun's).
  int64_t image_size = 28;
  /// Zero padding of the first convolution.
  int64_t padding = 2;
};

/// LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, as usually trained today:
/// conv 5×5 (C → 6) · ReLU · maxpool 2 · conv 5×5 (6 → 16) · ReLU · maxpool 2 · flatten ·
/// fc 16·s·s → 120 · ReLU · fc 120 → 84 · ReLU · fc 84 → K, s = ((size + 2p − 4)/2 − 4)/2.
/// x: (B, C, size, size) -> (B, K). 61,706 parameters for MNIST.
std::shared_ptr<nn::Module> lenet5(LeNetOptions options = {});

/// He et al. (2016) basic residual block: y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
/// 3×3 convolutions without bias; shortcut = 1×1 conv (stride s, no bias) + BN when the stride or
/// channel count changes, else the identity.  x: (B, C_in, H, W) -> (B, C_out, H/s, W/s).
class BasicBlock : public nn::Module {
 public:
  using Module::forward;
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  Tensor forward(const Tensor& x) override;

 private:
  nn::ModulePtr conv1_, bn1_, conv2_, bn2_, downsample_;
};

struct ResNetOptions {
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  /// Blocks per stage; stage i has width·2^i channels and (for i > 0) starts with stride 2.
  std::vector<int64_t> blocks = {2, 2, 2};
  int64_t width = 16;
};

/// A CIFAR-style ResNet: conv 3×3 (C → width, no bias) · BN · ReLU · stages of BasicBlocks ·
/// adaptive average pool to 1×1 · flatten · fc → K. {2, 2, 2} at width 16 is 175,258 parameters.
/// x: (B, C, H, W) -> (B, K).
std::shared_ptr<nn::Module> resnet(ResNetOptions options = {});

struct MobileNetOptions {
  int64_t in_channels = 3;
  int64_t num_classes = 10;
  /// Channels of the stem convolution.
  int64_t width = 32;
  /// Stride of the stem convolution (2 for large inputs, 1 for 28–32 px images).
  int64_t stem_stride = 1;
  /// (output channels, stride) of each depthwise-separable block.
  std::vector<std::pair<int64_t, int64_t>> blocks = {{64, 1}, {128, 2}, {128, 1}, {256, 2}};
};

/// A MobileNet-v1-style CNN (Howard et al. 2017): conv 3×3 stem · BN · ReLU, then per block a
/// depthwise 3×3 conv (groups = channels, stride s) · BN · ReLU · pointwise 1×1 conv · BN · ReLU,
/// then adaptive average pool · flatten · fc → K. All convolutions without bias.
/// x: (B, C, H, W) -> (B, K).
std::shared_ptr<nn::Module> mobilenet(MobileNetOptions options = {});

}  // namespace kiln::vision
