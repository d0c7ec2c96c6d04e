"""manywheel end to end on the bundled example: real compilers, real pip, fresh venvs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builder.binary.elf import ElfInfo, read_elf
from builder.config import PythonVersion
from builder.toolchains.python import find_interpreter
from tests.conftest import TEST_CACHE, needs_nvcc, run_builder

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "minitorch"


def build(out: Path, *configs: str, **env: str) -> dict[str, Path]:
    result = run_builder("build", str(EXAMPLE), *configs, "-o", str(out), **env)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "build-report.json").read_text())
    wheels = {}
    for record in report["builds"]:
        assert record["status"] == "ok"
        artifact = record["artifacts"][0]
        wheel = out / artifact["name"]
        assert wheel.stat().st_size == artifact["size"]
        assert set(record["steps"]) == {"build", "repair", "check", "smoke"}
        assert record["checks"]["findings"] is not None and record["smoke"]["checks"]
        wheels[record["config"]] = wheel
    return wheels


def members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def unpack_elf(wheel: Path, member: str, tmp: Path) -> ElfInfo:
    with zipfile.ZipFile(wheel) as zf:
        return read_elf(zf.extract(member, tmp))


def install_and_test(wheel: Path, tmp: Path) -> str:
    """Fresh venv, LD_LIBRARY_PATH unset, temp cwd: install the wheel and run the example's own tests."""
    env_dir = tmp / "venv"
    tag = wheel.name.split("-")[2]  # cp312
    python = find_interpreter(PythonVersion(int(tag[2]), int(tag[3:])), os.environ, Path.home()).path
    subprocess.run([python, "-m", "venv", str(env_dir)], check=True)
    py = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel), "pytest"], check=True, env=clean)
    cwd = tmp / "cwd"
    cwd.mkdir(exist_ok=True)
    done = subprocess.run(
        [str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=clean,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def auditwheel_tag(wheel: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r'platform tag:\s*"([^"]+)"', out)
    assert match, out
    return match[1]


@pytest.fixture(scope="module")
def cpu_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build(tmp_path_factory.mktemp("cpu"), "manywheel-py3_11-cpu", "manywheel-py3_12-cpu")


def test_cpu_wheels_for_two_pythons(cpu_wheels: dict[str, Path], tmp_path: Path) -> None:
    assert set(cpu_wheels) == {"manywheel-py3_11-cpu", "manywheel-py3_12-cpu"}
    for config, wheel in cpu_wheels.items():
        assert "+cpu-" in wheel.name and "manylinux_" in wheel.name
        names = members(wheel)
        assert "minitorch/lib/libminitorch_core.so" in names
        assert "minitorch/lib/libgomp.so.1" in names  # grafted, name kept (pytorch#149422)
        assert not any("libgomp-" in n for n in names)
        assert auditwheel_tag(wheel) in wheel.name  # auditwheel agrees with the tag builder chose
        assert "passed" in install_and_test(wheel, tmp_path / config)


@pytest.mark.slow
@pytest.mark.parametrize("python", ["3.9", "3.10", "3.13"])
def test_other_pythons(tmp_path: Path, python: str) -> None:
    config = f"manywheel-py{python.replace('.', '_')}-cpu"
    wheel = build(tmp_path / "out", config)[config]
    assert f"-cp{python.replace('.', '')}-" in wheel.name
    assert auditwheel_tag(wheel) in wheel.name


@pytest.mark.cuda
@needs_nvcc
def test_cuda_system_toolkit_pypi_mode(tmp_path: Path) -> None:
    wheel = build(tmp_path / "out", "manywheel-py3_12-cuda13_0")["manywheel-py3_12-cuda13_0"]
    names = members(wheel)
    assert not any("libcudart" in n for n in names), names
    core = unpack_elf(wheel, "minitorch/lib/libminitorch_core.so", tmp_path)
    assert "libcudart.so.13" in core.needed
    assert "$ORIGIN/../../nvidia/cu13/lib" in (core.runpath or core.rpath)
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(
            "minitorch-0.3.0.dev" + wheel.name.split(".dev")[1].split("-")[0] + ".dist-info/METADATA"
        ).decode()
    assert "Requires-Dist: nvidia-cuda-runtime==13.0.48; platform_system == 'Linux'" in metadata
    assert "passed" in install_and_test(wheel, tmp_path)  # pulls nvidia-cuda-runtime from PyPI
    # repairing again keeps the RPATH into NVIDIA's wheel (auditwheel #404 drops it)
    again = run_builder("repair", str(wheel), "-o", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    core = unpack_elf(next((tmp_path / "again").glob("*.whl")), "minitorch/lib/libminitorch_core.so", tmp_path / "x")
    assert "$ORIGIN/../../nvidia/cu13/lib" in (core.runpath or core.rpath)


@pytest.mark.cuda
@needs_nvcc
def test_cuda_bundled_mode_carries_cudart(tmp_path: Path) -> None:
    wheel = build(tmp_path / "out", "manywheel-py3_12-cuda13_0", "--cuda-mode", "bundled")["manywheel-py3_12-cuda13_0"]
    cudart = [n for n in members(wheel) if "libcudart" in n]
    assert len(cudart) == 1 and cudart[0].startswith("minitorch.libs/libcudart-"), cudart
    core = unpack_elf(wheel, "minitorch/lib/libminitorch_core.so", tmp_path)
    assert Path(cudart[0]).name in core.needed
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode()
    assert not [line for line in metadata.splitlines() if line.startswith("Requires-Dist: nvidia-")]
    assert "passed" in install_and_test(wheel, tmp_path)


@pytest.mark.slow
@pytest.mark.cuda
def test_cuda_pypi_toolkit(tmp_path: Path) -> None:
    """CUDA 13.5 exists here only as NVIDIA's PyPI wheels (no unversioned libcudart.so)."""
    cache = TEST_CACHE
    if not list(cache.glob("toolkits/cuda-13.5/nvidia/cu*/bin/nvcc")):
        assert run_builder("toolchain", "install", "cuda13.5", BUILDER_CACHE_DIR=str(cache)).returncode == 0
    wheel = build(tmp_path / "out", "manywheel-py3_12-cuda13_5", BUILDER_CACHE_DIR=str(cache))[
        "manywheel-py3_12-cuda13_5"
    ]
    report = json.loads((tmp_path / "out" / "build-report.json").read_text())
    assert report["builds"][0]["environment"]["cuda"]["source"] == "pypi"
    core = unpack_elf(wheel, "minitorch/lib/libminitorch_core.so", tmp_path)
    assert "libcudart.so.13" in core.needed
    assert "passed" in install_and_test(wheel, tmp_path)


def test_same_epoch_gives_identical_bytes(tmp_path: Path) -> None:
    first = build(tmp_path / "a", "manywheel-py3_11-cpu", "--clean")["manywheel-py3_11-cpu"]
    second = build(tmp_path / "b", "manywheel-py3_11-cpu", "--clean")["manywheel-py3_11-cpu"]
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_no_matching_cuda_toolkit_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_builder("build", str(EXAMPLE), "manywheel-py3_12-cuda12_4", "-o", str(out))
    assert result.returncode == 4
    assert "No CUDA 12.4 toolkit found" in result.stderr and "Traceback" not in result.stderr
    assert not list(out.glob("*.whl")) and not list(out.glob(".builder-work-*"))


def test_failing_build_keeps_log_and_writes_no_artifact(tmp_path: Path) -> None:
    project = tmp_path / "broken"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build"))
    (project / "csrc" / "ops.cpp").write_text("this is not C++;\n")
    out = tmp_path / "out"
    result = run_builder("build", str(project), "manywheel-py3_11-cpu", "-o", str(out))
    assert result.returncode == 5, result.stderr
    assert "Building manywheel-py3_11-cpu failed" in result.stderr and "ops.cpp" in result.stderr  # log tail
    log = out / "logs" / "manywheel-py3_11-cpu.log"
    assert "this is not C++" in log.read_text()
    assert not list(out.glob("*.whl")) and not list(out.glob(".builder-work-*"))
    report = json.loads((out / "build-report.json").read_text())
    assert report["builds"][0]["status"] == "failed" and report["builds"][0]["exit_code"] == 5
