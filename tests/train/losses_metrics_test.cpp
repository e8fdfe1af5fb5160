// kiln::losses and kiln::metrics against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/autograd/functions.h"
#include "kiln/tensor/error.h"
#include "kiln/train/losses.h"
#include "kiln/train/metrics.h"

namespace kiln {
namespace {

double value(const Tensor& t) {
  return t.item<double>();
}

// ---------------------------------------------------------------- losses

TEST(Losses, SparseCategoricalCrossentropyOnLogitsAndProbabilities) {
  Tensor logits = tensor({1.f, 2.f, 3.f, 1.f, 1.f, 1.f}, {2, 3});
  Tensor y = tensor({2, 0});
  // row 0: log(1 + e^-1 + e^-2) = 0.407606; row 1: log 3 = 1.098612
  auto l = losses::get("sparse_categorical_crossentropy");
  l->resolve_output("");  // a linear last layer: logits
  EXPECT_TRUE(l->from_logits());
  EXPECT_NEAR(value((*l)(logits, y)), (0.407606 + 1.098612) / 2, 1e-5);
  EXPECT_NEAR(value((*l)(logits, y.reshape({2, 1}))), (0.407606 + 1.098612) / 2, 1e-5);
  auto p = losses::SparseCategoricalCrossentropy();
  p->resolve_output("softmax");  // probabilities
  EXPECT_FALSE(p->from_logits());
  Tensor probs = tensor({0.1f, 0.2f, 0.7f, 0.5f, 0.25f, 0.25f}, {2, 3});
  EXPECT_NEAR(value((*p)(probs, y)), (0.356675 + 0.693147) / 2, 1e-5);
  // An explicit from_logits wins over the model's activation.
  auto explicit_logits = losses::SparseCategoricalCrossentropy(true);
  explicit_logits->resolve_output("softmax");
  EXPECT_TRUE(explicit_logits->from_logits());
  // Sample weights: mean_i(w_i · l_i) over the batch size.
  EXPECT_NEAR(value((*l)(logits, y, tensor({2.f, 0.f}))), 0.407606, 1e-5);
}

TEST(Losses, SparseCategoricalCrossentropyOnSequences) {
  // (B, T, K) scores with (B, T) ids, as a Keras sequence model.
  Tensor logits = zeros({2, 3, 4});
  auto l = losses::SparseCategoricalCrossentropy(true);
  EXPECT_NEAR(value((*l)(logits, zeros({2, 3}, kInt64))), std::log(4.0), 1e-6);
  EXPECT_EQ(l->per_sample(logits, zeros({2, 3}, kInt64)).shape(), (Shape{2}));
  try {
    (*l)(logits, zeros({2, 4}, kInt64));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("sparse_categorical_crossentropy"), std::string::npos)
        << e.what();
  }
}

TEST(Losses, CategoricalCrossentropyWithLabelSmoothing) {
  Tensor logits = tensor({1.f, 2.f, 3.f}, {1, 3});
  Tensor onehot = tensor({0.f, 0.f, 1.f}, {1, 3});
  auto l = losses::CategoricalCrossentropy(true);
  EXPECT_NEAR(value((*l)(logits, onehot)), 0.407606, 1e-5);
  auto s = losses::CategoricalCrossentropy(true, 0.3);
  // y = [0.1, 0.1, 0.8]; log_softmax = [-2.407606, -1.407606, -0.407606]
  EXPECT_NEAR(value((*s)(logits, onehot)), 0.1 * 2.407606 + 0.1 * 1.407606 + 0.8 * 0.407606, 1e-5);
  auto p = losses::CategoricalCrossentropy();
  p->resolve_output("softmax");
  EXPECT_NEAR(value((*p)(tensor({0.2f, 0.2f, 0.6f}, {1, 3}), onehot)), -std::log(0.6), 1e-6);
}

TEST(Losses, BinaryCrossentropy) {
  auto l = losses::BinaryCrossentropy(true);
  // log(1 + e^0) = 0.693147, log(1 + e^-2) = 0.126928
  EXPECT_NEAR(value((*l)(tensor({0.f, 2.f}, {2, 1}), tensor({0.f, 1.f}))),
              (0.693147 + 0.126928) / 2, 1e-5);
  auto p = losses::get("binary_crossentropy");
  p->resolve_output("sigmoid");
  EXPECT_NEAR(value((*p)(tensor({0.9f, 0.2f}), tensor({1, 0}))), (0.105361 + 0.223144) / 2, 1e-5);
}

TEST(Losses, Regression) {
  Tensor pred = tensor({1.f, 2.f, 3.f, 4.f}, {2, 2});
  Tensor target = ones({2, 2});
  EXPECT_NEAR(value((*losses::get("mse"))(pred, target)), 3.5, 1e-6);  // (0+1)/2, (4+9)/2
  EXPECT_NEAR(value((*losses::get("mae"))(pred, target)), 1.5, 1e-6);
  EXPECT_NEAR(value((*losses::get("huber"))(pred, target)), 1.125, 1e-6);  // 0, .5, 1.5, 2.5
  EXPECT_NEAR(value((*losses::get("mse"))(pred, target, tensor({1.f, 0.f}))), 0.25, 1e-6);
  EXPECT_NEAR(value((*losses::get("mse"))(tensor({1.f, 3.f}, {2, 1}), tensor({0.f, 1.f}))), 2.5,
              1e-6);
  EXPECT_THROW((*losses::get("mse"))(pred, ones({3})), ShapeError);
  EXPECT_THROW(losses::get("hinge"), Error);
}

TEST(Losses, SerializeRoundTrip) {
  auto l = losses::CategoricalCrossentropy(false, 0.2);
  auto back = losses::deserialize(l->serialize());
  EXPECT_EQ(back->name(), "categorical_crossentropy");
  EXPECT_FALSE(back->from_logits());
  EXPECT_EQ(back->serialize().dump(), l->serialize().dump());
}

// ---------------------------------------------------------------- metrics

TEST(Metrics, AccuracyPicksSparseCategoricalOrBinaryAndStreams) {
  auto acc = metrics::get("accuracy");
  acc->update(tensor({0.1f, 0.9f, 0.8f, 0.2f, 0.3f, 0.7f}, {3, 2}), tensor({1, 1, 1}));
  EXPECT_NEAR(acc->result(), 2.0 / 3.0, 1e-12);
  acc->update(tensor({1.f, 0.f}, {1, 2}), tensor({0}));
  EXPECT_NEAR(acc->result(), 3.0 / 4.0, 1e-12);
  acc->reset();
  EXPECT_EQ(acc->result(), 0.0);
  // One-hot float targets shaped like the scores: categorical.
  acc->update(tensor({0.1f, 0.9f, 0.8f, 0.2f}, {2, 2}), tensor({0.f, 1.f, 0.f, 1.f}, {2, 2}));
  EXPECT_NEAR(acc->result(), 0.5, 1e-12);
  // (B) outputs: binary, threshold 0.5 on probabilities ...
  acc->reset();
  acc->update(tensor({0.6f, 0.4f, 0.51f, 0.1f}), tensor({1, 1, 0, 0}));
  EXPECT_NEAR(acc->result(), 0.5, 1e-12);
  // ... or 0 on logits.
  acc->reset();
  acc->set_from_logits(true);
  acc->update(tensor({0.5f, -0.5f}, {2, 1}), tensor({1.f, 0.f}, {2, 1}));
  EXPECT_NEAR(acc->result(), 1.0, 1e-12);
  EXPECT_THROW(acc->update(zeros({3, 4}), tensor({1, 2})), ShapeError);
}

TEST(Metrics, TopK) {
  auto m = metrics::TopKCategoricalAccuracy(2);
  m->update(tensor({0.1f, 0.5f, 0.4f, 0.6f, 0.3f, 0.1f}, {2, 3}), tensor({2, 2}));
  EXPECT_NEAR(m->result(), 0.5, 1e-12);
  m->reset();
  m->update(tensor({0.1f, 0.5f, 0.4f}, {1, 3}), tensor({0.f, 0.f, 1.f}, {1, 3}));  // one-hot
  EXPECT_NEAR(m->result(), 1.0, 1e-12);
}

TEST(Metrics, PrecisionRecallF1Binary) {
  Tensor p = tensor({0.9f, 0.8f, 0.2f, 0.6f, 0.1f});
  Tensor y = tensor({1, 0, 1, 1, 1});
  // predicted positive: 0, 1, 3 -> tp 2, fp 1, fn 2
  auto pr = metrics::Precision(), re = metrics::Recall(), f1 = metrics::F1Score();
  for (auto* m : {pr.get(), re.get(), f1.get()}) m->update(p, y);
  EXPECT_NEAR(pr->result(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(re->result(), 0.5, 1e-12);
  EXPECT_NEAR(f1->result(), 4.0 / 7.0, 1e-12);
}

TEST(Metrics, PrecisionRecallF1MacroForMultiClass) {
  // argmax [0, 1, 1, 2] vs y [0, 1, 2, 2]: per class p = (1, .5, 1), r = (1, 1, .5)
  Tensor scores = tensor({1.f, 0.f, 0.f, 0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 0.f, 0.f, 1.f}, {4, 3});
  Tensor y = tensor({0, 1, 2, 2});
  auto pr = metrics::get("precision"), re = metrics::get("recall"), f1 = metrics::get("f1");
  for (auto* m : {pr.get(), re.get(), f1.get()}) m->update(scores, y);
  EXPECT_NEAR(pr->result(), 2.5 / 3.0, 1e-12);
  EXPECT_NEAR(re->result(), 2.5 / 3.0, 1e-12);
  EXPECT_NEAR(f1->result(), (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0, 1e-12);
  EXPECT_EQ(f1->name(), "f1");
}

TEST(Metrics, AucIsTheExactTrapezoid) {
  auto auc = metrics::AUC();
  auc->update(tensor({0.1f, 0.4f}), tensor({0, 0}));
  auc->update(tensor({0.35f, 0.8f}), tensor({1, 1}));  // streamed across batches
  EXPECT_NEAR(auc->result(), 0.75, 1e-12);             // scikit-learn's roc_auc_score example
  auc->reset();
  // Tied scores count one half: (0.5 vs 0.5) = ½, the other three pairs 1 -> 3.5 / 4.
  auc->update(tensor({0.5f, 0.5f, 0.2f, 0.9f}, {4, 1}), tensor({1, 0, 0, 1}));
  EXPECT_NEAR(auc->result(), 0.875, 1e-12);
  auc->reset();
  auc->update(tensor({0.3f, 0.7f}), tensor({1, 1}));
  EXPECT_EQ(auc->result(), 0.0);  // one class only
}

TEST(Metrics, RegressionMetrics) {
  Tensor y = tensor({3.f, -0.5f, 2.f, 7.f});
  Tensor p = tensor({2.5f, 0.0f, 2.f, 8.f});
  auto mse = metrics::get("mse"), mae = metrics::get("mae"), r2 = metrics::get("r2_score");
  for (auto* m : {mse.get(), mae.get(), r2.get()}) m->update(p, y);
  EXPECT_NEAR(mse->result(), 0.375, 1e-12);
  EXPECT_NEAR(mae->result(), 0.5, 1e-12);
  EXPECT_NEAR(r2->result(), 0.948608137, 1e-8);  // scikit-learn's r2_score example
  auto r2m = metrics::R2Score();
  r2m->update(tensor({0.f, 2.f, -1.f, 2.f}, {2, 2}), tensor({0.5f, 1.f, -1.f, 1.f}, {2, 2}));
  r2m->update(tensor({8.f, -5.f}, {1, 2}), tensor({7.f, -6.f}, {1, 2}));
  EXPECT_NEAR(r2m->result(), 0.936800535, 1e-8);  // uniform average of 0.965438, 0.908163
}

TEST(Metrics, NamesAndSerialize) {
  EXPECT_EQ(metrics::get("acc")->name(), "acc");
  EXPECT_THROW(metrics::get("accuracy_score"), Error);
  auto m = metrics::TopKCategoricalAccuracy(3);
  auto back = metrics::deserialize(m->serialize());
  EXPECT_EQ(back->serialize().dump(), m->serialize().dump());
}

}  // namespace
}  // namespace kiln
