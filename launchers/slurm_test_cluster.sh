#!/usr/bin/env bash
# A real single-node SLURM (with accounting) on localhost, for the tests marked `slurm` and for CI.
#
#   bash launchers/slurm_test_cluster.sh start    # install (Debian/Ubuntu, as root) if needed, start; idempotent
#   bash launchers/slurm_test_cluster.sh status   # exit 0 when the node answers
#   bash launchers/slurm_test_cluster.sh stop     # stop every daemon this script started, by its pid file
#
# Everything it starts keeps its state, logs and pid files under $SLURM_TEST_DIR (default
# /tmp/cosmos-exp-slurm); it writes /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf (where the clients look).
# Nodes and controller are named localhost, so the machine's hostname does not matter. No systemd needed.
set -euo pipefail

DIR=${SLURM_TEST_DIR:-/tmp/cosmos-exp-slurm}
ETC=/etc/slurm
CLUSTER=cosmos-test
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

log() { echo "slurm_test_cluster: $*" >&2; }
die() { log "$*"; exit 1; }

wait_for() {  # wait_for <seconds> <what> <command...>
  local limit=$1 what=$2; shift 2
  for _ in $(seq 1 $((limit * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  die "timed out after ${limit}s waiting for $what (logs in $DIR/log)"
}

node_idle() { sinfo -h -N -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }

install_packages() {
  local missing=()
  for bin in slurmctld slurmd sinfo munged slurmdbd mariadbd; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root: cannot install ${PACKAGES[*]}"
  log "installing ${PACKAGES[*]}"
  # Without systemd the packages' init scripts must not run: a policy-rc.d that refuses (ours only if absent).
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >"$DIR/log/apt.log" 2>&1; then
    apt-get update -qq >>"$DIR/log/apt.log" 2>&1
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >>"$DIR/log/apt.log" 2>&1 \
      || { [ $made_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get failed, see $DIR/log/apt.log"; }
  fi
  [ $made_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

running() {  # running <pid file>: the process it names is alive
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start_munge() {
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  fi
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/run/munged.pid" 2>/dev/null || true
    wait_for 20 munged sh -c 'munge -n | unmunge'
  fi
}

start_mariadb() {
  local data=$DIR/mysql run=$DIR/mysql-run
  mkdir -p /run/mysqld "$run" && chown mysql:mysql /run/mysqld "$run"
  if [ ! -d "$data/mysql" ]; then
    mkdir -p "$data" && chown mysql:mysql "$data"
    mariadb-install-db --user=mysql --datadir="$data" --auth-root-authentication-method=socket \
      >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed, see $DIR/log/mariadb-install.log"
  fi
  if ! running "$run/mariadb.pid"; then
    # pid file and error log in directories mysql owns, or mariadbd dies without a word.
    mariadbd --user=mysql --datadir="$data" --skip-networking --socket=/run/mysqld/mysqld.sock \
      --pid-file="$run/mariadb.pid" --log-error="$run/error.log" >/dev/null 2>&1 &
    wait_for 60 mariadb mariadb --socket=/run/mysqld/mysqld.sock -u root -e 'SELECT 1'
  fi
  mariadb --socket=/run/mysqld/mysqld.sock -u root -e \
    "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

write_configs() {
  local cpus mem_mb
  cpus=$(nproc)
  mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
  mkdir -p "$ETC"
  cat > "$ETC/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$ETC/slurmdbd.conf"
  cat > "$ETC/slurm.conf" <<EOF
ClusterName=$CLUSTER
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerParameters=sched_interval=1,bf_interval=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  mkdir -p "$DIR"/{log,run,state,spool}
  if command -v sinfo >/dev/null 2>&1 && node_idle && running "$DIR/run/slurmctld.pid"; then
    log "already running (sinfo answers)"; return 0
  fi
  install_packages
  start_munge
  start_mariadb
  write_configs
  running "$DIR/run/slurmdbd.pid" || slurmdbd
  wait_for 60 "slurmdbd (sacctmgr)" sacctmgr -n show cluster
  running "$DIR/run/slurmctld.pid" || slurmctld
  wait_for 30 slurmctld scontrol ping
  running "$DIR/run/slurmd.pid" || slurmd -N localhost
  wait_for 60 "node localhost idle" node_idle
  timeout 60 srun -N1 -n1 -t 1 hostname >/dev/null || die "srun smoke test failed (logs in $DIR/log)"
  log "up: partition debug, node localhost ($(nproc) CPUs), accounting on; state in $DIR"
}

stop_pid() {  # stop_pid <name> <pid file>: TERM, wait for exit, KILL after 30 s
  local name=$1 file=$2 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then log "$name ($pid) ignored TERM; killing"; kill -KILL "$pid" || true; fi
  fi
  rm -f "$file"
  log "stopped $name"
}

stop() {
  stop_pid slurmd "$DIR/run/slurmd.pid"
  stop_pid slurmctld "$DIR/run/slurmctld.pid"
  stop_pid slurmdbd "$DIR/run/slurmdbd.pid"
  stop_pid mariadb "$DIR/mysql-run/mariadb.pid"
  # munged only if this script started it (its copy of the pid file says so).
  if [ -s "$DIR/run/munged.pid" ]; then stop_pid munged "$DIR/run/munged.pid"; rm -f /run/munge/munged.pid; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) node_idle && log "up" || { log "down"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
