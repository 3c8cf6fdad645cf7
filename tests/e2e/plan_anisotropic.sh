#!/usr/bin/env bash
# A synthetic dataset with 4 mm slices trains end to end with the nnU-Net v1 plan: the config leaves patch,
# batch and pools to the plan; e2e plan shows a (1, 2, 2)-first network, e2e train trains it for a few
# iterations and its metrics and checkpoint carry the planned patch. Usage: plan_anisotropic.sh E2E_BINARY
set -euo pipefail
E2E=$(realpath "$1")
WORK=$(mktemp -d /tmp/e2e_plan_anisotropic.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
"$E2E" synth --out data --cases 5 --shape 16,48,48 --spacing 4,1,1 --spacing-jitter 0 --seed 3 >/dev/null 2>&1
cat > planned.yaml <<'YAML'
experiment: planned
model: {base_channels: 4, max_channels: 8, in_channels: 1, num_classes: 3}
sparsity: {update_interval: 2}
training: {epochs: 1, iterations_per_epoch: 2, validation_batches: 1, precision: fp32, threads: 1}
data: {dataset: data}
YAML
"$E2E" preprocess --dataset data --out data_preprocessed --config planned.yaml >preprocess.log 2>&1 ||
  { tail -20 preprocess.log; exit 1; }
"$E2E" plan --fingerprint data_preprocessed/fingerprint.json --config planned.yaml --format json >plan.json
"$E2E" plan --fingerprint data_preprocessed/fingerprint.json --config planned.yaml >plan.md
"$E2E" train --config planned.yaml --fold 0 --sparsity 0.5 --out job --loader-threads 1 >train.log 2>&1 ||
  { tail -20 train.log; exit 1; }
python3 - <<'PY'
import json, sys
plan = json.load(open("plan.json"))
metrics = json.load(open("job/metrics.json"))
print("plan:", json.dumps(plan))
checks = [
    (plan["pool_op_kernel_sizes"][0] == [1, 2, 2], "the plan's first pool is (1, 2, 2)"),
    (len(plan["pool_op_kernel_sizes"]) < 5, "the plan has fewer than five pools"),
    (metrics["complexity"]["patch"] == plan["patch_size"], "the job trained with the planned patch"),
]
failed = [what for ok, what in checks if not ok]
for what in failed:
    print("FAIL:", what, "| metrics patch", metrics["complexity"]["patch"])
sys.exit(1 if failed else 0)
PY
grep -q "model.pools | (1, 2, 2)" plan.md || { echo "FAIL: e2e plan does not show the planned pools"; cat plan.md; exit 1; }
grep -q "nnU-Net v1 plan of" train.log || { echo "FAIL: train did not log the applied plan"; tail -20 train.log; exit 1; }
echo PASS
