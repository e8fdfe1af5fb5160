// LeNet-5, a small ResNet and a MobileNet-style CNN built from kiln::nn modules.
#include "kiln/vision/models.h"

#include "kiln/nn/activation.h"
#include "kiln/nn/container.h"
#include "kiln/nn/conv.h"
#include "kiln/nn/linear.h"
#include "kiln/nn/normalization.h"
#include "kiln/nn/pooling.h"
#include "kiln/tensor/error.h"

namespace kiln::vision {

namespace {

nn::ModulePtr conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding,
                   bool bias = false, int64_t groups = 1) {
  return std::make_shared<nn::Conv2d>(
      nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(bias).groups(groups));
}

nn::ModulePtr bn(int64_t c) {
  return std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(c));
}
nn::ModulePtr relu() {
  return std::make_shared<nn::ReLU>();
}

// Adaptive average pool to 1×1, flatten, and the classifier: (B, C, H, W) -> (B, K).
void add_head(nn::Sequential& seq, int64_t channels, int64_t num_classes) {
  seq.push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1));
  seq.push_back(std::make_shared<nn::Flatten>());
  seq.push_back(std::make_shared<nn::Linear>(nn::LinearOptions(channels, num_classes)));
}

void check_counts(int64_t in_channels, int64_t num_classes, const char* op) {
  KILN_CHECK(in_channels > 0 && num_classes > 0,
             "{}: in_channels and num_classes must be positive, got {} and {}", op, in_channels,
             num_classes);
}

}  // namespace

std::shared_ptr<nn::Module> lenet5(LeNetOptions o) {
  check_counts(o.in_channels, o.num_classes, "lenet5");
  // Spatial side after each stage: conv 5×5 (−4), pool /2, conv 5×5 (−4), pool /2.
  const int64_t s1 = o.image_size + 2 * o.padding - 4;
  const int64_t s2 = s1 / 2 - 4;
  const int64_t s = s2 / 2;
  KILN_CHECK_SHAPE(s1 > 0 && s2 > 0 && s > 0,
                   "lenet5: image_size {} with padding {} is too small (needs size + 2·padding >= "
                   "16)",
                   o.image_size, o.padding);
  auto seq = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      conv(o.in_channels, 6, 5, 1, o.padding, true), relu(),
      std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(2)), conv(6, 16, 5, 1, 0, true), relu(),
      std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(2)), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(16 * s * s, 120)), relu(),
      std::make_shared<nn::Linear>(nn::LinearOptions(120, 84)), relu(),
      std::make_shared<nn::Linear>(nn::LinearOptions(84, o.num_classes))});
  return seq;
}

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride)
    : Module("BasicBlock") {
  conv1_ = register_module("conv1", conv(in_channels, out_channels, 3, stride, 1));
  bn1_ = register_module("bn1", bn(out_channels));
  conv2_ = register_module("conv2", conv(out_channels, out_channels, 3, 1, 1));
  bn2_ = register_module("bn2", bn(out_channels));
  if (stride != 1 || in_channels != out_channels)
    downsample_ = register_module(
        "downsample", std::static_pointer_cast<nn::Module>(
                          std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
                              conv(in_channels, out_channels, 1, stride, 0), bn(out_channels)})));
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor y = relu(bn1_->forward(conv1_->forward(x)));
  y = bn2_->forward(conv2_->forward(y));
  return relu(y + (downsample_ ? downsample_->forward(x) : x));
}

std::shared_ptr<nn::Module> resnet(ResNetOptions o) {
  check_counts(o.in_channels, o.num_classes, "resnet");
  KILN_CHECK(!o.blocks.empty() && o.width > 0, "resnet: need at least one stage and width > 0");
  auto seq = std::make_shared<nn::Sequential>(
      std::vector<nn::ModulePtr>{conv(o.in_channels, o.width, 3, 1, 1), bn(o.width), relu()});
  int64_t in = o.width;
  for (size_t i = 0; i < o.blocks.size(); ++i) {
    KILN_CHECK(o.blocks[i] > 0, "resnet: stage {} has {} blocks (must be >= 1)", i, o.blocks[i]);
    const int64_t out = o.width << i;
    for (int64_t b = 0; b < o.blocks[i]; ++b) {
      seq->push_back(std::make_shared<BasicBlock>(in, out, (i > 0 && b == 0) ? 2 : 1));
      in = out;
    }
  }
  add_head(*seq, in, o.num_classes);
  seq->name_parameters();
  return seq;
}

std::shared_ptr<nn::Module> mobilenet(MobileNetOptions o) {
  check_counts(o.in_channels, o.num_classes, "mobilenet");
  KILN_CHECK(o.width > 0 && o.stem_stride > 0, "mobilenet: width and stem_stride must be > 0");
  auto seq = std::make_shared<nn::Sequential>(std::vector<nn::ModulePtr>{
      conv(o.in_channels, o.width, 3, o.stem_stride, 1), bn(o.width), relu()});
  int64_t c = o.width;
  for (const auto& [out, stride] : o.blocks) {
    KILN_CHECK(out > 0 && stride > 0,
               "mobilenet: block ({}, {}) needs positive channels and stride", out, stride);
    seq->push_back(conv(c, c, 3, stride, 1, false, /*groups=*/c));  // depthwise
    seq->push_back(bn(c));
    seq->push_back(relu());
    seq->push_back(conv(c, out, 1, 1, 0));  // pointwise
    seq->push_back(bn(out));
    seq->push_back(relu());
    c = out;
  }
  add_head(*seq, c, o.num_classes);
  seq->name_parameters();
  return seq;
}

}  // namespace kiln::vision
