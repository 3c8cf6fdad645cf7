# Finds LibTorch (Debian's 1.13 CPU build, the PyPI wheel's CUDA build, or a standalone libtorch archive) and
# prints what the build will use. Sets E2E_TORCH_CUDA (LibTorch built with CUDA).
#
# GPU architectures: users set the usual CMAKE_CUDA_ARCHITECTURES (80 = A100, 90 = H100). LibTorch's CMake
# config ignores that variable (with a warning) and reads TORCH_CUDA_ARCH_LIST ("8.0;9.0"), so translate it
# here and hide it from the config. Without either: A100 and H100.
if(DEFINED CMAKE_CUDA_ARCHITECTURES AND NOT CMAKE_CUDA_ARCHITECTURES MATCHES "^(OFF|native|all|all-major)?$")
  set(_torch_archs "")
  foreach(arch IN LISTS CMAKE_CUDA_ARCHITECTURES)
    string(REGEX REPLACE "-(real|virtual)$" "" arch "${arch}")
    string(REGEX REPLACE "^([0-9]+)([0-9])([a-z]?)$" "\\1.\\2\\3" arch "${arch}")
    list(APPEND _torch_archs "${arch}")
  endforeach()
  set(TORCH_CUDA_ARCH_LIST "${_torch_archs}" CACHE STRING "GPU architectures for CUDA code (from CMAKE_CUDA_ARCHITECTURES)" FORCE)
elseif(NOT TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0" CACHE STRING "GPU architectures for CUDA code (8.0 = A100, 9.0 = H100)")
endif()
set(E2E_CUDA_ARCHITECTURES_REQUESTED "${CMAKE_CUDA_ARCHITECTURES}")
unset(CMAKE_CUDA_ARCHITECTURES CACHE)
unset(CMAKE_CUDA_ARCHITECTURES)
# CMP0104 NEW would give CMAKE_CUDA_ARCHITECTURES a default when LibTorch's config enables CUDA, and that
# default would trip the same warning; the architectures are TORCH_CUDA_ARCH_LIST's business.
cmake_policy(SET CMP0104 OLD)

# The PyPI wheel links Kineto (the profiler) into libtorch_cpu and ships no libkineto, but its config still
# looks for one and warns; stand in an empty target when there is none.
find_library(kineto_LIBRARY kineto PATH_SUFFIXES lib)
if(NOT kineto_LIBRARY)
  add_library(e2e_kineto_inside_libtorch INTERFACE)
  set(kineto_LIBRARY e2e_kineto_inside_libtorch)
endif()

find_package(Torch REQUIRED)

set(E2E_TORCH_CUDA OFF)
if(TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA)
  set(E2E_TORCH_CUDA ON)
endif()
# The PyPI wheel brings its own CUDA runtime, NCCL, cuBLAS… (site-packages/nvidia/*/lib), possibly newer than
# the toolkit's. Link and run against those, as LibTorch itself does: the linker resolves LibTorch's
# dependencies there (not in the toolkit, whose older libnccl lacks symbols LibTorch needs), and CUDA::cudart
# is the wheel's runtime, so the process holds one libcudart.
if(E2E_TORCH_CUDA)
  file(GLOB _wheel_lib_dirs LIST_DIRECTORIES true "${TORCH_INSTALL_PREFIX}/../nvidia/*/lib")
  if(_wheel_lib_dirs)
    string(JOIN ":" _wheel_rpath_link ${_wheel_lib_dirs})
    add_link_options("LINKER:-rpath-link,${_wheel_rpath_link}")
    find_library(E2E_WHEEL_CUDART NAMES libcudart.so.13 libcudart.so.12 PATHS ${_wheel_lib_dirs} NO_DEFAULT_PATH)
    if(E2E_WHEEL_CUDART AND TARGET CUDA::cudart)
      set_property(TARGET CUDA::cudart PROPERTY IMPORTED_LOCATION "${E2E_WHEEL_CUDART}")
    endif()
  endif()
endif()

set(_torch_built_with "CPU only")
if(EXISTS "${TORCH_INSTALL_PREFIX}/version.py")  # the PyPI wheel
  file(STRINGS "${TORCH_INSTALL_PREFIX}/version.py" _torch_cuda_line REGEX "^cuda.*= *'[0-9.]+'")
  string(REGEX REPLACE ".*'([0-9.]+)'.*" "CUDA \\1" _torch_built_with "${_torch_cuda_line}")
elseif(E2E_TORCH_CUDA)
  set(_torch_built_with "CUDA")
endif()
message(STATUS "e2e: LibTorch ${Torch_VERSION} (${_torch_built_with}) from ${TORCH_INSTALL_PREFIX}")
# What `e2e --version` reports (the NCCL part is added where NCCL is found).
set(E2E_BUILD_DESCRIPTION "LibTorch ${Torch_VERSION}, ${_torch_built_with}")
if(E2E_TORCH_CUDA)
  string(REPLACE ";" " " _archs "${TORCH_CUDA_ARCH_LIST}")  # a ';' would split the compile definition
  string(APPEND E2E_BUILD_DESCRIPTION ", GPU architectures ${_archs}")
endif()
if(E2E_TORCH_CUDA)
  message(STATUS "e2e: CUDA toolkit ${CUDAToolkit_VERSION} (${CUDAToolkit_NVCC_EXECUTABLE}); "
                 "GPU architectures ${TORCH_CUDA_ARCH_LIST}")
endif()

# LibTorch 2.x ships fmt 12 headers in its include folder, ahead of the system's in the search path, while
# Debian's spdlog 1.10 only compiles against the fmt 9 it was built with. Put the system's fmt first: none
# of the LibTorch headers we include uses fmt.
if(EXISTS "${TORCH_INSTALL_PREFIX}/include/fmt")
  get_target_property(_fmt_include_dirs fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  list(GET _fmt_include_dirs 0 _fmt_include_dir)
  set(_fmt_first "${CMAKE_BINARY_DIR}/fmt_before_torch")
  file(MAKE_DIRECTORY "${_fmt_first}")
  file(CREATE_LINK "${_fmt_include_dir}/fmt" "${_fmt_first}/fmt" SYMBOLIC)
  include_directories(BEFORE SYSTEM "${_fmt_first}")
endif()
