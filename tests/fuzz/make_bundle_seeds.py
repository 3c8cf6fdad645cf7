#!/usr/bin/env python3
"""Writes the result-bundle seed corpus (tests/fuzz/corpus/bundle/): bundle.json as write_result_bundle lays it
out (db/bundle.cpp), followed by "\\n--final.e2et--\\n" and a Topology::serialize() blob (model/topology.cpp)
where a mask is listed, as fuzz_bundle expects. The job key and topology hash are computed as e2e computes them
(job_key in db/records.cpp: sha256 of a canonical text; Topology::hash: FNV-1a 64 of the blob). Standard
library only; rewrites the files."""
import hashlib
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "bundle")
SEPARATOR = b"\n--final.e2et--\n"


def topology(tensors):
    out = b"E2ET" + struct.pack("<QQ", 1, len(tensors))
    for name, rows, cols, bits in tensors:
        out += struct.pack("<Q", len(name)) + name.encode() + struct.pack("<QQ", rows, cols)
        out += bits.to_bytes((rows * cols + 7) // 8, "little")
    return out


def fnv1a64_hex(data):
    h = 1469598103934665603
    for byte in data:
        h = ((h ^ byte) * 1099511628211) % 2**64
    return f"{h:016x}"


def job_key(experiment, fold, sparsity, seed, config_hash):
    # fmt's "{}" of a double is its shortest round-trip text, as Python's repr for these values.
    text = f"e2e-job/1\n{len(experiment)}:{experiment}\nfold={fold}\nsparsity={sparsity!r}\nseed={seed}\nconfig={config_hash}\n"
    return hashlib.sha256(text.encode()).hexdigest()


def bundle(status="done", masks=True, sparsity=0.5, extra_epochs=()):
    blob = topology([("enc.0.w", 2, 3, 0b101101), ("dec.1.w", 1, 1, 1)])
    experiment = {"name": "fuzz", "config": {"experiment": "fuzz", "model": {"levels": 2}},
                  "config_hash": "c0ffee", "dataset_fingerprint": "d1", "code_version": "0.1.0"}
    doc = {
        "format": "e2e-result-bundle", "version": 1, "experiment": experiment,
        "job": {"key": job_key("fuzz", 0, sparsity, 0, "c0ffee"), "fold": 0, "sparsity": sparsity, "seed": 0,
                "status": status, "attempts": 1, "max_attempts": 3, "node": "n1",
                "error": "" if status == "done" else "CUDA out of memory",
                "checkpoint": {"path": "ckpt/last.pt", "sha256": "ab" * 32, "iteration": 100}},
        "result": None, "case_metrics": [], "epochs": [], "events": [], "masks": []}
    if status == "done":
        doc["result"] = {"mdice": 0.8, "mnsd": "nan", "mhd95": "inf", "params": 1234, "flops": 5.5e9,
                         "patch": [16, 32, 32], "metrics": {"1": {"dice": 0.8}}}
        doc["case_metrics"] = [{"case": "case_000", "structure": "liver", "is_region": False, "dice": 0.8,
                                "nsd": 0.7, "nsd_tolerance_mm": 1.0, "hd95": "-inf", "hd_variant": "robust"}]
    doc["epochs"] = [{"epoch": e, "train_loss": 0.5, "val_loss": None, "pseudo_dice": [0.1, "nan"],
                      "mean_pseudo_dice": 0.1, "learning_rate": 0.01, "seconds": 2.0,
                      "loader_wait_fraction": 0.0} for e in (0, *extra_epochs)]
    doc["events"] = [{"time": "2024-05-01T12:00:00.000Z", "kind": "started", "message": ""},
                     {"time": "2024-05-01T12:01:00.000Z", "kind": status, "message": "ok"}]
    if masks and status == "done":
        doc["masks"] = [{"kind": "final", "step": 100, "topology_hash": fnv1a64_hex(blob),
                         "file": "masks/final.e2et"}]
        return json.dumps(doc, indent=1).encode() + SEPARATOR + blob
    return json.dumps(doc, indent=1).encode()


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    seeds = {"done_with_mask": bundle(), "done_without_mask": bundle(masks=False, sparsity=0.8),
             "failed": bundle(status="failed"), "duplicate_epochs": bundle(extra_epochs=(0,)),
             "not_json": b"{\"format\": \"e2e-result-bundle\", \"version\": 1,"}
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
