#include "minitorch/ops.h"

#include <omp.h>

#include <stdexcept>
#include <string>

namespace minitorch {
namespace {

void check_same_size(const std::vector<float>& a, const std::vector<float>& b, const char* op) {
  if (a.size() != b.size()) {
    throw std::invalid_argument(std::string(op) + ": size mismatch (" + std::to_string(a.size()) +
                                " vs " + std::to_string(b.size()) + ")");
  }
}

}  // namespace

std::vector<float> add(const std::vector<float>& a, const std::vector<float>& b) {
  check_same_size(a, b, "add");
  const auto n = static_cast<std::int64_t>(a.size());
  std::vector<float> out(a.size());
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    out[i] = a[i] + b[i];
  }
  return out;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  check_same_size(a, b, "dot");
  const auto n = static_cast<std::int64_t>(a.size());
  double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    sum += static_cast<double>(a[i]) * b[i];
  }
  return sum;
}

std::vector<float> matmul(const std::vector<float>& a, const std::vector<float>& b,
                          std::int64_t m, std::int64_t k, std::int64_t n) {
  if (m < 0 || k < 0 || n < 0 || a.size() != static_cast<std::size_t>(m * k) ||
      b.size() != static_cast<std::size_t>(k * n)) {
    throw std::invalid_argument("matmul: expected a of size m*k and b of size k*n");
  }
  std::vector<float> out(static_cast<std::size_t>(m * n), 0.0f);
  // Rows are independent: one thread per block of rows, i-k-j order for locality.
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t p = 0; p < k; ++p) {
      const float aip = a[i * k + p];
      for (std::int64_t j = 0; j < n; ++j) {
        out[i * n + j] += aip * b[p * n + j];
      }
    }
  }
  return out;
}

int omp_max_threads() { return omp_get_max_threads(); }

int omp_team_size() {
  int size = 0;
#pragma omp parallel
  {
#pragma omp single
    size = omp_get_num_threads();
  }
  return size;
}

int openmp_version() {
#ifdef _OPENMP
  return _OPENMP;
#else
  return 0;
#endif
}

}  // namespace minitorch
