#!/usr/bin/env bash
# The whole test suite: a warnings-as-errors Release build run at 2 threads and at 1 thread, then an
# AddressSanitizer + UndefinedBehaviorSanitizer build of the library and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
bash scripts/install_deps.sh
jobs=$(nproc)

echo "== Release build (-Werror)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR=ON -DKILN_WITH_TORCH=OFF \
  -DKILN_BUILD_BENCHMARKS=ON -DKILN_BUILD_EXAMPLES=ON >/dev/null
cmake --build build -j "$jobs"
echo "== Tests, 2 threads"
KILN_NUM_THREADS=2 ctest --test-dir build --output-on-failure -j 1
echo "== Tests, 1 thread"
KILN_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j 1 -E layering

echo "== ASan + UBSan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" -DKILN_SANITIZE=ON \
  -DKILN_NATIVE=ON -DKILN_BUILD_BENCHMARKS=OFF -DKILN_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  KILN_NUM_THREADS=2 ctest --test-dir build-asan --output-on-failure -j 1
