// CPU ops, parallelised with OpenMP.
#pragma once

#include <cstdint>
#include <vector>

#include "minitorch/export.h"

namespace minitorch {

// Element-wise a + b. Throws std::invalid_argument if the sizes differ.
MINITORCH_API std::vector<float> add(const std::vector<float>& a, const std::vector<float>& b);

// Sum of a[i] * b[i], accumulated in double. Throws std::invalid_argument on size mismatch.
MINITORCH_API double dot(const std::vector<float>& a, const std::vector<float>& b);

// Row-major (m x k) @ (k x n). Throws std::invalid_argument if the sizes do not fit.
MINITORCH_API std::vector<float> matmul(const std::vector<float>& a, const std::vector<float>& b,
                                        std::int64_t m, std::int64_t k, std::int64_t n);

// omp_get_max_threads() as seen by the core library.
MINITORCH_API int omp_max_threads();

// Threads actually running one parallel region (proves the OpenMP runtime is live).
MINITORCH_API int omp_team_size();

// The _OPENMP date the core was compiled with (e.g. 201511); 0 without OpenMP.
MINITORCH_API int openmp_version();

}  // namespace minitorch
