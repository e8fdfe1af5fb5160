// Layer behaviour not covered by the PyTorch goldens: output shapes, train / eval switches, option
// validation, multi-input forwards and error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kiln/autograd/functions.h"
#include "kiln/nn/nn.h"

namespace {

using kiln::Shape;
using kiln::Tensor;
namespace nn = kiln::nn;

template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Dropout, TrainDropsAndScalesEvalIsIdentity) {
  kiln::Generator gen(1);
  nn::Dropout d(nn::DropoutOptions(0.25).generator(&gen));
  Tensor x = kiln::ones({10000});
  std::vector<float> y = d(x).to_vector<float>();
  int zeros = 0;
  for (float v : y) {
    if (v == 0) {
      ++zeros;
    } else {
      EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
    }
  }
  EXPECT_NEAR(zeros / 10000.0, 0.25, 0.02);
  d.eval();
  EXPECT_EQ(d(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_THROW(nn::Dropout(1.0), kiln::Error);
}

TEST(BatchNorm, TrainUsesBatchStatsEvalUsesRunningStats) {
  nn::BatchNorm2d bn(nn::BatchNormOptions(2).momentum(0.5));
  Tensor x = kiln::mul(kiln::randn({8, 2, 3, 3}), 3.0) + 2.0;
  Tensor y = bn(x);
  // Training output: per-channel mean 0, (biased) variance 1.
  Tensor m = kiln::mean(y, {0, 2, 3});
  for (float v : m.to_vector<float>()) EXPECT_NEAR(v, 0, 1e-5);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);
  // running = 0.5·0 + 0.5·batch_mean
  std::vector<float> batch_mean = kiln::mean(x, {0, 2, 3}).to_vector<float>();
  for (int c = 0; c < 2; ++c)
    EXPECT_NEAR(bn.running_mean.to_vector<float>()[c], 0.5 * batch_mean[c], 1e-5);
  bn.eval();
  Tensor y_eval = bn(x);
  EXPECT_EQ(bn.num_batches_tracked.item<int64_t>(), 1);  // eval does not update
  std::vector<float> rm = bn.running_mean.to_vector<float>(),
                     rv = bn.running_var.to_vector<float>();
  const float x0 = x.to_vector<float>()[0], y0 = y_eval.to_vector<float>()[0];
  EXPECT_NEAR(y0, (x0 - rm[0]) / std::sqrt(rv[0] + 1e-5f), 1e-5);
  // Single values per channel cannot be normalised in training.
  bn.train();
  EXPECT_THROW(bn(kiln::randn({1, 2, 1, 1})), kiln::ShapeError);
  EXPECT_THROW(bn(kiln::randn({4, 3, 2, 2})), kiln::ShapeError);
}

TEST(BatchNorm, WithoutRunningStatsAlwaysUsesBatchStats) {
  nn::BatchNorm1d bn(nn::BatchNormOptions(3).track_running_stats(false).affine(false));
  EXPECT_TRUE(bn.state_dict().empty());
  bn.eval();
  Tensor y = bn(kiln::randn({6, 3}) + 5.0);
  for (float v : kiln::mean(y, {0}).to_vector<float>()) EXPECT_NEAR(v, 0, 1e-5);
}

TEST(Conv, OutputShapesIncludingSamePadding) {
  nn::Conv2d c(nn::Conv2dOptions(3, 8, {3, 5}).stride(2).padding({1, 2}));
  EXPECT_EQ(c(kiln::randn({2, 3, 11, 12})).shape(), (Shape{2, 8, 6, 6}));
  nn::Conv2d same(nn::Conv2dOptions(3, 4, 4).padding("same").dilation({1, 2}));
  EXPECT_EQ(same(kiln::randn({1, 3, 7, 9})).shape(), (Shape{1, 4, 7, 9}));
  nn::Conv1d c1(nn::Conv1dOptions(2, 4, 2).padding("same"));
  EXPECT_EQ(c1(kiln::randn({3, 2, 10})).shape(), (Shape{3, 4, 10}));
  nn::Conv2d valid(nn::Conv2dOptions(1, 1, 3).padding("valid"));
  EXPECT_EQ(valid(kiln::randn({1, 1, 5, 5})).shape(), (Shape{1, 1, 3, 3}));
  EXPECT_THROW(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)), kiln::Error);
  // "same" at stride 2: TensorFlow's rule, ⌈in / 2⌉ (values in same_padding_test.cpp).
  nn::Conv2d same2(nn::Conv2dOptions(2, 4, 3).padding("same").stride(2));
  EXPECT_EQ(same2(kiln::randn({1, 2, 9, 8})).shape(), (Shape{1, 4, 5, 4}));
  std::string msg = error_of<kiln::ShapeError>([&] { c(kiln::randn({2, 4, 8, 8})); });
  EXPECT_NE(msg.find("Conv2d: expected input (B, C_in, H, W) with C_in=3, got shape [2, 4, 8, 8]"),
            std::string::npos)
      << msg;
  EXPECT_EQ(nn::to_string(c), "Conv2d(3, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2))");
}

TEST(Pooling, Shapes) {
  Tensor x = kiln::randn({2, 3, 8, 6});
  EXPECT_EQ(nn::MaxPool2d(nn::MaxPool2dOptions(2))(x).shape(), (Shape{2, 3, 4, 3}));
  EXPECT_EQ(nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1))(x).shape(),
            (Shape{2, 3, 4, 3}));
  EXPECT_EQ(nn::AvgPool2d(nn::AvgPool2dOptions({2, 3}))(x).shape(), (Shape{2, 3, 4, 2}));
  EXPECT_EQ(nn::AdaptiveAvgPool2d({3, 2})(x).shape(), (Shape{2, 3, 3, 2}));
  EXPECT_EQ(nn::GlobalAvgPool()(x).shape(), (Shape{2, 3}));
  EXPECT_EQ(nn::GlobalAvgPool(nn::GlobalAvgPoolOptions().keepdim(true))(x).shape(),
            (Shape{2, 3, 1, 1}));
  EXPECT_EQ(
      nn::MaxPool1d(nn::MaxPool1dOptions(3).stride(2).padding(1))(kiln::randn({2, 3, 9})).shape(),
      (Shape{2, 3, 5}));
  Tensor g = nn::GlobalAvgPool()(x);
  EXPECT_NEAR(g.to_vector<float>()[0], kiln::mean(x.select(0, 0).select(0, 0)).item<float>(), 1e-6);
  EXPECT_THROW(nn::MaxPool2d(nn::MaxPool2dOptions(2))(kiln::randn({3, 8, 6})), kiln::ShapeError);
}

TEST(Activations, ModulesMatchTheOps) {
  Tensor x = kiln::randn({4, 5});
  EXPECT_EQ(nn::ReLU()(x).to_vector<float>(), kiln::relu(x).to_vector<float>());
  EXPECT_EQ(nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2))(x).to_vector<float>(),
            kiln::leaky_relu(x, 0.2).to_vector<float>());
  EXPECT_EQ(nn::GELU(nn::GELUOptions().approximate("tanh"))(x).to_vector<float>(),
            kiln::gelu(x, "tanh").to_vector<float>());
  EXPECT_EQ(nn::Tanh()(x).to_vector<float>(), kiln::tanh(x).to_vector<float>());
  EXPECT_EQ(nn::Sigmoid()(x).to_vector<float>(), kiln::sigmoid(x).to_vector<float>());
  EXPECT_EQ(nn::SiLU()(x).to_vector<float>(), kiln::silu(x).to_vector<float>());
  EXPECT_EQ(nn::Softmax(nn::SoftmaxOptions(0))(x).to_vector<float>(),
            kiln::softmax(x, 0).to_vector<float>());
  EXPECT_EQ(nn::LogSoftmax()(x).to_vector<float>(), kiln::log_softmax(x, -1).to_vector<float>());
  EXPECT_EQ(nn::Identity()(x).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(nn::Flatten()(kiln::randn({2, 3, 4})).shape(), (Shape{2, 12}));
  EXPECT_EQ(nn::make_activation("gelu")->name(), "GELU");
  EXPECT_THROW(nn::make_activation("softsign"), kiln::Error);
  EXPECT_THROW(nn::GELU(nn::GELUOptions().approximate("fast")), kiln::Error);
}

TEST(Embedding, LooksUpRowsAndChecksIds) {
  nn::Embedding e(nn::EmbeddingOptions(6, 3));
  Tensor ids = kiln::tensor({1, 5, 1}, {3});
  Tensor y = e(ids);
  EXPECT_EQ(y.shape(), (Shape{3, 3}));
  EXPECT_EQ(y.select(0, 1).to_vector<float>(), e.weight.select(0, 5).to_vector<float>());
  EXPECT_THROW(e(kiln::zeros({2})), kiln::TypeError);
  EXPECT_THROW(nn::Embedding(nn::EmbeddingOptions(6, 3).padding_idx(6)), kiln::Error);
}

TEST(RNN, ShapesForEveryLayout) {
  nn::LSTM lstm(nn::LSTMOptions(3, 5).num_layers(2).bidirectional(true));
  nn::RNNOutput r = lstm.forward_with_state(kiln::randn({7, 2, 3}));
  EXPECT_EQ(r.output.shape(), (Shape{7, 2, 10}));
  EXPECT_EQ(r.h_n.shape(), (Shape{4, 2, 5}));
  EXPECT_EQ(r.c_n.shape(), (Shape{4, 2, 5}));
  // Unbatched (T, I).
  nn::RNNOutput u = lstm.forward_with_state(kiln::randn({7, 3}));
  EXPECT_EQ(u.output.shape(), (Shape{7, 10}));
  EXPECT_EQ(u.h_n.shape(), (Shape{4, 5}));
  nn::GRU gru(nn::GRUOptions(3, 4).batch_first(true).bias(false));
  EXPECT_EQ(gru.named_parameters().size(), 2u);
  EXPECT_EQ(gru(kiln::randn({2, 6, 3})).shape(), (Shape{2, 6, 4}));
  EXPECT_EQ(gru({kiln::randn({2, 6, 3}), kiln::zeros({1, 2, 4})}).shape(), (Shape{2, 6, 4}));
  std::string msg = error_of<kiln::ShapeError>([&] {
    gru({kiln::randn({2, 6, 3}), kiln::zeros({2, 2, 4})});
  });
  EXPECT_NE(msg.find("h0 must be (L·D, B, H) = [1, 2, 4], got shape [2, 2, 4]"), std::string::npos)
      << msg;
  EXPECT_EQ(nn::to_string(lstm), "LSTM(3, 5, num_layers=2, bidirectional=true)");
}

TEST(RNN, FinalStateOfTheForwardDirectionIsTheLastOutput) {
  nn::GRU gru(nn::GRUOptions(2, 3).bidirectional(true));
  nn::RNNOutput r = gru.forward_with_state(kiln::randn({5, 1, 2}));
  // Forward direction ends at t = T−1, reverse at t = 0.
  EXPECT_EQ(r.h_n.select(0, 0).to_vector<float>(),
            r.output.select(0, 4).narrow(-1, 0, 3).to_vector<float>());
  EXPECT_EQ(r.h_n.select(0, 1).to_vector<float>(),
            r.output.select(0, 0).narrow(-1, 3, 3).to_vector<float>());
}

TEST(Attention, MasksShapesAndErrors) {
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(8, 2).batch_first(true));
  Tensor q = kiln::randn({2, 3, 8}), kv = kiln::randn({2, 4, 8});
  EXPECT_EQ(mha.forward(q, kv, kv).shape(), (Shape{2, 3, 8}));
  Tensor kpm = kiln::gt(kiln::randn({2, 4}), 10.0);  // all false
  EXPECT_EQ(mha.forward(q, kv, kv, kpm).to_vector<float>(),
            mha.forward(q, kv, kv).to_vector<float>());
  // A key masked out has no influence on the output.
  Tensor mask = kiln::tensor({0, 0, 0, 1, 0, 0, 0, 1}, {2, 4}).to(kiln::kBool);
  Tensor kv2 = kv.clone();
  kv2.data().select(1, 3).fill_(100.0);
  EXPECT_EQ(mha.forward(q, kv, kv, mask).to_vector<float>(),
            mha.forward(q, kv2, kv2, mask).to_vector<float>());
  std::string msg = error_of<kiln::ShapeError>([&] {
    mha.forward(q, kv, kv, kiln::zeros({2, 3}));
  });
  EXPECT_NE(msg.find("key_padding_mask [2, 3] must be (B, S) = [2, 4]"), std::string::npos) << msg;
  msg = error_of<kiln::ShapeError>([&] { mha.forward(q, kv, kv, {}, kiln::zeros({4, 3})); });
  EXPECT_NE(msg.find("attn_mask [4, 3] must be (T, S) = [3, 4] or (B·H, T, S) = [4, 3, 4]"),
            std::string::npos)
      << msg;
  EXPECT_THROW(nn::MultiheadAttention(nn::MultiheadAttentionOptions(10, 3)), kiln::Error);
}

TEST(Transformer, ParameterNamesFollowPyTorch) {
  nn::TransformerEncoder enc(
      nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16), 2)
          .final_norm(true));
  std::vector<std::string> keys = enc.state_dict().keys();
  const std::vector<std::string> layer0 = {"layers.0.self_attn.in_proj_weight",
                                           "layers.0.self_attn.in_proj_bias",
                                           "layers.0.self_attn.out_proj.weight",
                                           "layers.0.self_attn.out_proj.bias",
                                           "layers.0.linear1.weight",
                                           "layers.0.linear1.bias",
                                           "layers.0.linear2.weight",
                                           "layers.0.linear2.bias",
                                           "layers.0.norm1.weight",
                                           "layers.0.norm1.bias",
                                           "layers.0.norm2.weight",
                                           "layers.0.norm2.bias"};
  ASSERT_EQ(keys.size(), 2 * layer0.size() + 2);
  EXPECT_EQ(std::vector<std::string>(keys.begin(), keys.begin() + 12), layer0);
  EXPECT_EQ(keys.back(), "norm.bias");
  EXPECT_EQ(enc.layers->at<nn::TransformerEncoderLayer>(1)->self_attn->in_proj_weight.name(),
            "layers.1.self_attn.in_proj_weight");
  // Dropout is active in training, inactive in eval.
  Tensor x = kiln::randn({5, 2, 8});
  enc.eval();
  EXPECT_EQ(enc(x).to_vector<float>(), enc(x).to_vector<float>());
  enc.train();
  EXPECT_NE(enc(x).to_vector<float>(), enc(x).to_vector<float>());
}

TEST(Losses, ModulesAndErrors) {
  Tensor logits = kiln::randn({4, 3}), target = kiln::tensor({0, 2, 1, 2});
  EXPECT_NEAR(nn::CrossEntropyLoss()(logits, target).item<float>(),
              kiln::cross_entropy(logits, target).item<float>(), 1e-6);
  EXPECT_EQ(
      nn::CrossEntropyLoss(nn::CrossEntropyLossOptions().reduction("none"))(logits, target).shape(),
      (Shape{4}));
  Tensor x = kiln::randn({4, 1}), y = kiln::randn({4});
  std::string msg = error_of<kiln::ShapeError>([&] { nn::MSELoss()(x, y); });
  EXPECT_NE(msg.find("mse_loss: input [4, 1] and target [4] differ"), std::string::npos) << msg;
  EXPECT_THROW(nn::MSELoss("average"), kiln::Error);
  EXPECT_THROW(nn::functional::l1_loss(x, x, "avg"), kiln::Error);
  // forward({input, target}) and the three-input CosineEmbeddingLoss.
  EXPECT_EQ(nn::L1Loss()({x, x}).item<float>(), 0.0f);
  nn::CosineEmbeddingLoss cel(nn::CosineEmbeddingLossOptions().margin(0.1));
  Tensor a = kiln::randn({3, 4});
  EXPECT_NEAR(cel({a, a, kiln::tensor({1, 1, 1})}).item<float>(), 0.0f, 1e-6);
  // Stable BCE-with-logits at extreme logits: finite.
  Tensor big = kiln::tensor({-200.f, 200.f}), t = kiln::tensor({1.f, 0.f});
  EXPECT_NEAR(nn::BCEWithLogitsLoss()(big, t).item<float>(), 200.0f, 1e-3);
  // BCE clamps log at −100.
  EXPECT_NEAR(nn::BCELoss()(kiln::tensor({0.f}), kiln::tensor({1.f})).item<float>(), 100.0f, 1e-4);
}

}  // namespace
