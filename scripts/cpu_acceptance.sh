#!/usr/bin/env bash
# The acceptance runs of issue 16 on a 2-core CPU, offline: SST-2, CUAD (clause types, micro-F1) and IMDb (256 tokens),
# seeds 0 1 2. Per task and seed: the full model (scored alone and under random, truncation and heavy-hitter selection
# at 50 % and 30 %), then learned retention at 50 % and 30 % under two recipes, the same seeds:
#   paper — the paper's loss from the pretrained backbone (+ the quadratic budget term, without which the budget is not met);
#   ours  — the recipe chosen on the dev split (scripts/dev_choice.sh): warm start from the full model + distillation
#           (+ on SST-2, the scorers' mean over the last 50 steps saved: OURS_ON below).
# Controls on each `ours` checkpoint: random, truncation and heavy-hitter selection at its budget on its own weights
# ("random (ours)", ...): what its learned ranking adds beyond the extra training a warm-started run gets.
# Runs go to $OUT (checkpoints: not in git); the small files (evaluation JSONs with per-example scores, traces,
# summaries) are mirrored into measurements/acceptance/ after each run, which analysis reads. Rerunning skips what is
# finished and resumes a killed training run. Order: task by task, seed by seed, so complete cells land first.
# Recipe `full-long` (not run by default): a full model trained as many epochs as a warm-started `ours` run saw in all
# (the full run's, twice) — the fair reference for what `ours` keeps ("full (long)" in the report).
# Candidates for SST-2, chosen between on dev (measurements/dev-choice/acceptance/README.md): `ours-linear`, `ours` with
# the scorers' LR decaying to 0 like the backbone's; `ours-eta05`, `ours` with the dual step η 0.05 — so the kept
# fraction does not wander off its target at the end with SST-2's small batches; `ours-avg`, `ours` saving the scorers'
# mean over the last epoch (the same training steps, other saved scorers); `ours-swa`, every weight's mean over it;
# `ours-q100`, a five times stiffer quadratic budget term (ρ_q 100); `ours-q100-linear`, that and the decaying scorer LR;
# `ours-q100-f09`, that term pulling on the misses' moving average (budget_filter 0.9), not on each small batch's miss;
# `ours-avg50`, `ours` saving the scorers' mean over the last 50 steps (20 %), where the backbone's LR is near 0.
# SPLIT=dev scores every run on the dev split (carved from the training data: where recipes are chosen) instead of
# the evaluation set, mirrored into measurements/dev-choice/acceptance/; controls and full-long are not scored there.
#   [SPLIT=dev] bash scripts/cpu_acceptance.sh [OUT=results/acceptance] [TASKS="sst2 cuad imdb"] [SEEDS="0 1 2"] [RECIPES="ours paper"]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/acceptance}
TASKS=${2:-sst2 cuad imdb}
SEEDS=${3:-0 1 2}
RECIPES=${4:-ours paper}  # the headline cells first
SPLIT=${SPLIT:-eval}
case "$SPLIT" in
  eval) KEEP=measurements/acceptance; SCORED=eval ;;
  dev) KEEP=measurements/dev-choice/acceptance; SCORED=dev ;;
  *) echo "SPLIT must be eval or dev, got '$SPLIT'" >&2; exit 2 ;;
esac
AR=".venv/bin/adaptive-retention"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

# task | training keys (paper optimiser: AdamW lr 3e-5, wd 0.01; sizes chosen for the time limits only) | eval size
declare -A TRAIN=(
  [sst2]="train_size=4000 epochs=2 batch_size=32"
  [cuad]="epochs=3 batch_size=16"
  [imdb]="train_size=1500 epochs=2 batch_size=16 max_length=256"
)
declare -A EVAL_SIZE=([sst2]="" [cuad]="" [imdb]="--size 2000")
# retention.train_gather=false: the masked training step these runs began with (before train_gather), on every seed
declare -A RECIPE=(
  [paper]="budget_quadratic=20 retention.train_gather=false"
  [ours]="budget_quadratic=20 distill_weight=1 eta=0.02 retention.train_gather=false"  # + init_from=<the seed's full model>
)
# what `ours` adds on one task, chosen on that task's dev split: on SST-2 the scorers' mean over the last 50 steps is
# saved (candidate 8, `ours-avg50`: the only one of eight that met the budget on all six runs without costing accuracy)
declare -A OURS_ON=([sst2]="weight_average=scorers average_steps=50")
RECIPE[ours-linear]="${RECIPE[ours]} scorer_schedule=linear"
RECIPE[ours-eta05]="${RECIPE[ours]/eta=0.02/eta=0.05}"
RECIPE[ours-avg]="${RECIPE[ours]} weight_average=scorers"  # its runs were written as scorer_average=last_epoch, the key's first name
RECIPE[ours-swa]="${RECIPE[ours]} weight_average=all"
RECIPE[ours-q100]="${RECIPE[ours]/budget_quadratic=20/budget_quadratic=100}"
RECIPE[ours-q100-linear]="${RECIPE[ours-q100]} scorer_schedule=linear"
RECIPE[ours-q100-f09]="${RECIPE[ours-q100]} budget_filter=0.9"
RECIPE[ours-avg50]="${RECIPE[ours-avg]} average_steps=50"

keep() {  # mirror a run's small files into the repo (its training files once: where the evaluation set's are, if there)
  local run=$1 dest="$KEEP/${1#"$OUT"/}"
  mkdir -p "$dest"
  [ -f "measurements/acceptance/${run#"$OUT"/}/summary.json" ] && [ "$KEEP" != measurements/acceptance ] ||
    cp "$run/trace.tsv" "$run/step_times.tsv" "$run/summary.json" "$dest/" 2>/dev/null || true
  [ -d "$run/$SCORED" ] && mkdir -p "$dest/$SCORED" && cp "$run/$SCORED"/*.json "$dest/$SCORED/"
  return 0
}

evaluate() {  # run, its done-marker in $SCORED/, extra evaluate args...
  local run=$1 mark=$2; shift 2
  if [ ! -f "$run/$SCORED/$mark" ]; then
    $AR evaluate --checkpoint "$run/model" --out "$run/$SCORED" --split "$SCORED" "$@" ${EVAL_SIZE[$task]} --quiet
    touch "$run/$SCORED/$mark"
  fi
  keep "$run"
}

for task in $TASKS; do
  for seed in $SEEDS; do
    full="$OUT/$task/full/seed$seed"
    /usr/bin/time -f "$task full seed$seed: %e s wall" $AR train --task "$task" --full --seed "$seed" --out "$full" --quiet --set ${TRAIN[$task]}
    evaluate "$full" done --methods full random truncation heavy_hitter --ratios 0.5 0.3
    for recipe in $RECIPES; do
      if [ "$recipe" = full-long ]; then
        [ "$SPLIT" = dev ] && continue
        run="$OUT/$task/full-long/seed$seed"
        epochs=$(grep -o 'epochs=[0-9.]*' <<< "${TRAIN[$task]}" | cut -d= -f2)
        /usr/bin/time -f "$task full-long seed$seed: %e s wall" $AR train --task "$task" --full --seed "$seed" --out "$run" --quiet \
          --set ${TRAIN[$task]} epochs=$(python3 -c "print(2 * $epochs)")
        evaluate "$run" done --methods full --set identity.study=long identity.variant=full-long
        continue
      fi
      for ratio in 0.3 0.5; do
        run="$OUT/$task/$recipe-$ratio/seed$seed"
        extra=""; [[ "$recipe" = ours* ]] && extra="init_from=$full/model"
        [ "$recipe" = ours ] && extra="$extra ${OURS_ON[$task]:-}"
        /usr/bin/time -f "$task $recipe $ratio seed$seed: %e s wall" $AR train --task "$task" --ratio "$ratio" --seed "$seed" --out "$run" \
          --quiet --set ${TRAIN[$task]} ${RECIPE[$recipe]} $extra
        identity="identity.study=$recipe identity.variant=r$ratio-$recipe"
        evaluate "$run" done --methods learned --ratios "$ratio" --set $identity
        if [[ "$recipe" = ours* && "$SPLIT" = eval ]]; then
          evaluate "$run" controls-done --methods random truncation heavy_hitter --ratios "$ratio" --set $identity
        fi
      done
    done
  done
done
if [ "$SPLIT" = eval ]; then bash scripts/acceptance_report.sh "$KEEP"; fi
