"""Check family 6: accelerator code and libraries.

* CUDA configs: the SASS and PTX archs with kernels in each library's fatbins equal the
  config's arch list (``7.5;8.0;12.0+PTX`` means SASS 75, 80, 120 and PTX 120);
* ROCm configs: the offload targets of each ``.hip_fatbin`` equal the offload arch list;
* the GPU driver (libcuda, libnvidia-ml) is never inside;
* runtime libraries (cudart, cublas, ...) follow the mode: left to NVIDIA's wheels in the
  pypi mode, inside the package in the bundled mode.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath

from builder.binary.elf import ElfError, section_bytes
from builder.check.context import Context, base_soname
from builder.check.fatbin import DeviceCode, FatbinError, cuda_entries, hip_targets
from builder.check.findings import Finding, error
from builder.check.staticlib import objects, static_members
from builder.config import CudaMode


def check_accelerators(ctx: Context) -> list[Finding]:
    out = _driver_inside(ctx)
    cuda, hip, problems = _device_code(ctx)
    out += problems
    ctx.facts["cuda"] = {m: _summary(e) for m, e in cuda.items()}
    ctx.facts["hip"] = {m: sorted(set(t)) for m, t in hip.items()}
    accel = ctx.config.accelerator if ctx.config is not None else None
    if accel is None:
        return out
    if accel.kind == "cuda":
        return out + _cuda_archs(ctx, cuda) + _linkage(ctx)
    if accel.kind == "rocm":
        return out + _rocm_targets(ctx, hip)
    for member in sorted(set(cuda) | set(hip)):
        out.append(error("accel.unexpected-device-code", member, f"{member} carries GPU code, but the config is for "
                         f"{accel}. Build it without CUDA/ROCm, or check against the accelerator config."))
    return out


def _driver_inside(ctx: Context) -> list[Finding]:
    out = []
    for member, info in sorted(ctx.elves.items()):
        names = {base_soname(PurePosixPath(member).name), base_soname(info.soname or "")} - {""}
        hit = next((n for n in sorted(names) if ctx.is_driver(n)), None)
        if hit is not None:
            out.append(error("cuda.driver-bundled", member, f"{member} is the GPU driver library {hit}. It must come "
                             "from the user's installed driver, matching the kernel module; a bundled copy breaks "
                             "on every other driver version. Remove it (builder repair never grafts it)."))
    return out


def _device_code(ctx: Context) -> tuple[dict[str, list[DeviceCode]], dict[str, list[str]], list[Finding]]:
    cuda: dict[str, list[DeviceCode]] = {}
    hip: dict[str, list[str]] = {}
    problems = []
    for member, info in sorted(ctx.elves.items()):
        path = ctx.scan.root.joinpath(*member.split("/"))
        try:
            if ".nv_fatbin" in info.sections:
                cuda[member] = cuda_entries(section_bytes(path, ".nv_fatbin") or b"")
            if ".hip_fatbin" in info.sections:
                hip[member] = [t for t in hip_targets(section_bytes(path, ".hip_fatbin") or b"")
                               if not t.startswith("host-")]
        except (FatbinError, ElfError) as exc:
            problems.append(error("accel.invalid-device-code", member, f"The device code of {member} cannot be read: "
                                  f"{exc}. Rebuild the library."))
    for member in static_members(ctx):  # a static CUDA archive carries its kernels in its objects
        entries = _static_cuda(ctx, member, problems)
        if entries:
            cuda[member] = entries
    return cuda, hip, problems


def _static_cuda(ctx: Context, member: str, problems: list[Finding]) -> list[DeviceCode]:
    entries: list[DeviceCode] = []
    with objects(ctx, member) as objs:
        for obj in objs:
            try:
                data = section_bytes(obj, ".nv_fatbin")
                entries += cuda_entries(data) if data else []
            except (FatbinError, ElfError) as exc:
                problems.append(error("accel.invalid-device-code", member, f"The device code of {member}({obj.name}) "
                                      f"cannot be read: {exc}. Rebuild the library."))
    return entries


def _with_code(entries: list[DeviceCode], kind: str) -> set[int]:
    """Archs with kernels (an entry that could not be opened counts: kernels is None)."""
    return {e.arch for e in entries if e.kind == kind and e.kernels != 0}


def _summary(entries: list[DeviceCode]) -> dict[str, object]:
    kernels: dict[str, int] = {}
    for e in entries:
        if e.kernels:
            kernels[f"{e.kind}_{e.arch}"] = kernels.get(f"{e.kind}_{e.arch}", 0) + e.kernels
    return {"sass": sorted(_with_code(entries, "sass")), "ptx": sorted(_with_code(entries, "ptx")),
            "entries": len(entries), "kernels": kernels}


def expected_cuda_archs(arch_list: str) -> tuple[set[int], set[int]]:
    """``7.5;8.0;12.0+PTX`` -> ({75, 80, 120}, {120})."""
    sass: set[int] = set()
    ptx: set[int] = set()
    for item in filter(None, (a.strip() for a in arch_list.split(";"))):
        major, _, minor = item.removesuffix("+PTX").partition(".")
        number = int(major) * 10 + int(re.sub(r"\D", "", minor) or 0)  # "9.0a" -> 90
        sass.add(number)
        if item.endswith("+PTX"):
            ptx.add(number)
    return sass, ptx


def _arch_list(ctx: Context) -> str | None:
    if ctx.env is not None and ctx.env.arch_list:
        return ctx.env.arch_list
    config = ctx.config
    if config is None:
        return None
    if config.options.arch_list:
        return config.options.arch_list
    version = config.accelerator.version or ""
    if config.accelerator.kind == "cuda" and version in ctx.catalog.cuda:
        return ctx.catalog.cuda[version].arch_list
    if config.accelerator.kind == "rocm" and version in ctx.catalog.rocm:
        return ctx.catalog.rocm[version].offload_archs
    return None


def _cuda_archs(ctx: Context, cuda: Mapping[str, list[DeviceCode]]) -> list[Finding]:
    arch_list = _arch_list(ctx)
    if not cuda:
        return [error("cuda.no-device-code", "", f"The config is for {ctx.config.accelerator if ctx.config else 'CUDA'}"
                      ", but no library carries CUDA device code (.nv_fatbin). The build did not compile its CUDA "
                      "sources: check USE_CUDA / CMAKE_CUDA_ARCHITECTURES.")]
    if not arch_list:
        return []
    want_sass, want_ptx = expected_cuda_archs(arch_list)
    out = []
    for member, entries in sorted(cuda.items()):
        sass, ptx = _with_code(entries, "sass"), _with_code(entries, "ptx")
        if sass == want_sass and ptx == want_ptx:
            continue
        parts = [f"{label} sm_{a}" for label, arches in (("missing SASS", want_sass - sass), ("extra SASS",
                 sass - want_sass), ("missing PTX", want_ptx - ptx), ("extra PTX", ptx - want_ptx)) for a in sorted(
                 arches)]
        out.append(error("cuda.arch-mismatch", member, f"{member} has kernels for SASS {_arches(sass)} and PTX "
                         f"{_arches(ptx)}, but the arch list {arch_list} asks for SASS {_arches(want_sass)} and PTX "
                         f"{_arches(want_ptx)} ({', '.join(parts)}). Build with TORCH_CUDA_ARCH_LIST={arch_list} "
                         "(builder sets it from the config)."))
    return out


def _arches(values: set[int]) -> str:
    return ",".join(f"sm_{v}" for v in sorted(values)) or "none"


def _linkage(ctx: Context) -> list[Finding]:
    """pypi mode: no runtime library inside; bundled mode: every needed one inside."""
    if ctx.plan is None:
        return []
    inside = {base_soname(i.soname or PurePosixPath(m).name): m for m, i in ctx.elves.items()}
    out = []
    if ctx.plan.mode is CudaMode.PYPI:
        for soname, member in sorted(inside.items()):
            if ctx.plan.is_accelerator(soname):
                out.append(error("cuda.linkage-mode", member, f"{member} ({soname}) is bundled, but the config's "
                                 "cuda-mode is pypi: it must come from NVIDIA's wheel (Requires-Dist), or two copies "
                                 "load. Repair with --cuda-mode pypi, or check with --cuda-mode bundled."))
        return out
    needed = {(s, m) for m, i in ctx.elves.items() for s in i.needed if ctx.plan.is_accelerator(s)}
    for soname, member in sorted(needed):
        if soname not in inside:
            out.append(error("cuda.linkage-mode", member, f"{member} needs {soname}, which is not inside, but the "
                             "config's cuda-mode is bundled. Repair with --cuda-mode bundled (grafts it), or check "
                             "with --cuda-mode pypi."))
    return out


def _rocm_targets(ctx: Context, hip: Mapping[str, list[str]]) -> list[Finding]:
    arch_list = _arch_list(ctx)
    if not hip:
        return [error("rocm.no-device-code", "", "The config is for ROCm, but no library carries HIP device code "
                      "(.hip_fatbin). Check USE_ROCM / CMAKE_HIP_ARCHITECTURES.")]
    if not arch_list:
        return []
    wanted = set(arch_list.split(";"))
    out = []
    for member, targets in sorted(hip.items()):
        found = {t.rsplit("--", 1)[-1].split(":")[0] for t in targets}
        if found != wanted:
            out.append(error("rocm.target-mismatch", member, f"{member} has code for {','.join(sorted(found))}, but "
                             f"the offload arch list is {arch_list} (missing {','.join(sorted(wanted - found)) or '-'}"
                             f", extra {','.join(sorted(found - wanted)) or '-'}). Build with PYTORCH_ROCM_ARCH="
                             f"{arch_list}."))
    return out
