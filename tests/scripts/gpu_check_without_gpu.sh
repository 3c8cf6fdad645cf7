#!/usr/bin/env bash
# scripts/gpu_check on a machine without a GPU: exit 2 at once, a message that says so, nothing written.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  echo "a GPU is present: not this test's case"
  exit 77
fi
out=$(mktemp -d)/gpu_out
message=$(timeout 20 "$root/scripts/gpu_check" "$out" 2>&1)
status=$?
[[ $status -eq 2 ]] || { echo "expected exit 2, got $status: $message"; exit 1; }
[[ $message == *"no NVIDIA GPU"* ]] || { echo "unclear message: $message"; exit 1; }
[[ ! -e $out ]] || { echo "gpu_check wrote $out without a GPU"; exit 1; }
echo "ok: exit 2, '$message'"
