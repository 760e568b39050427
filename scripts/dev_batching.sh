#!/usr/bin/env bash
# Is length-grouped batching (`batching: by_length`) as good as random batches? Chosen on dev splits (10 % of a task's
# training data by document, never trained on), seed 0, each system scored on dev and compared paired:
#   CUAD at the default run's settings — the full model and learned retention at ρ = 0.3 (the default recipe: warm
#        start + distillation), each trained with random and with by_length batches;
#   SST-2 at scripts/dev_choice.sh's settings — the same two runs with by_length batches, beside that script's random
#        ones (its full and warm_distill_eta02 runs, whose dev results are kept in measurements/dev-choice/sst2/).
# Prints the padding each batching costs per epoch (tokens through the encoder with padding / without). Rerunning skips
# finished runs; the small files go to measurements/dev-choice/<task>/<run>-<batching>/.
#   bash scripts/dev_batching.sh [OUT=results/dev-choice]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/dev-choice}
AR=".venv/bin/adaptive-retention"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
declare -A BASE=(
  [cuad]="epochs=2 batch_size=16 max_length=128"   # config/config.yaml's tasks.cuad.train
  [sst2]="train_size=4000 epochs=2 batch_size=32"  # scripts/dev_choice.sh's
)
RECIPE="budget_quadratic=20 distill_weight=1 eta=0.02"
keep() {  # a run's small files into the repo
  local dest="measurements/dev-choice/${1#"$OUT"/}"
  mkdir -p "$dest/dev" && cp "$1/dev"/*.json "$dest/dev/" && cp "$1/trace.tsv" "$1/summary.json" "$dest/"
}
dev() {  # checkpoint folder, batching, methods...
  local run=$1 batching=$2; shift 2
  [ -f "$run/dev/done" ] || { $AR evaluate --checkpoint "$run/model" --out "$run/dev" --split dev --methods "$@" --ratios 0.3 \
    --quiet --set identity.study="$batching" && touch "$run/dev/done"; }
  keep "$run"
}
.venv/bin/python - <<'PY'
from transformers import AutoTokenizer
from adaptive_retention.backbones import resolve_model_path
from adaptive_retention.batching import epoch_batches
from adaptive_retention.config import TrainConfig
from adaptive_retention.train import training_data
tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("minilm"))
for cfg in (TrainConfig(task="cuad", batch_size=16, max_length=128), TrainConfig(task="sst2", train_size=4000, batch_size=32)):
    _, _, features = training_data(cfg, tokenizer, cfg.max_length or 128)
    lengths = [len(f["input_ids"]) for f in features]
    for batching in ("random", "by_length"):
        padded = sum(len(b) * max(lengths[i] for i in b) for b in epoch_batches(lengths, cfg.batch_size, 0, 0, batching))
        print(f"{cfg.task} {batching}: {padded} tokens per epoch with padding, {sum(lengths)} without ({padded / sum(lengths):.2f}×)")
PY
run_pair() {  # task, batching: the full model, then learned retention at 0.3 warm-started from it
  local task=$1 batching=$2 full="$OUT/$1/full-$2/seed0" run="$OUT/$1/ours-0.3-$2/seed0"
  /usr/bin/time -f "$task full $batching %e s wall" $AR train --task "$task" --full --seed 0 --out "$full" --quiet \
    --set ${BASE[$task]} batching="$batching"
  dev "$full" "$batching" full heavy_hitter random truncation
  /usr/bin/time -f "$task ours 0.3 $batching %e s wall" $AR train --task "$task" --ratio 0.3 --seed 0 --out "$run" --quiet \
    --set ${BASE[$task]} $RECIPE batching="$batching" init_from="$full/model"
  dev "$run" "$batching" learned
}
run_pair cuad by_length
run_pair cuad random
run_pair sst2 by_length
# The paired comparisons on dev (reads the kept files only): every system at 30 % against learned retention trained
# with by_length batches; SST-2's random-batch systems are dev_choice.sh's (no study label).
KEEP=measurements/dev-choice
for task in cuad sst2; do
  files=("$KEEP/$task"/*-by_length/seed0/dev/*.json)
  [ "$task" = cuad ] && files+=("$KEEP/cuad"/*-random/seed0/dev/*.json)
  [ "$task" = sst2 ] && files+=("$KEEP/sst2/full/seed0/dev"/*.json "$KEEP/sst2/warm_distill_eta02/seed0/dev"/*.json)
  PYTHONPATH=. .venv/bin/python -m analysis.paired "${files[@]}" --reference "learned (by_length)" \
    --out "$KEEP/batching_${task}_paired.csv" --markdown "$KEEP/batching_${task}_paired.md" >/dev/null
  echo "## $task, dev, seed 0"; cat "$KEEP/batching_${task}_paired.md"
done
PYTHONPATH=. .venv/bin/python -m analysis.trace_summary "$KEEP"/*/ours-0.3-*/seed0 "$KEEP/sst2/warm_distill_eta02/seed0"
