#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started — by the PIDs it recorded, in reverse order, after
# cancelling leftover jobs — and nothing else.   tests/slurm/stop.sh [STATE_DIR]
set -uo pipefail
STATE=${1:-${SLURM_TEST_STATE:-/tmp/adaptive-retention-slurm}}

# With the cluster down, every Slurm client here would retry the gone controller for MessageTimeout (10 s) — and the
# slurm executor plugin runs `scontrol show config` each time Snakemake starts. Only our own slurm.conf (start.sh
# rewrites it, default timeout, on every start) gets the 1 s timeout: clients then fail at once.
fail_fast() {
  local conf=/etc/slurm/slurm.conf
  grep -qx 'ClusterName=adaptive-retention-ci' "$conf" 2>/dev/null || return 0
  sed -i '/^MessageTimeout=/d' "$conf" && echo 'MessageTimeout=1' >> "$conf"
}
[ -f "$STATE/pids" ] || { echo "[slurm stop] nothing recorded in $STATE" >&2; scontrol ping >/dev/null 2>&1 || fail_fast; exit 0; }
scancel --user=root >/dev/null 2>&1 || true
tac "$STATE/pids" | while read -r name pid; do
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL -- "-$pid" 2>/dev/null
  fi
done
rm -f "$STATE/pids"
fail_fast
echo "[slurm stop] stopped" >&2
