#!/usr/bin/env bash
# Time limits on a real Slurm: `--time=1 --signal=B:USR1@20` gives every allocation a minute and warns the
# batch shell about 20-50 s before the end (Slurm checks every 30 s). Each warning makes the sweep
# checkpoint and exit 3, sweep.sbatch requeues the job, and the chain of allocations carries the sweep to
# the end: COMPLETED after several starts, every job done, no attempt used, nothing trained from scratch
# twice. Usage: time_limit_requeue.sh E2E_BINARY [WORK_DIR]; exit 77 (skipped) without root or Slurm.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
start_cluster
cd "$WORK" || exit 1
# About twice as much training as one allocation holds on a small machine.
make_config sweep.yaml "${E2E_SLURM_TIME_LIMIT_EPOCHS:-30}" 10

job=$("${SWEEP_SBATCH[@]}" --time=1 --signal=B:USR1@20 --output=sweep-%j.out "$REPO/slurm/sweep.sbatch" \
  sweep.yaml --folds 0 --loader-threads 1)
log "submitted sweep job $job (time limit 1 min, USR1 20 s before)"
wait_state "$job" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL" 800
state=$(job_field "$job" JobState)
restarts=$(job_field "$job" Restarts)
log "job $job: $state after $((restarts + 1)) allocation(s)"
[[ $state == COMPLETED ]] || fail "job $job ended $state"
((restarts >= 1)) || fail "the sweep fit into one allocation: nothing was carried over (raise the epochs)"
((restarts <= 15)) || fail "$restarts requeues: the chain makes too little progress per allocation"
warned=$(grep -c "SIGUSR1: forwarding to the sweep" "sweep-$job.out" || true)
requeued=$(grep -c "preempted (exit 3, signal USR1): requeueing job $job" "sweep-$job.out" || true)
((warned >= restarts && requeued == restarts)) ||
  fail "expected one USR1 warning and one exit-3 requeue per allocation but the last ($warned, $requeued)"
grep -q "start (restart ${restarts})" "sweep-$job.out" || fail "the last start is missing from the log"
expect_all_done e2e.db >/dev/null
(($(q e2e.db "select count(*) from events where kind = 'preempted'") >= restarts)) ||
  fail "every allocation but the last should end with preempted jobs"
(($(q e2e.db "select count(*) from events where kind = 'resumed'") >= 1)) || fail "no job resumed"
[[ $(q e2e.db "select max(attempts) from jobs") == 0 ]] || fail "time limits used an attempt"
# Worker ranks log to their job folders (worker.log), one line per start from scratch.
for dir in $(find "$WORK" -name worker.log -exec cat {} + | grep -o "no checkpoint in [^:]*" | sort | uniq -d); do
  fail "$dir started from scratch twice"
done
log "PASS: $((restarts + 1)) allocations carried the sweep to the end ($WORK)"
