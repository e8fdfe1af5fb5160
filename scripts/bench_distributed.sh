#!/usr/bin/env bash
# Data-parallel scaling on this machine: benchmarks/distributed_bench at 1 process × 2 threads and
# at 2 ranks × 1 thread (mpirun), then a table of the medians, the ratio and the time per step
# spent waiting for the gradient all-reduces. Usage:
#   bash scripts/bench_distributed.sh [build-dir=build] [repetitions=5]
# BIND (default none) is mpirun's --bind-to: "core" pins each rank to a core, best on an idle
# machine; on a shared one a pinned rank waits for its own core while the other one is free, and
# every all-reduce round waits for both ranks, so "none" (the 1-process run is not pinned either).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
reps=${2:-5}
bench=$build/benchmarks/distributed_bench
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
# mpirun refuses root without these (containers, CI).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true --benchmark_format=json)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1 process x 2 threads"
KILN_BENCH_THREADS=2 "$bench" --benchmark_filter='step' "${common[@]}" >"$out/one.json"
bind=${BIND:-none}
echo "== 2 ranks x 1 thread (mpirun -np 2 --bind-to $bind)"
mpirun -np 2 --bind-to "$bind" "$bench" "${common[@]}" >"$out/two.json"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out/one.json" "$out/two.json" <<'PY'
import json, sys
def medians(path):
    rows = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") == "median":
            rows[b["run_name"].split("/iterations")[0]] = b
    return rows
one, two = medians(sys.argv[1]), medians(sys.argv[2])
print(f"{'benchmark':34} {'1x2 ms':>9} {'2x1 ms':>9} {'speed-up':>9} {'wait ms':>9} {'alone ms':>9}")
alone = {k.split("_")[1]: v["real_time"] for k, v in two.items() if k.startswith("Allreduce")}
for name, b in two.items():
    if name.startswith("Allreduce"):
        continue
    base = one.get(name)
    t1 = base["real_time"] if base else float("nan")
    t2 = b["real_time"]
    model = name.split("_")[0]
    print(f"{name:34} {t1:9.2f} {t2:9.2f} {t1 / t2:9.2f} {b.get('wait_ms', float('nan')):9.2f} "
          f"{alone.get(model, float('nan')):9.2f}")
print("wait ms: per step, blocked on the all-reduces after backward (not hidden by the overlap);")
print("alone ms: one all-reduce of the same gradient bytes with nothing to overlap it.")
PY
