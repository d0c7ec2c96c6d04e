"""libtorch-style C++ archives: naming, layout, RPATHs, bundled dependencies, debug split, zip.

An archive is one top directory (``libtorch/``) holding ``lib/ include/ share/cmake/<Pkg>/
build-version build-hash``, the layout ``find_package(Torch)`` users and PyTorch's release
tooling expect. Both the CMake builder (build.py) and the wheel extractor (wheel.py) stage
such a tree and hand it to the functions here.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.binary.elf import ElfError, ElfInfo, dynamic_symbols, is_elf, read_elf
from builder.binary.loader import find_needed
from builder.binary.patcher import ElfPatcher
from builder.binary.wheelfile import WriteResult, pack_directory
from builder.config import LibtorchVariant
from builder.errors import BuildError
from builder.manywheel.policy import policies

REQUIRED = ("lib", "include", "share/cmake")
ORIGIN = ("$ORIGIN",)
_SHARED = re.compile(r"\.so(\.\d+)*$")


@dataclass(frozen=True)
class ArchiveName:
    """``libminitorch-shared-with-deps-0.3.0+cpu.zip``: the top directory, the variant, the version."""

    stem: str  # "libtorch": the archive's top directory and the first part of its name
    variant: LibtorchVariant
    version: str  # the full version, local part (+cpu, +cu130) included when the build has one

    @property
    def file_name(self) -> str:
        return f"{self.stem}-{self.variant.value}-{self.version}.zip"

    @property
    def debug_file_name(self) -> str:
        return f"debug-{self.file_name}"


def archive_stem(name: str) -> str:
    """The C++ library's name: torch -> libtorch (PyTorch's spelling), minitorch -> libminitorch.
    One rule for every project, so an archive's name never depends on who built it."""
    base = re.sub(r"[-_.]+", "_", name).lower()
    return base if base.startswith("lib") else f"lib{base}"


def is_shared_library(path: Path) -> bool:
    return path.is_file() and not path.is_symlink() and bool(_SHARED.search(path.name)) and is_elf(path)


def shared_libraries(lib_dir: Path) -> list[Path]:
    return sorted(p for p in lib_dir.rglob("*") if is_shared_library(p))


def write_build_info(top: Path, version: str, git_hash: str | None) -> None:
    """build-version and build-hash, one line each, as PyTorch's archives carry them."""
    (top / "build-version").write_text(version + "\n")
    (top / "build-hash").write_text((git_hash or "unknown") + "\n")


def git_head(root: Path) -> str | None:
    """The project's commit, or None outside git (the archive then says "unknown")."""
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    return text if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", text) else None


def set_origin_rpaths(lib_dir: Path) -> list[str]:
    """RPATH $ORIGIN (DT_RPATH, not RUNPATH) on every shared library: the libraries sit next to
    each other, and DT_RPATH also serves their own dependencies' lookups, as PyTorch forces."""
    patcher = ElfPatcher()
    changed = []
    for lib in shared_libraries(lib_dir):
        info = read_elf(lib)
        if info.rpath == ORIGIN and not info.runpath:
            continue  # already right: leave the bytes alone
        patcher.set_rpath(lib, ORIGIN, force_rpath=True)
        changed.append(lib.name)
    patcher.apply()
    return changed


# ---------------------------------------------------------------------------------------------
# Dependencies (with-deps)


@dataclass(frozen=True)
class DependencyPolicy:
    """Which libraries a with-deps archive carries: everything its libraries need that is not
    a system library (manylinux whitelist), the GPU driver, or (unless bundled) an accelerator runtime."""

    system: frozenset[str]
    driver: tuple[str, ...]
    accelerator: tuple[str, ...]
    bundle_accelerators: bool
    search_dirs: tuple[str, ...] = ()  # e.g. the CUDA toolkit's lib dir

    @classmethod
    def for_arch(cls, arch: str, driver: Sequence[str], accelerator: Sequence[str], bundle_accelerators: bool,
                 search_dirs: Sequence[str] = ()) -> DependencyPolicy:
        known = policies(arch) or policies("x86_64")
        return cls(known[-1].lib_whitelist, tuple(driver), tuple(accelerator), bundle_accelerators,
                   tuple(search_dirs))

    def wants(self, soname: str) -> bool:
        if soname in self.system or soname.startswith("ld-linux") or _matches(soname, self.driver):
            return False
        return self.bundle_accelerators or not _matches(soname, self.accelerator)


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def bundle_shared_dependencies(lib_dir: Path, policy: DependencyPolicy) -> list[str]:
    """Copy what the shared libraries in lib_dir need (transitively) into lib_dir under its
    own soname; returns the sonames added. A needed library that cannot be found is an error:
    a with-deps archive that silently lacks one fails on the user's machine."""
    added: list[str] = []
    queue = shared_libraries(lib_dir)
    while queue:
        lib = queue.pop()
        info = read_elf(lib)
        for soname in info.needed:
            if (lib_dir / soname).exists() or not policy.wants(soname):
                continue
            source = _locate(info, lib, soname, policy)
            target = lib_dir / soname
            shutil.copyfile(os.path.realpath(source), target)
            target.chmod(0o755)
            added.append(soname)
            queue.append(target)
    return sorted(added)


def _locate(info: ElfInfo, lib: Path, soname: str, policy: DependencyPolicy) -> Path:
    lookup = find_needed(info, lib, soname, policy.search_dirs)
    if lookup.path is None:
        raise BuildError(
            f"{lib.name} needs {soname}, which a with-deps archive must bundle, but it is not on this machine "
            f"(searched {', '.join(lookup.searched) or 'nothing'}). Install it, or build the without-deps variant."
        )
    return lookup.path


def bundle_static_dependencies(lib_dir: Path, candidates: Sequence[Path]) -> list[str]:
    """A static library records no DT_NEEDED: its runtime dependencies are the candidate shared
    libraries (the toolchain's OpenMP runtime, the CUDA runtime when bundled) that define a
    symbol one of its objects leaves undefined. Those are copied into lib_dir."""
    undefined: set[str] = set()
    for archive in sorted(lib_dir.rglob("*.a")):
        undefined |= _undefined_symbols(archive)
    added = []
    for candidate in candidates:
        if (lib_dir / candidate.name).exists() or not undefined & set(_defined(candidate)):
            continue
        target = lib_dir / candidate.name
        shutil.copyfile(os.path.realpath(candidate), target)
        target.chmod(0o755)
        added.append(candidate.name)
    return added


def _undefined_symbols(archive: Path) -> set[str]:
    done = subprocess.run(["nm", "-u", "--format=just-symbols", str(archive)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise BuildError(f"nm could not read {archive}: {done.stderr.strip()[:500]}")
    return {line.split("@", 1)[0] for line in done.stdout.split() if line and not line.endswith(":")}


def _defined(library: Path) -> Iterator[str]:
    try:
        for name in dynamic_symbols(library):
            yield name.split("@", 1)[0]
    except ElfError:
        return


def toolchain_runtime(cxx: str, soname: str) -> Path | None:
    """Where the C++ compiler's own runtime library lives (``g++ -print-file-name=libgomp.so.1``)."""
    try:
        done = subprocess.run([cxx, f"-print-file-name={soname}"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    path = Path(done.stdout.strip())
    return path if done.returncode == 0 and path.is_absolute() and path.exists() else None


# ---------------------------------------------------------------------------------------------
# Debug symbols and packing


def split_debug(lib_dir: Path, debug_lib_dir: Path) -> list[str]:
    """PyTorch's split: ``--only-keep-debug`` into ``<lib>.dbg``, strip the debug sections from
    the library, and point it at the file with ``--add-gnu-debuglink``. Libraries without
    debug sections are left alone."""
    split = []
    for lib in shared_libraries(lib_dir):
        if ".debug_info" not in read_elf(lib).sections:
            continue
        target = debug_lib_dir / lib.relative_to(lib_dir).parent / f"{lib.name}.dbg"
        target.parent.mkdir(parents=True, exist_ok=True)
        _objcopy("--only-keep-debug", str(lib), str(target))
        _objcopy("--strip-debug", str(lib))
        # The link records the file's base name and CRC: gdb finds it next to the library
        # or under its debug-file directory, wherever the user unpacks the debug archive.
        _objcopy(f"--add-gnu-debuglink={target}", str(lib))
        split.append(lib.name)
    return split


def _objcopy(*args: str) -> None:
    done = subprocess.run(["objcopy", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"objcopy {' '.join(args)} failed: {done.stderr.strip()[:500]}")


def missing_layout(top: Path) -> list[str]:
    return [d + "/" for d in REQUIRED if not (top / d).is_dir() or not any((top / d).iterdir())]


def pack(stage: Path, dest: Path, source_date_epoch: int) -> WriteResult:
    """Zip the staged tree (its one top directory) atomically and reproducibly: sorted members,
    SOURCE_DATE_EPOCH timestamps, fixed permissions; in-tree .so symlinks stay links."""
    return pack_directory(stage, dest, source_date_epoch=source_date_epoch, symlinks=True)
