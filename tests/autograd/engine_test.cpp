// The backward engine's contract: accumulation, shared subgraphs, retain_graph, version checks,
// hooks, no-grad mode and error messages.
#include <gtest/gtest.h>

#include "kiln/autograd/functions.h"
#include "kiln/autograd/grad_mode.h"
#include "kiln/autograd/op.h"
#include "kiln/tensor/creation.h"
#include "kiln/tensor/ops.h"

namespace kiln {
namespace {

TEST(Engine, SharedSubgraphAccumulates) {
  Tensor x = tensor({1.0, 2.0, 3.0}).requires_grad_();
  Tensor y = x * x;             // dy/dx = 2x
  Tensor z = sum(y + y * 3.0);  // d/dx = 4 · 2x = 8x
  z.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{8, 16, 24}));
}

// The engine adds a second gradient into a node's buffer in place when nothing else shares that
// buffer. add's backward hands the same dy to both inputs, so here buffers do share storage: an
// in-place add into one must not change the other. t = a + (a + b) with a = 2x, b = 3x, and a
// hook that sees b's gradient before a's buffer is complete.
TEST(Engine, InPlaceAccumulationLeavesSharedGradientsAlone) {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor w = tensor({1.0, 10.0}).requires_grad_();
  Tensor a = x * 2.0, b = x * 3.0;
  Tensor t = a + (a + b);  // dt/da = 2, dt/db = 1
  Tensor seen_b;
  b.register_hook([&](const Tensor& g) {
    seen_b = g.clone();
    return Tensor();
  });
  sum(t * w).backward();  // dt = w: x.grad = (2·2 + 3) · w = 7w
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{7, 70}));
  EXPECT_EQ(seen_b.to_vector<double>(), (std::vector<double>{1, 10}));
}

TEST(Engine, GradAccumulatesAcrossBackwardCalls) {
  Tensor x = tensor({1.f, -2.f}).requires_grad_();
  sum(x * 2.0).backward();
  sum(x * 3.0).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{5, 5}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, BroadcastGradientReducedToInputShape) {
  Tensor a = ones({2, 3}).requires_grad_();
  Tensor b = ones({3}).requires_grad_();
  sum(a * b).backward();
  EXPECT_EQ(b.grad().shape(), (Shape{3}));
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{2, 2, 2}));
}

TEST(Engine, SecondBackwardWithoutRetainGraphFails) {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = sum(exp(x));
  y.backward();
  try {
    y.backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
  }
}

TEST(Engine, RetainGraphAllowsSecondBackward) {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = sum(x * x);
  y.backward({}, true);
  y.backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 8}));
}

TEST(Engine, InPlaceModificationOfSavedTensorIsAnError) {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = exp(x);  // saves its output
  Tensor z = sum(y * 1.0);
  Tensor w = sum(exp(y));  // saves y
  {
    NoGradGuard ng;
    Array d = y.data();
    d.fill_(0.0);  // in-place edit bumps the version
  }
  try {
    w.backward();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("modified by an in-place operation"), std::string::npos)
        << e.what();
  }
  (void)z;
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Tensor x = tensor({1.f}).requires_grad_();
  NoGradGuard ng;
  Tensor y = x * 2.0;
  EXPECT_FALSE(y.requires_grad());
  EXPECT_FALSE(y.grad_fn());
}

TEST(Engine, DetachCutsTheGraph) {
  Tensor x = tensor({3.0}).requires_grad_();
  Tensor y = x * x.detach();  // d/dx = x (detached factor is a constant)
  y.backward(ones({1}, kFloat64));
  EXPECT_EQ(x.grad().item<double>(), 3.0);
}

TEST(Engine, HooksSeeAndReplaceGradients) {
  Tensor x = tensor({1.0, 2.0}).requires_grad_();
  Tensor y = x * 3.0;
  double seen = 0;
  y.register_hook([&](const Tensor& g) {
    seen = sum(g).item<double>();
    return g * 2.0;
  });
  y.retain_grad();
  sum(y).backward();
  EXPECT_EQ(seen, 2.0);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6, 6}));
}

// Post-accumulate hooks fire once a leaf's whole gradient is in .grad, and leaf accumulators run
// as soon as they are ready: the last layer's weight is done before backward reaches the first
// layer (distributed training starts its all-reduce from there, overlapping the rest).
TEST(Engine, PostAccumulateHooksFireAsSoonAsTheLeafIsDone) {
  Tensor x = tensor({1.f, 2.f}, {1, 2});
  Tensor w1 = full({3, 2}, 0.5).requires_grad_();
  Tensor w2 = full({1, 3}, 2.0).requires_grad_();
  std::vector<std::string> order;
  std::vector<float> w2_grad_seen;
  w1.register_post_accumulate_grad_hook([&](const Tensor& t) {
    order.push_back("w1");
    EXPECT_TRUE(t.grad().defined());
  });
  const uint64_t id = w2.register_post_accumulate_grad_hook([&](const Tensor& t) {
    order.push_back("w2");
    w2_grad_seen = t.grad().to_vector<float>();
  });
  Tensor h = tanh(linear(x, w1));  // (1, 3)
  h.register_hook([&](const Tensor& g) {
    order.push_back("h");
    return g;
  });
  Tensor loss = sum(linear(h, w2) + linear(h, w2));  // w2 used twice: one hook call, full gradient
  loss.backward();
  EXPECT_EQ(order, (std::vector<std::string>{"w2", "h", "w1"}));
  EXPECT_EQ(w2_grad_seen, w2.grad().to_vector<float>());
  EXPECT_NEAR(w2_grad_seen[0], 2 * std::tanh(1.5), 1e-6);
  w2.remove_post_accumulate_grad_hook(id);
  order.clear();
  w1.zero_grad();
  w2.zero_grad();
  sum(linear(tanh(linear(x, w1)), w2)).backward();
  EXPECT_EQ(order, (std::vector<std::string>{"w1"}));
  EXPECT_THROW(h.register_post_accumulate_grad_hook([](const Tensor&) {}), Error);
}

TEST(Engine, NonScalarBackwardNeedsGradient) {
  Tensor x = ones({2, 2}).requires_grad_();
  Tensor y = x * 2.0;
  try {
    y.backward();
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 2]"), std::string::npos) << e.what();
  }
}

TEST(Engine, GraphKeepsOpNamesAndAttributes) {
  Tensor x = ones({2, 3}).requires_grad_();
  Tensor y = sum(gelu(x, "tanh"), {1});
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name, "sum");
  EXPECT_EQ(attr<std::vector<int64_t>>(y.grad_fn()->attrs, "axes"), (std::vector<int64_t>{1}));
  auto gelu_node = y.grad_fn()->next[0].node;
  EXPECT_EQ(gelu_node->name, "gelu");
  EXPECT_EQ(attr<std::string>(gelu_node->attrs, "approximate"), "tanh");
}

TEST(Engine, TracerSeesEveryOpIncludingConstants) {
  Tensor x = ones({2, 3});
  Tracer tr;
  Tensor y = relu(x * 2.0);
  Tensor m = argmax(y, 1);
  ASSERT_EQ(tr.events().size(), 3u);
  EXPECT_EQ(tr.events()[0].name, "mul_scalar");
  EXPECT_EQ(tr.events()[1].name, "relu");
  EXPECT_EQ(tr.events()[2].name, "argmax");
  EXPECT_EQ(tr.events()[1].inputs[0].impl(), tr.events()[0].outputs[0].impl());
}

TEST(Engine, RequiresGradOnIntegerTensorIsAnError) {
  Tensor ids = tensor({1, 2, 3});
  EXPECT_THROW(ids.requires_grad_(), Error);
}

TEST(Engine, ShapeErrorsNameTheOpAndBothShapes) {
  Tensor a = ones({32, 784}), b = ones({256, 10});
  try {
    matmul(a, b);
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(),
                 "matmul: inner dimensions differ: lhs [32, 784] vs rhs [256, 10] (lhs[-1] must "
                 "equal rhs[-2])");
  }
  try {
    add(ones({2, 3}), ones({4}));
    FAIL();
  } catch (const ShapeError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
    EXPECT_NE(m.find("[4]"), std::string::npos) << m;
  }
  try {
    linear(ones({2, 5}), ones({3, 4}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(
        std::string(e.what()).find("linear: input features differ: input [2, 5] vs weight [3, 4]"),
        std::string::npos)
        << e.what();
  }
  EXPECT_THROW(sum(ones({2, 3}), {2}), ShapeError);
  EXPECT_THROW(ones({2, 3}).reshape({4, 2}), ShapeError);
}

// A 2-layer MLP from raw ops learns XOR (SGD, 1000 steps) — the end-to-end check of the core.
TEST(EndToEnd, RawOpMlpLearnsXor) {
  Generator g(7);
  Tensor x = tensor({0.f, 0.f, 0.f, 1.f, 1.f, 0.f, 1.f, 1.f}, {4, 2});
  Tensor y = tensor({0.f, 1.f, 1.f, 0.f}, {4, 1});
  Tensor w1 = Tensor(kernels::randn({8, 2}, 0.0, 1.0, kFloat32, &g), true);
  Tensor b1 = zeros({8}).requires_grad_();
  Tensor w2 = Tensor(kernels::randn({1, 8}, 0.0, 0.5, kFloat32, &g), true);
  Tensor b2 = zeros({1}).requires_grad_();
  float first = 0, last = 0;
  for (int step = 0; step < 1000; ++step) {
    Tensor h = tanh(linear(x, w1, b1));
    Tensor p = sigmoid(linear(h, w2, b2));
    Tensor loss = mean(square(p - y));
    if (step == 0) first = loss.item<float>();
    last = loss.item<float>();
    for (Tensor* t : {&w1, &b1, &w2, &b2}) t->zero_grad();
    loss.backward();
    NoGradGuard ng;
    for (Tensor* t : {&w1, &b1, &w2, &b2}) {
      Array d = t->data();
      kernels::axpy_(d, -2.0, t->grad().data());
    }
  }
  EXPECT_GT(first, 0.2f);
  EXPECT_LT(last, 0.02f) << "XOR MSE should fall below 0.02 after 1000 SGD steps";
}

}  // namespace
}  // namespace kiln
