// NIfTI reading through nifti_clib (nifti2 API, reads NIfTI-1 and NIfTI-2, gz, either byte order); headers
// for writing are built by nifti_clib too, while the bytes are written here so that every write error is seen
// (nifti_image_write ignores short data writes) and the file appears atomically.
#include "data/nifti.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nifti2_io.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>

namespace e2e {

namespace fs = std::filesystem;

namespace {

// Level 1 writes several times faster than zlib's default 6 and costs little size on noisy float images.
constexpr const char* kGzipWriteMode = "wb1";
constexpr int64_t kNifti1MaxDim = 32767;
constexpr double kLabelTolerance = 1e-3;  // stored-as-float labels within this of an integer are rounded

struct ImageDeleter {
  void operator()(nifti_image* image) const { nifti_image_free(image); }
};
using ImagePtr = std::unique_ptr<nifti_image, ImageDeleter>;

// nifti_clib prints its own diagnostics to stderr at debug level 1; our exceptions say what went wrong.
void silence_nifti_clib() {
  static std::once_flag once;
  std::call_once(once, [] { nifti_set_debug_level(0); });
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_gzip_name(const std::string& path) {
  return ends_with(path, ".gz");
}

void check_readable_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(fmt::format("{}: file not found", path));
  if (!fs::is_regular_file(path, ec)) throw InputError(fmt::format("{}: not a regular file", path));
  if (!ends_with(path, ".nii") && !ends_with(path, ".nii.gz"))
    throw InputError(fmt::format("{}: expected a NIfTI file ending in .nii or .nii.gz", path));
}

bool is_supported_datatype(int datatype) {
  switch (datatype) {
    case DT_UINT8:
    case DT_INT8:
    case DT_INT16:
    case DT_UINT16:
    case DT_INT32:
    case DT_UINT32:
    case DT_INT64:
    case DT_UINT64:
    case DT_FLOAT32:
    case DT_FLOAT64:
      return true;
    default:
      return false;
  }
}

// Volumes along dimensions 4..7 (dimensions above dim[0] may hold 0 and do not count); -1 when the product
// overflows (a corrupt header, refused by open_header).
int64_t channels_of(const nifti_image& image) {
  int64_t channels = 1;
  for (int64_t d = 4; d <= std::min<int64_t>(image.ndim, 7); ++d)
    if (__builtin_mul_overflow(channels, std::max<int64_t>(image.dim[d], 1), &channels)) return -1;
  return channels;
}

// nx·ny·nz·channels, or -1 when that overflows int64_t.
int64_t voxel_count(const nifti_image& image) {
  int64_t count = 1;
  for (const int64_t factor : {image.nx, image.ny, image.nz, channels_of(image)})
    if (factor < 0 || __builtin_mul_overflow(count, factor, &count)) return -1;
  return count;
}

// dim[0] (the number of dimensions) of a NIfTI-1 or NIfTI-2 header in either byte order, or 0 when the
// first bytes are not such a header.
int64_t header_dim0(const unsigned char* bytes, int size) {
  const auto read = [&](int offset, int width, bool swapped) {
    uint64_t value = 0;
    for (int b = 0; b < width; ++b) {
      const int at = offset + (swapped ? b : width - 1 - b);
      value = (value << 8) | bytes[at];
    }
    return width == 2 ? static_cast<int64_t>(static_cast<int16_t>(value)) : static_cast<int64_t>(value);
  };
  for (const bool swapped : {false, true}) {
    const int64_t header_size = read(0, 4, swapped);
    const int64_t dim0 = header_size == 348 && size >= 42   ? read(40, 2, swapped)
                         : header_size == 540 && size >= 24 ? read(16, 8, swapped)
                                                            : 0;
    if (dim0 >= 1 && dim0 <= 7) return dim0;
  }
  return 0;
}

// nifti_clib byte-swaps a header whose dim[0] is out of range and then trusts it: a NIfTI-2 header with
// dim[0] out of range in both byte orders overflows its stack (fuzz_nifti). Such headers are refused here
// first.
void check_header_dims(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");  // reads plain and gzip files alike
  if (file == nullptr) return;               // nifti_image_read reports it
  unsigned char bytes[48] = {};
  const int size = gzread(file, bytes, sizeof(bytes));
  gzclose(file);
  if (header_dim0(bytes, size) == 0)
    throw InputError(
        fmt::format("{}: not a readable NIfTI file (no NIfTI-1/2 header of 1 to 7 dimensions)", path));
}

ImagePtr open_header(const std::string& path) {
  silence_nifti_clib();
  check_readable_file(path);
  check_header_dims(path);
  ImagePtr image(nifti_image_read(path.c_str(), 0));
  if (!image)
    throw InputError(fmt::format("{}: not a readable NIfTI file (missing or corrupt header)", path));
  if (image->nx < 1 || image->ny < 1 || image->nz < 1 || image->nvox != voxel_count(*image))
    throw InputError(
        fmt::format("{}: invalid dimensions (dim = {})", path,
                    fmt::join(image->dim, image->dim + std::min<int64_t>(image->ndim, 7) + 1, ",")));
  if (!is_supported_datatype(image->datatype))
    throw InputError(
        fmt::format("{}: unsupported NIfTI datatype {} (code {}); expected an integer or real type", path,
                    nifti_datatype_string(image->datatype), image->datatype));
  return image;
}

// nifti_image_load allocates what the header declares before reading: a file that cannot hold that much data
// is refused first, so that a few hundred bytes cannot make the reader allocate gigabytes. A .gz file holds
// at most kMaxDeflateRatio times its size (deflate's best ratio is about 1032:1).
constexpr int64_t kMaxDeflateRatio = 1032;

void check_data_fits_file(const nifti_image& image, const std::string& path) {
  std::error_code ec;
  const auto file_bytes = static_cast<int64_t>(fs::file_size(path, ec));
  if (ec) return;  // nifti_image_load reports the unreadable file
  const int64_t available = is_gzip_name(path) ? file_bytes * kMaxDeflateRatio
                                               : file_bytes - std::max<int64_t>(image.iname_offset, 0);
  if (image.nbyper > 0 && image.nvox > std::max<int64_t>(available, 0) / image.nbyper)
    throw InputError(fmt::format(
        "{}: image data is truncated: the header declares {} voxels of {} ({} bytes each), more than the {} "
        "bytes of the file can hold",
        path, image.nvox, nifti_datatype_string(image.datatype), image.nbyper, file_bytes));
}

void load_data(nifti_image& image, const std::string& path) {
  check_data_fits_file(image, path);
  if (nifti_image_load(&image) != 0 || image.data == nullptr)
    throw InputError(fmt::format("{}: image data is truncated or corrupt (expected {} voxels of {})", path,
                                 image.nvox, nifti_datatype_string(image.datatype)));
}

// Stored value → physical value (nibabel's rule: scaling applies when the slope is finite and non-zero).
struct Scaling {
  double slope = 1.0;
  double inter = 0.0;
  double apply(double stored) const { return slope * stored + inter; }
};

Scaling scaling_of(const nifti_image& image) {
  if (image.scl_slope == 0.0 || !std::isfinite(image.scl_slope)) return {};
  return {image.scl_slope, std::isfinite(image.scl_inter) ? image.scl_inter : 0.0};
}

template <typename Stored, typename Visit>
void visit_stored(const void* data, int64_t count, Visit& visit) {
  const Stored* values = static_cast<const Stored*>(data);
  for (int64_t i = 0; i < count; ++i) visit(i, static_cast<double>(values[i]));
}

// Calls visit(index, stored value as double) for every voxel of a loaded image.
template <typename Visit>
void for_each_stored_value(const nifti_image& image, Visit visit) {
  const int64_t n = image.nvox;
  switch (image.datatype) {
    case DT_UINT8:
      return visit_stored<uint8_t>(image.data, n, visit);
    case DT_INT8:
      return visit_stored<int8_t>(image.data, n, visit);
    case DT_INT16:
      return visit_stored<int16_t>(image.data, n, visit);
    case DT_UINT16:
      return visit_stored<uint16_t>(image.data, n, visit);
    case DT_INT32:
      return visit_stored<int32_t>(image.data, n, visit);
    case DT_UINT32:
      return visit_stored<uint32_t>(image.data, n, visit);
    case DT_INT64:
      return visit_stored<int64_t>(image.data, n, visit);
    case DT_UINT64:
      return visit_stored<uint64_t>(image.data, n, visit);
    case DT_FLOAT32:
      return visit_stored<float>(image.data, n, visit);
    case DT_FLOAT64:
      return visit_stored<double>(image.data, n, visit);
    default:
      throw std::logic_error("for_each_stored_value: datatype not checked");
  }
}

std::array<double, 16> to_array(const nifti_dmat44& m) {
  std::array<double, 16> out{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) out[r * 4 + c] = m.m[r][c];
  return out;
}

nifti_dmat44 to_dmat44(const std::array<double, 16>& a) {
  nifti_dmat44 m{};
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) m.m[r][c] = a[r * 4 + c];
  return m;
}

double usable_spacing(double pixdim) {
  return std::isfinite(pixdim) && pixdim != 0.0 ? std::fabs(pixdim) : 1.0;
}

NiftiGeometry geometry_of(const nifti_image& image) {
  NiftiGeometry g;
  g.shape = {image.nz, image.ny, image.nx};
  g.spacing = {usable_spacing(image.dz), usable_spacing(image.dy), usable_spacing(image.dx)};
  g.qform_code = image.qform_code;
  g.sform_code = image.sform_code;
  g.qform = to_array(image.qto_xyz);
  g.sform = to_array(image.sto_xyz);
  g.quatern = {image.quatern_b, image.quatern_c, image.quatern_d,
               image.qoffset_x, image.qoffset_y, image.qoffset_z};
  g.qfac = image.qfac < 0 ? -1.0 : 1.0;
  g.xyz_units = image.xyz_units;
  return g;
}

std::string format_shape(const Shape3& s) {
  return fmt::format("{}x{}x{}", s[0], s[1], s[2]);
}
std::string format_spacing(const Spacing3& s) {
  return fmt::format("{:g}x{:g}x{:g}", s[0], s[1], s[2]);
}

bool close_relative(double a, double b, double tolerance) {
  return std::fabs(a - b) <= tolerance * std::max(std::fabs(a), std::fabs(b));
}

// ---- writing ----

void apply_geometry(nifti_image& image, const NiftiGeometry& g) {
  image.dz = image.pixdim[3] = g.spacing[0];
  image.dy = image.pixdim[2] = g.spacing[1];
  image.dx = image.pixdim[1] = g.spacing[2];
  image.qform_code = g.qform_code;
  image.sform_code = g.sform_code;
  image.quatern_b = g.quatern[0];
  image.quatern_c = g.quatern[1];
  image.quatern_d = g.quatern[2];
  image.qoffset_x = g.quatern[3];
  image.qoffset_y = g.quatern[4];
  image.qoffset_z = g.quatern[5];
  image.qfac = g.qfac < 0 ? -1.0 : 1.0;
  image.qto_xyz =
      nifti_quatern_to_dmat44(image.quatern_b, image.quatern_c, image.quatern_d, image.qoffset_x,
                              image.qoffset_y, image.qoffset_z, image.dx, image.dy, image.dz, image.qfac);
  image.qto_ijk = nifti_dmat44_inverse(image.qto_xyz);
  if (g.sform_code > 0) {
    image.sto_xyz = to_dmat44(g.sform);
    image.sto_ijk = nifti_dmat44_inverse(image.sto_xyz);
  }
  image.xyz_units = g.xyz_units;
  image.time_units = NIFTI_UNITS_UNKNOWN;
  std::snprintf(image.descrip, sizeof(image.descrip), "e2enet-orchestrator");
}

// The header plus the 4-byte "no extensions" flag, padded to the data offset.
std::vector<char> header_bytes(const std::string& path, const Shape3& shape, int64_t channels, int datatype,
                               const NiftiGeometry& geometry) {
  const int64_t dims[8] = {channels > 1 ? 4 : 3, shape[2], shape[1], shape[0], channels, 1, 1, 1};
  ImagePtr image(nifti_make_new_nim(dims, datatype, 0));
  if (!image)
    throw InputError(fmt::format("{}: cannot build a NIfTI header for {}", path, format_shape(shape)));
  apply_geometry(*image, geometry);
  const bool nifti2 = std::max({shape[0], shape[1], shape[2], channels}) > kNifti1MaxDim;
  const std::size_t header_size = nifti2 ? sizeof(nifti_2_header) : sizeof(nifti_1_header);
  const std::size_t offset = (header_size + 4 + 15) / 16 * 16;
  image->nifti_type = nifti2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
  image->iname_offset = static_cast<int64_t>(offset);

  std::vector<char> bytes(offset, 0);
  if (nifti2) {
    nifti_2_header header{};
    if (nifti_convert_nim2n2hdr(image.get(), &header) != 0)
      throw InputError(fmt::format("{}: cannot build a NIfTI-2 header", path));
    std::memcpy(bytes.data(), &header, sizeof(header));
  } else {
    nifti_1_header header{};
    if (nifti_convert_nim2n1hdr(image.get(), &header) != 0)
      throw InputError(fmt::format("{}: cannot build a NIfTI-1 header", path));
    std::memcpy(bytes.data(), &header, sizeof(header));
  }
  return bytes;
}

std::string temporary_path_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  const fs::path target(path);
  const std::string name =
      fmt::format(".e2e-tmp-{}-{}-{}", static_cast<long>(::getpid()), counter++, target.filename().string());
  return (target.parent_path() / name).string();
}

[[noreturn]] void throw_write_error(const std::string& path, const std::string& what) {
  throw InputError(fmt::format("{}: cannot write ({})", path, what));
}

void write_gzip(const std::string& temp, const std::string& target, const std::vector<char>& header,
                const char* data, std::size_t size) {
  gzFile file = gzopen(temp.c_str(), kGzipWriteMode);
  if (!file) throw_write_error(target, std::strerror(errno));
  gzbuffer(file, 1 << 18);
  bool ok =
      gzwrite(file, header.data(), static_cast<unsigned>(header.size())) == static_cast<int>(header.size());
  constexpr std::size_t kChunk = 1 << 30;
  for (std::size_t done = 0; ok && done < size; done += kChunk) {
    const unsigned n = static_cast<unsigned>(std::min(kChunk, size - done));
    ok = gzwrite(file, data + done, n) == static_cast<int>(n);
  }
  const int saved_errno = errno;
  const bool closed = gzclose(file) == Z_OK;
  if (!ok || !closed) throw_write_error(target, std::strerror(saved_errno ? saved_errno : errno));
}

void write_plain(const std::string& temp, const std::string& target, const std::vector<char>& header,
                 const char* data, std::size_t size) {
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (!file) throw_write_error(target, std::strerror(errno));
  bool ok = std::fwrite(header.data(), 1, header.size(), file) == header.size() &&
            std::fwrite(data, 1, size, file) == size && std::fflush(file) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(file) == 0;
  if (!ok || !closed) throw_write_error(target, std::strerror(saved_errno ? saved_errno : errno));
}

// Writes to a temporary name in the target's folder, then renames: readers never see a partial file.
void write_file_atomically(const std::string& path, const std::vector<char>& header, const void* data,
                           std::size_t size) {
  const std::string temp = temporary_path_for(path);
  try {
    errno = 0;
    if (is_gzip_name(path))
      write_gzip(temp, path, header, static_cast<const char*>(data), size);
    else
      write_plain(temp, path, header, static_cast<const char*>(data), size);
    std::error_code ec;
    fs::rename(temp, path, ec);
    if (ec) throw_write_error(path, ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

void check_writable(const std::string& path, const Shape3& shape, const NiftiGeometry& geometry) {
  if (!ends_with(path, ".nii") && !ends_with(path, ".nii.gz"))
    throw InputError(fmt::format("{}: output NIfTI file names must end in .nii or .nii.gz", path));
  if (geometry.shape != Shape3{0, 0, 0} && geometry.shape != shape)
    throw std::invalid_argument(fmt::format("write_nifti {}: volume shape {} differs from the geometry's {}",
                                            path, format_shape(shape), format_shape(geometry.shape)));
  for (double s : geometry.spacing)
    if (!(s > 0.0) || !std::isfinite(s))
      throw InputError(
          fmt::format("{}: spacing must be positive, got {} mm", path, format_spacing(geometry.spacing)));
  if (shape[0] < 1 || shape[1] < 1 || shape[2] < 1)
    throw std::invalid_argument(fmt::format("write_nifti {}: empty volume {}", path, format_shape(shape)));
}

void write_volume(const std::string& path, const Shape3& shape, int64_t channels, int datatype,
                  const void* data, std::size_t bytes, const NiftiGeometry& geometry) {
  silence_nifti_clib();
  check_writable(path, shape, geometry);
  write_file_atomically(path, header_bytes(path, shape, channels, datatype, geometry), data, bytes);
}

}  // namespace

std::array<double, 16> NiftiGeometry::preferred_affine() const {
  return sform_code > 0 ? sform : qform;
}

std::string NiftiGeometry::difference(const NiftiGeometry& other) const {
  if (shape != other.shape)
    return fmt::format("shape {} vs {}", format_shape(shape), format_shape(other.shape));
  for (int axis = 0; axis < 3; ++axis)
    if (!close_relative(spacing[axis], other.spacing[axis], 1e-4))
      return fmt::format("spacing {} vs {} mm", format_spacing(spacing), format_spacing(other.spacing));
  const std::array<double, 16> a = preferred_affine();
  const std::array<double, 16> b = other.preferred_affine();
  double worst = 0.0;
  for (int i = 0; i < 12; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  if (worst > 1e-3 || !std::isfinite(worst))
    return fmt::format(
        "voxel-to-world affine differs by up to {:g} (origin {:g},{:g},{:g} vs {:g},{:g},{:g} mm)", worst,
        a[3], a[7], a[11], b[3], b[7], b[11]);
  return {};
}

bool NiftiGeometry::same_grid(const NiftiGeometry& other) const {
  return difference(other).empty();
}

std::string NiftiGeometry::describe() const {
  return fmt::format("{} (z,y,x) at {} mm", format_shape(shape), format_spacing(spacing));
}

NiftiGeometry make_nifti_geometry(const Shape3& shape, const Spacing3& spacing,
                                  const std::array<double, 3>& origin_xyz) {
  NiftiGeometry g;
  g.shape = shape;
  g.spacing = spacing;
  g.qform_code = NIFTI_XFORM_SCANNER_ANAT;
  g.sform_code = NIFTI_XFORM_SCANNER_ANAT;
  g.quatern = {0.0, 0.0, 0.0, origin_xyz[0], origin_xyz[1], origin_xyz[2]};
  g.qfac = 1.0;
  g.qform = {spacing[2], 0.0, 0.0,        origin_xyz[0], 0.0, spacing[1], 0.0, origin_xyz[1],
             0.0,        0.0, spacing[0], origin_xyz[2], 0.0, 0.0,        0.0, 1.0};
  g.sform = g.qform;
  g.xyz_units = NIFTI_UNITS_MM;
  return g;
}

NiftiGeometry read_nifti_geometry(const std::string& path) {
  return geometry_of(*open_header(path));
}

NiftiHeader read_nifti_header(const std::string& path) {
  const ImagePtr image = open_header(path);
  return {geometry_of(*image), channels_of(*image), nifti_datatype_string(image->datatype)};
}

NiftiImage read_nifti(const std::string& path) {
  ImagePtr image = open_header(path);
  load_data(*image, path);
  NiftiImage out;
  out.geometry = geometry_of(*image);
  out.data = MultiVolume<float>(channels_of(*image), out.geometry.shape, out.geometry.spacing);
  const Scaling scaling = scaling_of(*image);
  float* voxels = out.data.voxels.data();
  for_each_stored_value(*image,
                        [&](int64_t i, double v) { voxels[i] = static_cast<float>(scaling.apply(v)); });
  return out;
}

Volume<int16_t> read_nifti_labels(const std::string& path, NiftiGeometry* geometry) {
  ImagePtr image = open_header(path);
  if (channels_of(*image) != 1)
    throw InputError(fmt::format("{}: a label map must be 3D, got {} volumes", path, channels_of(*image)));
  load_data(*image, path);
  const NiftiGeometry g = geometry_of(*image);
  Volume<int16_t> labels(g.shape, g.spacing);
  const Scaling scaling = scaling_of(*image);
  int64_t bad_count = 0;
  double first_bad = 0.0;
  int16_t* out = labels.voxels.data();
  for_each_stored_value(*image, [&](int64_t i, double stored) {
    const double value = scaling.apply(stored);
    const double rounded = std::round(value);
    if (std::fabs(value - rounded) > kLabelTolerance || rounded < INT16_MIN || rounded > INT16_MAX) {
      if (bad_count++ == 0) first_bad = value;
      return;
    }
    out[i] = static_cast<int16_t>(rounded);
  });
  if (bad_count > 0)
    throw InputError(
        fmt::format("{}: label values must be integers in [-32768, 32767]; found {:g} ({} voxel(s) "
                    "not integral or out of range)",
                    path, first_bad, bad_count));
  if (geometry) *geometry = g;
  return labels;
}

void write_nifti(const std::string& path, const Volume<float>& volume, const NiftiGeometry& geometry) {
  write_volume(path, volume.shape, 1, DT_FLOAT32, volume.voxels.data(), volume.voxels.size() * sizeof(float),
               geometry);
}

void write_nifti(const std::string& path, const MultiVolume<float>& image, const NiftiGeometry& geometry) {
  if (image.channels < 1) throw std::invalid_argument("write_nifti " + path + ": no channels");
  write_volume(path, image.shape, image.channels, DT_FLOAT32, image.voxels.data(),
               image.voxels.size() * sizeof(float), geometry);
}

void write_nifti_labels(const std::string& path, const Volume<int16_t>& labels,
                        const NiftiGeometry& geometry) {
  const auto [lowest, highest] = std::minmax_element(labels.voxels.begin(), labels.voxels.end());
  const bool fits_uint8 = labels.voxels.empty() || (*lowest >= 0 && *highest <= 255);
  if (!fits_uint8) {
    write_volume(path, labels.shape, 1, DT_INT16, labels.voxels.data(),
                 labels.voxels.size() * sizeof(int16_t), geometry);
    return;
  }
  const std::vector<uint8_t> narrow(labels.voxels.begin(), labels.voxels.end());
  write_volume(path, labels.shape, 1, DT_UINT8, narrow.data(), narrow.size(), geometry);
}

}  // namespace e2e
