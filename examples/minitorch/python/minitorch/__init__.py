"""minitorch: a tiny torch-shaped native package used to exercise builder.

The native code lives in ``minitorch/lib/libminitorch_core.so`` (C++/OpenMP, plus a
CUDA or HIP kernel in accelerator builds) and is exposed through ``minitorch._C``.
"""

from __future__ import annotations

import os

from . import _build_info, version
from ._C import (
    accelerator,
    add,
    add_cuda,
    cuda_available,
    cuda_device_count,
    device_name,
    dot,
    matmul,
)

__version__: str = _build_info.version

# Pass to CMake as CMAKE_PREFIX_PATH so find_package(MiniTorch) finds the installed
# copy (like torch.utils.cmake_prefix_path).
cmake_prefix_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "share", "cmake")

__all__ = [
    "__version__",
    "accelerator",
    "add",
    "add_cuda",
    "cmake_prefix_path",
    "cuda_available",
    "cuda_device_count",
    "device_name",
    "dot",
    "matmul",
    "version",
]
