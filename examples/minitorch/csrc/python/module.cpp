// minitorch._C: thin pybind11 bindings over minitorch_core (which lives in minitorch/lib).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "minitorch/minitorch.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "minitorch native ops (bindings over libminitorch_core)";

  // Long-running ops release the GIL so OpenMP threads never wait on Python.
  m.def("add", &minitorch::add, py::arg("a"), py::arg("b"), py::call_guard<py::gil_scoped_release>());
  m.def("dot", &minitorch::dot, py::arg("a"), py::arg("b"), py::call_guard<py::gil_scoped_release>());
  m.def("matmul", &minitorch::matmul, py::arg("a"), py::arg("b"), py::arg("m"), py::arg("k"),
        py::arg("n"), py::call_guard<py::gil_scoped_release>());
  m.def("omp_max_threads", &minitorch::omp_max_threads);
  m.def("omp_team_size", &minitorch::omp_team_size);
  m.def("openmp_version", &minitorch::openmp_version);

  m.def("accelerator", &minitorch::accelerator);
  m.def("cuda_device_count", &minitorch::cuda_device_count);
  m.def("cuda_available", &minitorch::cuda_available);
  m.def("is_available", &minitorch::is_available, py::arg("device"));
  m.def("device_name", &minitorch::device_name, py::arg("index") = 0);
  m.def("add_cuda", &minitorch::add_cuda, py::arg("a"), py::arg("b"),
        py::call_guard<py::gil_scoped_release>());

  m.def("version", &minitorch::version);
  m.def("accelerator_version", &minitorch::accelerator_version);
  m.def("cxx11_abi", &minitorch::cxx11_abi);
  // The ABI of this extension itself (can differ from the core's only in a broken build).
  m.attr("_GLIBCXX_USE_CXX11_ABI") =
#if defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
      true;
#else
      false;
#endif
}
