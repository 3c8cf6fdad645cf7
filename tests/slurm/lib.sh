# shellcheck shell=bash
# Shared by the Slurm tests (sourced): a private single-node cluster (cluster.sh) for the test's lifetime,
# synthetic data, a tiny variant of configs/synthetic.yaml, and job/store queries.
# Usage in a test: source lib.sh "$@"   (arguments: E2E_BINARY [WORK_DIR])
set -euo pipefail

SLURM_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SLURM_TESTS/../.." && pwd)
E2E=$(realpath "${1:?usage: $0 E2E_BINARY [WORK_DIR]}")
WORK=${2:-$(mktemp -d /tmp/e2e_slurm.XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
chmod 0755 "$WORK"  # mktemp's 0700 would keep the munge user from its socket in $WORK/cluster/munge
export E2E

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
log() { echo "[$(date -u +%T)] $*"; }
q() { sqlite3 -readonly "$1" "$2"; }

# --- the cluster -------------------------------------------------------------------------------------------

stop_cluster() {
  local code=$?
  if ((code != 0 && code != 77)); then
    echo "--- slurmctld log (tail) ---" >&2
    tail -n 15 "$WORK/cluster/log/slurmctld.log" >&2 2>/dev/null || true
    local out
    for out in "$WORK"/*.out; do
      [[ -f $out ]] || continue
      echo "--- $out (tail) ---" >&2
      tail -n 25 "$out" >&2
    done
  fi
  "$SLURM_TESTS/cluster.sh" down "$WORK/cluster" || true
  exit "$code"
}

start_cluster() {
  local exports code=0
  exports=$("$SLURM_TESTS/cluster.sh" up "$WORK/cluster" $$) || code=$?
  ((code == 77)) && exit 77
  ((code == 0)) || fail "the Slurm cluster did not come up (logs in $WORK/cluster/log)"
  trap stop_cluster EXIT
  eval "$exports"
  srun --mpi=list 2>&1 | grep -qw pmix || fail "srun --mpi=list does not list pmix"
  log "cluster up: $(sinfo --noheader --format='%P %a %D %t %c CPUs') (SLURM_CONF=$SLURM_CONF)"
}

# --- data and config ---------------------------------------------------------------------------------------

# configs/synthetic.yaml with seconds instead of minutes of training per job: EPOCHS epochs of ITERATIONS
# iterations, one validation batch, a topology update every 3 iterations; the data and the store in WORK;
# no held-out test cases (these tests count training jobs; the test-set stage is tested in tests/e2e).
make_config() {
  local out=$1 epochs=$2 iterations=$3
  [[ -d $WORK/data ]] || "$E2E" synth --out "$WORK/data" --cases 10 --shape 16,32,32 --seed 1 >/dev/null 2>&1
  sed -e "s|^experiment: .*|experiment: slurm-test|" \
    -e "s|^  epochs: .*|  epochs: ${epochs}|" \
    -e "s|^  iterations_per_epoch: .*|  iterations_per_epoch: ${iterations}|" \
    -e "s|^  validation_batches: .*|  validation_batches: 1|" \
    -e "s|^  update_interval: .*|  update_interval: 3|" \
    -e "s|^  dataset: .*|  dataset: ${WORK}/data|" \
    -e "s|^  path: demo/e2e.db|  path: ${WORK}/e2e.db|" \
    -e "/^  test_cases:/d" \
    "$REPO/configs/synthetic.yaml" >"$out"
  if ! grep -q "epochs: ${epochs}$" "$out" || ! grep -q "dataset: ${WORK}/data" "$out"; then
    fail "configs/synthetic.yaml changed shape: could not derive the test config"
  fi
}

# --- jobs --------------------------------------------------------------------------------------------------

# One field of `scontrol show job` (JobState, Restarts, ExitCode, ...); empty when the job is unknown.
job_field() {
  scontrol show job "$1" --oneliner 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# Wait until the job's state matches the regex, at most SECONDS; fail otherwise.
wait_state() {
  local job=$1 pattern=$2 seconds=$3 state=""
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    state=$(job_field "$job" JobState)
    [[ $state =~ ^($pattern)$ ]] && return 0
    sleep 1
  done
  fail "job $job: state ${state:-unknown} after ${seconds} s, expected $pattern"
}

# Wait until the SQL count is at least N, at most SECONDS.
wait_count() {
  local db=$1 sql=$2 n=$3 seconds=$4 count=0
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    count=$(q "$db" "$sql" 2>/dev/null || echo 0)
    ((${count:-0} >= n)) && return 0
    sleep 0.5
  done
  fail "after ${seconds} s: '$sql' is ${count}, expected >= $n"
}

# shellcheck disable=SC2034  # used by the tests that source this file
# The sweep in CPU mode on this 2-CPU node: the coordinator and 2 worker ranks (one overcommitted CPU).
SWEEP_SBATCH=(sbatch --parsable --gpus-per-node=0 --ntasks-per-node=2 --cpus-per-task=1)
export E2E_CPU_WORKERS=2 E2E_STATUS_PORT=off

# Every job of the store done, each with one result; prints the count.
expect_all_done() {
  local db=$1 jobs
  jobs=$(q "$db" "select count(*) from jobs")
  ((jobs > 0)) || fail "$db holds no jobs"
  [[ $(q "$db" "select count(*) from jobs where status = 'done'") == "$jobs" ]] ||
    fail "$db: not every job is done: $(q "$db" "select fold, sparsity, status from jobs")"
  [[ $(q "$db" "select count(*) from results") == "$jobs" ]] || fail "$db: expected $jobs results"
  echo "$jobs"
}

# Per job: fold, sparsity, seed, the results' metrics and the final checkpoint's state hash (weights,
# momentum, topology). Equal across runs means the same training outcome.
outcome_of() {
  local db=$1 fold sparsity seed mdice mnsd path
  q "$db" "select j.fold, j.sparsity, j.seed, printf('%.17g', r.mdice), printf('%.17g', r.mnsd), j.checkpoint_path
           from jobs j join results r on r.job_id = j.id order by j.fold, j.sparsity, j.seed" |
    while IFS='|' read -r fold sparsity seed mdice mnsd path; do
      echo "$fold $sparsity $seed $mdice $mnsd $(checkpoint_state "$path")"
    done
}

checkpoint_state() {
  python3 - "$1" <<'PY'
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'E2ECKPT1', sys.argv[1]
n = struct.unpack('<Q', data[8:16])[0]
meta = json.loads(data[16:16 + n])
print(meta['iteration'], meta['state_sha256'])
PY
}
