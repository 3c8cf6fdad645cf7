#!/usr/bin/env bash
# A throwaway single-node Slurm for the tests in this folder: munged (as the munge user), slurmctld and
# slurmd (as root), with their key, config, state, spool, logs and sockets in one folder.
#
#   tests/slurm/cluster.sh up DIR [OWNER_PID]
#                                     start; prints `export SLURM_CONF=DIR/slurm.conf`; exit 77 when it cannot
#                                     run here (not root, or the Debian packages are missing). With OWNER_PID,
#                                     a watcher takes the cluster down once that process has ended.
#   tests/slurm/cluster.sh down DIR   stop exactly the daemons `up` started (by their recorded pids)
#
# Slurm settings the tests rely on (slurm/README.md explains them for a site): one node with 2 CPUs,
# select/cons_tres, proctrack/linuxproc, task/none (no cgroups in a container), MpiDefault=pmix and
# JobRequeue=1. Ports are picked free at start, so a second cluster (or a site's own) does not collide.
set -euo pipefail

readonly SKIP=77
readonly NODE=e2enode
# A requeued job waits cred_expire seconds before it may start again (default 120): short for the tests.
readonly CRED_EXPIRE_SECONDS=10

say() { echo "[cluster.sh] $*" >&2; }

check_prerequisites() {
  if [[ $(id -u) -ne 0 ]]; then
    say "skipped: needs root (munged runs as the munge user, slurmctld and slurmd as root)"
    exit $SKIP
  fi
  local tool
  for tool in munged mungekey slurmctld slurmd sbatch srun sinfo scontrol; do
    command -v "$tool" >/dev/null || {
      say "skipped: $tool missing (scripts/setup installs munge, slurmctld, slurmd, slurm-client)"
      exit $SKIP
    }
  done
  id munge >/dev/null 2>&1 || { say "skipped: no munge user (Debian's munge package creates it)"; exit $SKIP; }
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_config() {
  local dir=$1 host
  host=$(hostname -s)
  local controller_port node_port
  controller_port=$(free_port)
  node_port=$(free_port)
  while [[ $node_port == "$controller_port" ]]; do node_port=$(free_port); done
  # Job ids name per-job files outside DIR (the pmix plugin's /tmp folders): distinct ids per cluster.
  local first_job_id=$((1000 + RANDOM * 30))
  cat >"$dir/slurm.conf" <<CONF
ClusterName=e2etest
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${controller_port}
SlurmdPort=${node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${dir}/munge/munge.socket,cred_expire=${CRED_EXPIRE_SECONDS}
CredType=cred/munge
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool/%n
SlurmctldPidFile=${dir}/run/slurmctld.pid
SlurmdPidFile=${dir}/run/slurmd-%n.pid
SlurmctldLogFile=${dir}/log/slurmctld.log
SlurmdLogFile=${dir}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
JobRequeue=1
FirstJobId=${first_job_id}
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
KillWait=10
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=${NODE} NodeHostname=${host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  local dir=$1
  mkdir -p "$dir/munge"
  mungekey --create --keyfile="$dir/munge/munge.key" --force >/dev/null 2>&1 ||
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chown -R munge:munge "$dir/munge"
  chmod 0755 "$dir/munge"  # munged wants its socket folder reachable by every client
  chmod 0600 "$dir/munge/munge.key"
  runuser -u munge -- test -x "$dir/munge" || {
    say "the munge user cannot reach $dir/munge: every folder above it must be world-searchable (chmod 755)"
    return 1
  }
  runuser -u munge -- munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
    </dev/null >>"$dir/log/munged.out" 2>&1
  wait_for "munged" 10 test -S "$dir/munge/munge.socket"
  cp "$dir/munge/munged.pid" "$dir/run/munged.pid"
}

wait_for() {
  local what=$1 seconds=$2
  shift 2
  local tries=$((seconds * 10))
  while ((tries-- > 0)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  say "$what did not come up within ${seconds} s"
  return 1
}

node_idle() {
  [[ $(sinfo --noheader --nodes="$NODE" --format=%t 2>/dev/null) == idle ]]
}

up() {
  local dir=$1 owner=${2:-}
  check_prerequisites
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 0755 "$dir"  # the munge user reaches its socket below it
  mkdir -p "$dir"/{state,spool,run,log}
  write_config "$dir"
  export SLURM_CONF=$dir/slurm.conf
  start_munge "$dir"
  # The daemons must not inherit our stdout: a caller reading it ($(...), ctest) would wait for them.
  slurmctld -f "$SLURM_CONF" </dev/null >>"$dir/log/slurmctld.out" 2>&1
  wait_for "slurmctld" 20 test -s "$dir/run/slurmctld.pid"
  slurmd -f "$SLURM_CONF" -N "$NODE" </dev/null >>"$dir/log/slurmd.out" 2>&1
  wait_for "slurmd" 20 test -s "$dir/run/slurmd-$NODE.pid"
  if ! wait_for "node $NODE idle" 30 node_idle; then
    sinfo -N -l >&2 || true
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd-$NODE.log" >&2 || true
    down "$dir"
    exit 1
  fi
  [[ -n $owner ]] && watch_owner "$dir" "$owner"
  echo "export SLURM_CONF=$SLURM_CONF"
}

# Takes the cluster down when the owner process ends without doing so (a test killed at its timeout).
watch_owner() {
  local dir=$1 owner=$2
  # shellcheck disable=SC2016  # expanded by the watcher shell
  setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; "$2" down "$3"' watcher "$owner" \
    "$(realpath "$0")" "$dir" </dev/null >>"$dir/log/watcher.out" 2>&1 &
  echo $! >"$dir/run/watcher.pid"
}

stop_pid_file() {
  local file=$1 pid
  [[ -s $file ]] || return 0
  pid=$(<"$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local tries=100
    while ((tries-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

down() {
  local dir=$1
  [[ -d $dir/run ]] || return 0
  cancel_jobs "$dir"
  stop_pid_file "$dir/run/slurmd-$NODE.pid"
  stop_pid_file "$dir/run/slurmctld.pid"
  stop_pid_file "$dir/run/munged.pid"
  # The watcher may be the one running this: it ends by itself then.
  [[ -s $dir/run/watcher.pid && $(<"$dir/run/watcher.pid") != "$PPID" ]] && stop_pid_file "$dir/run/watcher.pid"
  return 0
}

# Jobs still queued or running (a failed test) end through Slurm, so that no job step outlives slurmd.
cancel_jobs() {
  local dir=$1 jobs
  [[ -s $dir/run/slurmctld.pid ]] && kill -0 "$(<"$dir/run/slurmctld.pid")" 2>/dev/null || return 0
  export SLURM_CONF=$dir/slurm.conf
  jobs=$(squeue --noheader --format=%A 2>/dev/null) || return 0
  [[ -n $jobs ]] || return 0
  # shellcheck disable=SC2086  # one id per word
  scancel $jobs 2>/dev/null || true
  # Cancelled jobs get SIGTERM, then SIGKILL after KillWait; the node is idle once their steps are gone.
  wait_for "the cancelled jobs to end" 30 node_idle || true
}

case "${1:-}" in
  up) up "${2:?usage: cluster.sh up DIR [OWNER_PID]}" "${3:-}" ;;
  down) down "${2:?usage: cluster.sh down DIR}" ;;
  *)
    echo "usage: cluster.sh up DIR [OWNER_PID] | down DIR" >&2
    exit 2
    ;;
esac
