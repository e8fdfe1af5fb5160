#!/usr/bin/env bash
# The main job on its embedded default: install, build (Release), then train on real data and report.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build --target mnist_mlp
./build/examples/mnist_mlp "$@"
