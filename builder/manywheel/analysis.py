"""Read every ELF of an unpacked wheel and classify each DT_NEEDED the way ld.so resolves it.

Classes: ``wheel`` (found inside the wheel through the file's own RPATH/RUNPATH),
``system`` (an allowed manylinux system library), ``driver`` (provided by the GPU driver),
``accelerator`` (a CUDA/ROCm runtime library left to NVIDIA's/AMD's wheels in pypi mode),
``excluded`` (the user said so), ``unreachable`` (inside the wheel but not on the file's
search path) and ``graft`` (must be copied in). Repair acts on this; check reports it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.binary.elf import ElfError, ElfInfo, read_elf
from builder.binary.loader import Lookup, find_needed
from builder.config import CudaMode
from builder.resolver import RepairPlan


@dataclass(frozen=True)
class Need:
    member: str  # the ELF that needs it (wheel-relative path)
    soname: str
    kind: str  # wheel | system | driver | accelerator | excluded | unreachable | graft
    lookup: Lookup  # where the loader would find it from this member


def read_all(tree: Path, members: Iterable[str]) -> dict[str, ElfInfo]:
    """read_elf on every member, in parallel (the reader is I/O bound on big libraries)."""
    members = list(members)
    with ThreadPoolExecutor() as pool:
        infos = list(pool.map(lambda m: _read(tree, m), members))
    return dict(zip(members, infos, strict=True))


def _read(tree: Path, member: str) -> ElfInfo:
    try:
        return read_elf(tree / member)
    except ElfError as exc:
        raise ElfError(f"{member}: {exc}") from None


def classify(
    tree: Path,
    infos: Mapping[str, ElfInfo],
    plan: RepairPlan,
    system_libs: frozenset[str],
) -> list[Need]:
    """One Need per (member, DT_NEEDED), in member order."""
    in_wheel = _wheel_sonames(infos)
    root = tree.resolve()
    needs = []
    for member, info in sorted(infos.items()):
        for soname in info.needed:
            lookup = find_needed(info, tree / member, soname)
            needs.append(Need(member, soname, _kind(soname, lookup, root, plan, system_libs, in_wheel), lookup))
    return needs


# The dynamic loader itself: part of glibc, never bundled, absent from the policy lists.
LOADERS = ("ld-linux*.so*", "ld64.so*")


def _kind(
    soname: str, lookup: Lookup, root: Path, plan: RepairPlan, system_libs: frozenset[str], in_wheel: set[str]
) -> str:
    if plan.is_driver(soname):
        return "driver"
    if lookup.path is not None and lookup.path.resolve().is_relative_to(root):
        return "wheel"
    if soname in system_libs or any(fnmatch.fnmatchcase(soname, p) for p in LOADERS):
        return "system"
    if plan.is_accelerator(soname) and plan.mode is CudaMode.PYPI:
        return "accelerator"
    if any(fnmatch.fnmatchcase(soname, pattern) for pattern in plan.exclude):
        return "excluded"
    if soname in in_wheel:
        return "unreachable"
    return "graft"


def _wheel_sonames(infos: Mapping[str, ElfInfo]) -> set[str]:
    names = {Path(m).name for m in infos}
    return names | {i.soname for i in infos.values() if i.soname}


def symbol_needs(infos: Mapping[str, ElfInfo]) -> dict[str, set[str]]:
    """member -> every versioned symbol it needs (GLIBC_2.17, GLIBCXX_3.4.21, ...)."""
    return {m: {v for versions in i.version_needs.values() for v in versions} for m, i in infos.items()}
