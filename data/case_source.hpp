// What the patch sampler needs from a preprocessed case, whatever stores it (HDF5 case store, memory).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "data/volume.hpp"

namespace e2e {

struct PreprocessedCase {
  std::string id;
  MultiVolume<float> image;  // normalized, C×D×H×W at the target spacing
  Volume<int16_t> label;     // −1 = outside the non-zero region (ignore), else class value
  // Per foreground class: up to 10 000 stored (z, y, x) voxel coordinates of that class.
  std::vector<std::pair<int, std::vector<std::array<int32_t, 3>>>> foreground;
};

// Random access to a fixed list of cases; implementations must be safe to call from several threads.
class CaseSource {
 public:
  virtual ~CaseSource() = default;
  virtual std::size_t size() const = 0;
  virtual std::string case_id(std::size_t index) const = 0;
  virtual std::shared_ptr<const PreprocessedCase> load(std::size_t index) const = 0;
};

// Cases held in memory (tests, small datasets).
class MemoryCaseSource : public CaseSource {
 public:
  explicit MemoryCaseSource(std::vector<std::shared_ptr<const PreprocessedCase>> cases)
      : cases_(std::move(cases)) {}
  std::size_t size() const override { return cases_.size(); }
  std::string case_id(std::size_t index) const override { return cases_.at(index)->id; }
  std::shared_ptr<const PreprocessedCase> load(std::size_t index) const override { return cases_.at(index); }

 private:
  std::vector<std::shared_ptr<const PreprocessedCase>> cases_;
};

}  // namespace e2e
