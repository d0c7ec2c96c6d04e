"""Tests of an installed minitorch wheel; run them from outside the source tree.

Usage: pip install minitorch-*.whl pytest packaging, then python -m pytest <this dir>.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import minitorch
import pytest
from minitorch import _C, _build_info

PKG_DIR = Path(minitorch.__file__).resolve().parent


def run_python(code: str, **env: str) -> str:
    """Run `code` in a fresh interpreter (own OpenMP / CUDA state) and return its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.strip()


# --------------------------------------------------------------------------- ops


def test_imported_from_installed_package() -> None:
    # Guards against testing a stray source checkout instead of the wheel.
    assert (PKG_DIR / "_build_info.py").is_file()
    assert Path(_C.__file__).parent == PKG_DIR


def test_add() -> None:
    a = [float(i) for i in range(1000)]
    b = [2.0 * i for i in range(1000)]
    assert minitorch.add(a, b) == [3.0 * i for i in range(1000)]
    assert minitorch.add([], []) == []


def test_dot() -> None:
    a = [float(i) for i in range(1, 101)]
    assert minitorch.dot(a, a) == pytest.approx(sum(x * x for x in a))


def test_matmul() -> None:
    # (2x3) @ (3x2)
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    assert minitorch.matmul(a, b, 2, 3, 2) == [58.0, 64.0, 139.0, 154.0]


def test_matmul_larger_matches_python() -> None:
    m, k, n = 17, 9, 13
    a = [float((i * 7) % 11) for i in range(m * k)]
    b = [float((i * 5) % 7) for i in range(k * n)]
    want = [sum(a[i * k + p] * b[p * n + j] for p in range(k)) for i in range(m) for j in range(n)]
    assert minitorch.matmul(a, b, m, k, n) == pytest.approx(want)


@pytest.mark.parametrize(
    "call",
    [
        lambda: minitorch.add([1.0], [1.0, 2.0]),
        lambda: minitorch.dot([1.0], []),
        lambda: minitorch.matmul([1.0, 2.0], [1.0], 1, 2, 1),
    ],
)
def test_size_mismatch_raises_value_error(call) -> None:
    # std::invalid_argument crosses pybind11 as ValueError.
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------- OpenMP


def test_openmp_compiled_in() -> None:
    assert _C.openmp_version() >= 201107  # OpenMP 3.1 or newer
    assert _C.omp_max_threads() >= 1


def test_openmp_runs_a_team_of_threads() -> None:
    # A fresh process so OMP_NUM_THREADS is read by the OpenMP runtime at start-up.
    code = "from minitorch import _C; print(_C.omp_max_threads(), _C.omp_team_size())"
    assert run_python(code, OMP_NUM_THREADS="3") == "3 3"


def test_libgomp_is_loaded() -> None:
    code = "import minitorch; print(open('/proc/self/maps').read())"
    maps = run_python(code)
    assert "libgomp" in maps
    assert str(PKG_DIR / "lib" / "libminitorch_core.so") in maps or (
        # a static core lives inside _C itself
        not (PKG_DIR / "lib" / "libminitorch_core.so").exists()
    )


# --------------------------------------------------------------------------- build info


def test_version_matches_wheel_metadata() -> None:
    assert minitorch.__version__ == importlib.metadata.version("minitorch")
    assert minitorch.__version__ == _build_info.version == _C.version()
    assert minitorch.version.__version__ == minitorch.__version__


def test_version_from_environment_when_given() -> None:
    expected = os.environ.get("BUILD_VERSION") or os.environ.get("PYTORCH_BUILD_VERSION")
    if not expected:
        pytest.skip("BUILD_VERSION not set: nothing to compare with")
    from packaging.version import Version

    assert minitorch.__version__ == str(Version(expected))


def test_build_info_consistent() -> None:
    info = _build_info.as_dict()
    json.dumps(info)  # plain data only
    assert info["accelerator"] in ("cpu", "cuda", "rocm")
    assert info["accelerator"] == _C.accelerator() == minitorch.accelerator()
    assert info["cxx11_abi"] is _C.cxx11_abi()
    assert _C.cxx11_abi() is _C._GLIBCXX_USE_CXX11_ABI  # core and extension agree
    if info["accelerator"] == "cpu":
        assert info["cuda_version"] is None and info["rocm_version"] is None
        assert info["arch_list"] is None
    elif info["accelerator"] == "cuda":
        assert info["cuda_version"] == _C.accelerator_version() == minitorch.version.cuda
        assert info["rocm_version"] is None and info["arch_list"]
    else:
        assert info["rocm_version"] == _C.accelerator_version() == minitorch.version.hip
        assert info["cuda_version"] is None and info["arch_list"]
    assert info["git_version"] is None or len(info["git_version"]) == 40


def test_cmake_package_installed() -> None:
    cmake_dir = Path(minitorch.cmake_prefix_path) / "MiniTorch"
    assert (cmake_dir / "MiniTorchConfig.cmake").is_file()
    assert (cmake_dir / "MiniTorchConfigVersion.cmake").is_file()
    assert (PKG_DIR / "include" / "minitorch" / "minitorch.h").is_file()
    config_h = (PKG_DIR / "include" / "minitorch" / "config.h").read_text()
    assert f'#define MINITORCH_VERSION "{minitorch.__version__}"' in config_h


# --------------------------------------------------------------------------- accelerator


def test_cuda_available_is_a_bool_and_consistent() -> None:
    available = minitorch.cuda_available()
    assert isinstance(available, bool)
    assert available == (minitorch.cuda_device_count() > 0) == _C.is_available("cuda")
    assert _C.is_available("cpu") is True
    if _build_info.accelerator == "cpu":
        assert available is False


def test_no_visible_gpu_means_not_available() -> None:
    # Holds on any machine: hiding every device must give False, never a crash.
    code = "import minitorch; print(minitorch.cuda_available(), minitorch.device_name())"
    out = run_python(code, CUDA_VISIBLE_DEVICES="", HIP_VISIBLE_DEVICES="")
    assert out == "False cpu"


def test_add_cuda() -> None:
    a, b = [1.0, 2.0, 3.0], [0.5, 0.25, 0.125]
    if minitorch.cuda_available():
        assert minitorch.add_cuda(a, b) == [1.5, 2.25, 3.125]
        big = [float(i) for i in range(100_000)]
        assert minitorch.add_cuda(big, big) == [2.0 * x for x in big]
    else:
        with pytest.raises(RuntimeError, match="no GPU"):
            minitorch.add_cuda(a, b)
