#!/usr/bin/env python3
"""Writes the sweep-message seed corpus (tests/fuzz/corpus/sweep_message/): one valid message of each kind as
orchestrator/sweep_protocol.cpp encodes it (a MessagePack map), prefixed with the message's index in
SweepMessage, as fuzz_sweep_message expects; plus a framed one (prefix 0xff, MessagePack [tag, binary]).
A minimal MessagePack writer (maps, arrays, strings, binary, ints, floats, bools, nil) keeps it to the standard
library. Rewrites the files."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "sweep_message")
FIRST_TAG = 100


class Binary(bytes):
    pass


def pack(value):
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack("b", value)
        return b"\xd3" + struct.pack(">q", value) if value < 0 else b"\xcf" + struct.pack(">Q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, Binary):
        return b"\xc6" + struct.pack(">I", len(value)) + bytes(value)
    if isinstance(value, str):
        data = value.encode()
        return b"\xdb" + struct.pack(">I", len(data)) + data
    if isinstance(value, list):
        return b"\xdd" + struct.pack(">I", len(value)) + b"".join(pack(v) for v in value)
    if isinstance(value, dict):
        return b"\xdf" + struct.pack(">I", len(value)) + b"".join(pack(k) + pack(v) for k, v in value.items())
    raise TypeError(type(value))


EPOCH = {"epoch": 2, "train_loss": 0.8, "val_loss": None, "pseudo_dice": [0.5, None], "mean_pseudo_dice": 0.5,
         "learning_rate": 0.01, "seconds": 3.5, "loader_wait_fraction": 0.1, "iterations_per_second": 4.0,
         "allreduce_fraction": 0.0, "topology_updates": 3}
METRICS = {"summary": {"mean_dice": 0.8, "mean_nsd": 0.7, "mean_hd": 3.0},
           "complexity": {"params": 1234, "flops": 5e8, "patch": [16, 32, 32]},
           "cases": [{"case": "case_1", "structures": [{"name": "liver", "dice": 0.8}]}]}
# In SweepMessage's order (orchestrator/sweep_protocol.hpp).
MESSAGES = [
    ("ready", {"group": 1, "node": "node-1", "stopping": False}),
    ("job", {"job": 7, "kind": "ensemble", "fold": -1, "sparsity": 0.8, "seed": 1, "attempt": 2,
             "out_dir": "runs/demo/test_s0.8_seed1", "folds": [0, 1],
             "fold_dirs": ["runs/demo/fold0_s0.8_seed1", "runs/demo/fold1_s0.8_seed1"]}),
    ("wait", {}),
    ("stop", {}),
    ("stop_now", {}),
    ("step", {"job": 7, "epoch": 1, "epochs": 8, "step": 15, "steps": 50, "loss": 0.75, "it_s": 4.5}),
    ("epoch", {"job": 7, "epoch": EPOCH}),
    ("checkpoint", {"job": 7, "path": "runs/demo/fold0/checkpoint.pt", "sha256": "ab" * 32, "iteration": 400}),
    ("case_done", {"job": 8, "case": "case_9", "done": 1, "total": 2}),
    ("result", {"job": 7, "kind": "train", "metrics": METRICS,
                "topology": Binary(b"E2ET" + bytes(range(256))), "topology_updates": 9}),
    ("failed", {"job": 7, "error": "loss is NaN", "permanent": False}),
    ("preempted", {"job": 7}),
    ("prepared", {"exit_code": 2, "error": "data.dataset: no such folder"}),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for index, (name, body) in enumerate(MESSAGES):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([index]) + pack(body))
    job_index = 1
    with open(os.path.join(OUT, "framed_job"), "wb") as f:
        f.write(b"\xff" + pack([FIRST_TAG + job_index, Binary(pack(MESSAGES[job_index][1]))]))


if __name__ == "__main__":
    main()
