// Data-parallel training over MPI: run by `mpirun -np 2` (ctest `distributed_mpi`), every test
// here compares two ranks that each train on half of every batch with one process (computed on
// each rank, locally, without communication) that trains on the whole batch. In a single process
// these tests skip.
//
// Tolerance (kParamTol): float32 gradients are sums over the batch; split over two ranks, each sum
// is computed in two halves that are then added (and the GEMM blocking changes with the row
// count), so the gradients differ from one process's by reduction-order rounding: a few ulps
// (float32 ulp = 1.2e-7 relative) of the partial sums. After 6-48 optimiser steps the parameters
// (of order 0.1-1) differed by at most 2.2e-8 to 1.2e-7 here (KILN_TEST_VERBOSE=1 prints each
// test's figure), so kParamTol = 1e-6 absolute + 1e-6 relative leaves ~8x margin; a real error (a
// missing 1/2 weight, a skipped bucket, a wrong shard) is off by 1e-3 or more after one step.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "kiln/autograd/functions.h"
#include "kiln/distributed/ddp.h"
#include "kiln/distributed/distributed.h"
#include "kiln/nn/nn.h"
#include "kiln/optim/optim.h"
#include "kiln/text/nasbert.h"
#include "kiln/train/train.h"

namespace {

using kiln::Tensor;
namespace dist = kiln::distributed;
namespace nn = kiln::nn;

struct Tol {
  double atol, rtol;
};
constexpr Tol kParamTol{1e-6, 1e-6};

#define NEEDS_TWO_RANKS()                                                 \
  do {                                                                    \
    if (dist::world_size() < 2) GTEST_SKIP() << "run under mpirun -np 2"; \
  } while (0)

std::shared_ptr<nn::Sequential> make_mlp(uint64_t seed) {
  auto m = std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(nn::LinearOptions(20, 64)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(64, 32)), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::Linear>(nn::LinearOptions(32, 5))});
  kiln::Generator g(seed);
  m->reset_parameters(&g);
  return m;
}

struct Data {
  Tensor x, y;
};
Data make_data(int64_t n, int64_t features, int64_t classes, uint64_t seed) {
  kiln::Generator g(seed);
  return {kiln::randn({n, features}, kiln::kFloat32, &g),
          kiln::randint(0, classes, {n}, kiln::kInt64, &g)};
}

// The largest |a - b| beyond the tolerance's allowance over all parameters (<= 0: within), and
// the largest plain difference (reported).
struct Diff {
  double excess = -1, max_abs = 0;
};
Diff compare(const nn::Module& a, const nn::Module& b, Tol tol) {
  Diff d;
  auto pa = a.named_parameters(), pb = b.named_parameters();
  EXPECT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size() && i < pb.size(); ++i) {
    auto va = pa[i].second.to_vector<double>(), vb = pb[i].second.to_vector<double>();
    for (size_t k = 0; k < va.size(); ++k) {
      const double diff = std::abs(va[k] - vb[k]);
      d.max_abs = std::max(d.max_abs, diff);
      d.excess = std::max(d.excess, diff - (tol.atol + tol.rtol * std::abs(vb[k])));
    }
  }
  return d;
}

// With KILN_TEST_VERBOSE set, rank 0 prints the largest difference (the figures quoted above).
void report(const Diff& d) {
  if (std::getenv("KILN_TEST_VERBOSE") != nullptr && dist::rank() == 0)
    std::printf("  %s: max |difference| = %.3g\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(), d.max_abs);
}

// Every rank must hold bit-identical parameters: compare each rank's values with rank 0's.
void expect_same_on_all_ranks(const nn::Module& m) {
  std::vector<double> mine;
  for (auto& [n, p] : m.named_parameters()) {
    auto v = p.to_vector<double>();
    mine.insert(mine.end(), v.begin(), v.end());
  }
  auto all = dist::all_gather(mine);
  for (size_t r = 1; r < all.size(); ++r) EXPECT_EQ(all[r], all[0]) << "rank " << r << " drifted";
}

// Rows of global batch `step` (size B, wrapping around the data) this process trains on: all of
// them, or every world-th from `rank` (the DistributedSampler rule).
std::vector<int64_t> rows_of(int64_t step, int64_t B, int64_t n, int rank, int world) {
  std::vector<int64_t> r;
  for (int64_t i = rank; i < B; i += world) r.push_back((step * B + i) % n);
  return r;
}

// `steps` optimiser steps on global batches of B rows; ddp == nullptr trains on the whole batch.
void train_steps(nn::Module& net, kiln::optim::Optimizer& opt, const Data& d, int steps, int64_t B,
                 dist::DistributedDataParallel* ddp) {
  const int rank = ddp ? dist::rank() : 0, world = ddp ? dist::world_size() : 1;
  for (int s = 0; s < steps; ++s) {
    auto rows = rows_of(s, B, d.x.size(0), rank, world);
    if (ddp) ddp->prepare_for_backward(static_cast<double>(rows.size()) / static_cast<double>(B));
    opt.zero_grad();
    if (!rows.empty()) {
      Tensor idx = kiln::from_vector(rows);
      Tensor loss = kiln::cross_entropy(net.forward(kiln::index_select(d.x, 0, idx)),
                                        kiln::index_select(d.y, 0, idx));
      loss.backward();
    }
    if (ddp) ddp->finish_gradient_synchronization();
    opt.step();
  }
}

TEST(DistributedDataParallel, TwoRanksWithHalfBatchesMatchOneProcessMlpSgd) {
  NEEDS_TWO_RANKS();
  const Data d = make_data(256, 20, 5, 1);
  auto ref = make_mlp(7);
  kiln::optim::SGD ref_opt(ref->named_parameters(), kiln::optim::SGDOptions(0.05).momentum(0.9));
  train_steps(*ref, ref_opt, d, 30, 32, nullptr);

  auto net = make_mlp(7);
  dist::DistributedDataParallel ddp(net->named_parameters());
  kiln::optim::SGD opt(net->named_parameters(), kiln::optim::SGDOptions(0.05).momentum(0.9));
  train_steps(*net, opt, d, 30, 32, &ddp);

  const Diff diff = compare(*net, *ref, kParamTol);
  EXPECT_LE(diff.excess, 0.0) << "max |ddp - single| = " << diff.max_abs;
  report(diff);
  EXPECT_GT(compare(*net, *make_mlp(7), {0, 0}).max_abs, 1e-2) << "training did not move";
  expect_same_on_all_ranks(*net);
  EXPECT_EQ(ddp.stats().steps, 30);
  EXPECT_EQ(ddp.num_buckets(), 1);  // 3.7k parameters: far below 25 MB
}

TEST(DistributedDataParallel, UnevenSharesAndSmallBucketsMatchOneProcessAdam) {
  NEEDS_TWO_RANKS();
  // Global batch 7: shares of 4 and 3 rows, weighted 4/7 and 3/7. Buckets of 2 kB: one per
  // parameter or two, started during backward.
  const Data d = make_data(100, 20, 5, 2);
  auto ref = make_mlp(8);
  kiln::optim::Adam ref_opt(ref->named_parameters(), kiln::optim::AdamOptions(1e-3));
  train_steps(*ref, ref_opt, d, 25, 7, nullptr);

  auto net = make_mlp(8);
  dist::DistributedDataParallel ddp(net->named_parameters(), {.bucket_cap_mb = 0.002});
  kiln::optim::Adam opt(net->named_parameters(), kiln::optim::AdamOptions(1e-3));
  train_steps(*net, opt, d, 25, 7, &ddp);

  const Diff diff = compare(*net, *ref, kParamTol);
  EXPECT_LE(diff.excess, 0.0) << "max |ddp - single| = " << diff.max_abs;
  report(diff);
  expect_same_on_all_ranks(*net);
  EXPECT_GE(ddp.num_buckets(), 4);
  // Every bucket but possibly the first layer's started while backward was still running.
  EXPECT_EQ(ddp.stats().buckets_started_in_backward, 25 * ddp.num_buckets());
  EXPECT_EQ(ddp.stats().buckets_started_at_finish, 0);
}

TEST(DistributedDataParallel, EmptyShareContributesNothing) {
  NEEDS_TWO_RANKS();
  // Global batch 1: rank 1's share is always empty (weight 0), and it still steps with rank 0's
  // gradient.
  const Data d = make_data(16, 20, 5, 3);
  auto ref = make_mlp(9);
  kiln::optim::SGD ref_opt(ref->named_parameters(), kiln::optim::SGDOptions(0.1));
  train_steps(*ref, ref_opt, d, 6, 1, nullptr);
  auto net = make_mlp(9);
  dist::DistributedDataParallel ddp(net->named_parameters());
  kiln::optim::SGD opt(net->named_parameters(), kiln::optim::SGDOptions(0.1));
  train_steps(*net, opt, d, 6, 1, &ddp);
  EXPECT_LE(compare(*net, *ref, kParamTol).excess, 0.0);
  expect_same_on_all_ranks(*net);
}

TEST(DistributedDataParallel, UnusedParametersKeepNoGradientUnlessSomeRankUsedThem) {
  NEEDS_TWO_RANKS();
  Tensor used = kiln::full({3}, 1.0).requires_grad_();
  Tensor rank1_only = kiln::full({2}, 1.0).requires_grad_();
  Tensor never = kiln::full({4}, 1.0).requires_grad_();
  Tensor f64 = kiln::full({2}, 1.0, kiln::kFloat64).requires_grad_();  // a bucket of its own dtype
  dist::DistributedDataParallel ddp(
      {{"used", used}, {"rank1_only", rank1_only}, {"never", never}, {"f64", f64}});
  EXPECT_EQ(ddp.num_buckets(), 2);
  const double r = dist::rank();
  ddp.prepare_for_backward(0.5);
  Tensor loss = kiln::sum(used * (r + 1.0)) + kiln::sum(f64 * (2 * r + 1.0)).to(kiln::kFloat32);
  if (dist::rank() == 1) loss = loss + kiln::sum(rank1_only * 3.0);
  loss.backward();
  ddp.finish_gradient_synchronization();
  // used: 0.5·1 + 0.5·2; rank1_only: 0.5·3 on both ranks; never: no gradient anywhere; f64 in
  // its own float64 bucket.
  EXPECT_EQ(used.grad().to_vector<float>(), std::vector<float>(3, 1.5f));
  ASSERT_TRUE(rank1_only.grad().defined());
  EXPECT_EQ(rank1_only.grad().to_vector<float>(), std::vector<float>(2, 1.5f));
  EXPECT_FALSE(never.grad().defined());
  EXPECT_EQ(f64.grad().dtype(), kiln::kFloat64);
  EXPECT_EQ(f64.grad().to_vector<double>(), std::vector<double>(2, 2.0));  // 0.5·1 + 0.5·3
}

TEST(DistributedDataParallel, MisuseIsAnErrorNamingTheRule) {
  NEEDS_TWO_RANKS();
  Tensor w = kiln::full({2}, 1.0).requires_grad_();
  dist::DistributedDataParallel ddp({{"w", w}});
  EXPECT_THROW(ddp.finish_gradient_synchronization(), kiln::Error);  // not prepared
  ddp.prepare_for_backward();
  EXPECT_THROW(ddp.prepare_for_backward(), kiln::Error);  // previous step not finished
  kiln::sum(w).backward();
  try {
    kiln::sum(w).backward();  // a second gradient into a started bucket
    ADD_FAILURE() << "expected an error";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'w' received a second gradient"), std::string::npos)
        << e.what();
  }
  ddp.finish_gradient_synchronization();
  // Ranks that build different models: every rank throws (none waits for a mismatched bucket).
  Tensor extra = kiln::full({5}, 1.0).requires_grad_();
  kiln::nn::NamedTensors params{{"w", w}};
  if (dist::rank() == 1) params.emplace_back("extra", extra);
  EXPECT_THROW(dist::DistributedDataParallel bad(params), kiln::Error);
}

TEST(Distributed, BroadcastParametersCopiesRankZerosWeights) {
  NEEDS_TWO_RANKS();
  auto net = make_mlp(100 + static_cast<uint64_t>(dist::rank()));  // different on each rank
  dist::broadcast_parameters(*net);
  EXPECT_LE(compare(*net, *make_mlp(100), {0, 0}).excess, 0.0);
  auto wrong = std::make_shared<nn::Linear>(nn::LinearOptions(dist::rank() == 0 ? 3 : 4, 2));
  EXPECT_THROW(dist::broadcast_parameters(*wrong), kiln::Error);
}

TEST(Distributed, CollectivesAgree) {
  NEEDS_TWO_RANKS();
  std::vector<double> v{1.0 + dist::rank(), 10.0};
  dist::all_reduce_sum(v);
  EXPECT_EQ(v, (std::vector<double>{3.0, 20.0}));
  EXPECT_EQ(dist::all_reduce_max(dist::rank() * 5), 5);
  auto g = dist::all_gather(std::vector<double>(static_cast<size_t>(dist::rank()) + 1, 7.0));
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].size(), 1u);
  EXPECT_EQ(g[1].size(), 2u);
  dist::barrier();
}

// ---------------------------------------------------------------- Model::fit

kiln::Sequential make_keras_mlp(uint64_t seed) {
  kiln::manual_seed(seed);  // Dense draws its initial weights from the default generator
  kiln::Sequential m({kiln::layers::Dense(32, "relu"), kiln::layers::Dense(4)});
  m.build({-1, 12});
  return m;
}

kiln::FitOptions fit_options(int epochs, int64_t batch, uint64_t seed) {
  kiln::FitOptions fo;
  fo.epochs = epochs;
  fo.batch_size = batch;
  fo.seed = seed;
  fo.verbose = 0;
  return fo;
}

void expect_same_history(const kiln::History& got, const kiln::History& want, double tol) {
  ASSERT_EQ(got.keys(), want.keys());
  for (const std::string& k : want.keys())
    for (size_t e = 0; e < want[k].size(); ++e)
      EXPECT_NEAR(got[k][e], want[k][e], tol) << k << " at epoch " << e;
}

TEST(DistributedFit, FitUnderMpirunMatchesOneProcess) {
  NEEDS_TWO_RANKS();
  const Data d = make_data(203, 12, 4, 5);  // 162 training rows: a short last batch of 2
  kiln::FitOptions fo = fit_options(3, 16, 4);
  fo.validation_split = 0.2;
  kiln::Sequential single = make_keras_mlp(3);
  single.compile(kiln::optimizers::Adam(2e-3), "sparse_categorical_crossentropy",
                 {"accuracy", "f1_score"});
  single.set_distributed(false);  // the one-process reference, on every rank
  const kiln::History hs = single.fit(d.x, d.y, fo);

  kiln::Sequential model = make_keras_mlp(3);
  model.compile(kiln::optimizers::Adam(2e-3), "sparse_categorical_crossentropy",
                {"accuracy", "f1_score"});
  EXPECT_TRUE(model.is_distributed());  // picked up from mpirun's environment
  EXPECT_EQ(model.is_main_process(), dist::rank() == 0);
  const kiln::History hd = model.fit(d.x, d.y, fo);

  const Diff diff = compare(model.module(), single.module(), kParamTol);
  EXPECT_LE(diff.excess, 0.0) << "max |ddp - single| = " << diff.max_abs;
  report(diff);
  expect_same_on_all_ranks(model.module());
  // Epoch logs combine both ranks' samples: the single-process values (loss to rounding; the
  // counts behind accuracy and F1 exactly, barring a prediction flipped by a 1e-6 difference).
  expect_same_history(hd, hs, 1e-5);
  ASSERT_NE(model.distributed_stats(), nullptr);
  EXPECT_EQ(model.distributed_stats()->steps, 3 * 11);
}

TEST(DistributedFit, CheckpointsResumeAtAnotherWorldSize) {
  NEEDS_TWO_RANKS();
  namespace fs = std::filesystem;
  const Data d = make_data(120, 12, 4, 6);
  // mpirun is both ranks' parent: one directory name for both.
  const fs::path dir = fs::temp_directory_path() / ("kiln_ddp_test_" + std::to_string(getppid()));
  if (dist::rank() == 0) fs::create_directories(dir);
  const std::string ckpt = (dir / "ckpt.kiln").string(), ckpt2 = (dir / "ckpt2.kiln").string();
  auto compile = [](kiln::Model& m) {
    m.compile(kiln::optimizers::SGD(0.05, 0.9), "sparse_categorical_crossentropy", {"accuracy"});
  };
  // Four epochs in one process.
  kiln::Sequential ref = make_keras_mlp(5);
  compile(ref);
  ref.set_distributed(false);
  ref.fit(d.x, d.y, fit_options(4, 10, 2));
  // Epochs 1-2 on two ranks, checkpointed by rank 0 ...
  kiln::Sequential a = make_keras_mlp(5);
  compile(a);
  kiln::FitOptions fo = fit_options(2, 10, 2);
  fo.callbacks = {kiln::callbacks::ModelCheckpoint(ckpt, "loss")};
  a.fit(d.x, d.y, fo);
  dist::barrier();
  // ... epoch 3 alone (on each rank) from that file ...
  kiln::Sequential b = kiln::load_model(ckpt);
  b.set_distributed(false);
  fo = fit_options(3, 10, 2);
  fo.initial_epoch = b.epoch();
  EXPECT_EQ(fo.initial_epoch, 2);
  b.fit(d.x, d.y, fo);
  dist::barrier();
  if (dist::rank() == 0) b.save(ckpt2);
  dist::barrier();
  // ... and epoch 4 on two ranks again.
  kiln::Sequential c = kiln::load_model(ckpt2);
  EXPECT_TRUE(c.is_distributed());
  fo = fit_options(4, 10, 2);
  fo.initial_epoch = c.epoch();
  c.fit(d.x, d.y, fo);
  const Diff diff = compare(c.module(), ref.module(), kParamTol);
  EXPECT_LE(diff.excess, 0.0) << "max |resumed - uninterrupted| = " << diff.max_abs;
  report(diff);
  expect_same_on_all_ranks(c.module());
  EXPECT_EQ(c.history().size(), 4u);
  dist::barrier();
  if (dist::rank() == 0) fs::remove_all(dir);
}

TEST(DistributedFit, NasBertTextClassifierMatchesOneProcess) {
  NEEDS_TWO_RANKS();
  kiln::text::EncoderConfig c;
  c.vocab_size = 64;
  c.embed_dim = 16;
  c.hidden = 24;
  c.layers = "S3 M | S5 M";
  c.heads = 2;
  c.max_positions = 32;
  c.dropout = 0.0;  // dropout masks are per rank by design; the comparison needs none
  c.padding_id = 1;
  auto make = [&] {
    auto m = std::make_shared<kiln::text::TextClassifier>(c, 3);
    kiln::Generator g(11);
    m->reset_parameters(&g);
    return m;
  };
  // 60 rows of 16 ids, real lengths 4..15, padded with id 1.
  kiln::Generator g(12);
  std::vector<int64_t> ids = kiln::randint(3, 64, {60, 16}, kiln::kInt64, &g).to_vector<int64_t>();
  for (int64_t r = 0; r < 60; ++r)
    for (int64_t t = 4 + r % 12; t < 16; ++t) ids[static_cast<size_t>(r * 16 + t)] = 1;
  const Tensor x = kiln::from_vector(ids, {60, 16});
  const Tensor y = kiln::randint(0, 3, {60}, kiln::kInt64, &g);
  // SGD, not Adam: the attention key bias has a zero true gradient (softmax ignores a constant
  // added to a row of scores), so its gradient is pure rounding noise (~1e-10), which Adam divides
  // by its own RMS into full lr-sized steps — different noise on two ranks then differs by ~lr.
  // SGD keeps the comparison about the gradients.
  auto compile = [](kiln::Model& m) {
    m.compile(kiln::optimizers::SGD(0.05, 0.9), "sparse_categorical_crossentropy", {"accuracy"});
  };
  kiln::Model single(make());
  compile(single);
  single.set_distributed(false);
  const kiln::History hs = single.fit(x, y, fit_options(2, 8, 1));
  kiln::Model model(make());
  compile(model);
  const kiln::History hd = model.fit(x, y, fit_options(2, 8, 1));
  const Diff diff = compare(model.module(), single.module(), kParamTol);
  EXPECT_LE(diff.excess, 0.0) << "max |ddp - single| = " << diff.max_abs;
  report(diff);
  EXPECT_GT(compare(model.module(), *make(), {0, 0}).max_abs, 1e-3) << "training did not move";
  expect_same_on_all_ranks(model.module());
  expect_same_history(hd, hs, 1e-5);
}

}  // namespace
