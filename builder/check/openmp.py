"""Check family 7: at most one OpenMP runtime, and libgomp under its own name.

Two OpenMP runtimes in one process oversubscribe cores and deadlock in fork-heavy code; a
hash-renamed libgomp is such a second runtime as soon as anything else loads the system
libgomp (pytorch#149422: omp_get_max_threads() == 1).  The repair policy keeps libgomp's
name (catalog ``keep_names``), so a renamed copy means the wheel was not repaired by that
policy.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from builder.check.context import Context, base_soname, is_hash_renamed, matches_any, openmp_family
from builder.check.findings import Finding, error


def check_openmp(ctx: Context) -> list[Finding]:
    inside: dict[str, list[str]] = {}  # family -> members
    for member, info in sorted(ctx.elves.items()):
        family = openmp_family(info.soname or PurePosixPath(member).name)
        if family is not None:
            inside.setdefault(family, []).append(member)
    needed: dict[str, str] = {}  # family -> a member that needs it
    for member, info in sorted(ctx.elves.items()):
        for soname in info.needed:
            family = openmp_family(soname)
            if family is not None:
                needed.setdefault(family, member)
    ctx.facts["openmp"] = {"inside": {k: v for k, v in inside.items()}, "needed": sorted(needed)}
    out = _renamed(ctx, inside)
    families = sorted(set(inside) | set(needed))
    if len(families) > 1:
        where = "; ".join(f"{f}: {', '.join(inside.get(f, [needed.get(f, '?')]))}" for f in families)
        out.append(error("openmp.multiple-runtimes", (inside.get(families[1]) or [needed[families[1]]])[0],
                         f"The package uses {len(families)} OpenMP runtimes ({where}). Two runtimes in one process "
                         "fight over threads; build every library against one runtime."))
    copies = [m for members in inside.values() for m in members]
    if len(copies) > 1 and len(families) == 1:
        out.append(error("openmp.multiple-runtimes", copies[1], f"The package bundles {len(copies)} copies of "
                         f"{families[0]} ({', '.join(copies)}); each is a separate runtime once loaded. Keep one."))
    return out


def _renamed(ctx: Context, inside: dict[str, list[str]]) -> list[Finding]:
    out = []
    keep = ctx.keep_names()
    for member in inside.get("GNU libgomp", []):
        name = ctx.elves[member].soname or PurePosixPath(member).name
        if is_hash_renamed(name) and matches_any(base_soname(name), keep):
            out.append(error("openmp.renamed-libgomp", member, f"{member} is libgomp renamed to {name}. The repair "
                             f"policy keeps {base_soname(name)} under its own name, so that a process which also "
                             "loads the system libgomp gets one OpenMP runtime, not two (pytorch#149422). Repair with "
                             "builder (keep-name libgomp.so.1)."))
    return out
