// What happens when a rank stops taking part. DISABLED_ by default: ctest runs each under mpirun
// with --gtest_also_run_disabled_tests and checks the job's output (tests/CMakeLists.txt).
//   RankOneHangs: rank 1 sleeps instead of reducing; rank 0 must give up after KILN_DIST_TIMEOUT
//                 seconds with a message naming the collective, and MPI_Abort ends the job.
//   RankOneDies:  rank 1 is killed (SIGKILL) mid-training; mpirun notices and ends rank 0.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>

#include "kiln/autograd/functions.h"
#include "kiln/distributed/ddp.h"

namespace {

namespace dist = kiln::distributed;

void one_step(dist::DistributedDataParallel& ddp, const kiln::Tensor& w) {
  ddp.prepare_for_backward();
  kiln::sum(w * w).backward();
  ddp.finish_gradient_synchronization();
}

TEST(DistributedFailure, DISABLED_RankOneHangs) {
  ASSERT_EQ(dist::world_size(), 2);
  kiln::Tensor w = kiln::full({8}, 1.0).requires_grad_();
  dist::DistributedDataParallel ddp({{"w", w}});
  one_step(ddp, w);
  if (dist::rank() == 1) sleep(120);  // stuck: never reaches the next all-reduce
  one_step(ddp, w);
  FAIL() << "rank " << dist::rank() << " finished a step its peer never joined";
}

TEST(DistributedFailure, DISABLED_RankOneDies) {
  ASSERT_EQ(dist::world_size(), 2);
  kiln::Tensor w = kiln::full({8}, 1.0).requires_grad_();
  dist::DistributedDataParallel ddp({{"w", w}});
  one_step(ddp, w);
  if (dist::rank() == 1) std::raise(SIGKILL);
  one_step(ddp, w);
  FAIL() << "rank " << dist::rank() << " finished a step its peer never joined";
}

}  // namespace
