#pragma once
// What every Kiln-vs-peer benchmark shares: the thread count (2, as the issues' workloads say;
// KILN_BENCH_THREADS overrides it — 1 on a loaded machine, where LibTorch's OpenMP workers spin
// against other processes and its 2-thread wall time stops meaning anything), applied to Kiln
// and, when built with it, LibTorch.
#include <cstdlib>

#include "kiln/tensor/parallel.h"
#ifdef KILN_WITH_TORCH
#include <ATen/Parallel.h>
#endif

namespace kiln_bench {

inline int bench_threads() {
  const char* env = std::getenv("KILN_BENCH_THREADS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 2;
}

inline void set_threads() {
  kiln::set_num_threads(bench_threads());
#ifdef KILN_WITH_TORCH
  at::set_num_threads(bench_threads());
#endif
}

}  // namespace kiln_bench
