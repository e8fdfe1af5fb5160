// Metric::state / merge_state: metrics fed different batches (as ranks are), merged, equal one
// metric fed every batch. This is what makes distributed fit's epoch logs the single-process ones.
#include <gtest/gtest.h>

#include "kiln/autograd/functions.h"
#include "kiln/train/metrics.h"

namespace {

using kiln::Tensor;
namespace metrics = kiln::metrics;

struct Batch {
  Tensor pred, truth;
};

// Five batches of (B, K) scores with int64 labels, or binary scores with 0/1 float labels, or
// regression (B, 2) pairs.
std::vector<Batch> batches(const std::string& kind, uint64_t seed) {
  kiln::Generator g(seed);
  std::vector<Batch> out;
  for (int i = 0; i < 5; ++i) {
    const int64_t B = 7 + i;
    if (kind == "multiclass") {
      out.push_back(
          {kiln::randn({B, 4}, kiln::kFloat32, &g), kiln::randint(0, 4, {B}, kiln::kInt64, &g)});
    } else if (kind == "binary") {
      out.push_back({kiln::rand({B}, kiln::kFloat32, &g),
                     kiln::randint(0, 2, {B}, kiln::kInt64, &g).to(kiln::kFloat32)});
    } else {
      Tensor t = kiln::randn({B, 2}, kiln::kFloat32, &g);
      out.push_back({t + 0.3 * kiln::randn({B, 2}, kiln::kFloat32, &g), t});
    }
  }
  return out;
}

// Batches 0, 2, 4 go to "rank 0", 1 and 3 to "rank 1" (rank 1 first, to show order does not
// matter for the counts), merged into a fresh metric.
void expect_merge_matches(const metrics::MetricPtr& make_a, const metrics::MetricPtr& make_b,
                          const metrics::MetricPtr& fresh, const metrics::MetricPtr& whole,
                          const std::vector<Batch>& data) {
  for (size_t i = 0; i < data.size(); ++i) {
    (i % 2 == 0 ? make_a : make_b)->update(data[i].pred, data[i].truth);
    whole->update(data[i].pred, data[i].truth);
  }
  fresh->merge_state(make_b->state());
  fresh->merge_state(make_a->state());
  EXPECT_NEAR(fresh->result(), whole->result(), 1e-12) << whole->name();
  EXPECT_GT(std::abs(whole->result()), 0.0) << whole->name() << ": a vacuous comparison";
}

TEST(MetricState, MergedStatesEqualOneMetricOverAllBatches) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"accuracy", "multiclass"},    {"sparse_top_k_categorical_accuracy", "multiclass"},
      {"precision", "multiclass"},   {"recall", "multiclass"},
      {"f1_score", "multiclass"},    {"f1_score", "binary"},
      {"binary_accuracy", "binary"}, {"auc", "binary"},
      {"mse", "regression"},         {"mae", "regression"},
      {"r2_score", "regression"}};
  for (const auto& [name, kind] : cases) {
    SCOPED_TRACE(name + " on " + kind);
    expect_merge_matches(metrics::get(name), metrics::get(name), metrics::get(name),
                         metrics::get(name), batches(kind, 5));
  }
}

TEST(MetricState, MeanMetricMergesWeightedSums) {
  metrics::MeanMetric a, b, whole, merged;
  a.update_value(2.0, 3);
  b.update_value(5.0, 1);
  whole.update_value(2.0, 3);
  whole.update_value(5.0, 1);
  merged.merge_state(a.state());
  merged.merge_state(b.state());
  EXPECT_DOUBLE_EQ(merged.result(), whole.result());
  EXPECT_DOUBLE_EQ(merged.result(), 11.0 / 4);
}

TEST(MetricState, EmptyStatesMergeToNothing) {
  auto f1 = metrics::get("f1_score"), other = metrics::get("f1_score");
  auto data = batches("multiclass", 9);
  f1->update(data[0].pred, data[0].truth);
  const double before = f1->result();
  f1->merge_state(other->state());  // a rank that saw no batch
  EXPECT_DOUBLE_EQ(f1->result(), before);
}

class Custom : public metrics::Metric {
 public:
  Custom() : Metric("Custom", "custom") {}
  void reset() override {}
  void update(const Tensor&, const Tensor&) override {}
  double result() const override { return 0; }
};

TEST(MetricState, CustomMetricWithoutStateSaysWhatToOverride) {
  Custom c;
  try {
    (void)c.state();
    FAIL() << "expected an error";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("override Metric::state()"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(c.merge_state(std::vector<double>{1.0}), kiln::Error);
}

TEST(MetricState, WrongLengthIsAnError) {
  auto acc = metrics::get("accuracy");
  EXPECT_THROW(acc->merge_state(std::vector<double>{1.0, 2.0, 3.0}), kiln::Error);
}

}  // namespace
