#include "worker/checkpoint.hpp"

#include <cstring>

#include "common/errors.hpp"
#include "common/file_io.hpp"
#include "configs/hash.hpp"
#include "model/optimizer_state.hpp"

namespace e2e {

namespace {

constexpr char kMagic[] = "E2ECKPT1";
constexpr std::size_t kMagicSize = 8;

void put_u64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t get_u64(const std::string& bytes, std::size_t offset) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return value;
}

}  // namespace

void write_checkpoint_file(const std::string& path, nlohmann::json meta, const std::string& payload) {
  meta["payload_sha256"] = sha256_hex(payload);
  meta["payload_bytes"] = payload.size();
  const std::string meta_text = meta.dump();
  std::string bytes(kMagic, kMagicSize);
  put_u64(bytes, meta_text.size());
  bytes += meta_text;
  put_u64(bytes, payload.size());
  bytes.reserve(bytes.size() + payload.size());
  bytes += payload;
  write_file_atomically(path, bytes);
}

CheckpointFile read_checkpoint_file(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < kMagicSize + 8 || bytes.compare(0, kMagicSize, kMagic) != 0)
    throw InputError(path + ": not an e2e checkpoint (bad magic)");
  const uint64_t meta_size = get_u64(bytes, kMagicSize);
  const std::size_t payload_header = kMagicSize + 8 + meta_size;
  if (meta_size > bytes.size() || payload_header + 8 > bytes.size())
    throw InputError(path + ": checkpoint is truncated");
  CheckpointFile file;
  try {
    file.meta = nlohmann::json::parse(bytes.substr(kMagicSize + 8, meta_size));
  } catch (const nlohmann::json::exception&) {
    throw InputError(path + ": checkpoint header is corrupt");
  }
  const uint64_t payload_size = get_u64(bytes, payload_header);
  if (payload_size != bytes.size() - payload_header - 8)
    throw InputError(path + ": checkpoint is truncated (payload " +
                     std::to_string(bytes.size() - payload_header - 8) + " of " +
                     std::to_string(payload_size) + " bytes)");
  file.payload = bytes.substr(payload_header + 8);
  if (!file.meta.contains("payload_sha256") || sha256_hex(file.payload) != file.meta["payload_sha256"])
    throw InputError(path + ": checkpoint is corrupt (SHA-256 of the payload does not match its header)");
  return file;
}

void check_checkpoint_format(const std::string& path, const nlohmann::json& meta) {
  if (meta.value("format", 0) != kCheckpointFormat)
    throw InputError(path + ": unsupported checkpoint format " +
                     meta.value("format", nlohmann::json()).dump() + " (this build reads format " +
                     std::to_string(kCheckpointFormat) + ")");
}

std::string bytes_of(const torch::Tensor& tensor) {
  const torch::Tensor c = tensor.to(torch::kUInt8).contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<std::size_t>(c.numel()));
}

torch::Tensor tensor_of(const std::string& bytes) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

Topology read_checkpoint_topology(torch::serialize::InputArchive& archive, const nlohmann::json& meta,
                                  const std::string& path) {
  torch::Tensor stored;
  archive.read(checkpoint_entry::kTopology, stored);
  Topology topology = Topology::deserialize(bytes_of(stored));
  if (topology.hash_hex() != meta.value("topology_hash", ""))
    throw InputError(path + ": checkpoint topology hash does not match its header");
  return topology;
}

std::string state_sha256(torch::nn::Module& net, torch::optim::SGD* optimizer, const Topology& topology) {
  Sha256 hash;
  auto add = [&hash](const torch::Tensor& t) {
    const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    hash.update(c.data_ptr(), static_cast<std::size_t>(c.numel() * c.element_size()));
  };
  for (const auto& p : net.parameters()) add(p);
  for (const auto& b : net.buffers()) add(b);
  if (optimizer)
    for (const auto& p : net.parameters()) {
      const torch::Tensor momentum = sgd_momentum_buffer(*optimizer, p);
      if (momentum.defined()) add(momentum);
    }
  hash.update(topology.serialize());
  return hash.hex_digest();
}

}  // namespace e2e
