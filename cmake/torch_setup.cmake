# What the LibTorch that find_package(Torch) found needs from us, read from the LibTorch
# itself so that one CMakeLists.txt builds against Debian's 1.13 and a CUDA LibTorch 2.x:
#   DIFFLAB_TORCH_VERSION  "1.13.0", from the headers (Debian ships no version file)
#   DIFFLAB_TORCH_CUDA     ON when the LibTorch was built with CUDA
#   CMAKE_CXX_STANDARD     17, or 20 where the LibTorch's headers need it
# and DIFFLAB_REQUIRE_CUDA stops here when there is no CUDA.

# ---- Version ----
# 1.13 defines it in torch/csrc/api/include/torch/version.h; 2.x moved the defines to
# include/torch/headeronly/version.h and left an #include in the old file.
set(DIFFLAB_TORCH_VERSION "")
foreach(dir IN LISTS TORCH_INCLUDE_DIRS)
  foreach(file "${dir}/torch/headeronly/version.h" "${dir}/torch/version.h")
    if(NOT DIFFLAB_TORCH_VERSION AND EXISTS "${file}")
      file(STRINGS "${file}" _lines REGEX "#define TORCH_VERSION_(MAJOR|MINOR|PATCH) ")
      if(_lines MATCHES "TORCH_VERSION_MAJOR ([0-9]+)")
        foreach(part MAJOR MINOR PATCH)
          string(REGEX MATCH "TORCH_VERSION_${part} ([0-9]+)" _m "${_lines}")
          set(_torch_${part} "${CMAKE_MATCH_1}")
        endforeach()
        set(DIFFLAB_TORCH_VERSION "${_torch_MAJOR}.${_torch_MINOR}.${_torch_PATCH}")
      endif()
    endif()
  endforeach()
endforeach()
if(NOT DIFFLAB_TORCH_VERSION AND Torch_VERSION)
  set(DIFFLAB_TORCH_VERSION "${Torch_VERSION}")
endif()

# ---- CUDA ----
# TorchConfig.cmake of a CUDA build fills TORCH_CUDA_LIBRARIES, Caffe2Config.cmake sets
# CAFFE2_USE_CUDA, and Caffe2Targets.cmake imports torch_cuda; Debian's has none of them.
if(TORCH_CUDA_LIBRARIES OR CAFFE2_USE_CUDA OR TARGET torch_cuda)
  set(DIFFLAB_TORCH_CUDA ON)
else()
  set(DIFFLAB_TORCH_CUDA OFF)
endif()
message(STATUS "LibTorch ${DIFFLAB_TORCH_VERSION} in ${TORCH_INSTALL_PREFIX}, CUDA: ${DIFFLAB_TORCH_CUDA}")
if(DIFFLAB_REQUIRE_CUDA AND NOT DIFFLAB_TORCH_CUDA)
  message(FATAL_ERROR
    "DIFFLAB_REQUIRE_CUDA is ON, but the LibTorch found (${DIFFLAB_TORCH_VERSION}, "
    "${TORCH_INSTALL_PREFIX}) was built without CUDA. Point CMAKE_PREFIX_PATH at a CUDA "
    "LibTorch, e.g. -DCMAKE_PREFIX_PATH=\"$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')\" "
    "with a CUDA torch wheel, or the LibTorch archive (cxx11 ABI, CUDA) from pytorch.org; "
    "see README, section GPU.")
endif()

# ---- C++ standard ----
# LibTorch up to 2.12 compiles as C++17; later releases refuse anything older than C++20
# in their header guards (c10/util/C++17.h). Newer-than-known versions get C++20, and any
# other LibTorch whose headers reject C++17 is caught by compiling its guard header.
# -DDIFFLAB_CXX_STANDARD=N overrides the choice.
set(DIFFLAB_CXX_STANDARD "" CACHE STRING "C++ standard (empty: chosen from the LibTorch found)")
if(DIFFLAB_CXX_STANDARD)
  set(CMAKE_CXX_STANDARD ${DIFFLAB_CXX_STANDARD})
elseif(DIFFLAB_TORCH_VERSION VERSION_GREATER_EQUAL 2.13)
  set(CMAKE_CXX_STANDARD 20)
else()
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles("
#if __has_include(<c10/util/C++17.h>)
#include <c10/util/C++17.h>
#endif
#if __has_include(<c10/macros/Macros.h>)
#include <c10/macros/Macros.h>
#endif
int main() { return 0; }" DIFFLAB_TORCH_ACCEPTS_CXX17)
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_QUIET)
  if(NOT DIFFLAB_TORCH_ACCEPTS_CXX17)
    set(CMAKE_CXX_STANDARD 20)
  endif()
endif()
message(STATUS "C++ standard: ${CMAKE_CXX_STANDARD}")
