// Accelerator queries and the GPU op. The same API exists in every build; a CPU-only
// build reports no devices and add_cuda throws. On ROCm "cuda" means the HIP device,
// as in torch.
#pragma once

#include <string>
#include <vector>

#include "minitorch/export.h"

namespace minitorch {

// "cpu", "cuda" or "rocm": what this library was compiled for.
MINITORCH_API std::string accelerator();

// Number of usable GPUs; 0 (never an abort) without a GPU, a driver or a runtime.
MINITORCH_API int cuda_device_count();

MINITORCH_API bool cuda_available();

// torch-style device check: "cpu" is always available, "cuda" when cuda_available().
// Throws std::invalid_argument for any other name.
MINITORCH_API bool is_available(const std::string& device);

// Name of GPU `index`, or "cpu" when there is no GPU.
MINITORCH_API std::string device_name(int index = 0);

// a + b computed by the GPU kernel. Throws std::runtime_error when no GPU is available
// and std::invalid_argument on size mismatch.
MINITORCH_API std::vector<float> add_cuda(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace minitorch
