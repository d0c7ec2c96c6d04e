"""Check family 9: a libtorch archive's layout (lib/ include/ share/cmake/ build-version build-hash).

C++ users point CMake at the unpacked archive (``-DCMAKE_PREFIX_PATH=libtorch``); the layout
is the contract ``find_package(Torch)`` and PyTorch's release tooling rely on.
"""

from __future__ import annotations

from builder.check.context import Context
from builder.check.findings import Finding, error
from builder.config import PackageType

REQUIRED_DIRS = ("lib/", "include/", "share/cmake/")
REQUIRED_FILES = ("build-version", "build-hash")


def applies(ctx: Context) -> bool:
    if ctx.config is not None and ctx.config.package_type is PackageType.LIBTORCH:
        return True
    return ctx.scan.kind == "zip" or (ctx.scan.kind == "dir" and ctx.scan.dist_info is None and any(
        n.rsplit("/", 1)[-1] == "build-version" for n in ctx.scan.files))


def prefix(names: list[str]) -> str:
    """'libtorch/' when every member lies under one top directory, else ''."""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    loose = [n for n in names if "/" not in n]
    return f"{tops.pop()}/" if len(tops) == 1 and not loose else ""


def check_layout(ctx: Context) -> list[Finding]:
    if not applies(ctx):
        return []
    names = sorted([*ctx.scan.files, *ctx.scan.symlinks])
    top = prefix(names)
    missing = [d for d in REQUIRED_DIRS if not any(n.startswith(top + d) for n in names)]
    missing += [f for f in REQUIRED_FILES if top + f not in ctx.scan.files]
    ctx.facts["layout"] = {"prefix": top, "missing": missing}
    return [error("layout.missing", top + item, f"The libtorch archive has no {top + item}; an archive needs "
                  f"{', '.join(REQUIRED_DIRS + REQUIRED_FILES)} (under one top directory) for find_package(Torch) "
                  "and release tooling. Package the install tree with builder's libtorch packager.")
            for item in missing]
