#!/usr/bin/env bash
# Preemption on a real Slurm: `scancel --signal=USR1 --batch` (the batch shell only; its trap forwards the
# signal to the srun step) and `scancel --signal=USR1 --full` (the shell and every task) during training.
# Every worker rank checkpoints, the sweep exits 3, sweep.sbatch requeues the job (Restarts in `scontrol
# show job`), and the rerun finishes: jobs preempted then resumed, no job restarted from scratch, no attempt
# used, and the same final weights and metrics as an uninterrupted run.
# Usage: preempt_requeue.sh E2E_BINARY [WORK_DIR]; exit 77 (skipped) without root or Slurm.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
start_cluster
cd "$WORK" || exit 1
make_config sweep.yaml 4 6

run_sweep() {  # NAME → prints the job id; the store and job folders under NAME/
  mkdir -p "$1"
  E2E_DB=$WORK/$1/e2e.db "${SWEEP_SBATCH[@]}" --output="$WORK/$1.out" "$REPO/slurm/sweep.sbatch" sweep.yaml \
    --folds 0 --loader-threads 1
}

log "uninterrupted reference run"
job=$(run_sweep straight)
wait_state "$job" "COMPLETED|FAILED|CANCELLED|TIMEOUT" 300
[[ $(job_field "$job" JobState) == COMPLETED ]] || fail "reference job $job ended $(job_field "$job" JobState)"
expect_all_done straight/e2e.db >/dev/null
reference=$(outcome_of straight/e2e.db)
echo "$reference"

preempt() {  # NAME SCANCEL_MODE
  local name=$1 mode=$2 db=$WORK/$1/e2e.db
  log "== $name: scancel --signal=USR1 $mode during training"
  local job
  job=$(run_sweep "$name")
  # Both worker ranks are training: each job has written a checkpoint and is still running.
  wait_count "$db" "select count(distinct job_id) from events where kind = 'checkpointed'" 2 240
  [[ $(q "$db" "select count(*) from jobs where status = 'running'") == 2 ]] ||
    fail "$name: both jobs should still be training when signalled (raise epochs)"
  scancel --signal=USR1 "$mode" "$job"
  local deadline=$((SECONDS + 120))
  until (($(job_field "$job" Restarts) >= 1)); do
    ((SECONDS < deadline)) || fail "$name: job $job was not requeued within 120 s"
    sleep 1
  done
  log "$name: job $job requeued (Restarts=$(job_field "$job" Restarts))"
  wait_state "$job" "COMPLETED|FAILED|CANCELLED|TIMEOUT" 300
  [[ $(job_field "$job" JobState) == COMPLETED ]] || fail "$name: job $job ended $(job_field "$job" JobState)"
  ((  $(job_field "$job" Restarts) == 1 )) || fail "$name: expected exactly one requeue"

  grep -q "SIGUSR1: forwarding to the sweep" "$name.out" || fail "$name: the batch shell did not forward USR1"
  grep -q "preempted (exit 3, signal USR1): requeueing job $job" "$name.out" ||
    fail "$name: the step did not exit 3 after USR1 (see $name.out)"
  grep -q "start (restart 1)" "$name.out" || fail "$name: the requeued job did not start again"
  expect_all_done "$db" >/dev/null
  [[ $(q "$db" "select count(distinct job_id) from events where kind = 'preempted'") == 2 ]] ||
    fail "$name: every worker rank's job should be preempted"
  # Each preempted job resumed from its checkpoint afterwards.
  [[ $(q "$db" "select count(*) from jobs j where exists (select 1 from events p join events r
        on r.job_id = p.job_id and r.id > p.id where p.job_id = j.id and p.kind = 'preempted'
        and r.kind = 'resumed')") == 2 ]] || fail "$name: a preempted job has no later 'resumed' event"
  [[ $(q "$db" "select max(attempts) from jobs") == 0 ]] || fail "$name: preemption used an attempt"
  local dir
  # Worker ranks log to their job folders (worker.log), one line per start from scratch.
  for dir in $(find "$WORK/$name" -name worker.log -exec cat {} + | grep -o "no checkpoint in [^:]*" | sort | uniq -d); do
    fail "$name: $dir started from scratch twice"
  done
  local outcome
  outcome=$(outcome_of "$db")
  [[ "$outcome" == "$reference" ]] || fail "$name: results differ from the uninterrupted run:
$outcome
vs
$reference"
  q "$db" "select j.fold, j.sparsity, e.kind from events e join jobs j on j.id = e.job_id
           where e.kind in ('preempted', 'resumed', 'done') order by e.id" | tr '\n' ' '
  echo
}

preempt batch --batch
preempt full --full
log "PASS: USR1 (--batch and --full) → checkpoint, exit 3, requeue, resume; same results ($WORK)"
