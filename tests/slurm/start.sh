#!/usr/bin/env bash
# Install (if needed) and start a one-node Slurm cluster on localhost: munge, MariaDB, slurmdbd,
# slurmctld, slurmd — no systemd, no cgroups (settings from ../shared/docs/SLURM.md). Idempotent: a
# cluster this script already started is reused. The PIDs of what it starts go to $STATE/pids, and
# tests/slurm/stop.sh stops only those.
#   tests/slurm/start.sh [STATE_DIR]        (root; Debian)   env: SLURM_TEST_ACCOUNT, SLURM_TEST_PARTITION
set -euo pipefail
STATE=${1:-${SLURM_TEST_STATE:-/tmp/adaptive-retention-slurm}}
ACCOUNT=${SLURM_TEST_ACCOUNT:-ci}
PARTITION=${SLURM_TEST_PARTITION:-debug}
HOST=$(hostname -s)
mkdir -p "$STATE"
log() { echo "[slurm start] $*" >&2; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local t=$1 what=$2; shift 2
  for _ in $(seq $((t * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  log "timed out after ${t}s waiting for $what"; return 1
}

alive() { [ -f "$STATE/pids" ] && while read -r name pid; do kill -0 "$pid" 2>/dev/null || return 1; done < "$STATE/pids"; }
if alive && scontrol ping >/dev/null 2>&1 && sinfo -h -o %t 2>/dev/null | grep -q idle; then
  log "already running (pids in $STATE/pids)"; exit 0
fi
[ -f "$STATE/pids" ] && { log "stale state: stopping what it lists first"; "$(dirname "$0")/stop.sh" "$STATE" || true; }

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || ! command -v mariadbd >/dev/null; then
  log "installing Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null
fi

# munge key, directories
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/lib/munge /var/log/munge /run/mysqld /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
chown munge:munge /run/munge /var/lib/munge /var/log/munge && chown mysql:mysql /run/mysqld
chown slurm:slurm /var/spool/slurmctld /var/log/slurm 2>/dev/null || true

# slurm.conf and slurmdbd.conf (rewritten every start: the node's CPUs and memory come from slurmd -C)
read -r CPUS MEM < <(slurmd -C | awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}} END {print v["CPUs"], v["RealMemory"]}')
MEM=$((MEM - 512))
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=adaptive-retention-ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageEnforce=associations
MinJobAge=600
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
CONF
chown root:root /etc/slurm/slurmdbd.conf  # must belong to SlurmUser (root here)
chmod 0600 /etc/slurm/slurmdbd.conf

: > "$STATE/pids"
start() {  # start NAME COMMAND...: in its own session, output to $STATE/NAME.log, PID recorded
  local name=$1; shift
  setsid "$@" > "$STATE/$name.log" 2>&1 < /dev/null &
  echo "$name $!" >> "$STATE/pids"
}

start munged runuser -u munge -- /usr/sbin/munged --foreground
wait_for 10 munge bash -c 'munge -n | unmunge'
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
start mariadbd /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1
wait_for 30 MariaDB mariadb-admin ping
mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
            CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
start slurmdbd /usr/sbin/slurmdbd -D
wait_for 30 slurmdbd sacctmgr -n show cluster
start slurmctld /usr/sbin/slurmctld -D -i
wait_for 30 slurmctld scontrol ping
wait_for 30 "the cluster to register" bash -c "sacctmgr -n -P show cluster format=cluster | grep -q adaptive-retention-ci"
sacctmgr -i add account "$ACCOUNT" >/dev/null 2>&1 || true
sacctmgr -i add user root Account="$ACCOUNT" >/dev/null 2>&1 || true
start slurmd /usr/sbin/slurmd -D
wait_for 30 "the node to be idle" bash -c "sinfo -h -o %t | grep -q idle"
wait_for 30 sacct sacct -n
log "ready: partition $PARTITION, account $ACCOUNT, $CPUS CPUs, ${MEM} MB (pids in $STATE/pids)"
