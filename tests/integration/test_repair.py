"""builder repair on hand-made wheels: real gcc-built libraries, real zips, and every bad input."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from builder.binary.elf import read_elf
from tests.conftest import run_builder

WHEEL = "demo-1.0-cp311-cp311-linux_x86_64.whl"


def gcc(tmp: Path, name: str, source: str, *flags: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / name
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src), *flags], check=True)
    return out


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def make_wheel(path: Path, files: dict[str, bytes], *, lie: str | None = None) -> Path:
    """A wheel with a correct RECORD (or one that lies about `lie`)."""
    dist = "demo-1.0.dist-info"
    files = {
        **files,
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp311-cp311-linux_x86_64\n",
    }
    lines = [record_line(n, b"tampered" if n == lie else d) for n, d in files.items()] + [f"{dist}/RECORD,,"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{dist}/RECORD", "\n".join(lines) + "\n")
    return path


@pytest.fixture
def libs(tmp_path: Path) -> dict[str, Path]:
    build = tmp_path / "build"
    build.mkdir()
    dep = gcc(build, "libdep.so.1", "int dep(void){return 41;}\n", "-Wl,-soname,libdep.so.1")
    core = gcc(
        build,
        "libcore.so",
        "int dep(void); int core(void){return dep()+1;}\n",
        f"-L{build}",
        "-l:libdep.so.1",
        f"-Wl,-rpath,{build}",
    )
    omp = gcc(
        build, "libomp_user.so", "#include <omp.h>\nint threads(void){return omp_get_max_threads();}\n", "-fopenmp"
    )
    return {"dep": dep, "core": core, "omp": omp}


def test_grafts_a_build_tree_library_and_drops_the_leaked_rpath(tmp_path: Path, libs: dict[str, Path]) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {"demo/libcore.so": libs["core"].read_bytes(), "demo/__init__.py": b""})
    result = run_builder("repair", str(wheel), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    [out] = (tmp_path / "out").glob("*.whl")
    assert "manylinux_" in out.name and "linux_x86_64" not in out.name.split("-")[-1].split(".")[0]
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        graft = next(n for n in names if n.startswith("demo.libs/libdep-"))
        core = read_elf(zf.extract("demo/libcore.so", tmp_path / "x"))
        grafted = read_elf(zf.extract(graft, tmp_path / "x"))
    assert Path(graft).name in core.needed and "libdep.so.1" not in core.needed
    assert (core.runpath or core.rpath) == ("$ORIGIN/../demo.libs",)  # build-tree path dropped
    assert grafted.soname == Path(graft).name


def test_keeps_libgomp_name(tmp_path: Path, libs: dict[str, Path]) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {"demo/libomp_user.so": libs["omp"].read_bytes()})
    assert run_builder("repair", str(wheel), "-o", str(tmp_path / "out")).returncode == 0
    [out] = (tmp_path / "out").glob("*.whl")
    assert "demo.libs/libgomp.so.1" in zipfile.ZipFile(out).namelist()


def test_exclude_leaves_a_library_out(tmp_path: Path, libs: dict[str, Path]) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {"demo/libcore.so": libs["core"].read_bytes()})
    assert run_builder("repair", str(wheel), "-o", str(tmp_path / "out"), "--exclude", "libdep.so.*").returncode == 0
    [out] = (tmp_path / "out").glob("*.whl")
    assert not any("libdep" in n for n in zipfile.ZipFile(out).namelist())


def test_refuses_a_tag_above_what_the_binaries_allow(tmp_path: Path, libs: dict[str, Path]) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {"demo/libomp_user.so": libs["omp"].read_bytes()})
    result = run_builder("repair", str(wheel), "-o", str(tmp_path / "out"), "--plat", "manylinux_2_17_x86_64")
    assert result.returncode == 6
    assert "Cannot tag manylinux_2_17_x86_64" in result.stderr and "needs GLIBC_" in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def assert_repair_fails(tmp_path: Path, wheel: Path, *phrases: str) -> None:
    out = tmp_path / "out"
    result = run_builder("repair", str(wheel), "-o", str(out))
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr
    for phrase in phrases:
        assert phrase in result.stderr
    assert not out.exists() or not list(out.iterdir())  # never a partial file


def test_missing_library(tmp_path: Path, libs: dict[str, Path]) -> None:
    libs["dep"].unlink()
    wheel = make_wheel(tmp_path / WHEEL, {"demo/libcore.so": libs["core"].read_bytes()})
    assert_repair_fails(tmp_path, wheel, "demo/libcore.so needs libdep.so.1", "Looked in:", str(libs["dep"].parent))


def test_not_a_zip(tmp_path: Path) -> None:
    wheel = tmp_path / WHEEL
    wheel.write_bytes(b"definitely not a zip file" * 100)
    assert_repair_fails(tmp_path, wheel, WHEEL)


def test_truncated_zip(tmp_path: Path, libs: dict[str, Path]) -> None:
    good = make_wheel(tmp_path / "good.whl", {"demo/libcore.so": libs["core"].read_bytes()})
    wheel = tmp_path / WHEEL
    wheel.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert_repair_fails(tmp_path, wheel, WHEEL)


@pytest.mark.parametrize("bad_name", ["../evil.so", "/etc/evil.so", "demo/../../evil.so"])
def test_member_escaping_the_tree(tmp_path: Path, bad_name: str) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {"demo/__init__.py": b"", bad_name: b"x"})
    assert_repair_fails(tmp_path, wheel, "evil.so")


def test_symlink_escaping_the_tree(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {"demo/__init__.py": b""})
    with zipfile.ZipFile(wheel, "a") as zf:
        info = zipfile.ZipInfo("demo/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../../../etc/passwd")
    assert_repair_fails(tmp_path, wheel, "demo/link")


def test_record_that_lies(tmp_path: Path, libs: dict[str, Path]) -> None:
    wheel = make_wheel(tmp_path / WHEEL, {"demo/libcore.so": libs["core"].read_bytes()}, lie="demo/libcore.so")
    assert_repair_fails(tmp_path, wheel, "RECORD does not match", "demo/libcore.so")


def test_driver_library_is_never_grafted(tmp_path: Path) -> None:
    """A library linked against the CUDA driver (libcuda.so.1) keeps needing it from the system,
    in bundled mode too, even on a machine with no driver installed."""
    driver_dir = tmp_path / "driver"
    driver_dir.mkdir()
    gcc(driver_dir, "libcuda.so.1", "int cuInit(unsigned int f){return (int)f;}\n", "-Wl,-soname,libcuda.so.1")
    (driver_dir / "libcuda.so").symlink_to("libcuda.so.1")
    source = "int cuInit(unsigned int); int init(void){return cuInit(0);}\n"
    lib = gcc(tmp_path, "libuses_driver.so", source, f"-L{driver_dir}", "-lcuda")
    shutil.rmtree(driver_dir)  # like a build machine without a GPU driver
    assert "libcuda.so.1" in read_elf(lib).needed
    wheel = make_wheel(tmp_path / WHEEL.replace("1.0", "1.0+cu130"), {"demo/libuses_driver.so": lib.read_bytes()})
    for mode in ("pypi", "bundled"):
        out = tmp_path / mode
        result = run_builder("repair", str(wheel), "-o", str(out), "--cuda-mode", mode)
        assert result.returncode == 0, result.stderr
        assert not any("libcuda" in n for n in zipfile.ZipFile(next(out.glob("*.whl"))).namelist())
