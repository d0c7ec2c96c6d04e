#include "minitorch/version.h"

#include "minitorch/config.h"

namespace minitorch {

std::string version() { return MINITORCH_VERSION; }

std::string accelerator_version() { return MINITORCH_ACCELERATOR_VERSION; }

bool cxx11_abi() {
#if defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
  return true;
#else
  return false;
#endif
}

}  // namespace minitorch
