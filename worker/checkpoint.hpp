// Checkpoint files: a small self-describing container around a LibTorch archive.
//   "E2ECKPT1" | u64 length | meta JSON | u64 length | payload (torch archive bytes)
// The meta JSON carries the payload's SHA-256, so truncation and bit rot are detected before LibTorch ever
// parses the payload; it also names the job (config hash, fold, sparsity, seed) so a checkpoint of another
// job is refused instead of silently resumed. Writes are atomic: temporary file, fsync, rename, fsync dir.
//
// What the trainer writes and both the trainer (resume) and the predictor read lives here too: the format
// number, the archive's entry names, the topology entry and the training-state digest.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "model/topology.hpp"

namespace e2e {

// The meta JSON's "format": the layout of meta and payload that Trainer::save_checkpoint writes.
inline constexpr int kCheckpointFormat = 1;

// Entries of the LibTorch archive (the payload).
namespace checkpoint_entry {
inline constexpr const char* kModel = "model";          // the network's parameters and buffers
inline constexpr const char* kOptimizer = "optimizer";  // SGD state (momentum)
inline constexpr const char* kTopology = "topology";    // Topology::serialize() as a uint8 tensor
inline constexpr const char* kRngCpu = "rng_cpu";       // LibTorch's default CPU generator state
}  // namespace checkpoint_entry

struct CheckpointFile {
  nlohmann::json meta;  // includes "payload_sha256"
  std::string payload;
};

// Adds payload_sha256 to meta and writes atomically. Throws std::runtime_error on I/O failure (the previous
// checkpoint at `path`, if any, is left untouched).
void write_checkpoint_file(const std::string& path, nlohmann::json meta, const std::string& payload);

// Throws InputError naming the file for a missing, truncated, corrupt or foreign file.
CheckpointFile read_checkpoint_file(const std::string& path);

// Throws InputError naming `path` unless `meta` has this build's kCheckpointFormat.
void check_checkpoint_format(const std::string& path, const nlohmann::json& meta);

// Bytes ↔ a uint8 tensor (how the topology travels inside the archive).
std::string bytes_of(const torch::Tensor& tensor);
torch::Tensor tensor_of(const std::string& bytes);

// The archive's topology, checked against the meta's "topology_hash". Throws InputError naming `path` on a
// mismatch; std::invalid_argument / c10::Error when the entry is missing or malformed (callers name the
// model).
Topology read_checkpoint_topology(torch::serialize::InputArchive& archive, const nlohmann::json& meta,
                                  const std::string& path);

// SHA-256 of a training state: parameters, buffers, SGD momentum (when `optimizer` is given) and topology,
// in that order. Bit-identical states on every rank and after a resume give the same digest (meta
// "state_sha256"; the resume and kill tests compare it).
std::string state_sha256(torch::nn::Module& net, torch::optim::SGD* optimizer, const Topology& topology);

}  // namespace e2e
