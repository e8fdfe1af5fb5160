#!/usr/bin/env bash
# Peak RSS of each W3/W4/W5 case, one case per process: Kiln's cases in the binaries built without
# LibTorch (`*_kiln_only`), LibTorch's in the binaries that link it, so each side's figure holds its
# own libraries and nothing of the other's. Prints MB and the Kiln/LibTorch ratio (issue 16's target:
# <= 0.6), and the same with what each binary holds before any case runs (its libraries) taken off.
#   bash benchmarks/peak_rss.sh [build-dir]        (default build-bench, configured with LibTorch)
set -euo pipefail
build=${1:-build-bench}/benchmarks
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
for b in bert_bench bert_bench_kiln_only train_bench train_bench_kiln_only; do
  [[ -x $build/$b ]] || { echo "missing $build/$b: build it in a LibTorch-enabled build dir" >&2; exit 1; }
done

# peak BINARY FILTER: the peak_rss_MB counter of the first run matching FILTER.
peak() {
  local out
  out=$(mktemp)
  "$build/$1" --benchmark_filter="$2" --benchmark_out="$out" --benchmark_out_format=json >/dev/null 2>&1
  python3 - "$out" <<'PY'
import json, sys
runs = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if "peak_rss_MB" in b]
print("%.1f" % max(b["peak_rss_MB"] for b in runs))
PY
  rm -f "$out"
}
# idle BINARY: peak RSS (MB) of the process when no case runs.
idle() {
  /usr/bin/time -f '%M' "$build/$1" --benchmark_filter='^$' 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'
}

# Columns: peak RSS of each side's process and their ratio, then the same above each binary's idle
# figure (what the workload itself adds: tensors, caches, workers), and that ratio.
declare -A idle_mb
for b in bert_bench bert_bench_kiln_only train_bench train_bench_kiln_only; do idle_mb[$b]=$(idle "$b"); done
printf '%-16s %8s %9s %6s   %10s %10s %6s\n' case Kiln LibTorch ratio 'Kiln-idle' 'Torch-idle' ratio
row() {  # row NAME KILN_BINARY KILN_FILTER TORCH_BINARY TORCH_FILTER
  local k t
  k=$(peak "$2" "$3")
  t=$(peak "$4" "$5")
  awk -v n="$1" -v k="$k" -v t="$t" -v ki="${idle_mb[$2]}" -v ti="${idle_mb[$4]}" 'BEGIN{
    printf "%-16s %8.1f %9.1f %6.2f   %10.1f %10.1f %6.2f\n", n, k, t, k/t, k-ki, t-ti, (k-ki)/(t-ti)}'
}
row W3_mlp_step train_bench_kiln_only 'W3_mlp_step_kiln/' train_bench 'W3_mlp_step_torch/'
row W4_lenet_step train_bench_kiln_only 'W4_lenet_step_kiln/' train_bench 'W4_lenet_step_torch/'
row W5_train_step bert_bench_kiln_only 'W5_train_step_kiln/' bert_bench 'W5_train_step_torch/'
row W5_infer_1x128 bert_bench_kiln_only 'W5_infer_1x128_kiln/' bert_bench 'W5_infer_1x128_torch/'
row W5_infer_32x128 bert_bench_kiln_only 'W5_infer_32x128_kiln/' bert_bench 'W5_infer_32x128_torch/'
printf 'idle (no case): bert_bench_kiln_only %s MB, bert_bench %s MB, train_bench_kiln_only %s MB, train_bench %s MB\n' \
  "${idle_mb[bert_bench_kiln_only]}" "${idle_mb[bert_bench]}" "${idle_mb[train_bench_kiln_only]}" "${idle_mb[train_bench]}"
