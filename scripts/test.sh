#!/usr/bin/env bash
# The whole test suite: a warnings-as-errors Release build run at 2 threads and at 1 thread, then an
# AddressSanitizer + UndefinedBehaviorSanitizer build of the library and tests. Prints each part's
# duration (ctest prints each suite's) and a summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
# The scripts install every data set the tests read, so here a skipped test is a failure
# (tests/test_main.cpp names skipped tests and fails the suite under this setting).
export KILN_FAIL_ON_SKIP=1
timings=()
part_start=$SECONDS
part() {  # part NAME: closes the previous part's timing, starts NAME's
  local now=$SECONDS
  if [[ -n "${part_name:-}" ]]; then
    timings+=("$(printf '%-28s %5d s' "$part_name" $((now - part_start)))")
    echo "-- ${part_name}: $((now - part_start)) s"
  fi
  part_name="$1"
  part_start=$now
  [[ -n "$1" ]] && echo "== $1"
  return 0
}
summary() {
  part ""
  echo "== Durations"
  printf '%s\n' "${timings[@]}"
  echo "total                        $SECONDS s"
}
trap summary EXIT
# --no-tests=error: a build that registers no tests fails instead of passing.
ctest_args=(--output-on-failure --no-tests=error -j 1)

part "Install dependencies"
bash scripts/install_deps.sh
jobs=$(nproc)

part "Release build (-Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON -DKILN_WITH_TORCH=OFF \
  -DKILN_BUILD_BENCHMARKS=ON -DKILN_BUILD_EXAMPLES=ON >/dev/null
cmake --build build -j "$jobs"
part "Tests, 2 threads"
KILN_NUM_THREADS=2 ctest --test-dir build "${ctest_args[@]}"
# Each suite checks at start that it really runs at KILN_NUM_THREADS (tests/test_main.cpp).
part "Tests, 1 thread"
# The examples and the main job's check (label "example") set their own thread count: run once.
KILN_NUM_THREADS=1 ctest --test-dir build "${ctest_args[@]}" -E layering -LE example

part "ASan + UBSan build"
# -g1 (line tables only): sanitizer reports still name file and line, and the build takes about a
# third less time than with full debug information.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DKILN_SANITIZE=ON \
  -DKILN_NATIVE=ON -DKILN_BUILD_BENCHMARKS=OFF -DKILN_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-asan -j "$jobs"
part "Tests, ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  KILN_NUM_THREADS=2 ctest --test-dir build-asan "${ctest_args[@]}"
