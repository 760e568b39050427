#!/usr/bin/env bash
# The measured acceptance runs of the training/evaluation issue, on a 2-core CPU, offline:
# SST-2 and IMDb, full model vs learned retention at 50 % and 30 %, against random, truncation and
# heavy-hitter selection at the same budgets. Rerunning skips finished runs (and resumes killed ones).
#   bash scripts/cpu_acceptance.sh [OUT=results/acceptance]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/acceptance}
AR=".venv/bin/adaptive-retention"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

# task | training keys (paper: AdamW lr 3e-5, wd 0.01; sized for ≤ 10 / ≤ 15 min per run here; budget_quadratic=20:
# the augmented-Lagrangian term that makes the trained kept fraction meet its target, README "Results") | eval size
declare -A TRAIN=(
  [sst2]="train_size=6000 epochs=2 batch_size=32 budget_quadratic=20"
  [imdb]="train_size=1500 epochs=2 batch_size=16 max_length=256 budget_quadratic=20"
)
declare -A EVAL_SIZE=([sst2]="" [imdb]="--size 2000")
SEED=0

for task in sst2 imdb; do
  for variant in full 0.5 0.3; do
    run="$OUT/$task/$variant/seed$SEED"
    if [ ! -f "$run/summary.json" ]; then
      if [ "$variant" = full ]; then flag=(--full); else flag=(--ratio "$variant"); fi
      /usr/bin/time -f "%e s wall" $AR train --task "$task" "${flag[@]}" --seed $SEED --out "$run" --quiet --set ${TRAIN[$task]}
    fi
    if [ ! -f "$run/eval/done" ]; then
      if [ "$variant" = full ]; then methods=(full random truncation heavy_hitter); ratios=(0.5 0.3)
      else methods=(learned random truncation heavy_hitter); ratios=("$variant"); fi
      $AR evaluate --checkpoint "$run/model" --out "$run/eval" --methods "${methods[@]}" --ratios "${ratios[@]}" ${EVAL_SIZE[$task]} --quiet
      touch "$run/eval/done"
    fi
  done
done
PYTHONPATH=. .venv/bin/python -m analysis.aggregate "$OUT"/*/*/seed*/eval/*.json --tidy "$OUT/tidy.csv" --summary "$OUT/summary.csv" --markdown "$OUT/summary.md"
cat "$OUT/summary.md"
