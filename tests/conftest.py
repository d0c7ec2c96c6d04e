from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder.catalog import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A minimal project: pyproject with a static version."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "2.15.0a0"\n')
    return tmp_path


def has_nvcc() -> bool:
    return shutil.which("nvcc") is not None


needs_nvcc = pytest.mark.skipif(not has_nvcc(), reason="no CUDA toolkit (nvcc) on this machine")


# Variables that would steer a config from outside a test (CI machines may set some of them).
STEERING = (
    "BUILDER_",
    "DESIRED_",
    "GPU_ARCH",
    "PACKAGE_TYPE",
    "BUILD_ENVIRONMENT",
    "LIBTORCH_VARIANT",
    "CUDA_HOME",
    "GITHUB_ACTIONS",
)
TEST_EPOCH = "1700000000"


def run_builder(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m builder ARGS` as a user runs it, with a fixed SOURCE_DATE_EPOCH and none of STEERING."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(STEERING)}
    return subprocess.run(
        [sys.executable, "-m", "builder", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environ, "SOURCE_DATE_EPOCH": TEST_EPOCH, **env},
        check=False,
    )


# Downloads and unpacked inputs shared across runs (the torch wheel, the PyPI CUDA toolkit).
TEST_CACHE = Path(os.environ.get("BUILDER_TEST_CACHE", Path.home() / ".cache" / "builder-tests"))


@pytest.fixture(scope="session")
def torch_wheel() -> Path:
    """The real torch 2.13.0 CPU wheel, fetched once with pip download and kept in TEST_CACHE."""
    dest = TEST_CACHE / "torch"
    found = sorted(dest.glob("torch-2.13.0*.whl"))
    if not found:
        argv = [sys.executable, "-m", "pip", "download", "-q", "torch==2.13.0", "--no-deps", "-d", str(dest)]
        subprocess.run(argv, check=True, capture_output=True, timeout=900)
        found = sorted(dest.glob("torch-2.13.0*.whl"))
    return found[0]
