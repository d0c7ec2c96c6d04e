"""The catalog: facts about toolchains, Pythons, releases and images, read from builder/data.

Every file is schema-checked at load time; a malformed entry raises CatalogError naming the
file, the key and the problem. Callers get frozen values and never see raw TOML.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from builder.errors import CatalogError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class RuntimePackage:
    """An NVIDIA runtime wheel an artifact may depend on instead of bundling its libraries."""

    requirement: str  # "nvidia-cublas-cu12==12.4.5.8"
    name: str
    lib_dir: str  # relative to site-packages
    sonames: tuple[str, ...]  # fnmatch patterns


@dataclass(frozen=True)
class CudaVersion:
    version: str
    released: dt.date
    arch_list: str
    nvcc_flags: tuple[str, ...]
    gcc_min: int
    gcc_max: int
    layout: str
    cudnn: str
    packages: tuple[RuntimePackage, ...]
    toolkit: tuple[str, ...]

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def package_for(self, soname: str) -> RuntimePackage | None:
        for pkg in self.packages:
            if any(fnmatch.fnmatchcase(soname, pattern) for pattern in pkg.sonames):
                return pkg
        return None


@dataclass(frozen=True)
class RocmVersion:
    version: str
    released: dt.date
    offload_archs: str


@dataclass(frozen=True)
class PythonRelease:
    version: str  # "3.12"
    released: dt.date
    end_of_life: dt.date
    free_threaded: bool

    @property
    def key(self) -> tuple[int, int]:
        major, minor = self.version.split(".")
        return int(major), int(minor)


@dataclass(frozen=True)
class ReleaseCuda:
    version: str
    role: str  # "stable" | "experimental"
    cudnn: str


@dataclass(frozen=True)
class Release:
    version: str
    date: dt.date
    python: SpecifierSet
    free_threaded: tuple[str, ...]
    cuda: tuple[ReleaseCuda, ...]
    rocm: tuple[str, ...]


@dataclass(frozen=True)
class Catalog:
    cuda: Mapping[str, CudaVersion]
    cuda_sonames: tuple[str, ...]  # every accelerator library pattern of every runtime wheel
    driver_sonames: tuple[str, ...]
    rocm: Mapping[str, RocmVersion]
    rocm_sonames: tuple[str, ...]
    python: Mapping[str, PythonRelease]
    releases: Mapping[str, Release]
    images: Mapping[str, Mapping[str, str]]  # package type -> accelerator kind -> template
    upstream_images: Mapping[str, Mapping[str, str]]
    defaults: Mapping[str, Any]  # [tool.builder]-style key -> raw value
    keep_names: tuple[str, ...]
    exclude: tuple[str, ...]


class _Reader:
    """Typed access to one TOML file that reports the file and dotted key of every problem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogError(f"Catalog file {path} cannot be read: {exc}.") from exc

    def fail(self, key: str, problem: str) -> CatalogError:
        return CatalogError(
            f"Catalog file {self.path.name}, key {key}: {problem}. "
            f"Fix the entry in {self.path} (builder/data holds the catalog)."
        )

    def table(self, parent: Mapping[str, Any], name: str, key: str) -> Mapping[str, Any]:
        value = parent.get(name)
        if not isinstance(value, dict):
            raise self.fail(key, "missing table" if value is None else "must be a table")
        return value

    def get(self, entry: Mapping[str, Any], name: str, kind: type, key: str, default: Any = ...) -> Any:
        if name not in entry:
            if default is ...:
                raise self.fail(f"{key}.{name}", "required value is missing")
            return default
        value = entry[name]
        # bool is an int subclass; reject it where a number is wanted.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"{key}.{name}", f"must be {kind.__name__}, got {value!r}")
        return value

    def strings(self, entry: Mapping[str, Any], name: str, key: str, default: Any = ...) -> tuple[str, ...]:
        values = self.get(entry, name, list, key, default if default is ... else list(default))
        if not all(isinstance(v, str) for v in values):
            raise self.fail(f"{key}.{name}", "must be a list of strings")
        return tuple(values)

    def check_keys(self, entry: Mapping[str, Any], allowed: set[str], key: str) -> None:
        for name in entry:
            if name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _check_version_name(reader: _Reader, name: str, key: str) -> None:
    parts = name.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise reader.fail(key, f"version {name!r} must look like X.Y or X.Y.Z")


def _arch_list(reader: _Reader, value: str, key: str, pattern: str) -> str:
    items = value.split(";")
    if not value or not all(fnmatch.fnmatchcase(item, pattern) for item in items):
        raise reader.fail(key, f"{value!r} is not a ';'-separated list of {pattern!r} items")
    return value


def _load_cuda(data_dir: Path) -> tuple[dict[str, CudaVersion], tuple[str, ...], tuple[str, ...]]:
    r = _Reader(data_dir / "cuda.toml")
    libraries = r.table(r.data, "libraries", "libraries")
    lib_info: dict[str, tuple[str, tuple[str, ...], bool]] = {}
    for lib, entry in libraries.items():
        key = f"libraries.{lib}"
        r.check_keys(entry, {"dir", "sonames", "toolkit"}, key)
        lib_info[lib] = (
            r.get(entry, "dir", str, key),
            r.strings(entry, "sonames", key),
            r.get(entry, "toolkit", bool, key),
        )
    driver = r.strings(r.table(r.data, "driver", "driver"), "sonames", "driver")

    versions: dict[str, CudaVersion] = {}
    allowed = {"released", "arch_list", "nvcc_flags", "gcc_min", "gcc_max", "layout", "cudnn", "packages", "toolkit"}
    for name, entry in r.table(r.data, "cuda", "cuda").items():
        key = f'cuda."{name}"'
        _check_version_name(r, name, key)
        r.check_keys(entry, allowed, key)
        layout = r.get(entry, "layout", str, key)
        if layout not in ("cu11", "cu12", "cu13"):
            raise r.fail(f"{key}.layout", f"{layout!r} is not one of cu11, cu12, cu13")
        packages = tuple(
            _runtime_package(r, req, layout, lib_info, f"{key}.packages") for req in r.strings(entry, "packages", key)
        )
        versions[name] = CudaVersion(
            version=name,
            released=r.get(entry, "released", dt.date, key),
            arch_list=_arch_list(r, r.get(entry, "arch_list", str, key), f"{key}.arch_list", "[0-9]*.[0-9]*"),
            nvcc_flags=r.strings(entry, "nvcc_flags", key),
            gcc_min=r.get(entry, "gcc_min", int, key),
            gcc_max=r.get(entry, "gcc_max", int, key),
            layout=layout,
            cudnn=r.get(entry, "cudnn", str, key),
            packages=packages,
            toolkit=r.strings(entry, "toolkit", key, ()),
        )
    all_sonames = sorted({s for _, sonames, _ in lib_info.values() for s in sonames})
    return dict(sorted(versions.items(), key=lambda kv: _version_key(kv[0]))), tuple(all_sonames), driver


def _runtime_package(
    r: _Reader, requirement: str, layout: str, libs: Mapping[str, tuple[str, tuple[str, ...], bool]], key: str
) -> RuntimePackage:
    try:
        req = Requirement(requirement)
    except InvalidRequirement as exc:
        raise r.fail(key, f"{requirement!r} is not a valid requirement ({exc})") from exc
    lib = req.name.removeprefix("nvidia-")
    for suffix in ("-cu11", "-cu12", "-cu13"):
        lib = lib.removesuffix(suffix)
    if lib not in libs:
        raise r.fail(key, f"{req.name!r} maps to library {lib!r}, which has no [libraries.{lib}] entry")
    lib_dir, sonames, in_toolkit = libs[lib]
    if layout == "cu13" and in_toolkit:
        lib_dir = "nvidia/cu13/lib"
    return RuntimePackage(requirement=requirement, name=req.name, lib_dir=lib_dir, sonames=sonames)


def _load_rocm(data_dir: Path) -> tuple[dict[str, RocmVersion], tuple[str, ...]]:
    r = _Reader(data_dir / "rocm.toml")
    versions: dict[str, RocmVersion] = {}
    for name, entry in r.table(r.data, "rocm", "rocm").items():
        key = f'rocm."{name}"'
        _check_version_name(r, name, key)
        r.check_keys(entry, {"released", "offload_archs"}, key)
        versions[name] = RocmVersion(
            version=name,
            released=r.get(entry, "released", dt.date, key),
            offload_archs=_arch_list(r, r.get(entry, "offload_archs", str, key), f"{key}.offload_archs", "gfx*"),
        )
    sonames = r.strings(r.table(r.data, "runtime", "runtime"), "sonames", "runtime")
    return dict(sorted(versions.items(), key=lambda kv: _version_key(kv[0]))), sonames


def _load_python(data_dir: Path) -> dict[str, PythonRelease]:
    r = _Reader(data_dir / "python.toml")
    out: dict[str, PythonRelease] = {}
    for name, entry in r.table(r.data, "python", "python").items():
        key = f'python."{name}"'
        if len(name.split(".")) != 2:
            raise r.fail(key, f"version {name!r} must look like X.Y")
        _check_version_name(r, name, key)
        r.check_keys(entry, {"released", "end_of_life", "free_threaded"}, key)
        rel = PythonRelease(
            version=name,
            released=r.get(entry, "released", dt.date, key),
            end_of_life=r.get(entry, "end_of_life", dt.date, key),
            free_threaded=r.get(entry, "free_threaded", bool, key),
        )
        if rel.end_of_life <= rel.released:
            raise r.fail(f"{key}.end_of_life", "must be after the release date")
        out[name] = rel
    return dict(sorted(out.items(), key=lambda kv: kv[1].key))


def _load_releases(
    data_dir: Path,
    cuda: Mapping[str, CudaVersion],
    rocm: Mapping[str, RocmVersion],
    python: Mapping[str, PythonRelease],
) -> dict[str, Release]:
    r = _Reader(data_dir / "releases.toml")
    out: dict[str, Release] = {}
    for name, entry in r.table(r.data, "release", "release").items():
        key = f'release."{name}"'
        _check_version_name(r, name, key)
        r.check_keys(entry, {"date", "python", "free_threaded", "cuda", "rocm"}, key)
        try:
            spec = SpecifierSet(r.get(entry, "python", str, key))
        except InvalidSpecifier as exc:
            raise r.fail(f"{key}.python", f"not a version specifier ({exc})") from exc
        cudas = []
        for i, item in enumerate(r.get(entry, "cuda", list, key)):
            ckey = f"{key}.cuda[{i}]"
            if not isinstance(item, dict):
                raise r.fail(ckey, "must be a table {version, role, cudnn}")
            r.check_keys(item, {"version", "role", "cudnn"}, ckey)
            version = r.get(item, "version", str, ckey)
            if version not in cuda:
                raise r.fail(f"{ckey}.version", f"CUDA {version} is not in cuda.toml")
            role = r.get(item, "role", str, ckey)
            if role not in ("stable", "experimental"):
                raise r.fail(f"{ckey}.role", f"{role!r} is not 'stable' or 'experimental'")
            cudas.append(ReleaseCuda(version=version, role=role, cudnn=r.get(item, "cudnn", str, ckey)))
        rocms = r.strings(entry, "rocm", key, ())
        for version in rocms:
            if version not in rocm:
                raise r.fail(f"{key}.rocm", f"ROCm {version} is not in rocm.toml")
        free_threaded = r.strings(entry, "free_threaded", key, ())
        for version in free_threaded:
            if version not in python or not python[version].free_threaded:
                raise r.fail(f"{key}.free_threaded", f"Python {version} has no free-threaded build in python.toml")
        out[name] = Release(name, r.get(entry, "date", dt.date, key), spec, free_threaded, tuple(cudas), rocms)
    return dict(sorted(out.items(), key=lambda kv: _version_key(kv[0])))


def _load_images(data_dir: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    r = _Reader(data_dir / "images.toml")
    result = []
    for section in ("images", "upstream"):
        table: dict[str, dict[str, str]] = {}
        for ptype, entry in r.table(r.data, section, section).items():
            key = f"{section}.{ptype}"
            r.check_keys(entry, {"cpu", "cuda", "rocm", "xpu"}, key)
            table[ptype] = {kind: r.get(entry, kind, str, key) for kind in entry}
        result.append(table)
    return result[0], result[1]


@cache
def load_catalog(data_dir: Path = DATA_DIR) -> Catalog:
    """Read and validate every catalog file (cached: the files are package data)."""
    cuda, cuda_sonames, driver = _load_cuda(data_dir)
    rocm, rocm_sonames = _load_rocm(data_dir)
    python = _load_python(data_dir)
    images, upstream = _load_images(data_dir)
    r = _Reader(data_dir / "defaults.toml")
    defaults = r.table(r.data, "config", "config")
    repair = r.table(r.data, "repair", "repair")
    r.check_keys(repair, {"keep_names", "exclude"}, "repair")
    return Catalog(
        cuda=cuda,
        cuda_sonames=cuda_sonames,
        driver_sonames=driver,
        rocm=rocm,
        rocm_sonames=rocm_sonames,
        python=python,
        releases=_load_releases(data_dir, cuda, rocm, python),
        images=images,
        upstream_images=upstream,
        defaults=dict(defaults),
        keep_names=r.strings(repair, "keep_names", "repair"),
        exclude=r.strings(repair, "exclude", "repair"),
    )
