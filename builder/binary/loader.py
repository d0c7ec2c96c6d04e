"""Where the dynamic loader would find a DT_NEEDED library, without running the loader.

Search order of glibc's ld.so for an object: its DT_RPATH (only when it has no DT_RUNPATH),
LD_LIBRARY_PATH (deliberately ignored here: artifacts must work without it), its DT_RUNPATH,
then the system directories (ld.so.cache, built from /etc/ld.so.conf, then the defaults).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from builder.binary.elf import ElfInfo

DEFAULT_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib")


@cache
def system_dirs(conf: str = "/etc/ld.so.conf") -> tuple[str, ...]:
    """Directories from ld.so.conf (following include lines), then the built-in defaults."""
    found: list[str] = []
    _read_conf(Path(conf), found, depth=0)
    return tuple(dict.fromkeys([d for d in found if os.path.isdir(d)] + [d for d in DEFAULT_DIRS if os.path.isdir(d)]))


def _read_conf(path: Path, found: list[str], depth: int) -> None:
    if depth > 8 or not path.is_file():
        return
    for raw in path.read_text(errors="replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include"):
            pattern = line.split(None, 1)[1] if " " in line else ""
            if not os.path.isabs(pattern):
                pattern = str(path.parent / pattern)
            for included in sorted(glob.glob(pattern)):
                _read_conf(Path(included), found, depth + 1)
        else:
            found.append(line)


def expand(entry: str, origin: Path) -> str:
    """Substitute $ORIGIN / ${ORIGIN}; other tokens ($LIB, $PLATFORM) are left for the loader."""
    return entry.replace("${ORIGIN}", str(origin)).replace("$ORIGIN", str(origin))


@dataclass(frozen=True)
class Lookup:
    soname: str
    path: Path | None  # None: not found
    via: str  # "rpath", "runpath", "system", or "" when not found
    searched: tuple[str, ...]  # every directory looked in, in order


def search_path(info: ElfInfo, location: Path) -> list[tuple[str, str]]:
    """(directory, how) in loader order for the object at location (its rpath/runpath only)."""
    origin = location.parent
    dirs = [(expand(e, origin), "runpath") for e in info.runpath] if info.runpath else []
    if not info.runpath:
        dirs = [(expand(e, origin), "rpath") for e in info.rpath]
    return [(os.path.normpath(d), how) for d, how in dirs if d]


def find_needed(info: ElfInfo, location: Path, soname: str, extra_system: Sequence[str] = ()) -> Lookup:
    """Resolve one DT_NEEDED of the object at location, as ld.so would."""
    if "/" in soname:  # a path in DT_NEEDED is used as is (relative to the cwd: never portable)
        return Lookup(
            soname, Path(soname) if os.path.isabs(soname) and os.path.exists(soname) else None, "path", (soname,)
        )
    searched: list[str] = []
    for directory, how in [*search_path(info, location), *((d, "system") for d in (*extra_system, *system_dirs()))]:
        searched.append(directory)
        candidate = Path(directory) / soname
        if candidate.exists():
            return Lookup(soname, candidate, how, tuple(searched))
    return Lookup(soname, None, "", tuple(searched))
