# Debian's NIFTI CMake config is broken, so find nifti_clib (NIfTI-2 API) by hand.
# Provides the imported target NIfTI::nifti2.
find_path(NIFTI_INCLUDE_DIR nifti2_io.h PATH_SUFFIXES nifti)
find_library(NIFTI2_LIBRARY nifti2)
find_library(ZNZ_LIBRARY znz)
find_package(ZLIB REQUIRED)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(NIfTI REQUIRED_VARS NIFTI_INCLUDE_DIR NIFTI2_LIBRARY ZNZ_LIBRARY)
if(NIfTI_FOUND AND NOT TARGET NIfTI::nifti2)
  add_library(NIfTI::nifti2 INTERFACE IMPORTED)
  set_target_properties(NIfTI::nifti2 PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${NIFTI_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${NIFTI2_LIBRARY};${ZNZ_LIBRARY};ZLIB::ZLIB"
    INTERFACE_COMPILE_DEFINITIONS "HAVE_ZLIB")
endif()
