#!/usr/bin/env bash
# Exact resume through the CLI: `e2e train` straight to the end vs. the same job stopped by SIGTERM (exit
# code 3) and continued with --resume must end with bitwise-identical weights, momentum buffers and topology
# (state_sha256 in the final checkpoint's header). Usage: sigterm_resume.sh E2E_BINARY [DIR]
set -euo pipefail
E2E=$(realpath "$1")
WORK=${2:-$(mktemp -d /tmp/e2e_sigterm.XXXXXX)}
mkdir -p "$WORK" && cd "$WORK" && rm -rf data data_preprocessed straight cut
fail() { echo "FAIL: $*" >&2; exit 1; }
payload_sha() {
  python3 - "$1" <<'PY'
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'E2ECKPT1'
n = struct.unpack('<Q', data[8:16])[0]
meta = json.loads(data[16:16 + n])
print(meta['iteration'], meta['state_sha256'])
PY
}

"$E2E" synth --out data --cases 5 --shape 16,32,32 --seed 3 >/dev/null 2>&1
cat > cut.yaml <<'YAML'
experiment: sigterm
model: {levels: 4, base_channels: 8, max_channels: 32, in_channels: 1, num_classes: 3,
        pools: [[1, 2, 2], [2, 2, 2], [2, 2, 2]]}
sparsity: {update_interval: 7}
training: {epochs: 4, iterations_per_epoch: 10, batch_size: 2, patch_size: [16, 32, 32], validation_batches: 2,
           checkpoint_every_epochs: 2, precision: fp32, threads: 1}
data: {dataset: data}
YAML
"$E2E" train --config cut.yaml --fold 0 --sparsity 0.5 --out straight --loader-threads 2 > straight.log 2>&1 || fail "straight run"

"$E2E" train --config cut.yaml --fold 0 --sparsity 0.5 --out cut --loader-threads 2 > cut1.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do grep -q "epoch 1/4" cut1.log 2>/dev/null && break; sleep 0.05; done
kill -TERM $pid
set +e; wait $pid; code=$?; set -e
[[ $code == 3 ]] || fail "SIGTERM should exit with code 3, got $code"
stopped_at=$(payload_sha cut/checkpoint.ckpt | cut -d' ' -f1)
"$E2E" train --config cut.yaml --fold 0 --sparsity 0.5 --out cut --resume --loader-threads 1 > cut2.log 2>&1 || fail "resume"

a=$(payload_sha straight/checkpoint.ckpt); b=$(payload_sha cut/checkpoint.ckpt)
echo "stopped at iteration $stopped_at; final: straight [$a] resumed [$b]"
[[ "$a" == "$b" ]] || fail "resumed run differs from the straight run"
# Everything but the measured per-patch inference times (wall clock) must match.
python3 - straight/metrics.json cut/metrics.json <<'PY' || fail "metrics differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for m in (a, b):
    assert "inference_timing" in m, "metrics.json lacks inference_timing"
    del m["inference_timing"]
sys.exit(0 if a == b else 1)
PY
echo PASS
