# HIP kernel compiled with hipcc into an object file that joins minitorch_core.
#
# hipcc rather than enable_language(HIP): CMake's HIP language needs a full ROCm tree
# (hip-lang config, ROCm clang), while distribution packages such as Debian's hipcc 5.7
# ship a hipcc that works on its own. Offload targets come from CMAKE_HIP_ARCHITECTURES,
# else $PYTORCH_ROCM_ARCH ("gfx90a;gfx942", ';' or ' ' separated).
#
# Defines minitorch_add_hip_kernel(target source) and sets MINITORCH_ROCM_ARCH_LIST and
# MINITORCH_ROCM_VERSION (e.g. "5.7").

find_program(MINITORCH_HIPCC NAMES hipcc HINTS ENV ROCM_PATH ENV HIP_PATH /opt/rocm PATH_SUFFIXES bin REQUIRED)
find_library(MINITORCH_AMDHIP64 NAMES amdhip64 HINTS ENV ROCM_PATH ENV HIP_PATH /opt/rocm PATH_SUFFIXES lib lib64 REQUIRED)

if(DEFINED CMAKE_HIP_ARCHITECTURES)
  set(MINITORCH_ROCM_ARCH_LIST "${CMAKE_HIP_ARCHITECTURES}")
elseif(NOT "$ENV{PYTORCH_ROCM_ARCH}" STREQUAL "")
  string(REPLACE " " ";" MINITORCH_ROCM_ARCH_LIST "$ENV{PYTORCH_ROCM_ARCH}")
else()
  message(FATAL_ERROR "minitorch: USE_ROCM needs offload targets: set PYTORCH_ROCM_ARCH "
                      "(e.g. 'gfx90a;gfx942') or -DCMAKE_HIP_ARCHITECTURES=...")
endif()
list(REMOVE_ITEM MINITORCH_ROCM_ARCH_LIST "")

execute_process(COMMAND "${MINITORCH_HIPCC}" --version OUTPUT_VARIABLE _mt_hip_out ERROR_QUIET)
if(_mt_hip_out MATCHES "HIP version: ([0-9]+\\.[0-9]+)")
  set(MINITORCH_ROCM_VERSION "${CMAKE_MATCH_1}")
else()
  set(MINITORCH_ROCM_VERSION "")
endif()

function(minitorch_add_hip_kernel target source)
  get_filename_component(name "${source}" NAME_WE)
  set(object "${CMAKE_CURRENT_BINARY_DIR}/${name}.hip.o")
  set(flags -O2 -fPIC -std=c++17)
  foreach(arch IN LISTS MINITORCH_ROCM_ARCH_LIST)
    list(APPEND flags "--offload-arch=${arch}")
  endforeach()
  add_custom_command(
    OUTPUT "${object}"
    COMMAND "${MINITORCH_HIPCC}" ${flags} -I "${PROJECT_SOURCE_DIR}/csrc"
            -c "${CMAKE_CURRENT_SOURCE_DIR}/${source}" -o "${object}"
    DEPENDS "${source}" "${PROJECT_SOURCE_DIR}/csrc/accel.h"
    COMMENT "hipcc ${source} (${MINITORCH_ROCM_ARCH_LIST})"
    VERBATIM)
  target_sources(${target} PRIVATE "${object}")
  set_source_files_properties("${object}" PROPERTIES EXTERNAL_OBJECT TRUE GENERATED TRUE)
  target_link_libraries(${target} PRIVATE "${MINITORCH_AMDHIP64}")
endfunction()
