// test_distributed's main: starts MPI when run by mpirun (every rank runs every test; tests that
// need two ranks skip in a single process), and makes the exit code agree across ranks.
#include <gtest/gtest.h>

#include "kiln/distributed/distributed.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (kiln::distributed::launched_world_size() > 1) kiln::distributed::init();
  int rc = RUN_ALL_TESTS();
  // A test that failed on one rank only still fails the job (mpirun reports the first non-zero
  // exit code, but every rank should say so).
  if (kiln::distributed::is_initialized())
    rc = static_cast<int>(kiln::distributed::all_reduce_max(rc));
  return rc;
}
