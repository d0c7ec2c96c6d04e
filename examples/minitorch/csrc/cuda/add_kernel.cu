// CUDA backend. cudart is linked shared (CMAKE_CUDA_RUNTIME_LIBRARY Shared), so the core
// library needs libcudart.so.N at run time; every call reports errors instead of aborting,
// which keeps a CUDA build importable on machines without a GPU or driver.
#include <cuda_runtime.h>

#include <cstring>

#include "accel.h"

namespace minitorch::detail {
namespace {

__global__ void add_kernel(const float* a, const float* b, float* out, std::int64_t n) {
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    out[i] = a[i] + b[i];
  }
}

}  // namespace

int accel_device_count() {
  int count = 0;
  // cudaErrorNoDevice / cudaErrorInsufficientDriver etc. just mean "no GPU here".
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // leave no error behind for a later call
    return 0;
  }
  return count;
}

bool accel_device_name(int index, char* buf, std::size_t size) {
  cudaDeviceProp prop;
  if (index < 0 || index >= accel_device_count() ||
      cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    return false;
  }
  std::strncpy(buf, prop.name, size - 1);
  buf[size - 1] = '\0';
  return true;
}

const char* accel_add(const float* a, const float* b, float* out, std::int64_t n) {
  if (n == 0) {
    return nullptr;
  }
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
  float* d = nullptr;  // one allocation holding a, b and out
  cudaError_t err = cudaMalloc(&d, 3 * bytes);
  if (err == cudaSuccess) err = cudaMemcpy(d, a, bytes, cudaMemcpyHostToDevice);
  if (err == cudaSuccess) err = cudaMemcpy(d + n, b, bytes, cudaMemcpyHostToDevice);
  if (err == cudaSuccess) {
    const int threads = 256;
    const auto blocks = static_cast<unsigned>((n + threads - 1) / threads);
    add_kernel<<<blocks, threads>>>(d, d + n, d + 2 * n, n);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaMemcpy(out, d + 2 * n, bytes, cudaMemcpyDeviceToHost);
  cudaFree(d);
  return err == cudaSuccess ? nullptr : cudaGetErrorString(err);
}

}  // namespace minitorch::detail
