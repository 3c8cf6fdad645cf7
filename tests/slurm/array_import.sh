#!/usr/bin/env bash
# `sbatch slurm/array.sbatch` on a real Slurm, CPU mode: one array task per (fold, sparsity) cell, the first
# task submits the dependent import job (afterany), which imports every cell's bundle into the store. One
# cell is made to fail (its job folder path is taken by a file): its bundle records the error,
# slurm/failed_cells.sh lists it as --array=1, and resubmitting that cell alone completes the store.
# Usage: array_import.sh E2E_BINARY [WORK_DIR]; exit 77 (skipped) without root or Slurm.
# shellcheck source=tests/slurm/lib.sh
source "$(dirname "$0")/lib.sh"
start_cluster
cd "$WORK" || exit 1
make_config cells.yaml 2 4
# Cells that start together would each preprocess the shared dataset and race on its store
# (data_preprocessed/cases.h5: "cannot rename into place"): preprocess once before the array, as a site's
# pipeline does (a preprocess job, then the array with --dependency=afterok).
"$E2E" preprocess --dataset data --out data_preprocessed --config cells.yaml >preprocess.log 2>&1 ||
  fail "e2e preprocess (see $WORK/preprocess.log)"
export E2E_FOLDS="0 1" E2E_SPARSITIES="0.5"
DB=$WORK/results/e2e.db

# The import job this array's first task submitted (from the task logs).
import_job_of() {
  local array=$1 out id=""
  for out in e2e-cell-"${array}"_*.out; do
    id=$(sed -n 's/.*import job \([0-9]*\) runs after the array.*/\1/p' "$out" 2>/dev/null | head -n 1)
    [[ -n $id ]] && break
  done
  echo "$id"
}

run_array() {  # ARRAY_SPEC → waits for the array and its import job; prints the import job id
  local array import
  array=$(sbatch --parsable --gpus-per-node=0 --cpus-per-task=1 --array="$1" "$REPO/slurm/array.sbatch" cells.yaml)
  log "array job $array (--array=$1)" >&2
  local deadline=$((SECONDS + 300))
  until [[ -n $(import_job_of "$array") ]]; do
    ((SECONDS < deadline)) || fail "array $array: no task submitted the import job"
    sleep 1
  done
  import=$(import_job_of "$array")
  [[ $(job_field "$import" Dependency) =~ afterany:${array}(_\*)?|\(null\) ]] ||
    fail "import job $import should depend on afterany:$array, has $(job_field "$import" Dependency)"
  wait_state "$import" "COMPLETED|FAILED|CANCELLED" 300
  [[ $(job_field "$import" JobState) == COMPLETED ]] || fail "import job $import ended $(job_field "$import" JobState)"
  # afterany: the import started only after every task had ended.
  local task
  for task in $(squeue --noheader --array --jobs="$array" --format=%i 2>/dev/null); do
    fail "array task $task still queued or running after the import"
  done
  echo "$import"
}

log "== the array: cell 0 trains, cell 1 fails (its job folder path is a file)"
mkdir -p results/cells
touch results/cells/fold1_s0.5
import=$(run_array 0-1)
log "import job $import done"
grep -q "imported .*fold0_s0.5" "e2e-import-"*.out || fail "cell 0's bundle was not imported"
grep -q "imported .*fold1_s0.5" "e2e-import-"*.out || fail "cell 1's failed bundle was not imported"
grep -q "2 of 2 bundles imported" "e2e-import-"*.out || fail "the import job should import both bundles"
[[ $(q "$DB" "select status from jobs where fold = 0") == "done" ]] || fail "cell 0 is not done in the store"
[[ $(q "$DB" "select status from jobs where fold = 1") == failed ]] || fail "cell 1 should be failed"
[[ -n $(q "$DB" "select error from jobs where fold = 1") ]] || fail "cell 1's error is not in the store"

cells=$("$REPO/slurm/failed_cells.sh" "$DB")
[[ $cells == "--array=1" ]] || fail "failed_cells.sh printed '$cells', expected --array=1"

log "== resubmit the failed cell alone ($cells)"
rm results/cells/fold1_s0.5
rm -f "e2e-import-"*.out
import=$(run_array "${cells#--array=}")
log "import job $import done"
grep -q "imported .*fold1_s0.5" e2e-import-*.out || fail "the resubmitted cell's bundle was not imported"
grep -q "skipped .*fold0_s0.5" e2e-import-*.out || fail "cell 0's bundle should be skipped the second time"
cell0_logs=(e2e-cell-*_0.out)
((${#cell0_logs[@]} == 1)) || fail "cell 0 ran again"
jobs=$(expect_all_done "$DB")
[[ $jobs == 2 ]] || fail "expected 2 jobs in the store, got $jobs"
if "$REPO/slurm/failed_cells.sh" "$DB" 2>/dev/null; then fail "failed_cells.sh should find nothing left"; fi
log "PASS: array cells imported by the dependent job; the failed cell resubmitted alone ($WORK)"
