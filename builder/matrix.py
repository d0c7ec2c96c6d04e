"""The CI build matrix: release table or support policies -> configs -> emitters.

With --release X.Y the matrix is that release's row of releases.toml. Without it (nightly
and upcoming builds) the policies decide: NEP 29 for Python, the latest two minor CUDA and
ROCm versions released by the given date.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from builder.catalog import Catalog, Release
from builder.config import (
    Accelerator,
    BuildConfig,
    Channel,
    LibtorchVariant,
    PackageType,
    PythonVersion,
)
from builder.errors import ConfigError, did_you_mean
from builder.resolver import RUNTIME_MARKER, docker_image

NEP29_MONTHS = 42


def _months_before(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    return dt.date(year, month + 1, min(day.day, 28))


def nep29_pythons(catalog: Catalog, on: dt.date) -> list[str]:
    """Minor versions released in the 42 months before `on`, and at least the two latest."""
    released = [v for v, rel in catalog.python.items() if rel.released <= on]
    cutoff = _months_before(on, NEP29_MONTHS)
    recent = [v for v in released if catalog.python[v].released >= cutoff]
    keep = set(recent) | set(released[-2:])
    return [v for v in released if v in keep]


def latest_two(versions: dict[str, dt.date], on: dt.date) -> list[str]:
    """The two newest minor versions released by `on` (X.Y.Z counts as its X.Y)."""
    by_minor: dict[str, str] = {}
    for version, released in versions.items():
        if released <= on:
            by_minor[".".join(version.split(".")[:2])] = version  # catalog order: newest patch wins
    return list(by_minor.values())[-2:]


@dataclass(frozen=True, kw_only=True)
class MatrixRequest:
    release: str | None = None
    channel: Channel = Channel.NIGHTLY
    package_types: tuple[PackageType, ...] = (PackageType.MANYWHEEL,)
    with_cpu: bool = True
    with_cuda: bool = True
    with_rocm: bool = True
    with_xpu: bool = False
    pythons: tuple[str, ...] | None = None  # restrict to these, e.g. ("3.12", "3.13t")
    on: dt.date | None = None  # policy date; default today


def _release(catalog: Catalog, request: MatrixRequest) -> Release | None:
    if request.release is not None:
        if request.release not in catalog.releases:
            known = ", ".join(catalog.releases)
            raise ConfigError(
                f"Unknown release {request.release!r}. Known releases: {known}."
                + did_you_mean(request.release, catalog.releases)
            )
        return catalog.releases[request.release]
    if request.channel is not Channel.NIGHTLY:  # test/release builds follow the newest release row
        return list(catalog.releases.values())[-1]
    return None


def _pythons(catalog: Catalog, release: Release | None, on: dt.date) -> list[PythonVersion]:
    if release is not None:
        minors = [v for v in catalog.python if release.python.contains(f"{v}.0")]
        free = set(release.free_threaded)
    else:
        minors = nep29_pythons(catalog, on)
        free = {v for v in minors if catalog.python[v].free_threaded}
    out = []
    for minor in minors:
        major, m = (int(x) for x in minor.split("."))
        out.append(PythonVersion(major, m))
        if minor in free:
            out.append(PythonVersion(major, m, True))
    return out


def _accelerators(catalog: Catalog, release: Release | None, request: MatrixRequest, on: dt.date) -> list[Accelerator]:
    if release is not None:
        cudas, rocms = [c.version for c in release.cuda], list(release.rocm)
    else:
        cudas = latest_two({v: c.released for v, c in catalog.cuda.items()}, on)
        rocms = latest_two({v: r.released for v, r in catalog.rocm.items()}, on)
    out = [Accelerator("cpu")] if request.with_cpu else []
    out += [Accelerator("cuda", v) for v in cudas] if request.with_cuda else []
    out += [Accelerator("rocm", v) for v in rocms] if request.with_rocm else []
    out += [Accelerator("xpu")] if request.with_xpu else []
    return out


_KINDS = {
    PackageType.MANYWHEEL: {"cpu", "cuda", "rocm", "xpu"},
    PackageType.LIBTORCH: {"cpu", "cuda", "rocm"},
    PackageType.CONDA: {"cpu", "cuda"},
    PackageType.MACOS_WHEEL: {"cpu"},
    PackageType.WINDOWS_WHEEL: {"cpu", "cuda", "xpu"},
}


def generate(catalog: Catalog, request: MatrixRequest) -> list[BuildConfig]:
    """Configs in a deterministic order: package type, Python, accelerator, variant."""
    on = request.on or dt.date.today()
    release = _release(catalog, request)
    pythons = _pythons(catalog, release, on)
    if request.pythons is not None:
        wanted = set(request.pythons)
        pythons = [p for p in pythons if str(p) in wanted]
    accelerators = _accelerators(catalog, release, request, on)
    configs: list[BuildConfig] = []
    for ptype in request.package_types:
        accels = [a for a in accelerators if a.kind in _KINDS[ptype]]
        arch = {PackageType.MACOS_WHEEL: "arm64", PackageType.WINDOWS_WHEEL: "amd64"}.get(ptype, "x86_64")
        if ptype is PackageType.LIBTORCH:
            for accel in accels:
                for variant in LibtorchVariant:
                    if accel.kind == "rocm" and "without" in variant.value:
                        continue  # ROCm libtorch is only shipped with its dependencies
                    configs.append(
                        BuildConfig(
                            package_type=ptype,
                            python=None,
                            accelerator=accel,
                            libtorch_variant=variant,
                            channel=request.channel,
                            arch=arch,
                        )
                    )
            continue
        for python in pythons:
            for accel in accels:
                configs.append(
                    BuildConfig(
                        package_type=ptype, python=python, accelerator=accel, channel=request.channel, arch=arch
                    )
                )
    return configs


def entry(config: BuildConfig, catalog: Catalog) -> dict[str, str]:
    """One matrix row, with the field names PyTorch's generate_binary_build_matrix uses."""
    accel = config.accelerator
    extra = ""
    if accel.kind == "cuda" and accel.version and config.package_type is PackageType.MANYWHEEL:
        extra = " | ".join(f"{p.requirement}; {RUNTIME_MARKER}" for p in catalog.cuda[accel.version].packages)
    row = {
        "build_name": config.id,
        "package_type": config.package_type.value,
        "python_version": str(config.python) if config.python else "",
        "gpu_arch_type": accel.kind,
        "gpu_arch_version": accel.version or "",
        "desired_cuda": accel.desired_cuda,
        "container_image": docker_image(config, catalog) or "",
        "extra_install_requirements": extra,
        "channel": config.channel.value,
    }
    if config.libtorch_variant:
        row["libtorch_variant"] = config.libtorch_variant.value
    return row


def to_github(configs: Iterable[BuildConfig], catalog: Catalog) -> str:
    return json.dumps({"include": [entry(c, catalog) for c in configs]}, separators=(",", ":"))


def to_json(configs: Iterable[BuildConfig], catalog: Catalog) -> str:
    return json.dumps([entry(c, catalog) for c in configs], indent=2)


def table_rows(configs: Sequence[BuildConfig], catalog: Catalog) -> list[list[str]]:
    return [
        [e["build_name"], e["python_version"], e["desired_cuda"], e["container_image"]]
        for e in (entry(c, catalog) for c in configs)
    ]
