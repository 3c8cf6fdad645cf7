#!/usr/bin/env bash
# Data-parallel `e2e train` under mpirun -np 2: killing one rank mid-training ends the whole run within a
# bounded time, the last checkpoint stays intact, and `--resume` (again with 2 ranks) finishes the job.
# Usage: ddp_kill.sh E2E_BINARY [WORK_DIR]
set -euo pipefail
E2E=$(realpath "$1")
WORK=${2:-$(mktemp -d /tmp/e2e_ddp_kill.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK" && rm -rf data data_preprocessed job
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
fail() { echo "FAIL: $*" >&2; exit 1; }

"$E2E" synth --out data --cases 6 --shape 16,32,32 --seed 2 >/dev/null 2>&1
cat > ddp.yaml <<'YAML'
experiment: ddp-kill
model: {levels: 4, base_channels: 8, max_channels: 32, in_channels: 1, num_classes: 3,
        pools: [[1, 2, 2], [2, 2, 2], [2, 2, 2]]}
sparsity: {update_interval: 5}
training: {epochs: 8, iterations_per_epoch: 6, batch_size: 1, patch_size: [16, 32, 32], validation_batches: 2,
           checkpoint_every_epochs: 1, precision: fp32, threads: 1}
data: {dataset: data}
YAML
"$E2E" preprocess --dataset data --out data_preprocessed --config ddp.yaml >/dev/null 2>&1

mpirun -np 2 "$E2E" train --config ddp.yaml --fold 0 --sparsity 0.5 --out job --loader-threads 1 > run1.log 2>&1 &
launcher=$!
for _ in $(seq 1 900); do grep -q "checkpoint at iteration 12" run1.log 2>/dev/null && break; sleep 0.1; done
grep -q "checkpoint at iteration 12" run1.log || fail "no checkpoint before the kill"
victim=""
for pid in $(pgrep -f "e2e train --config ddp.yaml"); do
  rank=$(tr '\0' '\n' < /proc/$pid/environ 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
  [[ "$rank" == 1 ]] && victim=$pid
done
[[ -n "$victim" ]] || fail "rank 1 not found"
kill -9 "$victim"
start=$(date +%s)
set +e; wait $launcher; code=$?; set -e
elapsed=$(( $(date +%s) - start ))
(( elapsed <= 60 )) || fail "the run took ${elapsed}s to end after the kill"
(( code != 0 )) || fail "the killed run exited 0"
iteration=$(sed -n 's/.*checkpoint at iteration \([0-9]*\).*/\1/p' run1.log | tail -1)
echo "run ended ${elapsed}s after the kill (exit $code); last checkpoint at iteration $iteration"

mpirun -np 2 "$E2E" train --config ddp.yaml --fold 0 --sparsity 0.5 --out job --loader-threads 1 --resume > run2.log 2>&1 \
  || { tail -20 run2.log; fail "resume failed"; }
grep -q "resumed job/checkpoint.ckpt at iteration $iteration" run2.log || fail "did not resume from iteration $iteration"
[[ -f job/metrics.json ]] || fail "no metrics.json after the resumed run"
echo PASS
