# CUDA architecture selection, torch style.
#
# Precedence: CMAKE_CUDA_ARCHITECTURES (cache, -D, CMAKE_ARGS) or CMake's own $CUDAARCHS,
# then $TORCH_CUDA_ARCH_LIST, then the compiler's default. Must run before
# enable_language(CUDA), which would otherwise fill in the default itself.
#
# TORCH_CUDA_ARCH_LIST "7.5;8.0;9.0a;12.0+PTX" (';' or ' ' separated) becomes
# "75-real;80-real;90a-real;120": X.Y -> SASS only, X.Y+PTX -> SASS and PTX.
# Sets MINITORCH_CUDA_ARCH_LIST to the list in torch's notation for _build_info.py.

function(minitorch_torch_to_cmake_archs out torch_list)
  string(REPLACE " " ";" entries "${torch_list}")
  set(result "")
  foreach(entry IN LISTS entries)
    if(entry STREQUAL "")
      continue()
    endif()
    if(NOT entry MATCHES "^([0-9]+)\\.([0-9]+)([af]?)(\\+PTX)?$")
      message(FATAL_ERROR "minitorch: TORCH_CUDA_ARCH_LIST entry '${entry}' is not of the "
                          "form X.Y or X.Y+PTX (e.g. '7.5;8.0;9.0;12.0+PTX')")
    endif()
    set(arch "${CMAKE_MATCH_1}${CMAKE_MATCH_2}${CMAKE_MATCH_3}")
    if(CMAKE_MATCH_4)
      list(APPEND result "${arch}")        # real + virtual: SASS and embedded PTX
    else()
      list(APPEND result "${arch}-real")   # SASS only
    endif()
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# The reverse, for reporting: "75-real;120" -> "7.5;12.0+PTX" ("-virtual" -> "+PTX" too,
# torch's notation has no PTX-only entry). Symbolic values (native, all) stay as they are.
function(minitorch_cmake_to_torch_archs out cmake_list)
  set(result "")
  foreach(entry IN LISTS cmake_list)
    if(entry MATCHES "^([0-9]+)([0-9])([af]?)(-real|-virtual)?$")
      set(arch "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}${CMAKE_MATCH_3}")
      if(CMAKE_MATCH_4 STREQUAL "-real")
        list(APPEND result "${arch}")
      else()
        list(APPEND result "${arch}+PTX")
      endif()
    else()
      list(APPEND result "${entry}")
    endif()
  endforeach()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

if(DEFINED CMAKE_CUDA_ARCHITECTURES OR NOT "$ENV{CUDAARCHS}" STREQUAL "")
  set(MINITORCH_CUDA_ARCH_SOURCE "CMAKE_CUDA_ARCHITECTURES")
elseif(NOT "$ENV{TORCH_CUDA_ARCH_LIST}" STREQUAL "")
  minitorch_torch_to_cmake_archs(_mt_archs "$ENV{TORCH_CUDA_ARCH_LIST}")
  set(CMAKE_CUDA_ARCHITECTURES "${_mt_archs}" CACHE STRING "CUDA architectures (from TORCH_CUDA_ARCH_LIST)")
  set(MINITORCH_CUDA_ARCH_SOURCE "TORCH_CUDA_ARCH_LIST=$ENV{TORCH_CUDA_ARCH_LIST}")
else()
  set(MINITORCH_CUDA_ARCH_SOURCE "compiler default")
endif()
