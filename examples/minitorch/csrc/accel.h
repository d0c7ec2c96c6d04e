// Internal boundary between the C++ API and the one accelerator backend linked in:
// cuda/add_kernel.cu, hip/add_kernel.hip or accel_cpu.cpp. Plain C types only, so the
// backend compiler (nvcc, hipcc) cannot disagree with g++ about std::string's ABI.
#pragma once

#include <cstddef>
#include <cstdint>

namespace minitorch::detail {

// Devices usable now; 0 when there is no GPU, driver or runtime (never aborts).
int accel_device_count();

// Writes a NUL-terminated device name into buf; false if `index` is not a device.
bool accel_device_name(int index, char* buf, std::size_t size);

// out = a + b on the device. Returns nullptr on success, else a static error message.
const char* accel_add(const float* a, const float* b, float* out, std::int64_t n);

}  // namespace minitorch::detail
