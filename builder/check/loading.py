"""Check families 3 and 4: every DT_NEEDED loads without LD_LIBRARY_PATH; RPATHs stay inside.

A needed library is fine when the loader finds it inside the installation through the
file's own RPATH/RUNPATH, when it is an allowed manylinux system library (or the dynamic
loader), when it belongs to the GPU driver, or when it is an accelerator runtime that a
``Requires-Dist`` NVIDIA wheel provides and the file's search path reaches that wheel's
library directory.  Anything else fails on a user's machine; the finding names the file,
the soname and every directory the loader would search.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path, PurePosixPath

from builder.binary.elf import ElfInfo
from builder.binary.loader import Lookup, find_needed
from builder.check.context import Context, base_soname, matches_any
from builder.check.findings import Finding, error, warning
from builder.check.layout import archive_variant, leaves_dependencies
from builder.manywheel.policy import policies

_LOADER_NAMES = ("ld-linux*.so*", "ld64.so*")
_ORIGINS = ("$ORIGIN", "${ORIGIN}")


def check_loading(ctx: Context) -> list[Finding]:
    allowed = _system_whitelist(ctx)
    where = _locations(ctx)
    requires = ctx.requires()
    out: list[Finding] = []
    for member, info in sorted(ctx.elves.items()):
        for soname in info.needed:
            lookup = find_needed(info, _path(ctx, member), soname)
            problem = _problem(ctx, member, info, soname, lookup, allowed, where, requires)
            if problem is not None:
                out.append(problem)
    return out


def _system_whitelist(ctx: Context) -> frozenset[str]:
    machines = {i.machine for i in ctx.elves.values()}
    arch = next(iter(machines)) if len(machines) == 1 else "x86_64"
    known = policies(arch) or policies("x86_64")
    return known[-1].lib_whitelist  # the newest policy allows the most; the tag check does the rest


def _locations(ctx: Context) -> dict[str, list[str]]:
    """Basename/soname -> members holding it, for 'a copy exists at ...' hints."""
    out: dict[str, list[str]] = {}
    for member, info in ctx.scan.elves.items():
        for name in {PurePosixPath(member).name, info.soname or ""} - {""}:
            out.setdefault(name, []).append(member)
    for member in ctx.scan.symlinks:
        out.setdefault(PurePosixPath(member).name, []).append(member)
    return out


def _path(ctx: Context, member: str) -> Path:
    return ctx.scan.root.joinpath(*member.split("/"))


def _inside(ctx: Context, found: Path | None) -> bool:
    if found is None:
        return False
    return Path(os.path.realpath(found)).is_relative_to(os.path.realpath(ctx.scan.root))


def _problem(ctx: Context, member: str, info: ElfInfo, soname: str, lookup: Lookup, allowed: frozenset[str],
             where: dict[str, list[str]], requires: dict[str, str]) -> Finding | None:
    if _inside(ctx, lookup.path):
        return None
    if ctx.is_driver(soname) or soname in allowed or matches_any(soname, _LOADER_NAMES):
        return None
    if ctx.is_accelerator(soname) and archive_variant(ctx) is not None:
        return warning("load.external-accelerator", member, f"{member} needs {soname}, which the archive leaves to "
                       "the user's CUDA/ROCm installation (as PyTorch's libtorch archives do); it must be on the "
                       "loader's path there. Build with cuda-mode = bundled to carry it inside.")
    if ctx.is_accelerator(soname):
        return _external(ctx, member, info, soname, lookup, requires)
    if leaves_dependencies(ctx):
        found = f" (here: {lookup.path})" if lookup.path is not None else " (not found on this machine)"
        return warning("load.external-dependency", member, f"{member} needs {soname}{found}, which this without-deps "
                       "archive leaves to the consumer's machine. Use the with-deps variant to bundle it.")
    return _unresolved(ctx, member, soname, lookup, where)


def _external(ctx: Context, member: str, info: ElfInfo, soname: str, lookup: Lookup,
              requires: dict[str, str]) -> Finding | None:
    """An accelerator runtime left outside: a declared NVIDIA wheel must provide it, on the search path."""
    providers = ctx.providers(soname)
    declared = {name: lib for name, lib in providers.items() if name in requires}
    if not declared:
        names = ", ".join(sorted(providers)) or "a runtime wheel"
        return error("load.undeclared-external", member, f"{member} needs {soname}, which is not inside the package "
                     f"and no Requires-Dist provides it (it comes from {names}). Add the requirement (builder repair "
                     "does in the pypi CUDA mode) or bundle the library (cuda-mode = bundled).")
    searched = {_site_relative(member, e) for e in (info.runpath or info.rpath)}
    if ctx.scan.site_root is not None and lookup.path is not None:
        return None  # an installed package: the provider's wheel is installed and was found
    if searched & set(declared.values()):
        return None
    wanted = sorted(set(declared.values()))
    return error("load.unresolved", member, f"{member} needs {soname} from {', '.join(sorted(declared))}, but its "
                 f"search path ({_shown_entries(info)}) does not reach {' or '.join(wanted)}, where that wheel "
                 f"installs it. Add $ORIGIN/{posixpath.relpath(wanted[0], posixpath.dirname(member) or '.')} to "
                 "its RUNPATH (builder repair does).")


def _site_relative(member: str, entry: str) -> str:
    for origin in _ORIGINS:
        if entry.startswith(origin):
            return posixpath.normpath(posixpath.join(posixpath.dirname(member), "." + entry[len(origin):]))
    return entry


def _unresolved(ctx: Context, member: str, soname: str, lookup: Lookup, where: dict[str, list[str]]) -> Finding:
    searched = ", ".join(_shown_dir(ctx, d) for d in lookup.searched) or "nothing (no RPATH/RUNPATH)"
    copies = sorted(where.get(soname, []) + [m for m in where.get(base_soname(soname), []) if soname != base_soname(
        soname)])
    if copies:
        rel = posixpath.relpath(posixpath.dirname(copies[0]) or ".", posixpath.dirname(member) or ".")
        fix = (f"A copy is inside at {copies[0]}, but not on {member}'s search path: add $ORIGIN/{rel} to its "
               "RUNPATH (builder repair does), or leave the file out of the package.")
    else:
        fix = (f"Bundle {soname} (builder repair grafts it), or exclude the file from the package if it is a "
               "build-only tool.")
    found = (f" It resolves only to {lookup.path} on this machine, which is neither inside the package nor an allowed "
             "manylinux system library." if lookup.path is not None else "")
    return error("load.unresolved", member, f"{member} needs {soname}, which the loader cannot find without "
                 f"LD_LIBRARY_PATH.{found} Searched: {searched}. {fix}")


def _shown_dir(ctx: Context, directory: str) -> str:
    root = os.path.realpath(ctx.scan.root)
    real = os.path.realpath(directory)
    if real == root or real.startswith(root + os.sep):
        return "<package>/" + os.path.relpath(real, root) if real != root else "<package>"
    return directory


def _shown_entries(info: ElfInfo) -> str:
    kind = "RUNPATH" if info.runpath else "RPATH"
    return f"{kind} {':'.join(info.runpath or info.rpath)}" if (info.runpath or info.rpath) else "no RPATH/RUNPATH"


def check_rpaths(ctx: Context) -> list[Finding]:
    """Family 4: absolute entries point into the build machine; relative ones into the cwd."""
    out = []
    for member, info in sorted(ctx.elves.items()):
        entries = list(dict.fromkeys((*info.runpath, *info.rpath)))
        absolute = [e for e in entries if e.startswith("/")]
        relative = [e for e in entries if e and not e.startswith(("/", *_ORIGINS))]
        escaping = [e for e in entries if e.startswith(_ORIGINS) and _escapes(member, e)]
        if absolute:
            leak = " (a build-tree leak)" if any(_looks_like_build_tree(e) for e in absolute) else ""
            out.append(warning("rpath.absolute", member, f"{member} searches absolute directories outside the package"
                               f"{leak}: {', '.join(absolute)}. They point into the build machine and are searched on "
                               "every user's machine. Drop them (builder repair does) or fix the build's install "
                               "RPATH."))
        if relative:
            out.append(warning("rpath.relative", member, f"{member} has RPATH entries relative to the current "
                               f"directory: {', '.join(relative)}. Use $ORIGIN-relative entries instead."))
        if escaping:
            out.append(warning("rpath.outside-package", member, f"{member} searches outside the installation: "
                               f"{', '.join(escaping)}. Keep entries inside the package, or point them at a "
                               "declared runtime wheel's library directory."))
    return out


def _escapes(member: str, entry: str) -> bool:
    """An $ORIGIN entry that climbs above the installation root (site-packages for a wheel)."""
    target = _site_relative(member, entry)
    return target == ".." or target.startswith("../")


def _looks_like_build_tree(entry: str) -> bool:
    parts = entry.split("/")
    return any(p in ("build", "_build", "_skbuild", "tmp", "home", "__w", "runner", "work") or p.startswith(
        ("pip-", "cmake-build", "build-")) for p in parts)
