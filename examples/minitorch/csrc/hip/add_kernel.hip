// HIP backend: the CUDA backend's logic with the HIP runtime (see cuda/add_kernel.cu).
#include <hip/hip_runtime.h>

#include <cstring>

#include "accel.h"

namespace minitorch::detail {
namespace {

__global__ void add_kernel(const float* a, const float* b, float* out, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

}  // namespace

int accel_device_count() {
  int count = 0;
  if (hipGetDeviceCount(&count) != hipSuccess) {
    (void)hipGetLastError();
    return 0;
  }
  return count;
}

bool accel_device_name(int index, char* buf, std::size_t size) {
  hipDeviceProp_t prop;
  if (index < 0 || index >= accel_device_count() ||
      hipGetDeviceProperties(&prop, index) != hipSuccess) {
    return false;
  }
  std::strncpy(buf, prop.name, size - 1);
  buf[size - 1] = '\0';
  return true;
}

const char* accel_add(const float* a, const float* b, float* out, std::int64_t n) {
  if (n == 0) return nullptr;
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
  float* d = nullptr;
  hipError_t err = hipMalloc(reinterpret_cast<void**>(&d), 3 * bytes);
  if (err == hipSuccess) err = hipMemcpy(d, a, bytes, hipMemcpyHostToDevice);
  if (err == hipSuccess) err = hipMemcpy(d + n, b, bytes, hipMemcpyHostToDevice);
  if (err == hipSuccess) {
    const auto blocks = static_cast<unsigned>((n + 255) / 256);
    hipLaunchKernelGGL(add_kernel, dim3(blocks), dim3(256), 0, 0, d, d + n, d + 2 * n, n);
    err = hipGetLastError();
  }
  if (err == hipSuccess) err = hipMemcpy(out, d + 2 * n, bytes, hipMemcpyDeviceToHost);
  (void)hipFree(d);
  return err == hipSuccess ? nullptr : hipGetErrorString(err);
}

}  // namespace minitorch::detail
