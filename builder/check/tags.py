"""Check family 1: a wheel's tags against its content.

* python/abi tags against the extension modules' suffixes (``.cpython-311-...``,
  ``.cpython-313t-...`` for free-threaded builds, ``.abi3.so``);
* the platform tag against the highest GLIBC/GLIBCXX/CXXABI symbol versions the binaries
  need (auditwheel's manylinux policy data) and against the binaries' machine;
* the file name's tags against the WHEEL file's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from packaging.tags import Tag
from packaging.utils import parse_wheel_filename

from builder.check.context import Context, is_extension_module
from builder.check.findings import Finding, error, warning
from builder.manywheel.analysis import symbol_needs
from builder.manywheel.policy import Policy, best_policy, blockers, policies

_EXT = re.compile(r"\.cpython-(?P<ver>\d)(?P<minor>\d+)(?P<t>t?)-")
_REPAIR = "Run builder repair on the raw wheel (it picks the tag the binaries support)"


def wheel_tags(ctx: Context) -> tuple[Tag, ...]:
    """Tags from the file name (wheels) or from the WHEEL file (installed packages)."""
    if ctx.scan.kind == "wheel":
        try:
            return tuple(parse_wheel_filename(ctx.scan.path.name)[3])
        except ValueError:
            return ctx.wheel_file_tags
    return ctx.wheel_file_tags


def check_tags(ctx: Context) -> list[Finding]:
    if ctx.scan.dist_info is None:
        return []
    tags = wheel_tags(ctx)
    ctx.facts["tags"] = sorted(str(t) for t in tags)
    out = _filename_vs_wheel_file(ctx, tags)
    if not tags:
        return out
    out += _python_abi(ctx, tags)
    if all(t.platform == "any" for t in tags):
        if ctx.elves:
            first = sorted(ctx.elves)[0]
            out.append(error("tags.pure-with-binaries", first, f"The wheel is tagged for any platform ({tags[0]}) but "
                             f"holds {len(ctx.elves)} native binaries, e.g. {first}. Build it as a platform wheel."))
        return out
    return out + _platform(ctx, {t.platform for t in tags})


def _filename_vs_wheel_file(ctx: Context, tags: Iterable[Tag]) -> list[Finding]:
    inside = set(ctx.wheel_file_tags)
    if ctx.scan.kind != "wheel" or not inside or inside == set(tags):
        return []
    where = f"{ctx.scan.dist_info}/WHEEL"
    return [error("tags.wheel-file-mismatch", where, f"The file name says {'.'.join(sorted(map(str, tags)))}, {where} "
                  f"says {'.'.join(sorted(map(str, inside)))}. Installers trust the name; rebuild or repair the wheel "
                  "so both agree.")]


def _python_abi(ctx: Context, tags: tuple[Tag, ...]) -> list[Finding]:
    out = []
    pairs = {(t.interpreter, t.abi) for t in tags}
    for member in sorted(m for m in ctx.elves if is_extension_module(m)):
        problem = _module_problem(PurePosixPath(member).name, pairs)
        if problem is not None:
            finding_id, wants = problem
            shown = ", ".join(sorted(f"{i}-{a}" for i, a in pairs))
            out.append(error(finding_id, member, f"{member} is an extension module for {wants}, but the wheel is "
                             f"tagged {shown}. It will not import where the tag lets it install: build it with the "
                             "interpreter the tag names, or fix the tag."))
    return out


def _module_problem(name: str, pairs: set[tuple[str, str]]) -> tuple[str, str] | None:
    if name.endswith(".abi3.so"):
        if any(a.endswith("t") and a.startswith("cp") for _, a in pairs):
            return "tags.free-threaded-mismatch", "the stable ABI (abi3), which free-threaded CPython cannot load"
        return None
    match = _EXT.search(name)
    if match is None:
        return None
    interp = f"cp{match['ver']}{match['minor']}"
    abi = interp + match["t"]
    wants = f"CPython {match['ver']}.{match['minor']}{match['t']} ({interp}-{abi})"
    if (interp, abi) in pairs:
        return None
    if interp not in {i for i, _ in pairs}:
        return "tags.python-mismatch", wants
    if any(a.rstrip("t") == interp for _, a in pairs):
        return "tags.free-threaded-mismatch", wants
    return "tags.abi-mismatch", wants


def _platform(ctx: Context, platforms: set[str]) -> list[Finding]:
    out: list[Finding] = []
    machines = {i.machine for i in ctx.elves.values()}
    ctx.facts["machines"] = sorted(machines)
    needs = symbol_needs(ctx.elves)
    claimed: list[tuple[str, Policy]] = []
    for plat in sorted(platforms):
        arch, policy = _policy_of(plat)
        if plat.startswith("linux_"):
            out.append(error("tags.platform-not-portable", "", f"The platform tag {plat} promises nothing about the "
                             f"target system; PyPI rejects it. {_REPAIR}."))
        if arch and machines and machines != {arch}:
            out.append(error("tags.arch-mismatch", "", f"The platform tag {plat} is for {arch}, but the binaries are "
                             f"built for {', '.join(sorted(machines))}. Build on (or for) {arch}, or fix the tag."))
        if policy is not None:
            claimed.append((plat, policy))
    if claimed:
        out += _symbol_versions(ctx, claimed, needs)
    return out


_ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x", "i686", "armv7l", "riscv64")


def _policy_of(plat: str) -> tuple[str | None, Policy | None]:
    """(architecture, manylinux policy) of a platform tag; None where unknown or not manylinux."""
    for arch in _ARCHES:
        if plat.endswith("_" + arch):
            name = plat.removesuffix("_" + arch)
            return arch, next((p for p in policies(arch) if name in p.tags), None)
    return None, None


def _symbol_versions(ctx: Context, claimed: list[tuple[str, Policy]], needs: dict[str, set[str]]) -> list[Finding]:
    """The most compatible claimed tag must allow every symbol version; a tag far above what the
    symbols need is a warning (fewer users can install it than could)."""
    plat, policy = max(claimed, key=lambda item: item[1].priority)
    arch = _policy_of(plat)[0] or "x86_64"
    best = best_policy(arch, needs)
    ctx.facts["platform"] = {"claimed": plat, "needed": best.name if best else None}
    by_file: dict[str, list[str]] = {}
    for member, symbol in blockers(policy, needs):
        by_file.setdefault(member, []).append(symbol)
    out = []
    for member, symbols in sorted(by_file.items()):
        out.append(error("tags.platform-too-low", member, f"The tag {plat} promises glibc {policy.glibc[0]}."
                         f"{policy.glibc[1]}, but {member} needs {', '.join(sorted(symbols)[-3:])}"
                         f"{' ...' if len(symbols) > 3 else ''}, so it fails to load on such systems. "
                         f"{_REPAIR} ({best.name if best else 'no manylinux tag fits'}), or build in the config's "
                         "manylinux image."))
    if not by_file and best is not None and best.priority > policy.priority:
        out.append(warning("tags.platform-too-high", "", f"The wheel is tagged {plat}, but its binaries only need "
                           f"{best.name}_{arch}: users on older systems cannot install it although it would work. "
                           f"Retag it to {best.name}_{arch} ({_REPAIR})."))
    return out
