#include "model/topology.hpp"

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace e2e {

namespace {

constexpr char kMagic[4] = {'E', '2', 'E', 'T'};
constexpr uint32_t kVersion = 1;

void put_u64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

class ByteReader {
 public:
  explicit ByteReader(const std::string& bytes) : bytes_(bytes) {}

  uint64_t u64() {
    need(8);
    uint64_t value = 0;
    for (int i = 0; i < 8; ++i)
      value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return value;
  }
  std::string take(std::size_t n) {
    need(n);
    std::string out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  unsigned char byte() {
    need(1);
    return static_cast<unsigned char>(bytes_[pos_++]);
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  void need(std::size_t n) const {
    if (bytes_.size() - pos_ < n) throw std::invalid_argument("topology blob is truncated");
  }
  const std::string& bytes_;
  std::size_t pos_ = 0;
};

}  // namespace

TensorMask::TensorMask(std::string name_, int64_t rows_, int64_t cols_)
    : name(std::move(name_)), rows(rows_), cols(cols_), words((rows_ * cols_ + 63) / 64, 0) {}

void TensorMask::set(int64_t index, bool on) {
  const uint64_t bit = uint64_t{1} << (index & 63);
  if (on)
    words[index >> 6] |= bit;
  else
    words[index >> 6] &= ~bit;
}

int64_t TensorMask::count() const {
  int64_t n = 0;
  for (uint64_t w : words) n += __builtin_popcountll(w);
  return n;
}

bool TensorMask::operator==(const TensorMask& other) const {
  return name == other.name && rows == other.rows && cols == other.cols && words == other.words;
}

int64_t Topology::active() const {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.count();
  return n;
}

int64_t Topology::total() const {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.size();
  return n;
}

std::string Topology::serialize() const {
  std::string out(kMagic, 4);
  put_u64(out, kVersion);
  put_u64(out, tensors.size());
  for (const auto& t : tensors) {
    put_u64(out, t.name.size());
    out += t.name;
    put_u64(out, static_cast<uint64_t>(t.rows));
    put_u64(out, static_cast<uint64_t>(t.cols));
    const int64_t nbytes = (t.size() + 7) / 8;
    for (int64_t b = 0; b < nbytes; ++b)
      out.push_back(static_cast<char>((t.words[b / 8] >> (8 * (b % 8))) & 0xff));
  }
  return out;
}

Topology Topology::deserialize(const std::string& bytes) {
  ByteReader in(bytes);
  if (in.take(4) != std::string(kMagic, 4)) throw std::invalid_argument("not a topology blob (bad magic)");
  const uint64_t version = in.u64();
  if (version != kVersion)
    throw std::invalid_argument("unsupported topology version " + std::to_string(version));
  const uint64_t count = in.u64();
  if (count > bytes.size()) throw std::invalid_argument("topology blob is truncated");
  Topology topology;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t name_length = in.u64();
    if (name_length > bytes.size()) throw std::invalid_argument("topology blob is truncated");
    std::string name = in.take(name_length);
    const auto rows = static_cast<int64_t>(in.u64());
    const auto cols = static_cast<int64_t>(in.u64());
    // rows × cols bits must fit in the blob: bounding the product keeps it from overflowing or allocating
    // more than the blob can describe.
    if (rows < 0 || cols < 0 || (cols > 0 && rows > static_cast<int64_t>(bytes.size()) * 8 / cols))
      throw std::invalid_argument("topology blob has an impossible shape for '" + name + "'");
    TensorMask mask(std::move(name), rows, cols);
    const int64_t nbytes = (mask.size() + 7) / 8;
    for (int64_t b = 0; b < nbytes; ++b)
      mask.words[b / 8] |= static_cast<uint64_t>(in.byte()) << (8 * (b % 8));
    if (mask.size() % 64 != 0 && !mask.words.empty() && (mask.words.back() >> (mask.size() % 64)) != 0)
      throw std::invalid_argument("topology blob has bits set past the end of '" + mask.name + "'");
    topology.tensors.push_back(std::move(mask));
  }
  if (!in.done()) throw std::invalid_argument("topology blob has trailing bytes");
  return topology;
}

uint64_t Topology::hash() const {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : serialize()) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string Topology::hash_hex() const {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(hash()));
  return buffer;
}

}  // namespace e2e
