#!/usr/bin/env bash
# One fold of the tiny config on `e2e synth` data must reach a validation mDice of at least 0.85 (CPU).
# Prints the wall time (the target is at most 5 minutes on 2 cores; not asserted: timing belongs to
# benchmarks). Usage: train_quality.sh E2E_BINARY [WORK_DIR]
set -euo pipefail
E2E=$(realpath "$1")
WORK=${2:-$(mktemp -d /tmp/e2e_train_quality.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK"
rm -rf data data_preprocessed job
"$E2E" synth --out data --seed 0 >/dev/null 2>&1
cat > quality.yaml <<'YAML'
experiment: quality
model: {levels: 4, base_channels: 8, max_channels: 32, in_channels: 1, num_classes: 3,
        pools: [[1, 2, 2], [2, 2, 2], [2, 2, 2]]}
sparsity: {update_interval: 50}
training: {epochs: 20, iterations_per_epoch: 50, batch_size: 2, patch_size: [16, 32, 32], validation_batches: 4,
           checkpoint_every_epochs: 5, precision: fp32, threads: 1}
data: {dataset: data}
YAML
start=$(date +%s)
"$E2E" train --config quality.yaml --fold 0 --sparsity 0.5 --out job --loader-threads 1 > train.log 2>&1 || { tail -20 train.log; exit 1; }
seconds=$(( $(date +%s) - start ))
dice=$(python3 -c "import json;print(json.load(open('job/metrics.json'))['summary']['mean_dice'])")
echo "fold 0, sparsity 0.5: validation mDice $dice in ${seconds}s"
python3 -c "import sys; sys.exit(0 if $dice >= 0.85 else 1)" || { echo "FAIL: mDice $dice < 0.85"; exit 1; }
echo PASS
