// K-fold splits identical to nnU-Net (sklearn KFold with numpy's legacy shuffle) and splits_final.json I/O.
#include "data/folds.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <random>
#include <set>

#include "common/file_io.hpp"
#include "data/dataset.hpp"

namespace e2e {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// numpy's legacy random_interval: masked rejection sampling of a uniform value in [0, max].
uint32_t bounded(std::mt19937& generator, uint32_t max) {
  if (max == 0) return 0;
  uint32_t mask = max;
  for (int shift = 1; shift <= 16; shift *= 2) mask |= mask >> shift;
  uint32_t value = 0;
  do {
    value = static_cast<uint32_t>(generator()) & mask;
  } while (value > max);
  return value;
}

std::vector<std::string> sorted_unique_ids(std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  const auto duplicate = std::adjacent_find(ids.begin(), ids.end());
  if (duplicate != ids.end())
    throw InputError(fmt::format("fold split: case id '{}' appears twice", *duplicate));
  return ids;
}

std::vector<std::string> pick(const std::vector<std::string>& ids, std::vector<int64_t> indices) {
  std::sort(indices.begin(), indices.end());
  std::vector<std::string> out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back(ids[i]);
  return out;
}

std::vector<std::string> parse_id_list(const json& fold, const char* key, std::size_t index,
                                       const std::string& path) {
  if (!fold.contains(key) || !fold[key].is_array())
    throw InputError(fmt::format("{}: fold {}: expected \"{}\": [case ids]", path, index, key));
  std::vector<std::string> ids;
  for (const json& id : fold[key]) {
    if (!id.is_string())
      throw InputError(
          fmt::format("{}: fold {}: \"{}\" must hold strings, got {}", path, index, key, id.dump()));
    ids.push_back(id.get<std::string>());
  }
  return ids;
}

void check_disjoint(const FoldSplit& split, std::size_t index, const std::string& path) {
  const std::set<std::string> train(split.train.begin(), split.train.end());
  for (const std::string& id : split.val)
    if (train.count(id))
      throw InputError(
          fmt::format("{}: fold {}: case '{}' is in both \"train\" and \"val\"", path, index, id));
}

}  // namespace

std::vector<int64_t> legacy_numpy_permutation(int64_t n, unsigned seed) {
  if (n < 0 || n > static_cast<int64_t>(UINT32_MAX))
    throw std::invalid_argument("permutation size out of range");
  std::mt19937 generator(seed);
  std::vector<int64_t> indices(static_cast<std::size_t>(n));
  std::iota(indices.begin(), indices.end(), 0);
  for (int64_t i = n - 1; i >= 1; --i)
    std::swap(indices[i], indices[bounded(generator, static_cast<uint32_t>(i))]);
  return indices;
}

std::vector<FoldSplit> kfold_splits(const std::vector<std::string>& sorted_case_ids, int folds,
                                    unsigned seed) {
  if (folds < 2) throw ConfigError(fmt::format("folds: expected at least 2, got {}", folds));
  const std::vector<std::string> ids = sorted_unique_ids(sorted_case_ids);
  const int64_t n = static_cast<int64_t>(ids.size());
  if (n < folds)
    throw InputError(fmt::format("fold split: {} folds need at least {} cases, got {}", folds, folds, n));
  const std::vector<int64_t> shuffled = legacy_numpy_permutation(n, seed);

  std::vector<FoldSplit> splits;
  int64_t start = 0;
  for (int f = 0; f < folds; ++f) {
    const int64_t size = n / folds + (f < n % folds ? 1 : 0);
    std::vector<int64_t> val(shuffled.begin() + start, shuffled.begin() + start + size);
    std::vector<int64_t> train(shuffled.begin(), shuffled.begin() + start);
    train.insert(train.end(), shuffled.begin() + start + size, shuffled.end());
    splits.push_back({pick(ids, train), pick(ids, val)});
    start += size;
  }
  return splits;
}

std::vector<FoldSplit> parse_splits_json(const std::string& text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON ({})", source, e.what()));
  }
  if (!doc.is_array() || doc.empty())
    throw InputError(
        fmt::format("{}: expected a non-empty list [{{\"train\": [...], \"val\": [...]}}, ...]", source));
  std::vector<FoldSplit> splits;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    if (!doc[i].is_object()) throw InputError(fmt::format("{}: fold {}: expected an object", source, i));
    FoldSplit split{parse_id_list(doc[i], "train", i, source), parse_id_list(doc[i], "val", i, source)};
    // A dataset of one case has one fold that trains and validates on it (what preprocessing writes then).
    const bool one_case_dataset = doc.size() == 1 && split.train.size() == 1 && split.train == split.val;
    if (!one_case_dataset) check_disjoint(split, i, source);
    splits.push_back(std::move(split));
  }
  return splits;
}

std::string splits_json_text(const std::vector<FoldSplit>& splits) {
  json doc = json::array();
  for (const FoldSplit& split : splits) doc.push_back({{"train", split.train}, {"val", split.val}});
  return doc.dump(4) + "\n";
}

std::vector<FoldSplit> read_splits_json(const std::string& path) {
  const std::optional<std::string> text = try_read_file(path);
  if (!text) throw InputError(fmt::format("{}: file not found or not readable", path));
  return parse_splits_json(*text, path);
}

void write_splits_json(const std::string& path, const std::vector<FoldSplit>& splits) {
  write_file_atomically(path, splits_json_text(splits));
}

}  // namespace e2e
