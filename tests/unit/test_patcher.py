"""builder.binary.patcher: batched, validated, atomic patchelf edits on real libraries."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder.binary.elf import read_elf
from builder.binary.patcher import (
    ElfPatcher,
    FileEdits,
    PatchError,
    find_patchelf,
    patchelf_version,
)

DEP_C = "int dep(void) { return 41; }\n"
USER_C = "int dep(void);\nint user(void) { return dep() + 1; }\n"


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, cwd=cwd).stdout


@pytest.fixture(scope="module")
def patchelf() -> str:
    try:
        path = find_patchelf()
    except Exception as exc:  # ToolchainError: no patchelf on this machine
        pytest.skip(str(exc))
    return path


@pytest.fixture
def built(tmp_path: Path) -> dict[str, Path]:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    (tmp_path / "dep.c").write_text(DEP_C)
    (tmp_path / "user.c").write_text(USER_C)
    cc = ["gcc", "-O1", "-fPIC", "-shared"]
    _run(*cc, "-o", "libdep.so", "dep.c", "-Wl,-soname,libdep.so", cwd=tmp_path)
    _run(*cc, "-o", "libother.so", "dep.c", "-Wl,-soname,libother.so", cwd=tmp_path)
    for name, dtags in (("librunpath.so", "--enable-new-dtags"), ("librpath.so", "--disable-new-dtags")):
        _run(
            *cc,
            "-o",
            name,
            "user.c",
            f"-Wl,-soname,{name}",
            f"-Wl,{dtags}",
            "-Wl,-rpath,/lib/intel64:/build/leak",
            "-L.",
            "-ldep",
            "-lother",
            cwd=tmp_path,
        )
    _run("gcc", "-c", "-fPIC", "-o", "obj.o", "dep.c", cwd=tmp_path)
    return {p.name: p for p in tmp_path.iterdir()}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _readelf(path: Path) -> str:
    return _run("readelf", "-dW", path)


def test_find_patchelf_and_version(patchelf: str) -> None:
    assert os.access(patchelf, os.X_OK)
    assert patchelf_version(patchelf) >= (0, 14)


def test_all_edits_in_one_call(patchelf: str, built: dict[str, Path], tmp_path: Path) -> None:
    """A logging wrapper around the real patchelf counts calls: one per file."""
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "patchelf-logged"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {patchelf} "$@"\n')
    wrapper.chmod(0o755)
    lib = built["librpath.so"]
    p = ElfPatcher(str(wrapper))
    p.set_rpath(lib, ["$ORIGIN", "$ORIGIN/../deps"])
    p.replace_needed(lib, "libdep.so", "libdep-1a2b3c4d.so")
    p.remove_needed(lib, "libother.so")
    p.set_soname(lib, "librpath-1a2b3c4d.so")
    p.set_rpath(built["librunpath.so"], ["$ORIGIN"], force_rpath=True)
    results = p.apply()
    calls = [c for c in log.read_text().splitlines() if c != "--version"]
    assert len(calls) == 2
    after = {Path(r.path).name: r.after for r in results}
    assert after["librpath.so"].needed == ("libdep-1a2b3c4d.so",)
    assert after["librpath.so"].soname == "librpath-1a2b3c4d.so"
    assert (after["librpath.so"].rpath, after["librpath.so"].runpath) == ((), ("$ORIGIN", "$ORIGIN/../deps"))
    assert (after["librunpath.so"].rpath, after["librunpath.so"].runpath) == (("$ORIGIN",), ())
    dyn = _readelf(lib)  # binutils agrees with what we validated
    assert "[libdep-1a2b3c4d.so]" in dyn and "libother.so" not in dyn
    assert "Library runpath: [$ORIGIN:$ORIGIN/../deps]" in dyn
    assert "Library rpath: [$ORIGIN]" in _readelf(built["librunpath.so"])
    assert not p.pending


def test_patched_library_loads(patchelf: str, built: dict[str, Path], tmp_path: Path) -> None:
    """The grafting edit repair makes: rename a dependency, point RUNPATH at it, load it."""
    libs = tmp_path / "site/pkg.libs"
    libs.mkdir(parents=True)
    shutil.copy(built["libdep.so"], libs / "libdep-1a2b3c4d.so")
    shutil.copy(built["libother.so"], libs / "libother.so")
    lib = tmp_path / "site/pkg/_native.so"
    lib.parent.mkdir()
    shutil.copy(built["librunpath.so"], lib)
    p = ElfPatcher(patchelf)
    p.set_soname(libs / "libdep-1a2b3c4d.so", "libdep-1a2b3c4d.so")
    p.replace_needed(lib, "libdep.so", "libdep-1a2b3c4d.so")
    p.set_rpath(lib, ["$ORIGIN/../pkg.libs"])
    assert len(p.apply()) == 2
    code = f"import ctypes; print(ctypes.CDLL({str(lib)!r}).user())"
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"


def test_parallel_many_files(patchelf: str, built: dict[str, Path], tmp_path: Path) -> None:
    copies = []
    for i in range(12):
        dest = tmp_path / f"copy{i}.so"
        shutil.copy(built["librunpath.so"], dest)
        copies.append(dest)
    p = ElfPatcher(patchelf, workers=4)
    for i, path in enumerate(copies):
        p.set_rpath(path, [f"$ORIGIN/{i}"])
    results = p.apply()
    assert sorted(r.after.runpath[0] for r in results) == sorted(f"$ORIGIN/{i}" for i in range(12))
    assert all(read_elf(c).runpath == (f"$ORIGIN/{i}",) for i, c in enumerate(copies))


def test_remove_rpath(patchelf: str, built: dict[str, Path]) -> None:
    p = ElfPatcher(patchelf)
    p.remove_rpath(built["librpath.so"])
    (result,) = p.apply()
    assert (result.after.rpath, result.after.runpath) == ((), ())


def test_patchelf_failure_names_file_and_stderr(patchelf: str, built: dict[str, Path]) -> None:
    obj = built["obj.o"]  # a relocatable object: patchelf refuses it
    before = _sha(obj)
    good = built["librunpath.so"]
    p = ElfPatcher(patchelf)
    p.set_rpath(obj, ["$ORIGIN"])
    p.set_rpath(good, ["$ORIGIN"])
    with pytest.raises(PatchError) as exc:
        p.apply()
    message = str(exc.value)
    assert "1 of 2" in message and str(obj) in message and "patchelf" in message
    assert message.split(str(obj), 1)[1].strip(": `").strip()  # stderr text follows the name
    assert _sha(obj) == before  # untouched
    assert read_elf(good).runpath == ("$ORIGIN",)  # the other file was still patched
    assert not [f for f in os.listdir(obj.parent) if f.endswith(".patchelf")]


def test_replacing_an_absent_dependency_fails(patchelf: str, built: dict[str, Path]) -> None:
    lib = built["librunpath.so"]
    before = _sha(lib)
    p = ElfPatcher(patchelf)
    p.replace_needed(lib, "libnotthere.so", "libx.so")
    with pytest.raises(PatchError, match=r"librunpath.so: cannot replace \['libnotthere.so'\]"):
        p.apply()
    assert _sha(lib) == before


def test_not_elf(patchelf: str, tmp_path: Path) -> None:
    (tmp_path / "libfake.so").write_text("INPUT(-lc)\n")
    p = ElfPatcher(patchelf)
    p.set_soname(tmp_path / "libfake.so", "x")
    with pytest.raises(PatchError, match=r"libfake.so: cannot read it as ELF"):
        p.apply()


def test_queue_rules(patchelf: str, tmp_path: Path) -> None:
    p = ElfPatcher(patchelf)
    lib = tmp_path / "lib.so"
    p.replace_needed(lib, "a.so", "b.so")
    p.replace_needed(lib, "b.so", "c.so")  # chained edits collapse
    assert p.pending[str(lib)].replace_needed == (("a.so", "c.so"),)
    with pytest.raises(ValueError, match=r"already queued"):
        p.replace_needed(lib, "a.so", "d.so")
    with pytest.raises(ValueError, match=r"queued to be replaced"):
        p.remove_needed(lib, "a.so")
    p.remove_needed(lib, "x.so")
    with pytest.raises(ValueError, match=r"queued for removal"):
        p.replace_needed(lib, "x.so", "y.so")
    with pytest.raises(TypeError):
        p.set_rpath(lib, "$ORIGIN:/x")
    with pytest.raises(ValueError):
        p.set_rpath(lib, [])


def test_patchelf_args() -> None:
    edits = FileEdits(
        "/x.so",
        set_rpath=("$ORIGIN", "/a"),
        force_rpath=True,
        replace_needed=(("a.so", "b.so"),),
        remove_needed=("c.so",),
        set_soname="x.so",
    )
    assert edits.patchelf_args() == [
        "--set-soname",
        "x.so",
        "--force-rpath",
        "--set-rpath",
        "$ORIGIN:/a",
        "--replace-needed",
        "a.so",
        "b.so",
        "--remove-needed",
        "c.so",
    ]
    assert FileEdits("/x.so", set_rpath=()).patchelf_args() == ["--remove-rpath"]
