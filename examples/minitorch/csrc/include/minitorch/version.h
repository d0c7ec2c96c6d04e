// Build identity of the library, for checks that compare it with the Python side.
#pragma once

#include <string>

#include "minitorch/export.h"

namespace minitorch {

// Full version string, e.g. "0.3.0.dev20261122+cpu" (MINITORCH_VERSION in config.h).
MINITORCH_API std::string version();

// Version of the CUDA or HIP toolkit compiled against ("13.0", "5.7"), "" for CPU.
MINITORCH_API std::string accelerator_version();

// Whether the library was compiled with _GLIBCXX_USE_CXX11_ABI=1.
MINITORCH_API bool cxx11_abi();

}  // namespace minitorch
