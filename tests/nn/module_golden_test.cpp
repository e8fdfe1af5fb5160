// PyTorch modules' state_dicts loaded BY NAME into Kiln modules, then outputs and gradients
// compared (goldens from tests/golden/make_nn_module_golden.py). A match proves that parameter
// names, layouts (LSTM gates i, f, g, o; GRU r, z, n; MHA's packed in_proj) and the math agree with
// PyTorch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/io/npy.h"
#include "kiln/nn/nn.h"

namespace {

using kiln::Tensor;
namespace nn = kiln::nn;
using TensorMap = std::map<std::string, Tensor>;

const std::string kDir = std::string(KILN_SOURCE_DIR) + "/tests/golden/nn_modules/";

// |kiln − torch| <= atol + rtol·|torch|, float32 throughout.
struct Tol {
  double rtol, atol;
};
// Single GEMM / conv layers: K <= 24 products summed in float32 in a different order than ATen
// (blocking, FMA): a few ulps of values O(1).
constexpr Tol kTolLayer{1e-5, 1e-5};
// Recurrent and attention stacks: 6 time steps × 2 layers (or softmax over 5 keys, two LayerNorms)
// feed rounding differences forward through tanh / sigmoid / exp; gradients also sum over time.
// Observed errors are ≤ 2e-6; 2e-5 keeps ~10× headroom and still catches any gate or layout error
// (O(0.1)).
constexpr Tol kTolStack{2e-5, 2e-5};

class Case {
 public:
  explicit Case(std::string name) : name_(std::move(name)), dir_(kDir + name_ + "/") {}
  Tensor load(const std::string& file) const { return kiln::load_npy(dir_ + file + ".npy"); }
  Tensor in(const std::string& n) const { return load("in." + n); }
  bool has(const std::string& file) const { return std::filesystem::exists(dir_ + file + ".npy"); }
  /// Every state.<key>.npy as a StateDict.
  nn::StateDict state(const std::string& prefix = "state.") const {
    nn::StateDict sd;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      std::string f = e.path().filename().string();
      if (f.starts_with(prefix) && f.ends_with(".npy"))
        sd.insert(f.substr(prefix.size(), f.size() - prefix.size() - 4),
                  load(f.substr(0, f.size() - 4)));
    }
    return sd;
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_, dir_;
};

void expect_close(const Tensor& got, const Tensor& want, Tol tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": undefined";
  ASSERT_EQ(got.shape(), want.shape()) << what;
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  double worst = -1;
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double excess = std::abs(g[i] - w[i]) - (tol.atol + tol.rtol * std::abs(w[i]));
    if (excess > worst || std::isnan(g[i])) {
      worst = std::isnan(g[i]) ? 1e300 : excess;
      at = i;
    }
  }
  EXPECT_LE(worst, 0.0) << what << ": element " << at << " kiln " << g[at] << " vs torch " << w[at];
  // KILN_PRINT_DEVIATION=1 prints the observed deviations (how the tolerances were chosen).
  if (std::getenv("KILN_PRINT_DEVIATION")) {
    double max_abs = 0, max_rel = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      max_abs = std::max(max_abs, std::abs(g[i] - w[i]));
      max_rel = std::max(max_rel, std::abs(g[i] - w[i]) / std::max(std::abs(w[i]), 1e-3));
    }
    std::fprintf(stderr, "  %-50s max abs %.2g  rel %.2g\n", what.c_str(), max_abs, max_rel);
  }
}

// Loads the case's state into `m` (strictly: every key must match a Kiln name), runs `forward`,
// compares outputs, then backpropagates Σ sum(out · probe) and compares every parameter's and
// input's gradient. Every parameter and every input not named in `no_grad` (masks, ids, inputs the
// generator does not differentiate) must have its golden gradient: a missing file is a failure.
void run_case(const Case& c, nn::Module& m, TensorMap inputs,
              const std::function<TensorMap(TensorMap&)>& forward, Tol tol,
              const std::set<std::string>& no_grad = {}) {
  SCOPED_TRACE(c.name());
  m.load_state_dict(c.state(), /*strict=*/true);
  for (auto& [n, t] : inputs) {
    if (no_grad.count(n)) {
      EXPECT_FALSE(c.has("grad." + n)) << "input " << n << " has a golden gradient: compare it";
      continue;
    }
    ASSERT_TRUE(c.has("grad." + n)) << "golden gradient of input " << n << " is missing";
    t = t.detach().requires_grad_();
  }
  TensorMap outs = forward(inputs);
  ASSERT_FALSE(outs.empty());
  Tensor loss;
  for (const auto& [n, y] : outs) {
    expect_close(y, c.load("out." + n), tol, "output " + n);
    Tensor term = kiln::sum(kiln::mul(y, c.load("probe." + n)));
    loss = loss.defined() ? kiln::add(loss, term) : term;
  }
  loss.backward();
  const nn::NamedTensors params = m.named_parameters();
  ASSERT_FALSE(params.empty());
  for (const auto& [n, p] : params) {
    ASSERT_TRUE(c.has("grad." + n)) << "golden gradient of parameter " << n << " is missing";
    expect_close(p.grad(), c.load("grad." + n), tol, "grad of parameter " + n);
  }
  for (const auto& [n, t] : inputs)
    if (!no_grad.count(n)) expect_close(t.grad(), c.load("grad." + n), tol, "grad of input " + n);
}

TEST(ModuleGolden, Linear) {
  Case c("linear");
  nn::Linear m(nn::LinearOptions(5, 3));
  run_case(
      c, m, {{"x", c.in("x")}},
      [&](TensorMap& i) {
        return TensorMap{{"y", m(i["x"])}};
      },
      kTolLayer);
}

TEST(ModuleGolden, Conv2dStridePaddingDilationGroups) {
  Case c("conv2d");
  nn::Conv2d m(
      nn::Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).padding({1, 0}).dilation({1, 2}).groups(2));
  run_case(
      c, m, {{"x", c.in("x")}},
      [&](TensorMap& i) {
        return TensorMap{{"y", m(i["x"])}};
      },
      kTolLayer);
}

TEST(ModuleGolden, Conv2dSamePaddingEvenKernel) {
  Case c("conv2d_same_even_kernel");
  nn::Conv2d m(nn::Conv2dOptions(3, 4, 4).padding("same"));
  run_case(
      c, m, {{"x", c.in("x")}},
      [&](TensorMap& i) {
        return TensorMap{{"y", m(i["x"])}};
      },
      kTolLayer);
}

TEST(ModuleGolden, Conv1d) {
  Case c("conv1d");
  nn::Conv1d m(nn::Conv1dOptions(3, 5, 3).stride(2).padding(1));
  run_case(
      c, m, {{"x", c.in("x")}},
      [&](TensorMap& i) {
        return TensorMap{{"y", m(i["x"])}};
      },
      kTolLayer);
}

TEST(ModuleGolden, LstmBidirectionalTwoLayersBatchFirst) {
  Case c("lstm_bidir_2layer_batch_first");
  nn::LSTM m(nn::LSTMOptions(5, 4).num_layers(2).bidirectional(true).batch_first(true));
  run_case(
      c, m, {{"x", c.in("x")}, {"h0", c.in("h0")}, {"c0", c.in("c0")}},
      [&](TensorMap& i) {
        nn::RNNOutput r = m.forward_with_state(i["x"], i["h0"], i["c0"]);
        return TensorMap{{"output", r.output}, {"h_n", r.h_n}, {"c_n", r.c_n}};
      },
      kTolStack);
}

TEST(ModuleGolden, GruBidirectionalTwoLayersSeqFirst) {
  Case c("gru_bidir_2layer_seq_first");
  nn::GRU m(nn::GRUOptions(5, 4).num_layers(2).bidirectional(true));
  run_case(
      c, m, {{"x", c.in("x")}},
      [&](TensorMap& i) {
        nn::RNNOutput r = m.forward_with_state(i["x"]);
        return TensorMap{{"output", r.output}, {"h_n", r.h_n}};
      },
      kTolStack);
}

TEST(ModuleGolden, MultiheadAttentionCrossWithKeyPaddingAndAdditiveMask) {
  Case c("mha_cross_batch_first_masks");
  nn::MultiheadAttention m(nn::MultiheadAttentionOptions(8, 2).batch_first(true));
  run_case(c, m,
           {{"query", c.in("query")},
            {"key", c.in("key")},
            {"value", c.in("value")},
            {"key_padding_mask", c.in("key_padding_mask")},
            {"attn_mask", c.in("attn_mask")}},
           [&](TensorMap& i) {
             return TensorMap{{"y", m({i["query"], i["key"], i["value"], i["key_padding_mask"],
                                       i["attn_mask"]})}};
           },
           kTolStack, {"key_padding_mask", "attn_mask"});
}

TEST(ModuleGolden, MultiheadAttentionSelfSeqFirstCausalBoolMask) {
  Case c("mha_self_seq_first_causal");
  nn::MultiheadAttention m(nn::MultiheadAttentionOptions(8, 4));
  run_case(c, m, {{"x", c.in("x")}, {"attn_mask", c.in("attn_mask")}},
           [&](TensorMap& i) {
             return TensorMap{{"y", m.forward(i["x"], i["x"], i["x"], {}, i["attn_mask"])}};
           },
           kTolStack, {"attn_mask"});
}

TEST(ModuleGolden, TransformerEncoderLayerPostLnWithPaddingMask) {
  Case c("tel_post_ln_relu_batch_first");
  nn::TransformerEncoderLayer m(
      nn::TransformerEncoderLayerOptions(8, 2).dim_feedforward(16).dropout(0.0).batch_first(true));
  run_case(c, m, {{"src", c.in("src")}, {"src_key_padding_mask", c.in("src_key_padding_mask")}},
           [&](TensorMap& i) {
             return TensorMap{{"y", m.forward(i["src"], {}, i["src_key_padding_mask"])}};
           },
           kTolStack, {"src_key_padding_mask"});
}

TEST(ModuleGolden, TransformerEncoderLayerPreLnGeluCausal) {
  Case c("tel_pre_ln_gelu_seq_first");
  nn::TransformerEncoderLayer m(nn::TransformerEncoderLayerOptions(8, 2)
                                    .dim_feedforward(16)
                                    .dropout(0.0)
                                    .activation("gelu")
                                    .norm_first(true));
  run_case(c, m, {{"src", c.in("src")}, {"src_mask", c.in("src_mask")}},
           [&](TensorMap& i) {
             return TensorMap{{"y", m({i["src"], i["src_mask"]})}};
           },
           kTolStack, {"src_mask"});
}

TEST(ModuleGolden, TransformerEncoderTwoLayersFinalNorm) {
  Case c("encoder_2layer_pre_ln_final_norm");
  nn::TransformerEncoder m(nn::TransformerEncoderOptions(nn::TransformerEncoderLayerOptions(8, 2)
                                                             .dim_feedforward(16)
                                                             .dropout(0.0)
                                                             .batch_first(true)
                                                             .norm_first(true),
                                                         2)
                               .final_norm(true));
  run_case(c, m, {{"src", c.in("src")}, {"src_key_padding_mask", c.in("src_key_padding_mask")}},
           [&](TensorMap& i) {
             return TensorMap{{"y", m.forward(i["src"], {}, i["src_key_padding_mask"])}};
           },
           kTolStack, {"src_key_padding_mask"});
}

TEST(ModuleGolden, BatchNorm2dTrainTwiceThenEval) {
  Case c("batchnorm2d_train_then_eval");
  nn::BatchNorm2d m(nn::BatchNormOptions(3).momentum(0.2));
  run_case(c, m, {{"x1", c.in("x1")}, {"x2", c.in("x2")}, {"x3", c.in("x3")}},
           [&](TensorMap& i) {
             m.train();
             Tensor y1 = m(i["x1"]), y2 = m(i["x2"]);
             m.eval();
             return TensorMap{{"y1", y1}, {"y2", y2}, {"y3", m(i["x3"])}};
           },
           kTolStack, {"x2", "x3"});
  nn::StateDict after = c.state("after.");
  for (const auto& [k, t] : m.state_dict())
    expect_close(t, after.at(k), kTolLayer, "state after: " + k);
}

TEST(ModuleGolden, BatchNorm1dCumulativeAverage) {
  Case c("batchnorm1d_cumulative_average");
  nn::BatchNorm1d m(nn::BatchNormOptions(4).momentum(std::nullopt));
  run_case(c, m, {{"x1", c.in("x1")}, {"x2", c.in("x2")}},
           [&](TensorMap& i) {
             return TensorMap{{"y1", m(i["x1"])}, {"y2", m(i["x2"])}};
           },
           kTolStack, {"x2"});
  nn::StateDict after = c.state("after.");
  for (const auto& [k, t] : m.state_dict())
    expect_close(t, after.at(k), kTolLayer, "state after: " + k);
}

TEST(ModuleGolden, LayerNormOverTwoDims) {
  Case c("layernorm_2d_shape");
  nn::LayerNorm m(nn::LayerNormOptions(kiln::Shape{4, 5}));
  run_case(
      c, m, {{"x", c.in("x")}},
      [&](TensorMap& i) {
        return TensorMap{{"y", m(i["x"])}};
      },
      kTolLayer);
}

TEST(ModuleGolden, EmbeddingPaddingIdxGetsNoGradient) {
  Case c("embedding_padding_idx");
  nn::Embedding m(nn::EmbeddingOptions(10, 4).padding_idx(2));
  run_case(c, m, {{"ids", c.in("ids")}},
           [&](TensorMap& i) {
             return TensorMap{{"y", m(i["ids"])}};
           },
           kTolLayer, {"ids"});
}

// ---- losses: value and input gradient for each reduction ----
TEST(LossGolden, EveryLossAndReductionMatchesPyTorch) {
  Case c("losses");
  namespace F = nn::functional;
  auto in = [&](const char* n) { return c.in(n); };
  using Fn = std::function<Tensor(const Tensor&, const std::string&)>;
  const std::vector<std::tuple<std::string, Fn, Tensor>> cases = {
      {"cross_entropy",
       [&](const Tensor& a, const std::string& r) {
         return F::cross_entropy(a, in("target"), {}, -100, 0.0, r);
       },
       in("logits")},
      {"cross_entropy_weight_ignore_smooth",
       [&](const Tensor& a, const std::string& r) {
         return F::cross_entropy(a, in("target_ignore"), in("class_weight"), -100, 0.1, r);
       },
       in("logits")},
      {"cross_entropy_prob_target_smooth",
       [&](const Tensor& a, const std::string& r) {
         return F::cross_entropy(a, kiln::softmax(in("soft_target"), 1), in("class_weight"), -100,
                                 0.2, r);
       },
       in("logits")},
      {"nll_loss_weight",
       [&](const Tensor& a, const std::string& r) {
         return F::nll_loss(kiln::log_softmax(a, 1), in("target"), in("class_weight"), -100, r);
       },
       in("logits")},
      {"bce_weight",
       [&](const Tensor& a, const std::string& r) {
         return F::binary_cross_entropy(a, in("bin_target"), in("bce_weight"), r);
       },
       in("probs")},
      {"bce_with_logits_pos_weight",
       [&](const Tensor& a, const std::string& r) {
         return F::binary_cross_entropy_with_logits(a, in("bin_target"), in("bce_weight"),
                                                    in("pos_weight"), r);
       },
       in("big_logits")},
      {"bce_with_logits_soft",
       [&](const Tensor& a, const std::string& r) {
         return F::binary_cross_entropy_with_logits(a, in("soft_target"), {}, {}, r);
       },
       in("logits")},
      {"mse", [&](const Tensor& a, const std::string& r) { return F::mse_loss(a, in("y"), r); },
       in("x")},
      {"l1", [&](const Tensor& a, const std::string& r) { return F::l1_loss(a, in("y"), r); },
       in("x")},
      {"smooth_l1_beta_half",
       [&](const Tensor& a, const std::string& r) { return F::smooth_l1_loss(a, in("y"), 0.5, r); },
       in("x")},
      {"huber_delta_07",
       [&](const Tensor& a, const std::string& r) { return F::huber_loss(a, in("y"), 0.7, r); },
       in("x")},
      {"cosine_embedding_margin",
       [&](const Tensor& a, const std::string& r) {
         return F::cosine_embedding_loss(a, in("x2"), in("cos_target"), 0.2, r);
       },
       in("x1")},
  };
  for (const auto& [name, fn, input] : cases) {
    for (const char* r : {"none", "mean", "sum"}) {
      const std::string key = name + "_" + r;
      Tensor a = input.detach().requires_grad_();
      Tensor loss = fn(a, r);
      expect_close(loss, c.load("out." + key), kTolLayer, key);
      kiln::sum(kiln::mul(loss, c.load("probe." + key))).backward();
      expect_close(a.grad(), c.load("grad." + key), kTolLayer, "grad " + key);
    }
  }
}

}  // namespace
