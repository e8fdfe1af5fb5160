#pragma once
// What every Kiln-vs-peer benchmark shares: the thread count (2, as the issues' workloads say;
// KILN_BENCH_THREADS overrides it — 1 on a loaded machine, where LibTorch's OpenMP workers spin
// against other processes and its 2-thread wall time stops meaning anything), applied to Kiln
// and, when built with it, LibTorch.
// LibTorch's OpenMP workers spin-wait by default; on a 2-core machine next to OpenBLAS's own
// threads that makes its small steps several times slower (W3: 14 ms instead of 3-5 ms). Give the
// peer its best case and say so: run the binaries with OMP_WAIT_POLICY=passive (read when libgomp
// loads, so it must come from the environment). Kiln does not use OpenMP.
#include <cstdlib>

#include "kiln/tensor/parallel.h"
#ifdef KILN_WITH_TORCH
#include <ATen/Parallel.h>
// The OpenBLAS that both Kiln and LibTorch link (declared here: Kiln keeps <cblas.h> inside
// tensor/).
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace kiln_bench {

inline int bench_threads() {
  const char* env = std::getenv("KILN_BENCH_THREADS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 2;
}

/// Kiln's rows: Kiln's thread count (its GEMMs split over oneTBB; OpenBLAS itself single-threaded).
inline void set_threads() {
  kiln::set_num_threads(bench_threads());
}

#ifdef KILN_WITH_TORCH
/// LibTorch's rows: its intra-op threads, and OpenBLAS's own threads as a LibTorch-only process
/// has them (Kiln sets OpenBLAS to one thread when it runs; LibTorch's GEMMs are OpenBLAS calls
/// with OpenBLAS's threading, so the peer gets it back here).
inline void set_torch_threads() {
  at::set_num_threads(bench_threads());
  openblas_set_num_threads(bench_threads());
}
#endif

}  // namespace kiln_bench
