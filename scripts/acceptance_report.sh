#!/usr/bin/env bash
# The acceptance tables from the mirrored result files (reads files only; never trains): per task, every system at each
# budget with its mean over seeds, 95 % interval, share of the full model, and the paired test against learned (ours);
# then how each retention run met its budget: its trace, and (if measured) what its saved model keeps.
#   bash scripts/acceptance_report.sh [KEEP=measurements/acceptance]
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=${1:-measurements/acceptance}
for task in sst2 cuad imdb; do
  files=("$KEEP/$task"/*/seed*/eval/*.json)
  [ -e "${files[0]}" ] || continue
  PYTHONPATH=. .venv/bin/python -m analysis.paired "${files[@]}" --reference "learned (ours)" \
    --out "$KEEP/${task}_paired.csv" --markdown "$KEEP/${task}_paired.md"
  echo "## $task (its headline metric)"; cat "$KEEP/${task}_paired.md"; echo
done
PYTHONPATH=. .venv/bin/python -m analysis.trace_summary "$KEEP"/*/*-0.*/seed* --markdown "$KEEP/traces.md" >/dev/null
echo "## budget traces (last 10 % of steps)"; cat "$KEEP/traces.md"
if [ -f "$KEEP/kept_by_batch.tsv" ]; then  # written by scripts/kept_by_batch.py (it runs the saved models; this script only reads)
  echo; echo "## the saved models' expected kept fraction − ρ over the last epoch (scripts/kept_by_batch.py)"; cat "$KEEP/kept_by_batch.tsv"
fi
