#include "minitorch/device.h"

#include <stdexcept>

#include "accel.h"
#include "minitorch/config.h"

namespace minitorch {

std::string accelerator() { return MINITORCH_ACCELERATOR; }

int cuda_device_count() { return detail::accel_device_count(); }

bool cuda_available() { return cuda_device_count() > 0; }

bool is_available(const std::string& device) {
  if (device == "cpu") return true;
  if (device == "cuda") return cuda_available();
  throw std::invalid_argument("is_available: unknown device '" + device + "' (cpu or cuda)");
}

std::string device_name(int index) {
  char buf[256] = {};
  if (!detail::accel_device_name(index, buf, sizeof buf)) {
    return "cpu";
  }
  return buf;
}

std::vector<float> add_cuda(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("add_cuda: size mismatch");
  }
  if (!cuda_available()) {
    throw std::runtime_error(std::string("add_cuda: no GPU available (minitorch ") +
                             MINITORCH_VERSION + ", " + MINITORCH_ACCELERATOR + " build)");
  }
  std::vector<float> out(a.size());
  if (const char* error =
          detail::accel_add(a.data(), b.data(), out.data(), static_cast<std::int64_t>(a.size()))) {
    throw std::runtime_error(std::string("add_cuda: ") + error);
  }
  return out;
}

}  // namespace minitorch
