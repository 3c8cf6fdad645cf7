#!/usr/bin/env bash
# End-to-end checks of `e2e sweep` under mpirun -np 3 (coordinator + 2 worker groups) on synthetic data:
# a full 5-fold × 2-sparsity sweep, a kill -9 of a worker mid-sweep followed by a rerun, and a SIGUSR1
# preemption followed by a rerun. Usage: sweep_e2e.sh E2E_BINARY [WORK_DIR]
set -euo pipefail
E2E=$(realpath "$1")
WORK=${2:-$(mktemp -d /tmp/e2e_sweep_e2e.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN=(mpirun -np 3)

fail() { echo "FAIL: $*" >&2; exit 1; }
q() { sqlite3 -readonly "$1" "$2"; }

"$E2E" synth --out data --cases 10 --shape 16,32,32 --seed 1 >/dev/null 2>&1
cat > sweep.yaml <<'YAML'
experiment: e2e-test
model: {levels: 4, base_channels: 8, max_channels: 32, in_channels: 1, num_classes: 3,
        pools: [[1, 2, 2], [2, 2, 2], [2, 2, 2]]}
sparsity: {levels: [0.5, 0.8], update_interval: 3}
training: {epochs: 3, iterations_per_epoch: 4, batch_size: 2, patch_size: [16, 32, 32], validation_batches: 1,
           checkpoint_every_epochs: 1, precision: fp32, threads: 1}
data: {dataset: data}
sweep: {folds: [0, 1, 2, 3, 4], max_attempts: 2}
YAML

echo "== 1. full sweep: 5 folds x 2 sparsities, mpirun -np 3"
"${MPIRUN[@]}" "$E2E" sweep --config sweep.yaml --db full/e2e.db --loader-threads 1 > full.log 2>&1 || { tail -30 full.log; fail "sweep exited $?"; }
[[ $(q full/e2e.db "select count(*) from jobs where status='done'") == 10 ]] || fail "expected 10 done jobs"
[[ $(q full/e2e.db "select count(*) from results") == 10 ]] || fail "expected 10 results"
[[ $(q full/e2e.db "select count(distinct job_id) from case_metrics") == 10 ]] || fail "case metrics missing"
[[ $(q full/e2e.db "select count(distinct job_id) from masks") == 10 ]] || fail "topologies missing"
"$E2E" db table --db full/e2e.db --experiment e2e-test --per-class > table.md 2>&1 || { cat table.md; fail "db table"; }
cat table.md
[[ $(ls full/runs/e2e-test/fold*/learning_curve.png | wc -l) == 10 ]] || fail "every job folder needs its learning_curve.png"
[[ $(ls full/runs/e2e-test/fold*/worker.log | wc -l) == 10 ]] || fail "every job folder needs its worker.log"
grep -q $'\r' full.log && fail "bar frames (carriage returns) in the coordinator's log file"
for column in Method mDice mNSD "Params (M)" "FLOPs (G)" PT "ms/patch"; do grep -q "$column" table.md || fail "table lacks $column"; done
[[ $(grep -c "E2ENet (s=0." table.md) == 2 ]] || fail "table should have one row per sparsity"

echo "== 2. kill -9 of a worker mid-sweep, then the same command again"
"${MPIRUN[@]}" "$E2E" sweep --config sweep.yaml --db crash/e2e.db --loader-threads 1 > crash1.log 2>&1 &
launcher=$!
for _ in $(seq 1 600); do
  [[ -f crash/e2e.db ]] && [[ $(q crash/e2e.db "select count(*) from events where kind='checkpointed'" 2>/dev/null || echo 0) -ge 3 ]] && break
  sleep 0.1
done
victim=""
for pid in $(pgrep -f "e2e sweep --config sweep.yaml --db crash"); do
  rank=$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
  [[ "$rank" == 1 ]] && victim=$pid
done
[[ -n "$victim" ]] || fail "no worker rank to kill"
kill -9 "$victim"
start=$(date +%s)
set +e; wait $launcher; code=$?; set -e
(( $(date +%s) - start <= 60 )) || fail "the run did not end within 60 s of the kill"
(( code != 0 )) || fail "the killed run exited 0"
with_checkpoint=$(find crash/runs -name checkpoint.ckpt | xargs -r -n1 dirname | sort)
"${MPIRUN[@]}" "$E2E" sweep --config sweep.yaml --db crash/e2e.db --loader-threads 1 > crash2.log 2>&1 || { tail -30 crash2.log; fail "rerun after crash"; }
[[ $(q crash/e2e.db "select count(*) from jobs where status='done'") == 10 ]] || fail "rerun did not finish every job"
[[ $(q crash/e2e.db "select count(*) from results") == 10 ]] || fail "every job needs exactly one result"
[[ $(q crash/e2e.db "select count(*) from events where kind='interrupted'") -ge 1 ]] || fail "no interrupted event"
[[ $(q crash/e2e.db "select count(*) from events where kind='resumed'") -ge 1 ]] || fail "no resumed event"
# Worker ranks log to their job folder (worker.log, appended by every run): no start from scratch after a
# checkpoint was written there. The coordinator's log stays free of worker lines.
for dir in $with_checkpoint; do
  [[ -f $dir/worker.log ]] || fail "$dir has no worker.log"
  awk '/checkpoint at iteration/ { seen = 1 } /starting from scratch/ && seen { bad = 1 } END { exit !bad }' \
    "$dir/worker.log" && fail "$dir restarted from scratch although it had a checkpoint"
done
grep -q "starting from scratch\|checkpoint at iteration [0-9]* →" crash1.log crash2.log full.log &&
  fail "worker lines in the coordinator's log"
grep -q $'\e\[' full.log crash1.log && fail "colour codes in the coordinator's log file"
done_before=$(grep -c "job .* done" crash1.log || true)
echo "crash: $done_before job(s) done before the kill, $(echo "$with_checkpoint" | grep -c . || true) job folder(s) with checkpoints"

echo "== 3. SIGUSR1 to the run: exit code 3, jobs preempted, rerun completes"
"${MPIRUN[@]}" "$E2E" sweep --config sweep.yaml --db preempt/e2e.db --loader-threads 1 > preempt1.log 2>&1 &
launcher=$!
for _ in $(seq 1 600); do
  [[ -f preempt/e2e.db ]] && [[ $(q preempt/e2e.db "select count(*) from events where kind='checkpointed'" 2>/dev/null || echo 0) -ge 2 ]] && break
  sleep 0.1
done
kill -USR1 $launcher
start=$(date +%s)
set +e; wait $launcher; code=$?; set -e
(( $(date +%s) - start <= 60 )) || fail "no exit within 60 s of SIGUSR1"
[[ $code == 3 ]] || { tail -20 preempt1.log; fail "expected exit code 3, got $code"; }
[[ $(q preempt/e2e.db "select count(*) from jobs where status='preempted'") -ge 1 ]] || fail "no preempted job"
[[ $(q preempt/e2e.db "select count(*) from jobs where status='failed'") == 0 ]] || fail "preemption counted as failure"
"${MPIRUN[@]}" "$E2E" sweep --config sweep.yaml --db preempt/e2e.db --loader-threads 1 > preempt2.log 2>&1 || { tail -30 preempt2.log; fail "rerun after preemption"; }
[[ $(q preempt/e2e.db "select count(*) from jobs where status='done'") == 10 ]] || fail "rerun after preemption did not finish"
[[ $(q preempt/e2e.db "select max(attempts) from jobs") == 0 ]] || fail "preemption used an attempt"

echo "PASS: sweep end-to-end ($WORK)"
