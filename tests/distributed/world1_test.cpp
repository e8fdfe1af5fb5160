// kiln::distributed in one process: rank 0 of 1 before init, and clear errors for what needs MPI
// started (or, built without MPI, for everything that needs MPI).
#include <gtest/gtest.h>

#include "kiln/autograd/functions.h"
#include "kiln/distributed/ddp.h"
#include "kiln/train/train.h"

namespace {

namespace dist = kiln::distributed;

TEST(DistributedSingleProcess, NotInitialisedIsRankZeroOfOne) {
  if (dist::is_initialized()) GTEST_SKIP() << "runs without mpirun";
  EXPECT_EQ(dist::rank(), 0);
  EXPECT_EQ(dist::world_size(), 1);
  EXPECT_EQ(dist::launched_world_size(), 1);
  EXPECT_FALSE(dist::init_from_environment());
  kiln::Sequential m({kiln::layers::Dense(2)});
  m.compile("sgd", "mse");
  EXPECT_FALSE(m.is_distributed());
  EXPECT_TRUE(m.is_main_process());
}

TEST(DistributedSingleProcess, CollectivesAndDdpNeedInit) {
  if (dist::is_initialized()) GTEST_SKIP() << "runs without mpirun";
  const std::string want = dist::available() ? "init()" : "built without MPI";
  auto expect_error = [&](auto&& f) {
    try {
      f();
      ADD_FAILURE() << "expected an error";
    } catch (const kiln::Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  kiln::Tensor w = kiln::full({2}, 1.0).requires_grad_();
  expect_error([] { dist::barrier(); });
  expect_error([&] { dist::DistributedDataParallel ddp({{"w", w}}); });
  kiln::Sequential m({kiln::layers::Dense(2)});
  m.compile("sgd", "mse");
  if (dist::available()) {
    EXPECT_THROW(m.set_distributed(true), kiln::Error);
  } else {
    expect_error([] { dist::init(); });
  }
}

TEST(DistributedSingleProcess, TimeoutComesFromTheEnvironmentOrTheSetter) {
  EXPECT_GT(dist::timeout_seconds(), 0);
  const double before = dist::timeout_seconds();
  dist::set_timeout_seconds(12.5);
  EXPECT_EQ(dist::timeout_seconds(), 12.5);
  EXPECT_THROW(dist::set_timeout_seconds(0), kiln::Error);
  dist::set_timeout_seconds(before);
}

}  // namespace
