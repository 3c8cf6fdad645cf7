// The preprocessed dataset in one HDF5 file (C API, serial, thread-safe build).
//
// Layout of <dir>/cases.h5:
//   /                  attributes format = "e2enet-case-store", version
//   /meta/<name>       text documents as scalar strings: plan.json, fingerprint.json, splits_final.json,
//                      input_hash
//   /cases/<id>/image  float32 C×D×H×W, chunked 1×(chunk clipped to the case), optional gzip-1 + shuffle
//   /cases/<id>/label  int16 D×H×W, same spatial chunks (−1 = outside the non-zero region)
//   /cases/<id>/foreground_classes int32 K, foreground_counts int64 K, foreground_coords int32 N×3 (z, y, x)
//   /cases/<id> attributes: spacing, shape, crop_begin, crop_end, original_shape, original_spacing and the
//                      original NIfTI geometry (qform/sform codes and matrices, quatern, qfac, xyz_units)
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "data/case_source.hpp"
#include "data/nifti.hpp"
#include "data/volume.hpp"

namespace e2e {

constexpr const char* kCaseStoreFile = "cases.h5";

// The non-zero box of a case within its original grid: voxels [begin, end) per axis.
struct CropBox {
  Int3 begin{0, 0, 0};
  Int3 end{0, 0, 0};
  Shape3 shape() const { return {end[0] - begin[0], end[1] - begin[1], end[2] - begin[2]}; }
};

// What maps a stored case back to its original NIfTI: crop box within geometry.shape, then resampling from
// `spacing` to geometry.spacing.
struct CaseMeta {
  std::string id;
  Spacing3 spacing{1.0, 1.0, 1.0};  // of the stored arrays (the plan's target spacing)
  Shape3 shape{0, 0, 0};            // of the stored arrays
  CropBox crop;
  NiftiGeometry geometry;  // of the original image file (shape and spacing before cropping)
};

struct CaseStoreOptions {
  bool compress = false;     // gzip level 1 with the shuffle filter
  Shape3 chunk{64, 64, 64};  // spatial chunk shape, clipped to each case
  std::size_t chunk_cache_bytes = 64u << 20;
};

// A directory holding cases.h5, or the file itself → the file.
std::string case_store_path(const std::string& dir_or_file);

// Writes a new store. The file is created (or truncated) at `path`; the caller renames it into place.
class CaseStoreWriter {
 public:
  CaseStoreWriter(const std::string& path, const CaseStoreOptions& options = {});
  ~CaseStoreWriter();
  CaseStoreWriter(const CaseStoreWriter&) = delete;
  CaseStoreWriter& operator=(const CaseStoreWriter&) = delete;

  void write_case(const PreprocessedCase& c, const CaseMeta& meta);
  void write_text(const std::string& name, const std::string& text);
  // Flushes and closes; throws when the file cannot be completed. The destructor closes silently.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a store. Every method is safe to call from several threads (calls are serialized).
class CaseStoreReader {
 public:
  // Throws InputError naming the file when it is missing or not a case store.
  explicit CaseStoreReader(const std::string& path, std::size_t chunk_cache_bytes = 64u << 20);
  ~CaseStoreReader();
  CaseStoreReader(const CaseStoreReader&) = delete;
  CaseStoreReader& operator=(const CaseStoreReader&) = delete;

  const std::string& path() const;
  std::vector<std::string> case_ids() const;  // sorted
  bool has_case(const std::string& id) const;
  CaseMeta meta(const std::string& id) const;
  PreprocessedCase read_case(const std::string& id) const;
  // image[:, begin : begin + size] of one case; the region must lie inside the case.
  MultiVolume<float> read_image_region(const std::string& id, const Int3& begin, const Shape3& size) const;
  bool has_text(const std::string& name) const;
  std::string text(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The loader's view of a store: a fixed list of cases, safe from several threads, optionally keeping the
// most recently used cases in memory (up to cache_bytes; 0 = no cache).
class Hdf5CaseSource : public CaseSource {
 public:
  // All cases of the store (sorted), or `ids` in the given order (InputError naming an unknown id).
  explicit Hdf5CaseSource(const std::string& dir_or_file, std::vector<std::string> ids = {},
                          std::size_t cache_bytes = 0);
  ~Hdf5CaseSource() override;

  std::size_t size() const override;
  std::string case_id(std::size_t index) const override;
  std::shared_ptr<const PreprocessedCase> load(std::size_t index) const override;
  const CaseStoreReader& store() const;

 private:
  struct Cache;
  std::shared_ptr<CaseStoreReader> store_;
  std::vector<std::string> ids_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace e2e
