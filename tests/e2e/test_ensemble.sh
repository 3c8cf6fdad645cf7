#!/usr/bin/env bash
# The paper's protocol end to end under mpirun -np 3: 5-fold CV on the training cases, then a fold ensemble
# on the held-out test cases (data.test_cases) with post-processing decided on the CV predictions, then both
# tables. A kill -9 of the worker running the ensemble, then the same command again, must finish without
# re-predicting the test cases already done. Usage: test_ensemble.sh E2E_BINARY [WORK_DIR]
set -euo pipefail
E2E=$(realpath "$1")
WORK=${2:-$(mktemp -d /tmp/e2e_test_ensemble.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun -np 3)

fail() { echo "FAIL: $*" >&2; exit 1; }
q() { sqlite3 -readonly "$1" "$2"; }

"$E2E" synth --out data --cases 14 --shape 32,64,64 --seed 3 >/dev/null 2>&1
cat > sweep.yaml <<'YAML'
experiment: protocol
model: {levels: 4, base_channels: 8, max_channels: 32, in_channels: 1, num_classes: 3,
        pools: [[1, 2, 2], [2, 2, 2], [2, 2, 2]]}
sparsity: {levels: [0.8], update_interval: 3}
training: {epochs: 2, iterations_per_epoch: 4, batch_size: 2, patch_size: [16, 32, 32], validation_batches: 1,
           checkpoint_every_epochs: 1, precision: fp32, threads: 1}
data: {dataset: data, test_cases: [synth_002, synth_005, synth_007, synth_011, synth_013, synth_014]}
eval: {postprocessing: auto}
sweep: {folds: [0, 1, 2, 3, 4], max_attempts: 2}
YAML

echo "== 1. sweep: 5 training jobs, then the test ensemble; killed once the ensemble has finished a case"
"${MPIRUN[@]}" "$E2E" sweep --config sweep.yaml --db e2e.db --loader-threads 1 > run1.log 2>&1 &
launcher=$!
for _ in $(seq 1 6000); do
  [[ -f e2e.db ]] && [[ $(q e2e.db "select count(*) from events where message like 'test case %'" 2>/dev/null || echo 0) -ge 1 ]] && break
  kill -0 $launcher 2>/dev/null || break
  sleep 0.05
done
group=$(q e2e.db "select worker_group from jobs where kind='ensemble' and status='running'")
[[ -n "$group" ]] || { tail -30 run1.log; fail "the ensemble job never ran (or finished before the kill)"; }
victim=""
for pid in $(pgrep -f "e2e sweep --config sweep.yaml --db e2e.db"); do
  rank=$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
  [[ "$rank" == $((group + 1)) ]] && victim=$pid
done
[[ -n "$victim" ]] || fail "no rank of worker group $group to kill"
kill -9 "$victim"
set +e; wait $launcher; set -e
done_before=$(ls runs/protocol/test_s0.8_seed0/cases | wc -l)
(( done_before >= 1 )) || fail "no finished test case before the kill"
first=$(ls runs/protocol/test_s0.8_seed0/cases | head -1 | sed 's/.json$//')
stamp=$(stat -c %Y.%N "runs/protocol/test_s0.8_seed0/predictions/$first.nii.gz")

echo "== 2. the same command again: finishes, without re-predicting the $done_before finished case(s)"
"${MPIRUN[@]}" "$E2E" sweep --config sweep.yaml --db e2e.db --loader-threads 1 > run2.log 2>&1 || { tail -30 run2.log; fail "rerun"; }
[[ $(q e2e.db "select count(*) from jobs where status='done' and kind='train'") == 5 ]] || fail "5 training jobs done"
[[ $(q e2e.db "select count(*) from jobs where status='done' and kind='ensemble'") == 1 ]] || fail "ensemble done"
grep -q "$done_before case(s) finished by an earlier run" runs/protocol/test_s0.8_seed0/worker.log ||
  { grep "test ensemble" runs/protocol/test_s0.8_seed0/worker.log; fail "finished cases were not reused"; }
[[ $(stat -c %Y.%N "runs/protocol/test_s0.8_seed0/predictions/$first.nii.gz") == "$stamp" ]] || fail "$first was predicted again"
[[ $(q e2e.db "select count(*) from events e join jobs j on j.id = e.job_id where j.kind='ensemble' and e.kind='interrupted'") -ge 1 ]] \
  || fail "the killed ensemble job has no interrupted event"

echo "== 3. the store: test metrics with and without post-processing, the decision, both tables"
[[ $(q e2e.db "select cases_total || '/' || cases_scored from results where split='test'") == "6/6" ]] || fail "6 test cases scored"
[[ $(q e2e.db "select count(distinct case_id) from case_metrics where split='test' and postprocessed=1") == 6 ]] || fail "post-processed test rows"
[[ $(q e2e.db "select count(distinct case_id) from case_metrics where split='test' and postprocessed=0") == 6 ]] || fail "raw test rows"
q e2e.db "select postprocessing from results where split='test'" | grep -q largest_component_classes || fail "no decision stored"
[[ $(q e2e.db "select count(*) from case_metrics where split='cv' and case_id in ('synth_002','synth_005')") == 0 ]] \
  || fail "a held-out case was validated in a fold"
"$E2E" db table --db e2e.db --experiment protocol --per-class > test_table.md
"$E2E" db table --db e2e.db --experiment protocol --split cv > cv_table.md
cat test_table.md cv_table.md
grep -q "held-out test set" test_table.md || fail "the default table is not the test table"
grep -q "6 of 6 test predictions scored" test_table.md || fail "the test table does not say how many cases were scored"
grep -q "cross-validation" cv_table.md || fail "--split cv"
echo "test_ensemble: OK"
