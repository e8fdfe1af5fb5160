#!/usr/bin/env bash
# Fine-tunes a pretrained encoder directory on the three real tasks the model card reports, each beside
# its baseline on the same split, and prints one summary line per task:
#   SpamAssassin (ham/spam; bag-of-words logistic regression on the same tokens),
#   fortunes, 24 topics (the same baseline),
#   KJV/WEB verse pairs (Pearson; token-Jaccard and bag-of-words-cosine baselines).
#
#   bash scripts/eval_pretrained.sh [DIR]      # default: models/nasbert-5m-en; "scratch": random weights
#
# Logs go to .cache/eval/<name>-<task>.log. Needs a Release build of the examples (scripts/main.sh's).
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
dir="${1:-models/nasbert-5m-en}"
name="$(basename "$dir")"
mkdir -p .cache/eval
if [[ "$dir" == scratch ]]; then
  tc=(--from-scratch)
  ss=(--architecture nasbert-5m --from-scratch --lr 2e-4)
else
  tc=(--pretrained "$dir")
  ss=(--architecture nasbert-5m --pretrained "$dir" --lr 2e-4)
fi
./build/examples/text_classification "${tc[@]}" --out ".cache/eval/$name-spam" \
  > ".cache/eval/$name-spam.log" 2>&1
./build/examples/text_classification --corpus fortunes "${tc[@]}" --out ".cache/eval/$name-fortunes" \
  > ".cache/eval/$name-fortunes.log" 2>&1
./build/examples/sentence_similarity "${ss[@]}" --train 8000 --test 2000 --epochs 2 \
  --out ".cache/eval/$name-bible" > ".cache/eval/$name-bible.log" 2>&1
for task in spam fortunes; do
  log=".cache/eval/$name-$task.log"
  printf '%-9s %-26s %s | %s\n' "$task" "$name" "$(grep -o 'test accuracy [0-9.]*.*macro F1 [0-9.]*' "$log")" \
    "$(grep -o 'accuracy [0-9.]*  macro F1 [0-9.]*$' "$log" | tail -1 | sed 's/^/bag-of-words /')"
done
log=".cache/eval/$name-bible.log"
printf '%-9s %-26s %s | %s\n' bible "$name" "$(grep -o 'SentenceSimilarity *Pearson [0-9.]*' "$log")" \
  "$(grep -o 'token Jaccard *Pearson [0-9.]*' "$log")"
