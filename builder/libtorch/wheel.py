"""Extract a libtorch-style archive from a built wheel (PyTorch's extract_libtorch_from_wheel).

From ``<pkg>/lib`` every C++ library is taken except the Python bindings (``lib<pkg>_python*``,
``_C*``, extension modules, ``*.py``); ``<pkg>/include`` and ``<pkg>/share/cmake`` come
along; every shared library gets RPATH ``$ORIGIN`` (forced DT_RPATH, as PyTorch sets it);
``build-version`` is the wheel's version and ``build-hash`` the ``git_version`` the wheel
recorded (``torch/version.py``), else "unknown". Members that need no edit (headers, CMake
files, static libraries) are copied as their compressed bytes, so only the shared libraries
are inflated, patched and deflated again.
"""

from __future__ import annotations

import fnmatch
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from builder.binary.elf import is_elf
from builder.binary.wheelfile import WheelFileError, WheelReader, WheelWriter, resolve_source_date_epoch
from builder.check.context import is_extension_module
from builder.config import LibtorchVariant
from builder.errors import ConfigError
from builder.libtorch.archive import ArchiveName, archive_stem, set_origin_rpaths, split_debug

VARIANT = LibtorchVariant.SHARED_WITH_DEPS  # a wheel's libraries are shared and it bundles its dependencies
_LIBRARY = re.compile(r"\.(so(\.\d+)*|a)$")
_GIT_VERSION = re.compile(r"""^git_version\s*(?::[^=]*)?=\s*['"]([0-9a-fA-F]{7,64})['"]""", re.MULTILINE)
_HASH_SOURCES = ("version.py", "_build_info.py")


@dataclass(frozen=True)
class Extracted:
    archive: Path
    debug_archive: Path | None
    libraries: tuple[str, ...]  # archive-relative names of the C++ libraries taken
    git_hash: str | None


@dataclass(frozen=True)
class _Plan:
    package: str
    name: ArchiveName
    top: str  # the archive's top directory
    libs: tuple[str, ...]  # wheel members under <pkg>/lib to take
    rest: tuple[tuple[str, str], ...]  # (wheel member, archive member) copied unchanged


def extract_from_wheel(wheel: Path, out_dir: Path, *, debug_archive: bool = False,
                       source_date_epoch: int | None = None) -> Extracted:
    """Write ``lib<pkg>-shared-with-deps-<version>.zip`` (and its debug- archive) into out_dir.
    Both appear complete or not at all; bad input is a ConfigError and writes nothing."""
    epoch = resolve_source_date_epoch(source_date_epoch)
    try:
        with WheelReader(wheel) as reader:
            plan = _plan(wheel, reader)
            git_hash = _git_hash(reader, plan.package)
            out_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".builder-libtorch-", dir=out_dir) as tmp:
                return _write(reader, plan, git_hash, Path(tmp), out_dir, debug_archive, epoch)
    except WheelFileError as exc:
        raise ConfigError(f"{wheel} is not a readable wheel: {exc}. Pass a wheel built with its C++ library.") from None


def _plan(wheel: Path, reader: WheelReader) -> _Plan:
    try:
        dist, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise ConfigError(f"{wheel.name} is not a wheel file name ({exc}). Pass a .whl file.") from None
    package = str(canonicalize_name(dist)).replace("-", "_")
    name = ArchiveName(archive_stem(package), VARIANT, str(version))
    names = [n for n in reader.names() if not n.endswith("/")]
    libs = tuple(n for n in names if n.startswith(f"{package}/lib/") and _is_cxx_library(n, package))
    if not any(_LIBRARY.search(n) for n in libs):
        raise ConfigError(
            f"{wheel.name} carries no C++ library: nothing under {package}/lib/ is a lib*.so or lib*.a other than "
            "Python bindings. Extract from a wheel that ships its C++ library (as torch/lib does)."
        )
    top = package if _pinned_to_package(reader, names, package) else name.stem
    rest = [(n, f"{top}/{n[len(package) + 1:]}") for n in names
            if n.startswith((f"{package}/include/", f"{package}/share/cmake/"))]
    missing = [d for d in ("include/", "share/cmake/") if not any(n.startswith(f"{package}/{d}") for n in names)]
    if missing:
        raise ConfigError(
            f"{wheel.name} has C++ libraries but no {' or '.join(f'{package}/{d}' for d in missing)}: a C++ archive "
            "needs the headers and the CMake package config. Install them into the wheel's package."
        )
    return _Plan(package, name, top, libs, tuple(rest))


def _pinned_to_package(reader: WheelReader, names: list[str], package: str) -> bool:
    """A CMake export written for the wheel's layout finds its files at <prefix>/<pkg>/lib (the
    prefix being site-packages): under any other top directory name it would point nowhere.
    torch's config is relative to its own directory and takes PyTorch's libtorch/ top."""
    exports = [n for n in names if n.startswith(f"{package}/share/cmake/") and n.endswith(".cmake")]
    pinned = f"{{_IMPORT_PREFIX}}/{package}/".encode()
    return any(pinned in reader.read(n) for n in exports)


def _is_cxx_library(member: str, package: str) -> bool:
    base = PurePosixPath(member).name
    excluded = (f"lib{package}_python*", "_C*", "*.py", "*.pyc", "*.pyi")
    return not any(fnmatch.fnmatchcase(base, p) for p in excluded) and not is_extension_module(member)


def _git_hash(reader: WheelReader, package: str) -> str | None:
    for source in _HASH_SOURCES:
        member = f"{package}/{source}"
        if member in reader:
            found = _GIT_VERSION.search(reader.read(member).decode("utf-8", "replace"))
            if found:
                return found[1].lower()
    return None


def _write(reader: WheelReader, plan: _Plan, git_hash: str | None, tmp: Path, out_dir: Path, debug: bool,
           epoch: int) -> Extracted:
    lib_root = tmp / "lib"
    elf_members = [m for m in plan.libs if _LIBRARY.search(m) and not reader.member(m).is_symlink]
    reader.extract(lib_root, elf_members)
    extracted = {m: lib_root.joinpath(*m.split("/")) for m in elf_members}
    elf_members = [m for m in elf_members if is_elf(extracted[m])]
    set_origin_rpaths(lib_root / plan.package / "lib")
    debug_path = _debug_archive(plan, lib_root, tmp, epoch) if debug else None
    writer = WheelWriter(tmp / plan.name.file_name, source_date_epoch=epoch)
    lib_prefix = f"{plan.package}/lib/"
    for member in plan.libs:
        target = f"{plan.top}/lib/{member[len(lib_prefix):]}"
        if member in elf_members:
            writer.add_file(target, extracted[member])
        else:
            writer.copy(reader, member, new_name=target)
    for member, target in plan.rest:
        writer.copy(reader, member, new_name=target)
    writer.add_bytes(f"{plan.top}/build-version", f"{plan.name.version}\n".encode())
    writer.add_bytes(f"{plan.top}/build-hash", f"{git_hash or 'unknown'}\n".encode())
    writer.write()
    final = out_dir / plan.name.file_name
    final_debug = out_dir / plan.name.debug_file_name if debug_path else None
    if debug_path and final_debug:
        debug_path.replace(final_debug)
    (tmp / plan.name.file_name).replace(final)
    return Extracted(final, final_debug, tuple(f"lib/{m[len(lib_prefix):]}" for m in elf_members), git_hash)


def _debug_archive(plan: _Plan, lib_root: Path, tmp: Path, epoch: int) -> Path | None:
    debug_root = tmp / "debug"
    if not split_debug(lib_root / plan.package / "lib", debug_root / plan.top / "lib"):
        return None
    writer = WheelWriter(tmp / plan.name.debug_file_name, source_date_epoch=epoch)
    for path in sorted(p for p in debug_root.rglob("*") if p.is_file()):
        writer.add_file(path.relative_to(debug_root).as_posix(), path)
    writer.write()
    return tmp / plan.name.debug_file_name
