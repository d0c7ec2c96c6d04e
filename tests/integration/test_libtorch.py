"""libtorch-style archives of the bundled example: real CMake, real compilers, a real consumer.

All four variants build, pass check and smoke (a consumer CMake project finds, links and runs
them with LD_LIBRARY_PATH unset, and fails to link with the wrong C++ ABI); static variants
leave no project shared library in the consumer's NEEDED; bad input fails clearly and
writes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from builder.binary.elf import read_elf
from builder.binary.wheelfile import WheelReader, WheelWriter, pack_directory, rewrite_wheel
from builder.check import run_checks
from builder.smoke.archive import run_archive_smoke
from tests.conftest import needs_nvcc, run_builder

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "minitorch"
VARIANTS = ("shared-with-deps", "shared-without-deps", "static-with-deps", "static-without-deps")


def build(out: Path, *configs: str, extra: tuple[str, ...] = ()) -> dict[str, dict[str, object]]:
    result = run_builder("build", str(EXAMPLE), *configs, "-o", str(out), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "build-report.json").read_text())
    return {r["config"]: r for r in report["builds"]}


def archive_of(out: Path, record: dict[str, object]) -> Path:
    artifacts = record["artifacts"]
    assert isinstance(artifacts, list)
    return out / artifacts[0]["name"]


def smoke_status(record: dict[str, object]) -> dict[str, str]:
    smoke = record["smoke"]
    assert isinstance(smoke, dict)
    return {c["name"]: c["status"] for c in smoke["checks"]}


def names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        return zf.namelist()


def unpack(archive: Path, dest: Path) -> Path:
    with WheelReader(archive) as reader:
        reader.extract(dest)
    (top,) = list(dest.iterdir())
    return top


@pytest.fixture(scope="module")
def cpu(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, object]]]:
    out = tmp_path_factory.mktemp("libtorch-cpu")
    return out, build(out, *(f"libtorch-cpu-{v}" for v in VARIANTS))


def test_all_four_cpu_variants_build_check_and_smoke(cpu: tuple[Path, dict[str, dict[str, object]]]) -> None:
    out, records = cpu
    assert set(records) == {f"libtorch-cpu-{v}" for v in VARIANTS}
    for variant in VARIANTS:
        record = records[f"libtorch-cpu-{variant}"]
        assert record["status"] == "ok"
        assert set(record["steps"]) == {"build", "check", "smoke"}  # type: ignore[arg-type]
        archive = archive_of(out, record)
        assert archive.name.startswith(f"libminitorch-{variant}-0.3.0.dev") and archive.name.endswith("+cpu.zip")
        members = names(archive)
        assert members == sorted(members)
        for required in (
            "build-version",
            "build-hash",
            "include/minitorch/minitorch.h",
            "share/cmake/MiniTorch/MiniTorchConfig.cmake",
        ):
            assert f"libminitorch/{required}" in members, (variant, members)
        status = smoke_status(record)
        assert status["consumer-build"] == status["consumer-run"] == status["wrong-abi-fails"] == "pass", status
        assert status["static-linkage"] == ("pass" if variant.startswith("static") else "skip")
    assert not list(out.glob(".builder-work-*"))


def test_build_info_and_rpaths(cpu: tuple[Path, dict[str, dict[str, object]]], tmp_path: Path) -> None:
    out, records = cpu
    top = unpack(archive_of(out, records["libtorch-cpu-shared-with-deps"]), tmp_path)
    head = (
        subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or "unknown"
    )
    assert (top / "build-hash").read_text().strip() == head
    assert (top / "build-version").read_text().strip().startswith("0.3.0.dev")
    core = read_elf(top / "lib" / "libminitorch_core.so")
    assert core.rpath == ("$ORIGIN",) and not core.runpath  # forced DT_RPATH, as PyTorch sets it
    assert "libgomp.so.1" in core.needed
    assert read_elf(top / "lib" / "libgomp.so.1").rpath == ("$ORIGIN",)


def test_deps_are_bundled_only_with_deps(cpu: tuple[Path, dict[str, dict[str, object]]]) -> None:
    out, records = cpu
    lib = {
        v: [n.split("/lib/", 1)[1] for n in names(archive_of(out, records[f"libtorch-cpu-{v}"])) if "/lib/" in n]
        for v in VARIANTS
    }
    assert lib["shared-with-deps"] == ["libgomp.so.1", "libminitorch_core.so"]
    assert lib["shared-without-deps"] == ["libminitorch_core.so"]
    assert lib["static-with-deps"] == ["libgomp.so.1", "libminitorch_core.a"]  # OpenMP symbols it leaves undefined
    assert lib["static-without-deps"] == ["libminitorch_core.a"]
    without = run_checks(archive_of(out, records["libtorch-cpu-shared-without-deps"]))
    assert without.ok and "load.external-dependency" in without.ids()
    static = run_checks(archive_of(out, records["libtorch-cpu-static-without-deps"]))
    assert static.ok and static.facts["abi"]["library"].endswith("libminitorch_core.a")
    assert static.facts["abi"]["cxx11"] > 0 and static.facts["abi"]["pre_cxx11"] == 0


def test_static_consumer_needs_no_project_library(
    cpu: tuple[Path, dict[str, dict[str, object]]], tmp_path: Path
) -> None:
    """Independently of the smoke's own check: build the consumer and read its DT_NEEDED."""
    out, records = cpu
    top = unpack(archive_of(out, records["libtorch-cpu-static-without-deps"]), tmp_path / "archive")
    build_dir = tmp_path / "build"
    subprocess.run(
        ["cmake", "-S", str(EXAMPLE / "consumer"), "-B", str(build_dir), f"-DCMAKE_PREFIX_PATH={top}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(["cmake", "--build", str(build_dir)], check=True, capture_output=True)
    needed = read_elf(build_dir / "consumer").needed
    assert not any(n.startswith("libminitorch") for n in needed), needed
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    done = subprocess.run([str(build_dir / "consumer")], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0 and done.stdout.strip().endswith("OK"), done.stdout + done.stderr


def test_rebuild_is_byte_identical(cpu: tuple[Path, dict[str, dict[str, object]]], tmp_path: Path) -> None:
    out, records = cpu
    first = archive_of(out, records["libtorch-cpu-shared-with-deps"])
    again = build(tmp_path, "libtorch-cpu-shared-with-deps", extra=("--clean",))
    second = archive_of(tmp_path, again["libtorch-cpu-shared-with-deps"])
    assert second.name == first.name
    assert second.read_bytes() == first.read_bytes()


def test_debug_archive(tmp_path: Path) -> None:
    records = build(tmp_path, "libtorch-cpu-shared-without-deps", extra=("--debug-archive", "true"))
    record = records["libtorch-cpu-shared-without-deps"]
    artifacts = [a["name"] for a in record["artifacts"]]  # type: ignore[union-attr]
    archive, debug = tmp_path / artifacts[0], tmp_path / artifacts[1]
    assert debug.name == f"debug-{archive.name}"
    assert names(debug) == ["libminitorch/lib/libminitorch_core.so.dbg"]
    top = unpack(archive, tmp_path / "main")
    core = read_elf(top / "lib" / "libminitorch_core.so")
    assert ".gnu_debuglink" in core.sections and ".debug_info" not in core.sections
    dbg = read_elf(unpack(debug, tmp_path / "dbg") / "lib" / "libminitorch_core.so.dbg")
    assert ".debug_info" in dbg.sections


@pytest.mark.cuda
@needs_nvcc
def test_cuda_variants(tmp_path: Path) -> None:
    records = build(tmp_path, *(f"libtorch-cuda13_0-{v}" for v in VARIANTS))
    for variant in VARIANTS:
        record = records[f"libtorch-cuda13_0-{variant}"]
        archive = archive_of(tmp_path, record)
        assert archive.name.endswith("+cu130.zip")
        status = smoke_status(record)
        assert status["consumer-run"] == status["wrong-abi-fails"] == "pass", status
        assert not any("libcudart" in n for n in names(archive))  # pypi mode: left to the user's CUDA
        if variant == "shared-with-deps":
            assert "load.external-accelerator" in run_checks(archive).ids()


def test_symlinks_survive_packing(tmp_path: Path) -> None:
    tree = tmp_path / "tree" / "libx" / "lib"
    tree.mkdir(parents=True)
    (tree / "libx.so.1").write_bytes(b"not really a library")
    (tree / "libx.so").symlink_to("libx.so.1")
    with pytest.raises(ValueError, match="symlinks cannot be packed"):
        pack_directory(tmp_path / "tree", tmp_path / "a.zip")  # wheels still refuse them
    pack_directory(tmp_path / "tree", tmp_path / "b.zip", symlinks=True)
    with WheelReader(tmp_path / "b.zip") as reader:
        assert reader.member("libx/lib/libx.so").is_symlink
        reader.extract(tmp_path / "out")
    assert os.readlink(tmp_path / "out" / "libx" / "lib" / "libx.so") == "libx.so.1"
    writer = WheelWriter(tmp_path / "c.zip")
    with pytest.raises(ValueError, match="outside"):
        writer.add_symlink("libx/lib/evil.so", "../../../etc/passwd")


# ---------------------------------------------------------------------------------------------
# Bad input


def test_unknown_variant_is_a_config_error(tmp_path: Path) -> None:
    result = run_builder("build", str(EXAMPLE), "libtorch-cpu-shared-with-everything", "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "error:" in result.stderr
    assert not list((tmp_path / "out").glob("*.zip")) if (tmp_path / "out").exists() else True


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    writer = WheelWriter(path)
    for name, data in files.items():
        writer.add_bytes(name, data)
    writer.add_bytes("demo-1.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    writer.add_bytes("demo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    writer.write()
    return path


def test_wheel_without_cxx_library(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path / "demo-1.0-py3-none-any.whl", {"demo/__init__.py": b"", "demo/lib/helper.py": b""})
    result = run_builder("libtorch", "from-wheel", str(wheel), "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "carries no C++ library" in result.stderr and "Traceback" not in result.stderr
    assert not list((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else True


def test_wheel_without_headers(tmp_path: Path) -> None:
    lib = Path("/bin/true").read_bytes()  # any ELF file stands in for a library here
    wheel = _wheel(
        tmp_path / "demo-1.0-py3-none-any.whl",
        {"demo/lib/libdemo.so": lib, "demo/share/cmake/Demo/DemoConfig.cmake": b""},
    )
    result = run_builder("libtorch", "from-wheel", str(wheel), "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "demo/include/" in result.stderr
    assert not list((tmp_path / "out").iterdir()) if (tmp_path / "out").exists() else True


def test_archive_missing_include(cpu: tuple[Path, dict[str, dict[str, object]]], tmp_path: Path) -> None:
    out, records = cpu
    good = archive_of(out, records["libtorch-cpu-shared-with-deps"])
    broken = tmp_path / good.name
    rewrite_wheel(good, broken, remove=[n for n in names(good) if "/include/" in n])
    result = run_builder("check", str(broken))
    assert result.returncode == 7, result.stdout + result.stderr
    assert "layout.missing" in result.stdout and "libminitorch/include/" in result.stdout
    report = run_archive_smoke(broken)  # the consumer cannot compile without the headers
    assert not report.ok and report.failed[0].name == "consumer-build"


def test_from_wheel_of_the_example(tmp_path: Path) -> None:
    """The same extraction torch gets, on a wheel builder built itself; the example's own consumer."""
    wheel_out = tmp_path / "wheel"
    records = build(wheel_out, "manywheel-py3_11-cpu")
    wheel = archive_of(wheel_out, records["manywheel-py3_11-cpu"])
    result = run_builder("libtorch", "from-wheel", str(wheel), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    (archive,) = list((tmp_path / "out").iterdir())
    version = wheel.name.split("-")[1]
    assert archive.name == f"libminitorch-shared-with-deps-{version}.zip"
    members = names(archive)
    # top directory minitorch/: the CMake export in the wheel is pinned to <prefix>/minitorch/lib
    assert "minitorch/lib/libminitorch_core.so" in members and "minitorch/lib/libgomp.so.1" in members
    assert not any("_C." in n or n.endswith(".py") for n in members)
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("minitorch/build-version").decode().strip() == version
        assert len(zf.read("minitorch/build-hash").decode().strip()) == 40  # _build_info.git_version
    assert run_checks(archive).ok
    report = run_archive_smoke(archive, consumer=EXAMPLE / "consumer")
    assert report.ok and {c.name for c in report.failed} == set(), report.output[-2000:]
