# Finds NCCL (header nccl.h + libnccl), e.g. under /usr/local/cuda or $NCCL_ROOT. Provides NCCL::nccl.
find_path(NCCL_INCLUDE_DIR nccl.h HINTS $ENV{NCCL_ROOT} /usr/local/cuda PATH_SUFFIXES include)
find_library(NCCL_LIBRARY nccl HINTS $ENV{NCCL_ROOT} /usr/local/cuda PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(NCCL REQUIRED_VARS NCCL_INCLUDE_DIR NCCL_LIBRARY)
if(NCCL_FOUND AND NOT TARGET NCCL::nccl)
  add_library(NCCL::nccl INTERFACE IMPORTED)
  set_target_properties(NCCL::nccl PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${NCCL_INCLUDE_DIR}" INTERFACE_LINK_LIBRARIES "${NCCL_LIBRARY}")
endif()
