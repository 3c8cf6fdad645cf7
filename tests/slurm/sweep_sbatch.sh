#!/usr/bin/env bash
# `sbatch slurm/sweep.sbatch` on a real single-node Slurm, CPU mode (coordinator + 2 worker ranks under
# srun --mpi=pmix): the job ends COMPLETED and the store holds every job done, each with its result.
# Usage: sweep_sbatch.sh E2E_BINARY [WORK_DIR]; exit 77 (skipped) without root or Slurm.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
start_cluster
cd "$WORK" || exit 1
make_config sweep.yaml 2 4

job=$("${SWEEP_SBATCH[@]}" --output=sweep-%j.out "$REPO/slurm/sweep.sbatch" sweep.yaml --folds 0 \
  --loader-threads 1)
log "submitted sweep job $job"
wait_state "$job" "COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY" 300
[[ $(job_field "$job" JobState) == COMPLETED ]] || fail "job $job ended $(job_field "$job" JobState)"
[[ $(job_field "$job" ExitCode) == 0:0 ]] || fail "job $job exit code $(job_field "$job" ExitCode)"
grep -q "1 coordinator + 1 node(s) x 2 CPU worker(s)" "sweep-$job.out" || fail "unexpected task layout"
grep -q "sweep complete" "sweep-$job.out" || fail "the script did not report completion"
jobs=$(expect_all_done e2e.db)
[[ $jobs == 2 ]] || fail "expected 2 jobs (fold 0 x 2 sparsities), got $jobs"
[[ $(q e2e.db "select count(distinct worker_group) from jobs") == 2 ]] || fail "both worker groups should train"
log "PASS: sweep.sbatch COMPLETED, $jobs jobs done ($WORK)"
