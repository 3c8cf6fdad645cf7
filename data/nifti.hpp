// NIfTI-1/2 reading and writing through nifti_clib (nifti2 API), with the header geometry kept for writing
// results back in the original space. Volumes are (z, y, x) = NIfTI (k, j, i), x fastest, no transposes.
#pragma once

#include <array>
#include <string>

#include "data/volume.hpp"

namespace e2e {

// Everything needed to write a volume back with the same world geometry.
struct NiftiGeometry {
  Shape3 shape{0, 0, 0};            // (z, y, x)
  Spacing3 spacing{1.0, 1.0, 1.0};  // (z, y, x) mm from pixdim[3], pixdim[2], pixdim[1]
  int qform_code = 0;
  int sform_code = 0;
  std::array<double, 16> qform{};  // 4×4 row-major, voxel (i, j, k, 1) → world
  std::array<double, 16> sform{};
  std::array<double, 6> quatern{};  // quatern_b, c, d, qoffset_x, y, z
  double qfac = 1.0;
  int xyz_units = 2;  // NIFTI_UNITS_MM

  // True when shape and spacing agree (spacing to 1e-4 relative) and the preferred affine (sform if
  // sform_code > 0, else qform) agrees to 1e-3 mm.
  bool same_grid(const NiftiGeometry& other) const;
  // What differs from `other` ("shape 62x128x128 vs 62x128x127"), empty when same_grid() holds.
  std::string difference(const NiftiGeometry& other) const;
  std::string describe() const;  // "62x128x128 (z,y,x) at 3x2x2 mm"
  // Voxel (i, j, k, 1) → world (x, y, z) matrix, row-major: sform if sform_code > 0, else qform (which is
  // pixdim scaling when qform_code is 0 too).
  std::array<double, 16> preferred_affine() const;
};

// An axis-aligned grid with identical qform and sform (code 1, scanner), origin in world mm (x, y, z).
NiftiGeometry make_nifti_geometry(const Shape3& shape, const Spacing3& spacing,
                                  const std::array<double, 3>& origin_xyz = {0.0, 0.0, 0.0});

struct NiftiImage {
  NiftiGeometry geometry;
  MultiVolume<float> data;  // scl_slope/scl_inter applied; 3D files give one channel, 4D files dim[4]
};

// Throws InputError naming the file on a missing, truncated or unsupported file.
NiftiImage read_nifti(const std::string& path);
// Labels: values must be integral (stored as float they are rounded, a non-integral value is an error).
Volume<int16_t> read_nifti_labels(const std::string& path, NiftiGeometry* geometry = nullptr);
NiftiGeometry read_nifti_geometry(const std::string& path);  // header only

// Header-only facts beyond the grid.
struct NiftiHeader {
  NiftiGeometry geometry;
  int64_t channels = 1;  // product of dim[4..7]
  std::string datatype;  // "INT16", "FLOAT32", …
};
NiftiHeader read_nifti_header(const std::string& path);

// .nii or .nii.gz by extension; written atomically (temporary name, then rename).
// Images are stored as float32, labels as uint8 when all values fit, else int16. The geometry gives the
// header (its shape must be the volume's or all zero); the volume's own spacing is not used. Files with a
// dimension above 32767 are written as NIfTI-2, others as NIfTI-1. Throws InputError when the file cannot be
// written.
void write_nifti(const std::string& path, const Volume<float>& volume, const NiftiGeometry& geometry);
void write_nifti(const std::string& path, const MultiVolume<float>& image,
                 const NiftiGeometry& geometry);  // 4D
void write_nifti_labels(const std::string& path, const Volume<int16_t>& labels,
                        const NiftiGeometry& geometry);

}  // namespace e2e
