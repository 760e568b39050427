#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started — by the PIDs it recorded, in reverse order, after
# cancelling leftover jobs — and nothing else.   tests/slurm/stop.sh [STATE_DIR]
set -uo pipefail
STATE=${1:-${SLURM_TEST_STATE:-/tmp/adaptive-retention-slurm}}
[ -f "$STATE/pids" ] || { echo "[slurm stop] nothing recorded in $STATE" >&2; exit 0; }
scancel --user=root >/dev/null 2>&1 || true
tac "$STATE/pids" | while read -r name pid; do
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  fi
done
rm -f "$STATE/pids"
echo "[slurm stop] stopped" >&2
