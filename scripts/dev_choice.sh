#!/usr/bin/env bash
# The recipe choice of issue 16, made on the dev split (10 % of SST-2's training sentences, never trained on): the full
# model, then learned retention at ρ = 0.3 under each candidate recipe, each scored on dev with its learned top-M and the
# full model's heavy hitters beside it. Rerunning skips finished runs. The small files (summaries, traces, dev results
# with per-example scores) are mirrored into measurements/dev-choice/.
#   bash scripts/dev_choice.sh [OUT=results/dev-choice]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/dev-choice}
AR=".venv/bin/adaptive-retention"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
BASE="train_size=4000 epochs=2 batch_size=32"
FULL="$OUT/sst2/full/seed0"
keep() {  # a run's small files into the repo
  local dest="measurements/dev-choice/${1#"$OUT"/}"
  mkdir -p "$dest/dev" && cp "$1/dev"/*.json "$dest/dev/" && cp "$1/trace.tsv" "$1/summary.json" "$dest/"
}
declare -A RECIPE=(
  [paper]="budget_quadratic=20"
  [warm]="budget_quadratic=20 init_from=$FULL/model"
  [warm_distill]="budget_quadratic=20 init_from=$FULL/model distill_weight=1"
  [warm_distill_q5]="budget_quadratic=5 init_from=$FULL/model distill_weight=1"
  [warm_distill_eta05]="budget_quadratic=20 init_from=$FULL/model distill_weight=1 eta=0.05"
  [warm_distill_eta02]="budget_quadratic=20 init_from=$FULL/model distill_weight=1 eta=0.02"
)
$AR train --task sst2 --full --seed 0 --out "$FULL" --quiet --set $BASE
[ -f "$FULL/dev/done" ] || { $AR evaluate --checkpoint "$FULL/model" --out "$FULL/dev" --split dev --methods full heavy_hitter random truncation --ratios 0.3 --quiet && touch "$FULL/dev/done"; }
keep "$FULL"
for recipe in paper warm warm_distill warm_distill_q5 warm_distill_eta05 warm_distill_eta02; do
  run="$OUT/sst2/$recipe/seed0"
  /usr/bin/time -f "$recipe %e s wall" $AR train --task sst2 --ratio 0.3 --seed 0 --out "$run" --quiet --set $BASE ${RECIPE[$recipe]}
  [ -f "$run/dev/done" ] || { $AR evaluate --checkpoint "$run/model" --out "$run/dev" --split dev --methods learned --ratios 0.3 --quiet && touch "$run/dev/done"; }
  keep "$run"
done
PYTHONPATH=. .venv/bin/python -m analysis.trace_summary "$OUT"/sst2/*/seed0 2>/dev/null | grep -v full || true
