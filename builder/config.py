"""BuildConfig: what to build, as one frozen value.

A config comes from four sources, highest first: command-line flags (including the config
id), the environment (BUILDER_* and PyTorch CI's variables), [tool.builder] in the built
project's pyproject.toml, and the catalog defaults (builder/data/defaults.toml). Every
setting is declared once in SETTINGS; flags, environment names, docs and validation come
from that table.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from builder.catalog import Catalog
from builder.errors import ConfigError, did_you_mean


class PackageType(str, enum.Enum):
    MANYWHEEL = "manywheel"
    CONDA = "conda"
    LIBTORCH = "libtorch"
    MACOS_WHEEL = "macos-wheel"
    WINDOWS_WHEEL = "windows-wheel"


class LibtorchVariant(str, enum.Enum):
    SHARED_WITH_DEPS = "shared-with-deps"
    SHARED_WITHOUT_DEPS = "shared-without-deps"
    STATIC_WITH_DEPS = "static-with-deps"
    STATIC_WITHOUT_DEPS = "static-without-deps"


class CxxAbi(str, enum.Enum):
    CXX11 = "cxx11"
    PRE_CXX11 = "pre-cxx11"


class Channel(str, enum.Enum):
    NIGHTLY = "nightly"
    TEST = "test"
    RELEASE = "release"


class CudaMode(str, enum.Enum):
    """How accelerator runtime libraries reach the user: NVIDIA's pip wheels, or inside ours."""

    PYPI = "pypi"
    BUNDLED = "bundled"


DEFAULT_ARCH = {
    PackageType.MACOS_WHEEL: "arm64",
    PackageType.WINDOWS_WHEEL: "amd64",
}
ARCHES = {
    PackageType.MANYWHEEL: ("x86_64", "aarch64", "s390x"),
    PackageType.CONDA: ("x86_64", "aarch64"),
    PackageType.LIBTORCH: ("x86_64", "aarch64"),
    PackageType.MACOS_WHEEL: ("arm64",),
    PackageType.WINDOWS_WHEEL: ("amd64", "arm64"),
}


@dataclass(frozen=True, order=True)
class PythonVersion:
    major: int
    minor: int
    free_threaded: bool = False

    def __str__(self) -> str:  # "3.13t", the DESIRED_PYTHON spelling
        return f"{self.major}.{self.minor}{'t' if self.free_threaded else ''}"

    @property
    def minor_version(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def id(self) -> str:
        return f"py{self.major}_{self.minor}{'t' if self.free_threaded else ''}"

    @property
    def abi_tag(self) -> str:  # "cp313t"
        return f"cp{self.major}{self.minor}{'t' if self.free_threaded else ''}"


@dataclass(frozen=True)
class Accelerator:
    kind: str  # cpu | cuda | rocm | xpu
    version: str | None = None  # "12.4", "6.2.4"

    def __str__(self) -> str:
        return f"{self.kind}{self.version or ''}"

    @property
    def id(self) -> str:  # cuda12_4
        return f"{self.kind}{(self.version or '').replace('.', '_')}"

    @property
    def desired_cuda(self) -> str:  # PyTorch's DESIRED_CUDA and local version: cu124, rocm6.4, cpu
        if self.kind == "cuda":
            return "cu" + (self.version or "").replace(".", "")
        return str(self)


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """Settings that shape a build but are not part of the config id."""

    cuda_mode: CudaMode = CudaMode.PYPI
    local_version: bool | None = None  # None: the package type decides (no suffix on macOS)
    version: str | None = None
    arch_list: str | None = None
    cuda_home: str | None = None
    rocm_path: str | None = None
    python_executable: str | None = None
    allow_unsupported_compiler: bool = False
    max_jobs: int | None = None
    exclude: tuple[str, ...] = ()
    keep_name: tuple[str, ...] = ()
    smoke_commands: tuple[str, ...] = ()
    debug_archive: bool = False  # libtorch: split debug symbols into a debug- archive
    docker_env: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    package_type: PackageType
    python: PythonVersion | None  # None for libtorch: it has no Python
    accelerator: Accelerator
    libtorch_variant: LibtorchVariant | None = None
    cxx_abi: CxxAbi = CxxAbi.CXX11
    channel: Channel = Channel.NIGHTLY
    arch: str = "x86_64"
    options: BuildOptions = field(default_factory=BuildOptions)

    @property
    def id(self) -> str:
        parts = [self.package_type.value]
        if self.python is not None:
            parts.append(self.python.id)
        parts.append(self.accelerator.id)
        if self.libtorch_variant is not None:
            parts.append(self.libtorch_variant.value)
        if self.cxx_abi is CxxAbi.PRE_CXX11:
            parts.append(CxxAbi.PRE_CXX11.value)
        if self.arch != DEFAULT_ARCH.get(self.package_type, "x86_64"):
            parts.append(self.arch)
        return "-".join(parts)


# ---------------------------------------------------------------------------------------------
# Parsing single values. Each parser takes the raw value and the catalog and raises ValueError
# with "what is accepted" text; the caller adds where the value came from.


def _choices(enum_type: type[enum.Enum]) -> Callable[[Any, Catalog], Any]:
    def parse(raw: Any, _: Catalog) -> Any:
        text = str(raw).strip().lower()
        for member in enum_type:
            if text == member.value:
                return member
        accepted = ", ".join(m.value for m in enum_type)
        raise ValueError(f"accepted values: {accepted}.{did_you_mean(text, [m.value for m in enum_type])}")

    return parse


_PY_RE = re.compile(r"^(?:py|cp)?(\d)[._]?(\d{1,2})(?:\.\d+)?(t?)(?:-cp\d+t?)?$")


def parse_python(raw: Any, catalog: Catalog) -> PythonVersion:
    """Accepts 3.12, 3.13t, py3_12, cp312, cp313-cp313t (the spellings PyTorch CI uses)."""
    text = str(raw).strip().lower()
    match = _PY_RE.match(text)
    known = ", ".join(catalog.python)
    if not match:
        raise ValueError(f"expected a CPython version such as 3.12 or 3.13t; known versions: {known}.")
    version = PythonVersion(int(match[1]), int(match[2]), bool(match[3]))
    release = catalog.python.get(version.minor_version)
    if release is None:
        raise ValueError(f"CPython {version.minor_version} is not in the catalog; known versions: {known}.")
    if version.free_threaded and not release.free_threaded:
        ft = ", ".join(f"{v}t" for v, r in catalog.python.items() if r.free_threaded)
        raise ValueError(f"CPython {version.minor_version} has no free-threaded build; those that do: {ft}.")
    return version


_ACCEL_RE = re.compile(r"^(cpu|xpu|cuda|cu|rocm)[-_]?([0-9][0-9._]*)?$")


def parse_accelerator(raw: Any, catalog: Catalog) -> Accelerator:
    """Accepts cpu, xpu, cuda12.4, cuda12_4, cu124 (DESIRED_CUDA), rocm6.4, rocm6_2_4."""
    text = str(raw).strip().lower()
    match = _ACCEL_RE.match(text)
    cudas, rocms = ", ".join(catalog.cuda), ", ".join(catalog.rocm)
    accepted = f"cpu, xpu, cuda<X.Y> ({cudas}), rocm<X.Y[.Z]> ({rocms}); cu124 and rocm6.4 spellings work too."
    if not match:
        raise ValueError(f"accepted values: {accepted}")
    kind, number = match[1], match[2] or ""
    if kind in ("cpu", "xpu"):
        if number:
            raise ValueError(f"{kind} takes no version; accepted values: {accepted}")
        return Accelerator(kind)
    if kind == "cu":  # cu124 -> 12.4, cu130 -> 13.0: CUDA minors are single digits
        if not number.isdigit() or len(number) < 2:
            raise ValueError(f"accepted values: {accepted}")
        number = f"{number[:-1]}.{number[-1]}"
        kind = "cuda"
    version = number.replace("_", ".")
    table: Mapping[str, object] = catalog.cuda if kind == "cuda" else catalog.rocm
    if version not in table:
        name, known = ("CUDA", cudas) if kind == "cuda" else ("ROCm", rocms)
        raise ValueError(f"{name} {version} is not in the catalog; known versions: {known}.")
    return Accelerator(kind, version)


def _parse_bool(raw: Any, _: Catalog) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false (1/0, yes/no, on/off)")


def _parse_int(raw: Any, _: Catalog) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError("expected a positive whole number") from None
    if value < 1:
        raise ValueError("expected a positive whole number")
    return value


def _parse_str(raw: Any, _: Catalog) -> str:
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool) or not str(raw).strip():
        raise ValueError("expected a non-empty string")
    return str(raw).strip()


def _parse_list(raw: Any, _: Catalog) -> tuple[str, ...]:
    if isinstance(raw, str):  # environment and flags: comma-separated
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if isinstance(raw, (list, tuple)) and all(isinstance(item, str) for item in raw):
        return tuple(raw)
    raise ValueError("expected a list of strings")


@dataclass(frozen=True)
class Setting:
    """One setting: its [tool.builder] key, where it lands, how it is parsed, what it means."""

    key: str  # [tool.builder] key; the flag is --key, the variable BUILDER_KEY
    attr: str  # BuildConfig attribute, or "options.<name>"
    parse: Callable[[Any, Catalog], Any]
    doc: str
    in_id: bool = False  # part of the config id

    @property
    def flag(self) -> str:
        return "--" + self.key.replace(".", "-")

    @property
    def env(self) -> str:
        return "BUILDER_" + re.sub(r"[-.]", "_", self.key).upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("package-type", "package_type", _choices(PackageType), "Package type to build.", True),
    Setting("python", "python", parse_python, "CPython version, e.g. 3.12 or 3.13t (free-threaded).", True),
    Setting(
        "accelerator", "accelerator", parse_accelerator, "cpu, xpu, cuda<X.Y> or rocm<X.Y[.Z]> (cu124 works too).", True
    ),
    Setting("libtorch-variant", "libtorch_variant", _choices(LibtorchVariant), "libtorch archive variant.", True),
    Setting("cxx-abi", "cxx_abi", _choices(CxxAbi), "C++ ABI: cxx11 or pre-cxx11.", True),
    Setting("arch", "arch", _parse_str, "CPU architecture (x86_64, aarch64, ...).", True),
    Setting("channel", "channel", _choices(Channel), "nightly (.devYYYYMMDD), test (RC tag) or release."),
    Setting(
        "cuda-mode",
        "options.cuda_mode",
        _choices(CudaMode),
        "pypi: link NVIDIA's pip wheels; bundled: graft the libraries.",
    ),
    Setting("local-version", "options.local_version", _parse_bool, "Append +cpu/+cu124/+rocm6.4 to the version."),
    Setting("version", "options.version", _parse_str, "Base version X.Y.Z (default: the project's version)."),
    Setting("arch-list", "options.arch_list", _parse_str, "Override the CUDA arch list / ROCm offload archs."),
    Setting("cuda-home", "options.cuda_home", _parse_str, "CUDA toolkit root to use (verified by running its nvcc)."),
    Setting("rocm-path", "options.rocm_path", _parse_str, "ROCm root to use (verified by running its hipcc)."),
    Setting("python-executable", "options.python_executable", _parse_str, "Interpreter to build with (verified)."),
    Setting(
        "allow-unsupported-compiler",
        "options.allow_unsupported_compiler",
        _parse_bool,
        "Accept a host gcc outside the CUDA version's range.",
    ),
    Setting(
        "max-jobs", "options.max_jobs", _parse_int, "Parallel compile jobs (default: bounded by cores and memory)."
    ),
    Setting("exclude", "options.exclude", _parse_list, "Sonames (globs) repair never grafts."),
    Setting("keep-name", "options.keep_name", _parse_list, "Grafted sonames (globs) that keep their name."),
    Setting(
        "debug-archive",
        "options.debug_archive",
        _parse_bool,
        "libtorch: split debug symbols off into a separate debug-<archive>.zip.",
    ),
    Setting("smoke.commands", "options.smoke_commands", _parse_list, "Python snippets the smoke test runs."),
    Setting(
        "docker.env", "options.docker_env", _parse_list, "Extra environment variables passed into build containers."
    ),
)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}

# PyTorch CI variables other than BUILDER_*, mapped onto settings. Later entries in each
# list lose to earlier ones, so the specific variable beats the BUILD_ENVIRONMENT triple.
ENV_ALIASES: Mapping[str, tuple[str, ...]] = {
    "cuda-home": ("CUDA_HOME", "CUDA_PATH"),
    "rocm-path": ("ROCM_PATH", "ROCM_HOME"),
    "max-jobs": ("MAX_JOBS",),
    "arch-list": ("OVERRIDE_TORCH_CUDA_ARCH_LIST",),
    "package-type": ("PACKAGE_TYPE",),
    "python": ("DESIRED_PYTHON",),
    "accelerator": ("DESIRED_CUDA",),
    "libtorch-variant": ("LIBTORCH_VARIANT",),
    "channel": ("CHANNEL",),
}


@dataclass(frozen=True)
class Value:
    raw: Any
    origin: str  # human description: "--python 3.12", "DESIRED_CUDA=cu118", ...


Layer = dict[str, Value]  # setting key -> value from one source


# ---------------------------------------------------------------------------------------------
# Config ids


_ID_RE = re.compile(
    r"^(?P<ptype>manywheel|conda|libtorch|macos-wheel|windows-wheel)"
    r"(?:-(?P<py>py[0-9][0-9._]*t?))?"
    r"-(?P<accel>[a-z]+[0-9._]*)"
    r"(?:-(?P<variant>(?:shared|static)-with(?:out)?-deps))?"
    r"(?:-(?P<abi>pre-cxx11|cxx11))?"
    r"(?:-(?P<arch>[a-z0-9_]+))?$"
)
ID_FORMS = "<type>-py<X_Y[t]>-<accel>[-<arch>] or libtorch-<accel>-<variant>[-pre-cxx11][-<arch>]"


def parse_config_id(config_id: str) -> Layer:
    """Split a config id into setting values (validated later, with the other sources)."""
    match = _ID_RE.match(config_id.strip())
    if not match:
        head = config_id.split("-", 1)[0]
        known = [p.value for p in PackageType]
        if not any(config_id.startswith(p) for p in known):
            raise ConfigError(
                f"Unknown package type {head!r} in config id {config_id!r}. Accepted package types: "
                f"{', '.join(known)}.{did_you_mean(head, known)} Config ids look like {ID_FORMS}, "
                "e.g. manywheel-py3_12-cuda12_4 or libtorch-cuda12_8-shared-with-deps."
            )
        raise ConfigError(
            f"Config id {config_id!r} is not well formed. Expected {ID_FORMS}, e.g. "
            "manywheel-py3_12-cuda12_4, manywheel-py3_13t-rocm6_4 or libtorch-cuda12_8-shared-with-deps "
            "(see `builder matrix --format table` for valid ids)."
        )
    origin = f"config id {config_id!r}"
    layer: Layer = {"package-type": Value(match["ptype"], origin), "accelerator": Value(match["accel"], origin)}
    for group, key in (("py", "python"), ("variant", "libtorch-variant"), ("abi", "cxx-abi"), ("arch", "arch")):
        if match[group]:
            layer[key] = Value(match[group], origin)
    if match["ptype"] != "libtorch" and not match["py"]:
        raise ConfigError(
            f"Config id {config_id!r} names no Python version. Add one, e.g. {match['ptype']}-py3_12-{match['accel']}."
        )
    return layer


# ---------------------------------------------------------------------------------------------
# Sources


def flags_layer(flags: Mapping[str, Any]) -> Layer:
    """Explicit command-line flags, by setting key; None means 'not given'."""
    return {key: Value(raw, f"{SETTINGS_BY_KEY[key].flag} {raw}") for key, raw in flags.items() if raw is not None}


def env_layer(environ: Mapping[str, str]) -> Layer:
    layer: Layer = {}
    # Lowest first, so that later assignments win: BUILD_ENVIRONMENT, then GPU_ARCH_*,
    # then the single-purpose aliases, then BUILDER_*.
    triple = environ.get("BUILD_ENVIRONMENT", "").split()
    if len(triple) >= 3 and triple[0] in {p.value for p in PackageType}:
        origin = f"BUILD_ENVIRONMENT={environ['BUILD_ENVIRONMENT']!r}"
        layer.update(
            {
                "package-type": Value(triple[0], origin),
                "python": Value(triple[1], origin),
                "accelerator": Value(triple[2], origin),
            }
        )
        if len(triple) >= 4 and "cxx11" in triple[3]:
            layer["cxx-abi"] = Value("pre-cxx11" if "pre" in triple[3] else "cxx11", origin)
    arch_type = environ.get("GPU_ARCH_TYPE")
    if arch_type:
        layer.update(_gpu_arch_layer(arch_type, environ.get("GPU_ARCH_VERSION", "")))
    devtoolset = environ.get("DESIRED_DEVTOOLSET", "")
    if "cxx11" in devtoolset:
        layer["cxx-abi"] = Value("pre-cxx11" if "pre" in devtoolset else "cxx11", f"DESIRED_DEVTOOLSET={devtoolset}")
    for key, names in ENV_ALIASES.items():
        for name in reversed(names):
            if environ.get(name):
                layer[key] = Value(environ[name], f"{name}={environ[name]}")
    for setting in SETTINGS:
        if environ.get(setting.env):
            layer[setting.key] = Value(environ[setting.env], f"{setting.env}={environ[setting.env]}")
    return layer


def _gpu_arch_layer(arch_type: str, arch_version: str) -> Layer:
    origin = f"GPU_ARCH_TYPE={arch_type}" + (f" GPU_ARCH_VERSION={arch_version}" if arch_version else "")
    kind, _, suffix = arch_type.partition("-")  # cpu-aarch64, cuda-aarch64, cpu-cxx11-abi
    layer: Layer = {"accelerator": Value(kind + (arch_version if kind in ("cuda", "rocm") else ""), origin)}
    if suffix in ("aarch64", "s390x"):
        layer["arch"] = Value(suffix, origin)
    elif suffix == "cxx11-abi":
        layer["cxx-abi"] = Value("cxx11", origin)
    return layer


def pyproject_layer(table: Mapping[str, Any], source: str) -> Layer:
    """[tool.builder] (nested tables flattened to dotted keys); unknown keys are errors."""
    layer: Layer = {}
    for key, raw in _flatten(table):
        if key not in SETTINGS_BY_KEY:
            raise ConfigError(
                f"Unknown key {key!r} in [tool.builder] of {source}.{did_you_mean(key, SETTINGS_BY_KEY)} "
                f"Known keys: {', '.join(SETTINGS_BY_KEY)}. Remove or rename it."
            )
        layer[key] = Value(raw, f"[tool.builder] {key} = {raw!r} in {source}")
    return layer


def _flatten(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            items.extend(_flatten(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


# ---------------------------------------------------------------------------------------------
# Merging


@dataclass(frozen=True)
class ResolvedConfig:
    config: BuildConfig
    notices: tuple[str, ...]


def build_config(catalog: Catalog, layers: Sequence[Layer]) -> ResolvedConfig:
    """Merge source layers (highest first) over the catalog defaults into a BuildConfig."""
    defaults: Layer = {k: Value(v, "catalog default") for k, v in catalog.defaults.items()}
    for key in defaults:
        if key not in SETTINGS_BY_KEY:
            raise ConfigError(
                f"builder/data/defaults.toml names unknown setting {key!r}.{did_you_mean(key, SETTINGS_BY_KEY)}"
            )
    values: dict[str, Any] = {}
    notices: list[str] = []
    for setting in SETTINGS:
        candidates = [layer[setting.key] for layer in (*layers, defaults) if setting.key in layer]
        if not candidates:
            continue
        winner, *losers = candidates
        values[setting.key] = _parse(setting, winner, catalog)
        for loser in losers:
            if loser.origin == "catalog default":
                continue
            try:
                other = setting.parse(loser.raw, catalog)
            except ValueError:
                notices.append(f"{setting.key}: ignoring {loser.origin} (not valid); using {winner.origin}")
                continue
            if other != values[setting.key]:
                notices.append(f"{setting.key}: {winner.origin} wins over {loser.origin}")
    return ResolvedConfig(_assemble(values), tuple(notices))


def _parse(setting: Setting, value: Value, catalog: Catalog) -> Any:
    try:
        return setting.parse(value.raw, catalog)
    except ValueError as exc:
        raise ConfigError(
            f"Invalid {setting.key} {value.raw!r} (from {value.origin}): {exc} "
            f"Fix that source or override it with {setting.flag}."
        ) from None


def _assemble(values: Mapping[str, Any]) -> BuildConfig:
    ptype: PackageType = values["package-type"]
    option_values = {
        s.attr.removeprefix("options."): values[s.key]
        for s in SETTINGS
        if s.attr.startswith("options.") and s.key in values
    }
    arch = values.get("arch", DEFAULT_ARCH.get(ptype, "x86_64"))
    if arch not in ARCHES[ptype]:
        raise ConfigError(
            f"Architecture {arch!r} is not built for package type {ptype.value}. Accepted: {', '.join(ARCHES[ptype])}."
        )
    accelerator: Accelerator = values["accelerator"]
    if accelerator.kind in ("rocm", "xpu") and ptype not in (PackageType.MANYWHEEL, PackageType.LIBTORCH):
        raise ConfigError(
            f"Accelerator {accelerator} is not built for package type {ptype.value}; use manywheel or libtorch."
        )
    return BuildConfig(
        package_type=ptype,
        python=None if ptype is PackageType.LIBTORCH else values["python"],
        accelerator=accelerator,
        libtorch_variant=values["libtorch-variant"] if ptype is PackageType.LIBTORCH else None,
        cxx_abi=values["cxx-abi"],
        channel=values["channel"],
        arch=arch,
        options=BuildOptions(**option_values),
    )


def config_from_id(config_id: str, catalog: Catalog) -> BuildConfig:
    """A config from its id alone (catalog defaults for everything else)."""
    return build_config(catalog, [parse_config_id(config_id)]).config


def configure(
    catalog: Catalog,
    *,
    config_id: str | None,
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    tool_settings: Mapping[str, Any],
    pyproject_path: str,
) -> ResolvedConfig:
    """All four sources, in precedence order: flags, config id, environment, [tool.builder]."""
    layers = [flags_layer(flags)]
    if config_id:
        layers.append(parse_config_id(config_id))
    layers += [env_layer(environ), pyproject_layer(tool_settings, pyproject_path)]
    return build_config(catalog, layers)
