// The nn ops (autograd/ops/nn.cpp): float32 values and gradients against PyTorch goldens written by
// tests/golden/make_nn_golden.py, shape errors, attention's masked rows, dropout's reproducibility
// and batch norm's running buffers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op.h"
#include "kiln/io/npy.h"
#include "kiln/tensor/error.h"
#include "kiln/tensor/parallel.h"
#include "kiln/tensor/storage.h"
#include "test_support.h"

namespace kiln {
namespace {

// |got − want| <= atol + rtol·|want|, elementwise (NaN matches NaN).
struct Tol {
  double rtol, atol;
};
// Row-wise float32 ops vs PyTorch's float32: both round each exp / scale once, in different orders.
constexpr Tol kSoftmaxTol{1e-5, 1e-6};
// layer / batch norm: outputs are O(1) after normalising; the backward combines two row sums, each
// rounded to float32 once on PyTorch's side (PyTorch accumulates in float32, Kiln in float64).
constexpr Tol kNormTol{1e-4, 2e-5};
// Losses: a sum over K classes and a mean over the batch, accumulated in float32 by PyTorch.
constexpr Tol kLossTol{1e-5, 2e-6};
// Attention: two GEMMs (K = d and K = Tk terms) around the softmax.
constexpr Tol kAttentionTol{1e-4, 1e-5};

::testing::AssertionResult close(const Tensor& got_t, const Array& want_in, Tol tol) {
  if (!got_t.defined()) return ::testing::AssertionFailure() << "result undefined";
  Array got = got_t.data().to(kFloat64).contiguous(), want = want_in.to(kFloat64).contiguous();
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure()
           << fmt::format("shapes differ: {} vs {}", got.shape(), want.shape());
  const double *g = got.data<double>(), *w = want.data<double>();
  for (int64_t i = 0; i < got.numel(); ++i) {
    const bool both_nan = std::isnan(g[i]) && std::isnan(w[i]);
    if (!both_nan && !(std::abs(g[i] - w[i]) <= tol.atol + tol.rtol * std::abs(w[i])))
      return ::testing::AssertionFailure()
             << "element " << i << ": " << g[i] << " vs PyTorch " << w[i];
  }
  return ::testing::AssertionSuccess();
}

Array golden(const std::string& name) {
  return load_npy(std::string(KILN_SOURCE_DIR) + "/tests/golden/nn/" + name + ".npy").data();
}
Tensor input(const std::string& name, bool grad = true) {
  return Tensor(golden(name), grad);
}
void backward_golden(const Tensor& y, const std::string& name) {
  y.backward(Tensor(golden(name + "_dy")));
}

// The message of the error fn throws ("" when it does not throw).
template <typename F>
std::string error_of(F fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
#define EXPECT_MESSAGE_HAS(msg, part) \
  EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

// ---------------------------------------------------------------- PyTorch goldens
TEST(NnOps, SoftmaxAndLogSoftmaxMatchPyTorch) {
  struct Case {
    const char* label;
    int64_t dim;
  };
  for (const char* fn : {"softmax", "log_softmax"})
    for (Case c : {Case{"last", -1}, Case{"dim1", 1}, Case{"big", -1}}) {
      const std::string name = std::string(fn) + "_" + c.label;
      SCOPED_TRACE(name);
      Tensor x = input(name + "_x");
      Tensor y = std::string(fn) == "softmax" ? softmax(x, c.dim) : log_softmax(x, c.dim);
      EXPECT_TRUE(close(y, golden(name + "_y"), kSoftmaxTol));
      backward_golden(y, name);
      EXPECT_TRUE(close(x.grad(), golden(name + "_dx"), kSoftmaxTol));
    }
}

TEST(NnOps, LayerNormMatchesPyTorch) {
  for (auto [label, ns] : {std::pair<const char*, Shape>{"last", {16}}, {"last2", {6, 8}}}) {
    const std::string name = std::string("layer_norm_") + label;
    SCOPED_TRACE(name);
    Tensor x = input(name + "_x"), w = input(name + "_w"), b = input(name + "_b");
    Tensor y = layer_norm(x, ns, w, b, 1e-5);
    EXPECT_TRUE(close(y, golden(name + "_y"), kNormTol));
    backward_golden(y, name);
    EXPECT_TRUE(close(x.grad(), golden(name + "_dx"), kNormTol));
    EXPECT_TRUE(close(w.grad(), golden(name + "_dw"), kNormTol));
    EXPECT_TRUE(close(b.grad(), golden(name + "_db"), kNormTol));
  }
}

TEST(NnOps, CrossEntropyMatchesPyTorchForEveryReduction) {
  struct Case {
    const char* label;
    bool weighted;
    int64_t ignore_index;
    double smoothing;
  };
  const Case cases[] = {{"plain", false, -100, 0.0},
                        {"weighted", true, -100, 0.0},
                        {"w_ignore_smooth", true, 3, 0.1},
                        {"ignore_smooth", false, 3, 0.2},
                        {"spatial", true, 1, 0.15}};
  for (const Case& c : cases)
    for (const char* reduction : {"none", "mean", "sum"}) {
      const std::string base = std::string("ce_") + c.label, name = base + "_" + reduction;
      SCOPED_TRACE(name);
      Tensor x = input(base + "_x"), t = input(base + "_t", false);
      Tensor w = c.weighted ? input(base + "_w", false) : Tensor{};
      Tensor y = cross_entropy(x, t, w, c.ignore_index, c.smoothing, reduction);
      EXPECT_TRUE(close(y, golden(name + "_y"), kLossTol));
      backward_golden(y, name);
      EXPECT_TRUE(close(x.grad(), golden(name + "_dx"), kLossTol));
    }
}

TEST(NnOps, NllLossMatchesPyTorch) {
  for (const char* reduction : {"none", "mean", "sum"}) {
    const std::string name = std::string("nll_") + reduction;
    SCOPED_TRACE(name);
    Tensor x = input("nll_x");
    Tensor y = nll_loss(x, input("nll_t", false), input("nll_w", false), 2, reduction);
    EXPECT_TRUE(close(y, golden(name + "_y"), kLossTol));
    backward_golden(y, name);
    EXPECT_TRUE(close(x.grad(), golden(name + "_dx"), kLossTol));
  }
}

TEST(NnOps, BatchNormMatchesPyTorchIncludingRunningStats) {
  for (bool training : {true, false}) {
    const std::string name = training ? "bn_train" : "bn_eval";
    SCOPED_TRACE(name);
    Tensor x = input(name + "_x"), w = input(name + "_w"), b = input(name + "_b");
    Tensor rm = input(name + "_rm0", false), rv = input(name + "_rv0", false);
    const uint64_t version = rm.data().version();
    Tensor y = batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5);
    EXPECT_TRUE(close(y, golden(name + "_y"), kNormTol));
    EXPECT_TRUE(close(rm, golden(name + "_rm1"), kNormTol));
    EXPECT_TRUE(close(rv, golden(name + "_rv1"), kNormTol));
    EXPECT_EQ(rm.data().version() != version, training)
        << "the running buffers change in place only when training";
    backward_golden(y, name);
    EXPECT_TRUE(close(x.grad(), golden(name + "_dx"), kNormTol));
    EXPECT_TRUE(close(w.grad(), golden(name + "_dw"), kNormTol));
    EXPECT_TRUE(close(b.grad(), golden(name + "_db"), kNormTol));
    EXPECT_FALSE(rm.grad().defined());
  }
}

TEST(NnOps, AttentionWithPaddingMaskMatchesPyTorch) {
  Tensor q = input("attn_q"), k = input("attn_k"), v = input("attn_v");
  Tensor y = scaled_dot_product_attention(q, k, v, input("attn_mask", false));
  EXPECT_TRUE(close(y, golden("attn_y"), kAttentionTol));
  backward_golden(y, "attn");
  EXPECT_TRUE(close(q.grad(), golden("attn_dq"), kAttentionTol));
  EXPECT_TRUE(close(k.grad(), golden("attn_dk"), kAttentionTol));
  EXPECT_TRUE(close(v.grad(), golden("attn_dv"), kAttentionTol));
}

// ---------------------------------------------------------------- attention behaviour
// The same attention written with primitive ops (matmul, softmax, dropout).
Tensor attention_by_parts(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                          double p, Generator* gen) {
  Tensor s = matmul(q, k.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  if (mask.defined()) s = s + mask;
  Tensor a = softmax(s, -1);
  return matmul(p > 0 ? dropout(a, p, true, gen) : a, v);
}

TEST(NnOps, AttentionMatchesPrimitivesOnStridedInputsAndWithDropout) {
  // q, k, v as (B, H, T, d) views of (B, T, H, d) tensors: strided, as a multi-head layer produces
  // them.
  Generator g(3);
  Tensor qs = randn({2, 5, 3, 4}, kFloat32, &g), ks = randn({2, 6, 3, 4}, kFloat32, &g),
         vs = randn({2, 6, 3, 4}, kFloat32, &g), mask = randn({2, 1, 5, 6}, kFloat32, &g);
  for (double p : {0.0, 0.25}) {
    SCOPED_TRACE(p);
    Tensor q1 = qs.detach().requires_grad_(), k1 = ks.detach().requires_grad_(),
           v1 = vs.detach().requires_grad_();
    Tensor q2 = qs.clone().requires_grad_(), k2 = ks.clone().requires_grad_(),
           v2 = vs.clone().requires_grad_();
    Generator g1(99), g2(99);
    Tensor y1 = scaled_dot_product_attention(q1.transpose(1, 2), k1.transpose(1, 2),
                                             v1.transpose(1, 2), mask, p, true, &g1);
    Tensor y2 = attention_by_parts(q2.transpose(1, 2), k2.transpose(1, 2), v2.transpose(1, 2), mask,
                                   p, &g2);
    EXPECT_TRUE(close(y1, y2.data(), kAttentionTol));
    Tensor dy = randn(y1.shape(), kFloat32, &g);
    y1.backward(dy);
    y2.backward(dy);
    EXPECT_TRUE(close(q1.grad(), q2.grad().data(), kAttentionTol));
    EXPECT_TRUE(close(k1.grad(), k2.grad().data(), kAttentionTol));
    EXPECT_TRUE(close(v1.grad(), v2.grad().data(), kAttentionTol));
  }
}

// Without gradients (NoGradGuard, or no input requiring one) attention runs the inference kernel,
// which keeps each entry's scores in a scratch block: its output must equal the recorded path's
// bit for bit (the same GEMM calls and row softmax), over strided and contiguous inputs, 3-D and
// 4-D, additive / bool / no masks, float32 and float64, at 1 and 2 threads. (The kernel itself is
// checked against its reference twin in tests/tensor/nn_kernels_test.cpp.)
TEST(NnOps, AttentionInferencePathEqualsTheRecordedPath) {
  kiln::testing::ScopedNumThreads scoped(1);
  Generator g(21);
  const Tensor qs = randn({3, 9, 4, 8}, kFloat32, &g), ks = randn({3, 11, 4, 8}, kFloat32, &g),
               vs = randn({3, 11, 4, 5}, kFloat32, &g);
  const Tensor key_pad = from_vector<uint8_t>({1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0,  //
                                               1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,  //
                                               1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
                                              {3, 1, 1, 11})
                             .to(kBool);
  const Tensor full_mask = randn({3, 4, 9, 11}, kFloat32, &g);
  struct Case {
    const char* name;
    Tensor q, k, v, mask;
  };
  const std::vector<Case> cases = {
      {"strided heads, key padding", qs.transpose(1, 2), ks.transpose(1, 2), vs.transpose(1, 2),
       key_pad},
      {"contiguous, full additive mask", qs.transpose(1, 2).contiguous(),
       ks.transpose(1, 2).contiguous(), vs.transpose(1, 2).contiguous(), full_mask},
      {"3-D, no mask", qs.select(2, 1), ks.select(2, 1), vs.select(2, 1), Tensor()},
      {"float64", qs.transpose(1, 2).to(kFloat64), ks.transpose(1, 2).to(kFloat64),
       vs.transpose(1, 2).to(kFloat64), full_mask.to(kFloat64)},
  };
  for (int threads : {1, 2}) {
    scoped.set(threads);
    for (const Case& c : cases) {
      SCOPED_TRACE(::testing::Message() << c.name << ", " << threads << " thread(s)");
      Tensor fast;
      {
        NoGradGuard ng;
        fast = scaled_dot_product_attention(c.q, c.k, c.v, c.mask);
      }
      Tensor q = c.q.detach().requires_grad_();
      Tensor recorded = scaled_dot_product_attention(q, c.k, c.v, c.mask);
      ASSERT_TRUE(recorded.requires_grad());
      // float32 is bit for bit (oneDNN's sgemm, and OpenBLAS's under KILN_GEMM=openblas). float64 runs
      // OpenBLAS's dgemm, whose last bit
      // depends on the operands' alignment: the scratch block is 64-byte aligned, the recorded
      // path's per-entry score blocks (9 × 11 doubles apart) are not; 1 ulp was seen.
      const Tol tol = c.q.dtype() == kFloat64 ? Tol{1e-14, 1e-14} : Tol{0, 0};
      EXPECT_TRUE(close(fast, recorded.data(), tol));
      // Eval mode with dropout_p > 0 is still inference: the same values.
      NoGradGuard ng;
      EXPECT_TRUE(close(scaled_dot_product_attention(c.q, c.k, c.v, c.mask, 0.1, false),
                        recorded.data(), tol));
    }
  }
}

TEST(NnOps, AttentionFullyMaskedRowsGiveZerosNotNaN) {
  // Key-padding mask (B, 1, 1, Tk): batch 1 has every key padded with -inf, batch 0 with -1e9.
  const double inf = std::numeric_limits<double>::infinity();
  Generator g(8);
  Tensor q = randn({2, 2, 3, 4}, kFloat32, &g).requires_grad_(),
         k = randn({2, 2, 5, 4}, kFloat32, &g).requires_grad_(),
         v = randn({2, 2, 5, 4}, kFloat32, &g).requires_grad_();
  Tensor mask = from_vector<float>({-1e9f, -1e9f, -1e9f, -1e9f, -1e9f, float(-inf), float(-inf),
                                    float(-inf), float(-inf), float(-inf)},
                                   {2, 1, 1, 5});
  Tensor y = scaled_dot_product_attention(q, k, v, mask);
  y.sum().backward();
  // Fully -inf: zero output and zero gradient for that batch.
  EXPECT_TRUE(close(y.select(0, 1), zeros({2, 3, 4}).data(), {0, 0}));
  EXPECT_TRUE(close(q.grad().select(0, 1), zeros({2, 3, 4}).data(), {0, 0}));
  EXPECT_TRUE(close(k.grad().select(0, 1), zeros({2, 5, 4}).data(), {0, 0}));
  // -1e9 everywhere: the row softmax is uniform, so every query gets the mean of the values (as
  // PyTorch).
  Tensor vmean = mean(v.detach().select(0, 0), {1}, true).expand({2, 3, 4});
  EXPECT_TRUE(close(y.select(0, 0), vmean.contiguous().data(), {1e-5, 1e-6}));
  for (const Tensor& t : {q.grad(), k.grad(), v.grad()})
    EXPECT_FALSE(std::isnan(sum(t).item<double>()));
  // A bool mask (true = attend) means the same as the additive one.
  Tensor keep = from_vector<uint8_t>({1, 1, 1, 0, 0}, {1, 1, 1, 5}).to(kBool);
  Tensor add_mask = from_vector<float>({0, 0, 0, float(-inf), float(-inf)}, {1, 1, 1, 5});
  NoGradGuard ng;
  EXPECT_TRUE(close(scaled_dot_product_attention(q, k, v, keep),
                    scaled_dot_product_attention(q, k, v, add_mask).data(), {0, 0}));
}

// ---------------------------------------------------------------- dropout, batch norm, losses
TEST(NnOps, DropoutIsReproducibleAtAnyThreadCountAndMasksItsGradient) {
  kiln::testing::ScopedNumThreads scoped(1);
  Generator g(1);
  Tensor x = rand({300, 200}, kFloat32, &g);
  std::vector<Tensor> outs;
  for (int threads : {1, 2}) {
    scoped.set(threads);
    Generator gd(42);
    Tensor xi = x.detach().requires_grad_();
    Tensor y = dropout(xi, 0.5, true, &gd);
    y.sum().backward();
    // The gradient is the mask times 1/(1 − p): exactly y / x.
    EXPECT_TRUE(close(xi.grad(), (y / xi).detach().data(), {1e-6, 0}));
    outs.push_back(y);
  }
  EXPECT_EQ(
      std::memcmp(outs[0].data().raw_data(), outs[1].data().raw_data(), outs[0].data().nbytes()),
      0);
  // Successive calls on one generator draw fresh masks; eval is the identity on the same storage.
  Generator gd(42);
  Tensor a = dropout(x, 0.5, true, &gd), b = dropout(x, 0.5, true, &gd);
  EXPECT_GT(sum(ne(a, b).to(kFloat32)).item<double>(), 1000.0);
  Tensor e = dropout(x, 0.5, false);
  EXPECT_TRUE(e.data().shares_storage(x.data()));
}

// The fused residual op against the three ops it replaces, drawing from generators with the same
// seed: the same values and gradients (the same mask, the same float32 operations); in eval mode it
// records add + layer_norm, the graph ONNX export lowers.
TEST(NnOps, DropoutAddLayerNormEqualsDropoutAddLayerNorm) {
  Generator g(3);
  Tensor x0 = randn({4, 5, 16}, kFloat32, &g), h0 = randn({4, 5, 16}, kFloat32, &g);
  Tensor w0 = randn({16}, kFloat32, &g), b0 = randn({16}, kFloat32, &g);
  Tensor dy = randn({4, 5, 16}, kFloat32, &g);
  std::vector<Tensor> grads[2];
  Tensor ys[2];
  for (int fused = 0; fused < 2; ++fused) {
    Tensor x = x0.detach().requires_grad_(), h = h0.detach().requires_grad_();
    Tensor w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
    Generator gd(11);
    Tensor y = fused ? dropout_add_layer_norm(x, h, 0.3, true, &gd, {16}, w, b, 1e-5)
                     : layer_norm(add(x, dropout(h, 0.3, true, &gd)), {16}, w, b, 1e-5);
    if (fused) {
      ASSERT_TRUE(y.grad_fn());
      EXPECT_EQ(y.grad_fn()->name, "dropout_add_layer_norm");
    }
    (y * dy).sum().backward();
    ys[fused] = y;
    grads[fused] = {x.grad(), h.grad(), w.grad(), b.grad()};
  }
  EXPECT_TRUE(close(ys[1], ys[0].data(), {0, 0}));
  for (size_t i = 0; i < 4; ++i)
    EXPECT_TRUE(close(grads[1][i], grads[0][i].data(), {1e-6, 1e-6})) << "input " << i;
  // Eval mode: at inference one fused pass (nothing recorded); with a gradient to take, or under a
  // trace (ONNX export), add + layer_norm. The same bits each way.
  const Tensor reference = layer_norm(add(x0, h0), {16}, w0, b0);
  const size_t in_use = storage_bytes_in_use();
  reset_storage_peak();
  Tensor e = dropout_add_layer_norm(x0, h0, 0.3, false, nullptr, {16}, w0, b0);
  // The fused pass allocates y alone: no x + h array, no row statistics (add + layer_norm would).
  EXPECT_EQ(storage_peak_bytes() - in_use, sizeof(float) * static_cast<size_t>(e.numel()));
  EXPECT_TRUE(close(e, reference.data(), {0, 0}));
  EXPECT_FALSE(e.grad_fn());
  {
    Tracer tr;
    Tensor t = dropout_add_layer_norm(x0, h0, 0.3, false, nullptr, {16}, w0, b0);
    EXPECT_TRUE(close(t, reference.data(), {0, 0}));
    ASSERT_EQ(tr.events().size(), 2u);
    EXPECT_EQ(tr.events()[0].name, "add");
    EXPECT_EQ(tr.events()[1].name, "layer_norm");
  }
  Tensor hg = h0.detach().requires_grad_();
  Tensor r = dropout_add_layer_norm(x0, hg, 0.3, false, nullptr, {16}, w0, b0);
  ASSERT_TRUE(r.grad_fn());
  EXPECT_EQ(r.grad_fn()->name, "layer_norm");
  EXPECT_TRUE(close(r, reference.data(), {0, 0}));
  EXPECT_MESSAGE_HAS(
      error_of([&] { dropout_add_layer_norm(x0, w0, 0.1, true, nullptr, {16}); }),
      "dropout_add_layer_norm: residual [4, 5, 16] float32 and sub-layer output [16] float32 "
      "differ");
}

TEST(NnOps, BatchNormMomentumAndEvalUseOfRunningStats) {
  Generator g(2);
  Tensor x = randn({8, 3, 4}, kFloat32, &g) * 2.0 + 1.0;
  Tensor rm = zeros({3}), rv = ones({3});
  for (int step = 0; step < 2; ++step) batch_norm(x, rm, rv, {}, {}, true, 0.5, 1e-5);
  // After two steps with momentum 0.5 from (0, 1): running = 0.75·batch + 0.25·initial.
  Tensor bm = mean(x, {0, 2}), bv = var(x, {0, 2}, 1);
  EXPECT_TRUE(close(rm, (bm * 0.75).data(), {1e-5, 1e-6}));
  EXPECT_TRUE(close(rv, (bv * 0.75 + 0.25).data(), {1e-5, 1e-6}));
  // Eval: (x − running_mean) / √(running_var + eps).
  Tensor y = batch_norm(x, rm, rv, {}, {}, false);
  Tensor want = (x - rm.reshape({1, 3, 1})) / sqrt(rv.reshape({1, 3, 1}) + 1e-5);
  EXPECT_TRUE(close(y, want.data(), {1e-5, 1e-6}));
}

TEST(NnOps, CrossEntropyEdgeCases) {
  Generator g(4);
  Tensor x = randn({3, 5}, kFloat32, &g).requires_grad_();
  Tensor t = from_vector<int64_t>({4, 0, 2});
  // Unbatched (K) logits with a 0-d target equal the batched row.
  Tensor row = cross_entropy(x.select(0, 0), scalar_tensor(4, kInt64), {}, -100, 0.1);
  Tensor all = cross_entropy(x, t, {}, -100, 0.1, "none");
  EXPECT_NEAR(row.item<double>(), all.select(0, 0).item<double>(), 1e-6);
  // Every row ignored: the mean is 0/0 = NaN (as PyTorch) and the gradient is zero.
  Tensor y = cross_entropy(x, from_vector<int64_t>({-100, -100, -100}));
  EXPECT_TRUE(std::isnan(y.item<double>()));
  y.backward();
  EXPECT_EQ(sum(abs(x.grad())).item<double>(), 0.0);
  // The recorded node carries what an exporter needs.
  Tensor z = cross_entropy(x, t, {}, 7, 0.25, "sum");
  ASSERT_TRUE(z.grad_fn());
  EXPECT_EQ(z.grad_fn()->name, "cross_entropy");
  EXPECT_EQ(attr<std::string>(z.grad_fn()->attrs, "reduction"), "sum");
  EXPECT_EQ(attr<int64_t>(z.grad_fn()->attrs, "ignore_index"), 7);
  EXPECT_EQ(attr<double>(z.grad_fn()->attrs, "label_smoothing"), 0.25);
}

// ---------------------------------------------------------------- shape errors: op, both shapes,
// rule
TEST(NnOps, ShapeErrorsNameTheOpTheShapesAndTheRule) {
  Tensor x = zeros({32, 10});
  std::string m = error_of([&] { softmax(x, 2); });
  EXPECT_MESSAGE_HAS(m, "softmax: dim 2 is out of range for input [32, 10]");
  m = error_of([&] { log_softmax(x, -3); });
  EXPECT_MESSAGE_HAS(m, "log_softmax: dim -3 is out of range for input [32, 10]");

  m = error_of([&] { layer_norm(zeros({4, 6}), {5}); });
  EXPECT_MESSAGE_HAS(m, "layer_norm: input [4, 6] does not end with normalized_shape [5]");
  m = error_of([&] { layer_norm(zeros({4, 6}), {6}, ones({5})); });
  EXPECT_MESSAGE_HAS(m, "layer_norm: weight [5] does not match normalized_shape [6]");

  m = error_of([&] { cross_entropy(x, zeros({33}, kInt64)); });
  EXPECT_MESSAGE_HAS(m, "cross_entropy: target has 33 entries but logits have batch 32");
  EXPECT_MESSAGE_HAS(m, "[33] vs logits [32, 10]");
  m = error_of([&] { cross_entropy(zeros({2, 3, 4}), zeros({2, 3}, kInt64)); });
  EXPECT_MESSAGE_HAS(m, "cross_entropy: target [2, 3] does not match logits [2, 3, 4]");
  m = error_of([&] { cross_entropy(x, from_vector<int64_t>(std::vector<int64_t>(32, 10))); });
  EXPECT_MESSAGE_HAS(m, "cross_entropy: target[0] = 10 is out of range for 10 classes");
  m = error_of([&] { cross_entropy(x, zeros({32}, kInt64), ones({9})); });
  EXPECT_MESSAGE_HAS(m, "cross_entropy: weight [9] does not match logits [32, 10]");

  m = error_of([&] { nll_loss(x, zeros({31}, kInt64)); });
  EXPECT_MESSAGE_HAS(m, "nll_loss: target has 31 entries but log_probs have batch 32");

  m = error_of([&] { dropout(x, 1.5, true); });
  EXPECT_MESSAGE_HAS(m, "dropout: p must be in [0, 1], got 1.5 (input [32, 10])");

  m = error_of([&] { batch_norm(zeros({2, 3, 5}), zeros({4}), ones({4}), {}, {}, true); });
  EXPECT_MESSAGE_HAS(m, "batch_norm: running_mean [4] does not match input [2, 3, 5]");
  m = error_of([&] { batch_norm(zeros({1, 3}), zeros({3}), ones({3}), {}, {}, true); });
  EXPECT_MESSAGE_HAS(m, "batch_norm: expected more than 1 value per channel when training");

  Tensor q = zeros({2, 4, 5, 8}), k = zeros({2, 4, 7, 8}), v = zeros({2, 4, 7, 8});
  m = error_of([&] { scaled_dot_product_attention(q, zeros({2, 4, 7, 6}), v); });
  EXPECT_MESSAGE_HAS(
      m, "scaled_dot_product_attention: head dims differ: q [2, 4, 5, 8] vs k [2, 4, 7, 6]");
  m = error_of([&] { scaled_dot_product_attention(q, k, v, zeros({2, 1, 1, 6})); });
  EXPECT_MESSAGE_HAS(m,
                     "scaled_dot_product_attention: mask [2, 1, 1, 6] does not broadcast to the "
                     "scores [2, 4, 5, 7]");
}

}  // namespace
}  // namespace kiln
