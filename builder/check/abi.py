"""Check family 5: the libstdc++ string/list ABI of the project's main library.

Torch profile: ``libtorch_cpu.so`` and the namespaces c10/at/torch/caffe2, with PyTorch's
threshold (at least 100 cxx11 symbols, no pre-cxx11 one).  Generic profile: the main
library is the one ``--main-library`` names, else the largest shared library the project
built itself (not an extension module, not a graft, not a known runtime); its namespace is
``--abi-namespace``, else the distribution's name (``minitorch`` -> ``minitorch::``), which
is what most projects call their C++ namespace.  Counting reads the mangled names of the
exported symbols; nothing is demangled.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import PurePosixPath

from builder.binary.cxxabi import TORCH_NAMESPACES, AbiCounts, abi_markers, count_abi_symbols, namespace_matcher
from builder.check.context import Context, is_extension_module, is_hash_renamed, matches_any, openmp_family
from builder.check.findings import Finding, error, warning
from builder.check.staticlib import on_disk, static_members
from builder.config import CxxAbi

TORCH_MAIN = "libtorch_cpu.so"
TORCH_MIN_CXX11 = 100  # check_binary_symbols.py's threshold
GENERIC_MIN_CXX11 = 1
_RUNTIMES = ("libstdc++.so*", "libgcc_s.so*", "libgfortran.so*", "libquadmath.so*", "libz.so*")


def check_abi(ctx: Context) -> list[Finding]:
    library = main_library(ctx)
    namespaces = _namespaces(ctx)
    if library is None:
        if ctx.profile == "torch":
            return [error("abi.main-library-missing", "", f"The torch profile checks {TORCH_MAIN}, which this "
                          "artifact does not contain. Check a torch wheel or libtorch archive, or use --profile "
                          "generic.")]
        return []
    if not namespaces:
        return [warning("abi.undetermined", library, "No C++ namespace to count symbols of: the distribution name is "
                        "not an identifier. Pass --abi-namespace NS.")]
    counts = (static_abi_counts(ctx, library, namespaces) if library.endswith(".a") else
              count_abi_symbols(ctx.scan.root.joinpath(*library.split("/")), namespaces))
    expected = ctx.config.cxx_abi if ctx.config is not None else CxxAbi.CXX11
    ctx.facts["abi"] = {"library": library, "namespaces": list(namespaces), "expected": expected.value,
                        "cxx11": counts.cxx11, "pre_cxx11": counts.pre_cxx11, "symbols": counts.total}
    spaces = ", ".join(f"{n}::" for n in namespaces)
    counted = (f"{counts.cxx11} cxx11 and {counts.pre_cxx11} pre-cxx11 std::string/std::list symbols among "
               f"{counts.total} exported symbols of {spaces}")
    if expected is CxxAbi.CXX11:
        return _expect_cxx11(ctx, library, counted, counts.cxx11, counts.pre_cxx11, counts.total)
    return _expect_pre_cxx11(library, counted, counts.cxx11, counts.pre_cxx11)


def _expect_cxx11(ctx: Context, library: str, counted: str, cxx11: int, old: int, total: int) -> list[Finding]:
    minimum = TORCH_MIN_CXX11 if ctx.profile == "torch" else GENERIC_MIN_CXX11
    if old:
        return [error("abi.pre-cxx11-symbols", library, f"{library} has {counted}; the config wants the cxx11 ABI, "
                      "so C++ code built against it with today's compilers will not link. Build with "
                      "_GLIBCXX_USE_CXX11_ABI=1 (the default), or check against a pre-cxx11 config.")]
    if cxx11 >= minimum:
        return []
    if total == 0 or ctx.profile != "torch":
        return [warning("abi.undetermined", library, f"{library} has {counted}: too few to tell its ABI. "
                        "Name the project's C++ namespace with --abi-namespace or the library with --main-library.")]
    return [error("abi.too-few-cxx11-symbols", library, f"{library} has {counted}; at least {minimum} cxx11 symbols "
                  "are expected. The library was built without the cxx11 ABI or lost its exports.")]


def _expect_pre_cxx11(library: str, counted: str, cxx11: int, old: int) -> list[Finding]:
    if cxx11:
        return [error("abi.cxx11-symbols", library, f"{library} has {counted}; the config wants the pre-cxx11 ABI. "
                      "Build with CXXFLAGS=-D_GLIBCXX_USE_CXX11_ABI=0, or check against a cxx11 config.")]
    if old == 0:
        return [warning("abi.undetermined", library, f"{library} has {counted}: too few to tell its ABI.")]
    return []


def main_library(ctx: Context) -> str | None:
    """The member whose symbols stand for the project's ABI (see the module doc)."""
    shared = [m for m, i in ctx.elves.items() if not i.is_executable]
    if ctx.profile == "torch":
        found = sorted((m for m in shared if PurePosixPath(m).name == TORCH_MAIN), key=len)
        return found[0] if found else None
    if ctx.options.main_library:
        named = sorted((m for m in shared if matches_any(m, [ctx.options.main_library])), key=len)
        return named[0] if named else None
    own = [m for m in shared if _own_library(m, ctx)]
    if not own:  # a static libtorch-style archive: its own .a libraries stand for it
        own = [m for m in static_members(ctx) if _own_library(m, ctx)]
    return max(own, key=lambda m: (ctx.scan.files.get(m, 0), m)) if own else None


def static_abi_counts(ctx: Context, member: str, namespaces: tuple[str, ...]) -> AbiCounts:
    """The same count over the global defined symbols of a static library's objects (nm reads
    the ar archive; a static library has no dynamic symbol table)."""
    path = on_disk(ctx, member)
    done = subprocess.run(["nm", "-g", "--defined-only", "--format=just-symbols", str(path)], capture_output=True,
                          text=True, check=False)
    in_namespace = namespace_matcher(namespaces)
    names = {n for n in done.stdout.split() if not n.endswith(":") and in_namespace(n)}
    markers = [abi_markers(n) for n in sorted(names)]
    return AbiCounts(cxx11=sum(new for new, _ in markers), pre_cxx11=sum(old is True for _, old in markers),
                     total=len(markers), unparsed=sum(old is None for _, old in markers))


def _own_library(member: str, ctx: Context) -> bool:
    name = PurePosixPath(member).name
    if is_extension_module(member) or is_hash_renamed(name) or ".libs/" in member or not name.startswith("lib"):
        return False
    known = openmp_family(name) or ctx.is_driver(name) or ctx.is_accelerator(name) or matches_any(name, _RUNTIMES)
    return not known


def _namespaces(ctx: Context) -> tuple[str, ...]:
    if ctx.profile == "torch":
        return TORCH_NAMESPACES
    if ctx.options.abi_namespaces:
        return ctx.options.abi_namespaces
    meta = ctx.metadata
    name = (meta.get("Name") if meta is not None else None) or ctx.scan.path.name.split("-", 1)[0]
    ident = re.sub(r"[-.]+", "_", str(name)).lower()
    if meta is None and ident.startswith("lib") and len(ident) > 3:
        ident = ident[3:]  # a libtorch-style archive: libminitorch-... holds namespace minitorch
    return (ident,) if ident.isidentifier() else ()
