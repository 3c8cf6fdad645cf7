#include "data/case_store.hpp"

#include <fmt/format.h>
#include <hdf5.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>

#include "configs/config.hpp"

namespace e2e {

namespace {

namespace fs = std::filesystem;

constexpr const char* kFormatName = "e2enet-case-store";
constexpr int64_t kFormatVersion = 1;
// A prime number of hash slots, well above the number of chunks the cache can hold.
constexpr std::size_t kChunkCacheSlots = 12421;

// HDF5 prints its error stack to stderr by default; this code reports errors as exceptions instead. The
// setting is per thread in the thread-safe build, so every entry point calls this.
void quiet_hdf5() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// Owns one HDF5 identifier and closes it with the matching H5?close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      close();
      id_ = other.id_;
      closer_ = other.closer_;
      other.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { close(); }

  hid_t get() const { return id_; }
  herr_t close() {
    const herr_t status = id_ >= 0 ? closer_(id_) : 0;
    id_ = -1;
    return status;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Turns failed HDF5 calls into InputError messages that name the store and the operation.
class Checker {
 public:
  explicit Checker(std::string path) : path_(std::move(path)) {}
  Handle operator()(hid_t id, Handle::Closer closer, const std::string& what) const {
    if (id < 0) fail(what);
    return Handle(id, closer);
  }
  void operator()(herr_t status, const std::string& what) const {
    if (status < 0) fail(what);
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(fmt::format("{}: case store: {}", path_, what));
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Handle file_access(const Checker& check, std::size_t cache_bytes) {
  Handle fapl = check(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "cannot create a file access list");
  check(H5Pset_cache(fapl.get(), 0, kChunkCacheSlots, cache_bytes, 0.75), "cannot set the chunk cache");
  return fapl;
}

Handle simple_space(const Checker& check, const std::vector<hsize_t>& dims) {
  return check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose,
               "cannot create a dataspace");
}

template <typename T>
struct H5Types;
template <>
struct H5Types<double> {
  static hid_t file() { return H5T_IEEE_F64LE; }
  static hid_t memory() { return H5T_NATIVE_DOUBLE; }
};
template <>
struct H5Types<float> {
  static hid_t file() { return H5T_IEEE_F32LE; }
  static hid_t memory() { return H5T_NATIVE_FLOAT; }
};
template <>
struct H5Types<int64_t> {
  static hid_t file() { return H5T_STD_I64LE; }
  static hid_t memory() { return H5T_NATIVE_INT64; }
};
template <>
struct H5Types<int32_t> {
  static hid_t file() { return H5T_STD_I32LE; }
  static hid_t memory() { return H5T_NATIVE_INT32; }
};
template <>
struct H5Types<int16_t> {
  static hid_t file() { return H5T_STD_I16LE; }
  static hid_t memory() { return H5T_NATIVE_INT16; }
};

template <typename T>
void write_attribute(const Checker& check, hid_t object, const std::string& name,
                     const std::vector<T>& values) {
  Handle space = simple_space(check, {values.size()});
  Handle attribute =
      check(H5Acreate2(object, name.c_str(), H5Types<T>::file(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
            H5Aclose, "cannot create attribute " + name);
  check(H5Awrite(attribute.get(), H5Types<T>::memory(), values.data()), "cannot write attribute " + name);
}

template <typename T, std::size_t N>
void write_attribute(const Checker& check, hid_t object, const std::string& name,
                     const std::array<T, N>& values) {
  write_attribute(check, object, name, std::vector<T>(values.begin(), values.end()));
}

template <typename T>
std::vector<T> read_attribute(const Checker& check, hid_t object, const std::string& name,
                              std::size_t count) {
  Handle attribute = check(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "missing attribute " + name);
  Handle space = check(H5Aget_space(attribute.get()), H5Sclose, "cannot read attribute " + name);
  if (H5Sget_simple_extent_npoints(space.get()) != static_cast<hssize_t>(count))
    check.fail(fmt::format("attribute {} should hold {} values", name, count));
  std::vector<T> values(count);
  check(H5Aread(attribute.get(), H5Types<T>::memory(), values.data()), "cannot read attribute " + name);
  return values;
}

template <typename T, std::size_t N>
std::array<T, N> read_array(const Checker& check, hid_t object, const std::string& name) {
  const std::vector<T> values = read_attribute<T>(check, object, name, N);
  std::array<T, N> out;
  std::copy(values.begin(), values.end(), out.begin());
  return out;
}

Handle string_type(const Checker& check, std::size_t size) {
  Handle type = check(H5Tcopy(H5T_C_S1), H5Tclose, "cannot create a string type");
  check(H5Tset_size(type.get(), std::max<std::size_t>(size, 1)), "cannot size a string type");
  check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), "cannot pad a string type");
  return type;
}

void write_string_attribute(const Checker& check, hid_t object, const std::string& name,
                            const std::string& text) {
  Handle type = string_type(check, text.size());
  Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, "cannot create a dataspace");
  Handle attribute =
      check(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose,
            "cannot create attribute " + name);
  check(H5Awrite(attribute.get(), type.get(), text.c_str()), "cannot write attribute " + name);
}

std::string read_fixed_string(const Checker& check, hid_t type,
                              const std::function<herr_t(hid_t, void*)>& read, const std::string& what) {
  if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) > 0)
    check.fail(what + " is not a fixed string");
  const std::size_t size = H5Tget_size(type);
  Handle memory = string_type(check, size);
  std::string text(size, '\0');
  check(read(memory.get(), text.data()), "cannot read " + what);
  text.erase(std::find(text.begin(), text.end(), '\0'), text.end());
  return text;
}

std::string read_string_attribute(const Checker& check, hid_t object, const std::string& name) {
  Handle attribute = check(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, "missing attribute " + name);
  Handle type = check(H5Aget_type(attribute.get()), H5Tclose, "cannot read attribute " + name);
  return read_fixed_string(
      check, type.get(), [&](hid_t memory, void* buffer) { return H5Aread(attribute.get(), memory, buffer); },
      "attribute " + name);
}

template <typename T>
void write_dataset(const Checker& check, hid_t parent, const std::string& name,
                   const std::vector<hsize_t>& dims, const T* data, hid_t creation = H5P_DEFAULT) {
  Handle space = simple_space(check, dims);
  Handle dataset = check(
      H5Dcreate2(parent, name.c_str(), H5Types<T>::file(), space.get(), H5P_DEFAULT, creation, H5P_DEFAULT),
      H5Dclose, "cannot create dataset " + name);
  check(H5Dwrite(dataset.get(), H5Types<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
        "cannot write dataset " + name);
}

std::vector<hsize_t> dataset_dims(const Checker& check, hid_t dataset, int rank, const std::string& name) {
  Handle space = check(H5Dget_space(dataset), H5Sclose, "cannot read dataset " + name);
  if (H5Sget_simple_extent_ndims(space.get()) != rank)
    check.fail(fmt::format("dataset {} should have {} dimensions", name, rank));
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

template <typename T>
std::vector<T> read_dataset(const Checker& check, hid_t parent, const std::string& name, int rank,
                            std::vector<hsize_t>* dims_out = nullptr) {
  Handle dataset = check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), H5Dclose, "missing dataset " + name);
  const std::vector<hsize_t> dims = dataset_dims(check, dataset.get(), rank, name);
  hsize_t count = 1;
  for (hsize_t d : dims) count *= d;
  std::vector<T> values(count);
  if (count > 0)
    check(H5Dread(dataset.get(), H5Types<T>::memory(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
          "cannot read dataset " + name);
  if (dims_out) *dims_out = dims;
  return values;
}

std::string case_group_name(const std::string& id) {
  return "/cases/" + id;
}

void check_case_id(const std::string& id) {
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..")
    throw std::invalid_argument("case store: invalid case id '" + id + "'");
}

Handle chunked_creation(const Checker& check, const std::vector<hsize_t>& chunk, bool compress) {
  Handle dcpl = check(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "cannot create a dataset property list");
  check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), "cannot set the chunk shape");
  if (compress) {
    check(H5Pset_shuffle(dcpl.get()), "cannot enable the shuffle filter");
    check(H5Pset_deflate(dcpl.get(), 1), "cannot enable gzip compression");
  }
  return dcpl;
}

void write_geometry(const Checker& check, hid_t group, const NiftiGeometry& g) {
  write_attribute(check, group, "original_shape", g.shape);
  write_attribute(check, group, "original_spacing", g.spacing);
  write_attribute(check, group, "qform_code", std::vector<int32_t>{g.qform_code});
  write_attribute(check, group, "sform_code", std::vector<int32_t>{g.sform_code});
  write_attribute(check, group, "qform", g.qform);
  write_attribute(check, group, "sform", g.sform);
  write_attribute(check, group, "quatern", g.quatern);
  write_attribute(check, group, "qfac", std::vector<double>{g.qfac});
  write_attribute(check, group, "xyz_units", std::vector<int32_t>{g.xyz_units});
}

NiftiGeometry read_geometry(const Checker& check, hid_t group) {
  NiftiGeometry g;
  g.shape = read_array<int64_t, 3>(check, group, "original_shape");
  g.spacing = read_array<double, 3>(check, group, "original_spacing");
  g.qform_code = read_attribute<int32_t>(check, group, "qform_code", 1)[0];
  g.sform_code = read_attribute<int32_t>(check, group, "sform_code", 1)[0];
  g.qform = read_array<double, 16>(check, group, "qform");
  g.sform = read_array<double, 16>(check, group, "sform");
  g.quatern = read_array<double, 6>(check, group, "quatern");
  g.qfac = read_attribute<double>(check, group, "qfac", 1)[0];
  g.xyz_units = read_attribute<int32_t>(check, group, "xyz_units", 1)[0];
  return g;
}

void write_foreground(const Checker& check, hid_t group, const PreprocessedCase& c) {
  std::vector<int32_t> classes;
  std::vector<int64_t> counts;
  std::vector<int32_t> coords;
  for (const auto& [label, voxels] : c.foreground) {
    classes.push_back(label);
    counts.push_back(static_cast<int64_t>(voxels.size()));
    for (const auto& v : voxels) coords.insert(coords.end(), v.begin(), v.end());
  }
  write_dataset(check, group, "foreground_classes", {classes.size()}, classes.data());
  write_dataset(check, group, "foreground_counts", {counts.size()}, counts.data());
  write_dataset(check, group, "foreground_coords", {coords.size() / 3, 3}, coords.data());
}

void read_foreground(const Checker& check, hid_t group, PreprocessedCase& c) {
  const std::vector<int32_t> classes = read_dataset<int32_t>(check, group, "foreground_classes", 1);
  const std::vector<int64_t> counts = read_dataset<int64_t>(check, group, "foreground_counts", 1);
  const std::vector<int32_t> coords = read_dataset<int32_t>(check, group, "foreground_coords", 2);
  int64_t total = 0;
  for (int64_t n : counts) total += n;
  if (classes.size() != counts.size() || total * 3 != static_cast<int64_t>(coords.size()))
    check.fail("case " + c.id + ": inconsistent foreground datasets");
  std::size_t offset = 0;
  for (std::size_t k = 0; k < classes.size(); ++k) {
    std::vector<std::array<int32_t, 3>> voxels(static_cast<std::size_t>(counts[k]));
    for (auto& v : voxels) {
      std::copy(coords.begin() + offset, coords.begin() + offset + 3, v.begin());
      offset += 3;
    }
    c.foreground.emplace_back(classes[k], std::move(voxels));
  }
}

Shape3 dims_shape(const std::vector<hsize_t>& dims, std::size_t first) {
  return {static_cast<int64_t>(dims[first]), static_cast<int64_t>(dims[first + 1]),
          static_cast<int64_t>(dims[first + 2])};
}

}  // namespace

std::string case_store_path(const std::string& dir_or_file) {
  std::error_code ec;
  if (fs::is_directory(dir_or_file, ec)) return (fs::path(dir_or_file) / kCaseStoreFile).string();
  return dir_or_file;
}

// ---------------------------------------------------------------------------------------------- writer

struct CaseStoreWriter::Impl {
  Checker check;
  CaseStoreOptions options;
  Handle file;
  Handle cases;
  Handle meta;
  Impl(const std::string& path, const CaseStoreOptions& o) : check(path), options(o) {}
};

CaseStoreWriter::CaseStoreWriter(const std::string& path, const CaseStoreOptions& options)
    : impl_(std::make_unique<Impl>(path, options)) {
  quiet_hdf5();
  const Checker& check = impl_->check;
  if (options.compress && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0)
    check.fail("gzip compression is not available in this HDF5 library");
  Handle fapl = file_access(check, options.chunk_cache_bytes);
  impl_->file = check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose,
                      "cannot create the file");
  write_string_attribute(check, impl_->file.get(), "format", kFormatName);
  write_attribute(check, impl_->file.get(), "version", std::vector<int64_t>{kFormatVersion});
  impl_->cases = check(H5Gcreate2(impl_->file.get(), "cases", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                       H5Gclose, "cannot create group /cases");
  impl_->meta = check(H5Gcreate2(impl_->file.get(), "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose,
                      "cannot create group /meta");
}

CaseStoreWriter::~CaseStoreWriter() = default;

void CaseStoreWriter::write_case(const PreprocessedCase& c, const CaseMeta& meta) {
  quiet_hdf5();
  check_case_id(c.id);
  const Checker& check = impl_->check;
  if (!impl_->file.get()) check.fail("write_case after close");
  if (c.image.shape != c.label.shape || c.image.channels < 1)
    throw std::invalid_argument("case store: case " + c.id + " has mismatched image and label shapes");
  Handle group = check(H5Gcreate2(impl_->cases.get(), c.id.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                       H5Gclose, "cannot create the group of case " + c.id + " (duplicate id?)");
  const Shape3& shape = c.image.shape;
  std::vector<hsize_t> chunk(3);
  for (int a = 0; a < 3; ++a)
    chunk[a] = static_cast<hsize_t>(std::max<int64_t>(1, std::min(impl_->options.chunk[a], shape[a])));
  const std::vector<hsize_t> spatial = {static_cast<hsize_t>(shape[0]), static_cast<hsize_t>(shape[1]),
                                        static_cast<hsize_t>(shape[2])};
  Handle image_dcpl = chunked_creation(check, {1, chunk[0], chunk[1], chunk[2]}, impl_->options.compress);
  write_dataset(check, group.get(), "image",
                {static_cast<hsize_t>(c.image.channels), spatial[0], spatial[1], spatial[2]},
                c.image.voxels.data(), image_dcpl.get());
  Handle label_dcpl = chunked_creation(check, chunk, impl_->options.compress);
  write_dataset(check, group.get(), "label", spatial, c.label.voxels.data(), label_dcpl.get());
  write_foreground(check, group.get(), c);
  write_attribute(check, group.get(), "spacing", meta.spacing);
  write_attribute(check, group.get(), "shape", shape);
  write_attribute(check, group.get(), "crop_begin", meta.crop.begin);
  write_attribute(check, group.get(), "crop_end", meta.crop.end);
  write_geometry(check, group.get(), meta.geometry);
}

void CaseStoreWriter::write_text(const std::string& name, const std::string& text) {
  quiet_hdf5();
  const Checker& check = impl_->check;
  if (!impl_->file.get()) check.fail("write_text after close");
  Handle type = string_type(check, text.size());
  Handle space = check(H5Screate(H5S_SCALAR), H5Sclose, "cannot create a dataspace");
  Handle dataset = check(H5Dcreate2(impl_->meta.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                    H5P_DEFAULT, H5P_DEFAULT),
                         H5Dclose, "cannot create /meta/" + name);
  check(H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text.c_str()),
        "cannot write /meta/" + name);
}

void CaseStoreWriter::close() {
  quiet_hdf5();
  const Checker& check = impl_->check;
  impl_->cases.close();
  impl_->meta.close();
  if (impl_->file.get() >= 0) check(H5Fflush(impl_->file.get(), H5F_SCOPE_LOCAL), "cannot flush the file");
  check(impl_->file.close(), "cannot close the file");
}

// ---------------------------------------------------------------------------------------------- reader

struct CaseStoreReader::Impl {
  Checker check;
  Handle file;
  std::vector<std::string> ids;
  mutable std::mutex mutex;
  explicit Impl(const std::string& path) : check(path) {}

  Handle open_case(const std::string& id) const {
    if (!std::binary_search(ids.begin(), ids.end(), id)) check.fail("no case '" + id + "'");
    return check(H5Gopen2(file.get(), case_group_name(id).c_str(), H5P_DEFAULT), H5Gclose,
                 "cannot open case " + id);
  }
};

CaseStoreReader::CaseStoreReader(const std::string& path, std::size_t chunk_cache_bytes)
    : impl_(std::make_unique<Impl>(path)) {
  quiet_hdf5();
  const Checker& check = impl_->check;
  std::error_code ec;
  if (!fs::exists(path, ec)) check.fail("file not found (run e2e preprocess first)");
  if (H5Fis_hdf5(path.c_str()) <= 0) check.fail("not an HDF5 file");
  Handle fapl = file_access(check, chunk_cache_bytes);
  impl_->file = check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose, "cannot open the file");
  if (H5Aexists(impl_->file.get(), "format") <= 0 ||
      read_string_attribute(check, impl_->file.get(), "format") != kFormatName)
    check.fail("not an e2e case store (no format attribute)");
  const int64_t version = read_attribute<int64_t>(check, impl_->file.get(), "version", 1)[0];
  if (version != kFormatVersion)
    check.fail(fmt::format("format version {} is not supported (expected {})", version, kFormatVersion));
  Handle cases = check(H5Gopen2(impl_->file.get(), "cases", H5P_DEFAULT), H5Gclose, "missing group /cases");
  H5G_info_t info;
  check(H5Gget_info(cases.get(), &info), "cannot list /cases");
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t size =
        H5Lget_name_by_idx(cases.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (size < 0) check.fail("cannot list /cases");
    std::string name(static_cast<std::size_t>(size) + 1, '\0');
    H5Lget_name_by_idx(cases.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(size));
    impl_->ids.push_back(name);
  }
  std::sort(impl_->ids.begin(), impl_->ids.end());
}

CaseStoreReader::~CaseStoreReader() = default;

const std::string& CaseStoreReader::path() const {
  return impl_->check.path();
}

std::vector<std::string> CaseStoreReader::case_ids() const {
  return impl_->ids;
}

bool CaseStoreReader::has_case(const std::string& id) const {
  return std::binary_search(impl_->ids.begin(), impl_->ids.end(), id);
}

CaseMeta CaseStoreReader::meta(const std::string& id) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  quiet_hdf5();
  const Checker& check = impl_->check;
  Handle group = impl_->open_case(id);
  CaseMeta meta;
  meta.id = id;
  meta.spacing = read_array<double, 3>(check, group.get(), "spacing");
  meta.shape = read_array<int64_t, 3>(check, group.get(), "shape");
  meta.crop.begin = read_array<int64_t, 3>(check, group.get(), "crop_begin");
  meta.crop.end = read_array<int64_t, 3>(check, group.get(), "crop_end");
  meta.geometry = read_geometry(check, group.get());
  return meta;
}

PreprocessedCase CaseStoreReader::read_case(const std::string& id) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  quiet_hdf5();
  const Checker& check = impl_->check;
  Handle group = impl_->open_case(id);
  PreprocessedCase c;
  c.id = id;
  const Spacing3 spacing = read_array<double, 3>(check, group.get(), "spacing");
  std::vector<hsize_t> image_dims, label_dims;
  c.image.voxels = read_dataset<float>(check, group.get(), "image", 4, &image_dims);
  c.image.channels = static_cast<int64_t>(image_dims[0]);
  c.image.shape = dims_shape(image_dims, 1);
  c.image.spacing = spacing;
  c.label.voxels = read_dataset<int16_t>(check, group.get(), "label", 3, &label_dims);
  c.label.shape = dims_shape(label_dims, 0);
  c.label.spacing = spacing;
  if (c.label.shape != c.image.shape) check.fail("case " + id + ": image and label shapes differ");
  read_foreground(check, group.get(), c);
  return c;
}

MultiVolume<float> CaseStoreReader::read_image_region(const std::string& id, const Int3& begin,
                                                      const Shape3& size) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  quiet_hdf5();
  const Checker& check = impl_->check;
  Handle group = impl_->open_case(id);
  Handle dataset = check(H5Dopen2(group.get(), "image", H5P_DEFAULT), H5Dclose, "missing dataset image");
  const std::vector<hsize_t> dims = dataset_dims(check, dataset.get(), 4, "image");
  for (int a = 0; a < 3; ++a)
    if (begin[a] < 0 || size[a] < 1 || begin[a] + size[a] > static_cast<int64_t>(dims[a + 1]))
      throw std::out_of_range(
          fmt::format("case store: region [{}, {}) on axis {} is outside case {} ({} voxels)", begin[a],
                      begin[a] + size[a], a, id, dims[a + 1]));
  MultiVolume<float> region(static_cast<int64_t>(dims[0]), size);
  const std::vector<hsize_t> start = {0, static_cast<hsize_t>(begin[0]), static_cast<hsize_t>(begin[1]),
                                      static_cast<hsize_t>(begin[2])};
  const std::vector<hsize_t> count = {dims[0], static_cast<hsize_t>(size[0]), static_cast<hsize_t>(size[1]),
                                      static_cast<hsize_t>(size[2])};
  Handle file_space = check(H5Dget_space(dataset.get()), H5Sclose, "cannot read dataset image");
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        "cannot select a region");
  Handle memory_space = simple_space(check, count);
  check(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(), H5P_DEFAULT,
                region.voxels.data()),
        "cannot read a region of case " + id);
  return region;
}

bool CaseStoreReader::has_text(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  quiet_hdf5();
  return H5Lexists(impl_->file.get(), "meta", H5P_DEFAULT) > 0 &&
         H5Lexists(impl_->file.get(), ("meta/" + name).c_str(), H5P_DEFAULT) > 0;
}

std::string CaseStoreReader::text(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  quiet_hdf5();
  const Checker& check = impl_->check;
  const std::string path = "/meta/" + name;
  Handle dataset = check(H5Dopen2(impl_->file.get(), path.c_str(), H5P_DEFAULT), H5Dclose, "missing " + path);
  Handle type = check(H5Dget_type(dataset.get()), H5Tclose, "cannot read " + path);
  return read_fixed_string(
      check, type.get(),
      [&](hid_t memory, void* buffer) {
        return H5Dread(dataset.get(), memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
      },
      path);
}

// ---------------------------------------------------------------------------------------------- source

// Least-recently-used cases, up to a byte budget.
struct Hdf5CaseSource::Cache {
  std::size_t budget = 0;
  std::size_t bytes = 0;
  std::mutex mutex;
  std::list<std::size_t> order;  // most recent first
  struct Entry {
    std::shared_ptr<const PreprocessedCase> value;
    std::size_t bytes;
    std::list<std::size_t>::iterator position;
  };
  std::unordered_map<std::size_t, Entry> entries;

  std::shared_ptr<const PreprocessedCase> find(std::size_t index) {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = entries.find(index);
    if (it == entries.end()) return nullptr;
    order.splice(order.begin(), order, it->second.position);
    return it->second.value;
  }

  void insert(std::size_t index, const std::shared_ptr<const PreprocessedCase>& value) {
    const std::size_t size =
        value->image.voxels.size() * sizeof(float) + value->label.voxels.size() * sizeof(int16_t);
    std::lock_guard<std::mutex> lock(mutex);
    if (size > budget || entries.count(index)) return;
    while (bytes + size > budget) {
      const std::size_t oldest = order.back();
      bytes -= entries.at(oldest).bytes;
      entries.erase(oldest);
      order.pop_back();
    }
    order.push_front(index);
    entries.emplace(index, Entry{value, size, order.begin()});
    bytes += size;
  }
};

Hdf5CaseSource::Hdf5CaseSource(const std::string& dir_or_file, std::vector<std::string> ids,
                               std::size_t cache_bytes)
    : store_(std::make_shared<CaseStoreReader>(case_store_path(dir_or_file))),
      ids_(std::move(ids)),
      cache_(std::make_unique<Cache>()) {
  cache_->budget = cache_bytes;
  if (ids_.empty()) ids_ = store_->case_ids();
  for (const std::string& id : ids_)
    if (!store_->has_case(id))
      throw InputError(fmt::format("{}: case store has no case '{}'", store_->path(), id));
}

Hdf5CaseSource::~Hdf5CaseSource() = default;

std::size_t Hdf5CaseSource::size() const {
  return ids_.size();
}

std::string Hdf5CaseSource::case_id(std::size_t index) const {
  return ids_.at(index);
}

std::shared_ptr<const PreprocessedCase> Hdf5CaseSource::load(std::size_t index) const {
  const std::string& id = ids_.at(index);
  if (auto cached = cache_->find(index)) return cached;
  auto loaded = std::make_shared<const PreprocessedCase>(store_->read_case(id));
  if (cache_->budget > 0) cache_->insert(index, loaded);
  return loaded;
}

const CaseStoreReader& Hdf5CaseSource::store() const {
  return *store_;
}

}  // namespace e2e
