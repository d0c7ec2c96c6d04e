// Backend for CPU-only builds: no devices.
#include "accel.h"

namespace minitorch::detail {

int accel_device_count() { return 0; }

bool accel_device_name(int, char*, std::size_t) { return false; }

const char* accel_add(const float*, const float*, float*, std::int64_t) {
  return "minitorch was built without CUDA or ROCm support";
}

}  // namespace minitorch::detail
