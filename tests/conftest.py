from __future__ import annotations

import shutil
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
