#!/usr/bin/env bash
# Fine-tunes a pretrained encoder directory on the three real tasks the model card reports, each beside
# its baseline on the same split, and prints one summary line per task:
#   SpamAssassin (ham/spam; bag-of-words logistic regression on the same tokens),
#   fortunes, 24 topics (the same baseline),
#   KJV/WEB verse pairs (Pearson; token-Jaccard and bag-of-words-cosine baselines).
#
#   bash scripts/eval_pretrained.sh [DIR]      # default: models/nasbert-5m-en; "scratch": random weights
#   SEEDS="42 1 2 3" bash scripts/eval_pretrained.sh DIR   # spam on several splits, and their mean
#
# One split's spam accuracy moves by ±0.01 with the split's seed (one standard error is 0.005), as much
# as the differences between encoders or recipes being compared, so compare on several.
# Logs go to .cache/eval/<name>-<task>.log (spam: <name>-spam-<seed>.log). Needs a Release build of
# the examples (scripts/main.sh's).
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
read -r -a seeds <<< "${SEEDS:-42}"
for seed in "${seeds[@]}"; do
  ./build/examples/text_classification "${tc[@]}" --seed "$seed" --out ".cache/eval/$name-spam-$seed" \
    > ".cache/eval/$name-spam-$seed.log" 2>&1
done
./build/examples/text_classification --corpus fortunes "${tc[@]}" --out ".cache/eval/$name-fortunes" \
  > ".cache/eval/$name-fortunes.log" 2>&1
./build/examples/sentence_similarity "${ss[@]}" --train 8000 --test 2000 --epochs 2 \
  --out ".cache/eval/$name-bible" > ".cache/eval/$name-bible.log" 2>&1
# "TASK NAME test accuracy A macro accuracy M macro F1 F | bag-of-words accuracy A macro F1 F"
line() {
  printf '%-9s %-26s %s | %s\n' "$1" "$name" "$(grep -o 'test accuracy [0-9.]*.*macro F1 [0-9.]*' "$2")" \
    "$(grep -o 'accuracy [0-9.]*  macro F1 [0-9.]*$' "$2" | tail -1 | sed 's/^/bag-of-words /')"
}
spam_lines=$(for seed in "${seeds[@]}"; do line "spam-$seed" ".cache/eval/$name-spam-$seed.log"; done)
echo "$spam_lines"
if [[ ${#seeds[@]} -gt 1 ]]; then
  # Fields: 5 = accuracy, 11 = macro F1, 15 and 18 = bag-of-words accuracy and macro F1.
  echo "$spam_lines" | awk -v name="$name" -v n="${#seeds[@]}" \
    '{a += $5; f += $11; ba += $15; bf += $18}
     END {printf "%-9s %-26s mean of %d splits: accuracy %.4f  macro F1 %.4f | bag-of-words accuracy %.4f  macro F1 %.4f\n",
          "spam", name, n, a / n, f / n, ba / n, bf / n}'
fi
line fortunes ".cache/eval/$name-fortunes.log"
log=".cache/eval/$name-bible.log"
printf '%-9s %-26s %s | %s\n' bible "$name" "$(grep -o 'SentenceSimilarity *Pearson [0-9.]*' "$log")" \
  "$(grep -o 'token Jaccard *Pearson [0-9.]*' "$log")"
