"""Check family 9: a libtorch archive's layout (lib/ include/ share/cmake/ build-version build-hash).

C++ users point CMake at the unpacked archive (``-DCMAKE_PREFIX_PATH=libtorch``); the layout
is the contract ``find_package(Torch)`` and PyTorch's release tooling rely on.
"""

from __future__ import annotations

import re

from builder.check.context import Context
from builder.check.findings import Finding, error, warning
from builder.config import LibtorchVariant, PackageType

REQUIRED_DIRS = ("lib/", "include/", "share/cmake/")
REQUIRED_FILES = ("build-version", "build-hash")
_VARIANT = re.compile(r"(?:shared|static)-with(?:out)?-deps")


def applies(ctx: Context) -> bool:
    if ctx.config is not None and ctx.config.package_type is PackageType.LIBTORCH:
        return True
    return ctx.scan.kind == "zip" or (ctx.scan.kind == "dir" and ctx.scan.dist_info is None and any(
        n.rsplit("/", 1)[-1] == "build-version" for n in ctx.scan.files))


def archive_variant(ctx: Context) -> LibtorchVariant | None:
    """The variant a libtorch-style archive was made as: the config's, else its file name's."""
    if not applies(ctx):
        return None
    if ctx.config is not None and ctx.config.libtorch_variant is not None:
        return ctx.config.libtorch_variant
    found = _VARIANT.search(ctx.scan.path.name)
    return LibtorchVariant(found[0]) if found else None


def leaves_dependencies(ctx: Context) -> bool:
    """A without-deps archive leaves non-system libraries to the consumer's machine on purpose."""
    variant = archive_variant(ctx)
    return variant is not None and variant.value.endswith("without-deps")


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
    variant = archive_variant(ctx)
    ctx.facts["layout"] = {"prefix": top, "missing": missing, "variant": variant.value if variant else None}
    return _origin_rpaths(ctx, top) + [
        error("layout.missing", top + item, f"The libtorch archive has no {top + item}; an archive needs "
              f"{', '.join(REQUIRED_DIRS + REQUIRED_FILES)} (under one top directory) for find_package(Torch) "
              "and release tooling. Package the install tree with builder's libtorch packager.")
        for item in missing]


def _origin_rpaths(ctx: Context, top: str) -> list[Finding]:
    """Libraries in lib/ find their siblings (and bundled dependencies) through $ORIGIN wherever
    the archive is unpacked; without it they work only with LD_LIBRARY_PATH."""
    out = []
    libs = {m: i for m, i in ctx.elves.items() if m.startswith(top + "lib/") and not i.is_executable}
    siblings = {m.rsplit("/", 1)[-1] for m in libs} | {i.soname for i in libs.values() if i.soname}
    for member, info in sorted(libs.items()):
        if not set(info.needed) & siblings:
            continue  # needs nothing from the archive (libgomp, a leaf library): no $ORIGIN required
        if not any(e.startswith(("$ORIGIN", "${ORIGIN}")) for e in (*info.rpath, *info.runpath)):
            out.append(warning("rpath.missing-origin", member, f"{member} has no $ORIGIN in its RPATH "
                               f"({':'.join(info.runpath or info.rpath) or 'none'}), so the libraries next to it "
                               "that it needs resolve only through LD_LIBRARY_PATH. Set RPATH $ORIGIN (builder's "
                               "libtorch packager does)."))
    return out
