"""`builder libtorch from-wheel` on the real torch 2.13.0 CPU wheel (slow tier): the archive passes
check, and a torch:: program (tensors + matmul) built with find_package(Torch) against it compiles,
links, runs with LD_LIBRARY_PATH unset, and fails to link with the old C++ ABI."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from builder.binary.elf import read_elf
from builder.binary.wheelfile import WheelReader
from builder.check import run_checks
from builder.smoke.archive import run_archive_smoke
from tests.conftest import run_builder

pytestmark = pytest.mark.slow
GIT_VERSION = "cf30153c4c131c8164ee7798e5022d810682e2cb"  # torch/version.py of the 2.13.0 CPU wheel


@pytest.fixture(scope="module")
def torch_archive(tmp_path_factory: pytest.TempPathFactory, torch_wheel: Path) -> Path:
    out = tmp_path_factory.mktemp("libtorch")
    result = run_builder("libtorch", "from-wheel", str(torch_wheel), "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    (archive,) = list(out.iterdir())
    return archive


def test_layout_names_and_build_info(torch_archive: Path, tmp_path: Path) -> None:
    assert torch_archive.name == "libtorch-shared-with-deps-2.13.0+cpu.zip"
    with zipfile.ZipFile(torch_archive) as zf:
        names = zf.namelist()
        assert zf.read("libtorch/build-version") == b"2.13.0+cpu\n"
        assert zf.read("libtorch/build-hash").decode().strip() == GIT_VERSION
    libs = {n.split("/")[-1] for n in names if n.startswith("libtorch/lib/") and ".so" in n}
    assert {"libtorch.so", "libtorch_cpu.so", "libc10.so", "libgomp.so.1"} <= libs
    assert not any("torch_python" in n or "/_C" in n or n.endswith(".py") for n in names)
    assert "libtorch/share/cmake/Torch/TorchConfig.cmake" in names
    assert "libtorch/include/torch/csrc/api/include/torch/torch.h" in names
    with WheelReader(torch_archive) as reader:
        reader.extract(tmp_path, ["libtorch/lib/libc10.so"])
    info = read_elf(tmp_path / "libtorch" / "lib" / "libc10.so")
    assert info.rpath == ("$ORIGIN",) and not info.runpath


def test_archive_passes_check(torch_archive: Path) -> None:
    for profile in ("generic", "torch"):
        report = run_checks(torch_archive, profile=profile)
        assert report.ok, [f.as_dict() for f in report.errors]
    assert report.facts["abi"]["cxx11"] >= 100 and report.facts["abi"]["pre_cxx11"] == 0


def test_torch_consumer_compiles_links_and_runs(torch_archive: Path) -> None:
    report = run_archive_smoke(torch_archive)
    status = {c.name: c.status for c in report.checks}
    assert status == {
        "consumer-build": "pass",
        "consumer-run": "pass",
        "static-linkage": "skip",
        "wrong-abi-fails": "pass",
    }, report.output[-3000:]
    run = next(c for c in report.checks if c.name == "consumer-run")
    assert run.detail == "OK"
    wrong = next(c for c in report.checks if c.name == "wrong-abi-fails")
    assert "fails to link" in wrong.detail
