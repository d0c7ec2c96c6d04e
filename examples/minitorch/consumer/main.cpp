// Links MiniTorch::minitorch_core and prints one line per check; exits non-zero on failure.
#include <minitorch/minitorch.h>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  const std::vector<float> a{1, 2, 3}, b{10, 20, 30};
  const std::vector<float> sum = minitorch::add(a, b);
  const double d = minitorch::dot(a, b);
  const std::vector<float> mm = minitorch::matmul({1, 2, 3, 4}, {5, 6, 7, 8}, 2, 2, 2);
  // std::string across the library boundary: breaks at link time on an ABI mismatch.
  const std::string version = minitorch::version();

  std::printf("minitorch %s (%s), header %s\n", version.c_str(), minitorch::accelerator().c_str(),
              MINITORCH_VERSION);
  std::printf("add=[%g %g %g] dot=%g matmul=[%g %g %g %g] omp_threads=%d cuda=%d\n", sum[0], sum[1],
              sum[2], d, mm[0], mm[1], mm[2], mm[3], minitorch::omp_max_threads(),
              static_cast<int>(minitorch::is_available("cuda")));

  const bool ok = sum == std::vector<float>{11, 22, 33} && d == 140.0 &&
                  mm == std::vector<float>{19, 22, 43, 50} && version == MINITORCH_VERSION &&
                  minitorch::is_available("cpu");
  std::puts(ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
