"""The resolver against the real toolchains of this machine (pyenv Pythons, CUDA 13)."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from builder.catalog import Catalog
from builder.config import config_from_id, configure
from builder.errors import ConfigError, ToolchainError
from builder.host import Host
from builder.project import load_project
from builder.resolver import cmake_cuda_architectures, resolve
from builder.toolchains.cuda import find_cuda, install_pip_toolkit, nvcc_version
from tests.conftest import TEST_CACHE, needs_nvcc

NOW = dt.datetime(2026, 11, 22, 8, tzinfo=dt.timezone.utc)


def host(**environ: str) -> Host:
    return Host(environ={**os.environ, **environ}, cpu_count=16, memory_bytes=64 * 1024**3, now=NOW)


@pytest.mark.parametrize("python", ["3.9", "3.11", "3.12", "3.13"])
def test_finds_and_verifies_pyenv_interpreters(catalog: Catalog, project_dir: Path, python: str) -> None:
    config = config_from_id(f"manywheel-py{python.replace('.', '_')}-cpu", catalog)
    env = resolve(config, load_project(project_dir), host(), catalog)
    assert env.interpreter is not None
    assert env.interpreter.version.startswith(python + ".")
    out = subprocess.run(
        [env.interpreter.path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == python
    assert env.version == "2.15.0.dev20261122+cpu"
    assert env.env["DESIRED_PYTHON"] == python
    assert env.env["PATH"].split(":")[0] == str(Path(env.interpreter.path).parent)


def test_missing_interpreter(catalog: Catalog, project_dir: Path, tmp_path: Path) -> None:
    config = config_from_id("manywheel-py3_14-cpu", catalog)
    empty = host(PYENV_ROOT=str(tmp_path / "no-pyenv"), PATH="/usr/bin:/bin")
    with pytest.raises(ToolchainError, match=r"No CPython 3.14 interpreter found.*pyenv install 3.14"):
        resolve(config, load_project(project_dir), empty, catalog)


def test_explicit_interpreter_of_the_wrong_version(catalog: Catalog, project_dir: Path) -> None:
    config = config_from_id("manywheel-py3_12-cpu", catalog)
    config = replace(config, options=replace(config.options, python_executable=sys.executable))
    with pytest.raises(ToolchainError, match=r"is CPython 3\.\d+\.\d+, but the config asks for 3.12"):
        resolve(config, load_project(project_dir), host(), catalog)


@pytest.mark.cuda
@needs_nvcc
def test_system_cuda_13(catalog: Catalog, project_dir: Path) -> None:
    config = config_from_id("manywheel-py3_12-cuda13_0", catalog)
    env = resolve(config, load_project(project_dir), host(), catalog)
    assert env.cuda is not None and env.cuda.version == "13.0"
    assert nvcc_version(env.cuda.nvcc) == ("13.0", env.cuda.full_version)
    assert env.arch_list == "7.5;8.0;8.6;9.0;10.0;12.0+PTX"
    assert env.env["TORCH_CUDA_ARCH_LIST"] == env.arch_list
    assert env.env["CUDA_HOME"] == env.cuda.home
    assert "-DCMAKE_CUDA_ARCHITECTURES=75-real;80-real;86-real;90-real;100-real;120" in env.env["CMAKE_ARGS"]
    assert env.repair.rpath_dirs[0] == "nvidia/cu13/lib"
    assert env.version.endswith("+cu130")
    assert env.host_compiler is not None and env.host_compiler.supported


@pytest.mark.cuda
@needs_nvcc
def test_arch_list_is_clipped_to_what_nvcc_supports(catalog: Catalog, project_dir: Path) -> None:
    config = config_from_id("manywheel-py3_12-cuda13_0", catalog)
    config = replace(config, options=replace(config.options, arch_list="5.0;7.5;9.0+PTX"))
    env = resolve(config, load_project(project_dir), host(), catalog)
    assert env.arch_list == "7.5;9.0+PTX"
    assert any("dropped 5.0" in n for n in env.notices)


@pytest.mark.cuda
@needs_nvcc
def test_folder_named_for_another_cuda_is_rejected(catalog: Catalog, tmp_path: Path) -> None:
    """A cuda-12.8 folder whose nvcc prints 13.0: the compiler wins, and it is an error."""
    fake = tmp_path / "cuda-12.8" / "bin"
    fake.mkdir(parents=True)
    real_nvcc = Path(shutil.which("nvcc") or "").resolve()
    (fake / "nvcc").symlink_to(real_nvcc)
    with pytest.raises(ToolchainError, match=r"named for CUDA 12.8, but its nvcc reports CUDA 13\.0"):
        find_cuda(catalog.cuda["12.8"], {}, tmp_path / "cache", roots=[str(tmp_path)])
    with pytest.raises(ToolchainError, match=r"named for CUDA 12.8, but its nvcc reports CUDA 13\.0"):
        find_cuda(catalog.cuda["13.0"], {}, tmp_path / "cache", explicit=str(tmp_path / "cuda-12.8"))


@pytest.mark.cuda
@needs_nvcc
def test_cuda_home_of_another_version(catalog: Catalog, project_dir: Path) -> None:
    home = str(Path(shutil.which("nvcc") or "").resolve().parent.parent)
    environ = host(CUDA_HOME=home)
    project = load_project(project_dir)
    resolved = configure(
        catalog,
        config_id="manywheel-py3_12-cuda12_4",
        flags={},
        environ=environ.environ,
        tool_settings={},
        pyproject_path="",
    )
    assert resolved.config.options.cuda_home == home
    with pytest.raises(ToolchainError, match=r"points at .*, which is not a CUDA 12.4 toolkit: nvcc reports 13\.0"):
        resolve(resolved.config, project, environ, catalog)


def test_no_matching_cuda(catalog: Catalog, project_dir: Path, tmp_path: Path) -> None:
    config = config_from_id("manywheel-py3_12-cuda11_8", catalog)
    with pytest.raises(ToolchainError, match=r"No CUDA 11.8 toolkit found.*--docker"):
        find_cuda(catalog.cuda["11.8"], {"PATH": ""}, tmp_path, roots=[str(tmp_path)])
    assert config.accelerator.version == "11.8"


@pytest.mark.slow
@pytest.mark.cuda
def test_pypi_cuda_toolkit_in_a_cached_prefix(catalog: Catalog, project_dir: Path) -> None:
    """The current 13.x toolkit from PyPI, installed once into a cache shared across runs."""
    cache = TEST_CACHE
    wanted = catalog.cuda["13.5"]
    existing = list(cache.glob("toolkits/cuda-13.5/nvidia/cu*/bin/nvcc"))
    home = existing[0].parent.parent if existing else install_pip_toolkit(wanted, sys.executable, cache)
    toolkit = find_cuda(wanted, {"PATH": "/usr/bin:/bin"}, cache, roots=[])
    assert toolkit.source == "pypi" and Path(toolkit.home) == home
    assert toolkit.version == "13.5"
    env = resolve(
        config_from_id("manywheel-py3_12-cuda13_5", catalog),
        load_project(project_dir),
        host(BUILDER_CACHE_DIR=str(cache), PATH="/usr/bin:/bin"),
        catalog,
    )
    assert env.cuda == toolkit
    assert env.env["PATH"].startswith(str(Path(toolkit.nvcc).parent))


def test_no_host_resolution_probes_nothing(catalog: Catalog, project_dir: Path) -> None:
    config = config_from_id("manywheel-py3_12-cuda12_4", catalog)
    env = resolve(config, load_project(project_dir), replace(host(), probe=False), catalog)
    assert env.interpreter is None and env.cuda is None
    assert env.arch_list == catalog.cuda["12.4"].arch_list
    assert "CUDA_HOME" not in env.env and "PATH" not in env.env
    assert env.env["DESIRED_CUDA"] == "cu124"
    assert env.env["MAX_JOBS"] == "12"  # 16 cores - 2, capped at 12
    assert re.fullmatch(r"builder/manylinux-builder:cuda12\.4-[0-9a-f]{12}", env.docker_image or "")
    assert "nvidia-cudnn-cu12==9.1.0.70" in env.env["PYTORCH_EXTRA_INSTALL_REQUIREMENTS"]


def test_version_needs_a_source(catalog: Catalog, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["version"]\n')
    with pytest.raises(ConfigError, match="Cannot tell the version"):
        resolve(
            config_from_id("manywheel-py3_12-cpu", catalog),
            load_project(tmp_path),
            replace(host(), probe=False),
            catalog,
        )
    (tmp_path / "version.txt").write_text("0.3.0a0\n")
    env = resolve(
        config_from_id("manywheel-py3_12-cpu", catalog), load_project(tmp_path), replace(host(), probe=False), catalog
    )
    assert env.version == "0.3.0.dev20261122+cpu"


def test_source_date_epoch(catalog: Catalog, project_dir: Path) -> None:
    config = config_from_id("manywheel-py3_12-cpu", catalog)
    env = resolve(
        config, load_project(project_dir), replace(host(SOURCE_DATE_EPOCH="1700000000"), probe=False), catalog
    )
    assert env.source_date_epoch == 1700000000
    with pytest.raises(ConfigError, match="SOURCE_DATE_EPOCH='yesterday'"):
        resolve(config, load_project(project_dir), replace(host(SOURCE_DATE_EPOCH="yesterday"), probe=False), catalog)


def test_cmake_cuda_architectures() -> None:
    assert cmake_cuda_architectures("7.5;8.0;12.0+PTX") == "75-real;80-real;120"
