"""The common environment resolver: BuildConfig + project + host -> BuildEnvironment.

This is the one place that knows what a config means on a machine: which interpreter and
toolkits (verified by running them), which arches, which version string, which environment
variables, which image and which repair inputs. Builders receive the frozen result and never
read the environment or search for toolchains themselves.
"""

from __future__ import annotations

import fnmatch
import shlex
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder.catalog import Catalog, RuntimePackage, load_catalog
from builder.config import BuildConfig, Channel, CudaMode, CxxAbi, PackageType
from builder.errors import ConfigError, ToolchainError
from builder.host import Host
from builder.images import image_tag
from builder.project import Project
from builder.toolchains.compilers import HostCompiler, find_host_compiler
from builder.toolchains.cuda import CudaToolkit, find_cuda
from builder.toolchains.python import Interpreter, find_interpreter
from builder.toolchains.rocm import RocmToolkit, find_rocm
from builder.versions import build_version, exact_tag, utc_day

# Wheels built in the pypi mode may depend on NVIDIA's runtime wheels only where those exist.
RUNTIME_MARKER = "platform_system == 'Linux' and platform_machine == 'x86_64'"
EPOCH_1980 = 315532800  # the earliest time a zip member can carry


@dataclass(frozen=True)
class RepairPlan:
    """What repair needs to know about libraries, decided here so repair never guesses."""

    mode: CudaMode
    exclude: tuple[str, ...]  # sonames never grafted (user + catalog)
    keep_names: tuple[str, ...]  # grafted but not renamed
    driver_sonames: tuple[str, ...]  # never grafted in any mode
    accelerator_sonames: tuple[str, ...]  # not grafted in pypi mode
    runtime_packages: tuple[RuntimePackage, ...]  # pypi mode: where those libraries come from

    @property
    def rpath_dirs(self) -> tuple[str, ...]:
        """site-packages-relative directories of the runtime wheels, in catalog order."""
        return tuple(dict.fromkeys(pkg.lib_dir for pkg in self.runtime_packages))

    @property
    def requires_dist(self) -> tuple[str, ...]:
        return tuple(f"{pkg.requirement}; {RUNTIME_MARKER}" for pkg in self.runtime_packages)

    def is_accelerator(self, soname: str) -> bool:
        return any(fnmatch.fnmatchcase(soname, p) for p in self.accelerator_sonames)

    def is_driver(self, soname: str) -> bool:
        return any(fnmatch.fnmatchcase(soname, p) for p in self.driver_sonames)


@dataclass(frozen=True)
class BuildEnvironment:
    config: BuildConfig
    project: Project
    version: str
    interpreter: Interpreter | None  # None for libtorch and with --no-host
    cuda: CudaToolkit | None
    rocm: RocmToolkit | None
    host_compiler: HostCompiler | None
    arch_list: str | None  # TORCH_CUDA_ARCH_LIST / PYTORCH_ROCM_ARCH style
    max_jobs: int
    source_date_epoch: int
    docker_image: str | None
    repair: RepairPlan
    env: Mapping[str, str] = field(default_factory=dict)
    notices: tuple[str, ...] = ()
    probed: bool = True

    def summary(self) -> dict[str, object]:
        """A JSON-able view for reports and `builder env --format json`."""
        return {
            "config": self.config.id,
            "package_type": self.config.package_type.value,
            "python": str(self.config.python) if self.config.python else None,
            "accelerator": str(self.config.accelerator),
            "channel": self.config.channel.value,
            "version": self.version,
            "interpreter": self.interpreter.__dict__ if self.interpreter else None,
            "cuda": self.cuda.__dict__ if self.cuda else None,
            "rocm": self.rocm.__dict__ if self.rocm else None,
            "host_compiler": self.host_compiler.__dict__ if self.host_compiler else None,
            "arch_list": self.arch_list,
            "max_jobs": self.max_jobs,
            "source_date_epoch": self.source_date_epoch,
            "docker_image": self.docker_image,
            "repair": {
                "mode": self.repair.mode.value,
                "exclude": list(self.repair.exclude),
                "keep_names": list(self.repair.keep_names),
                "rpath_dirs": list(self.repair.rpath_dirs),
                "requires_dist": list(self.repair.requires_dist),
            },
            "env": dict(self.env),
            "notices": list(self.notices),
            "probed": self.probed,
        }


def resolve(config: BuildConfig, project: Project, host: Host, catalog: Catalog | None = None) -> BuildEnvironment:
    catalog = catalog or load_catalog()
    notices: list[str] = []
    base = config.options.version or project.base_version
    if base is None:
        raise ConfigError(
            f"Cannot tell the version of the project at {project.root}: its pyproject.toml has no static "
            "[project] version and there is no version.txt. Add one, or set [tool.builder] version / --version."
        )
    tag = exact_tag(project.root) if config.channel is Channel.TEST else None
    version, version_notes = build_version(config, base, host.now, tag)
    notices += version_notes

    interpreter = cuda = rocm = compiler = None
    arch_list = _default_arch_list(config, catalog)
    if host.probe:
        interpreter = _interpreter(config, host)
        cuda, rocm = _accelerator_toolkit(config, host, catalog)
        compiler = _host_compiler(config, host, catalog)
        if cuda is not None and arch_list:
            arch_list = _clip_cuda_archs(arch_list, cuda, notices)
    max_jobs = config.options.max_jobs or _max_jobs(host, config.accelerator.kind != "cpu")
    epoch = source_date_epoch(host, project.root)
    env = BuildEnvironment(
        config=config,
        project=project,
        version=version,
        interpreter=interpreter,
        cuda=cuda,
        rocm=rocm,
        host_compiler=compiler,
        arch_list=arch_list,
        max_jobs=max_jobs,
        source_date_epoch=epoch,
        docker_image=docker_image(config, catalog),
        repair=repair_plan(config, catalog),
        notices=tuple(notices),
        probed=host.probe,
    )
    return _with_env_vars(env, host, catalog)


def _interpreter(config: BuildConfig, host: Host) -> Interpreter | None:
    if config.python is None:
        return None
    return find_interpreter(config.python, host.environ, host.home, config.options.python_executable)


def _accelerator_toolkit(
    config: BuildConfig, host: Host, catalog: Catalog
) -> tuple[CudaToolkit | None, RocmToolkit | None]:
    accel = config.accelerator
    if accel.kind == "cuda" and accel.version:
        return find_cuda(catalog.cuda[accel.version], host.environ, host.cache_dir, config.options.cuda_home), None
    if accel.kind == "rocm" and accel.version:
        return None, find_rocm(accel.version, host.environ, config.options.rocm_path)
    return None, None


def _host_compiler(config: BuildConfig, host: Host, catalog: Catalog) -> HostCompiler:
    accel = config.accelerator
    cuda = catalog.cuda[accel.version] if accel.kind == "cuda" and accel.version else None
    compiler = find_host_compiler(host.environ, (cuda.gcc_min, cuda.gcc_max) if cuda else None)
    if cuda and not compiler.supported and not config.options.allow_unsupported_compiler:
        raise ToolchainError(
            f"The host compiler {compiler.cc} is gcc {compiler.version}, but CUDA {cuda.version} supports gcc "
            f"{compiler.supported_range}. Set CC/CXX to a gcc in that range, build with --docker, or set "
            "allow-unsupported-compiler = true to pass -allow-unsupported-compiler to nvcc."
        )
    return compiler


def _default_arch_list(config: BuildConfig, catalog: Catalog) -> str | None:
    accel = config.accelerator
    if config.options.arch_list:
        return config.options.arch_list
    if accel.kind == "cuda" and accel.version:
        return catalog.cuda[accel.version].arch_list
    if accel.kind == "rocm" and accel.version:
        return catalog.rocm[accel.version].offload_archs
    return None


def _clip_cuda_archs(arch_list: str, cuda: CudaToolkit, notices: list[str]) -> str:
    """Drop arches this nvcc cannot target (e.g. sm_50 on CUDA 13), with a notice."""
    if not cuda.gpu_archs:
        return arch_list
    kept = [a for a in arch_list.split(";") if a.removesuffix("+PTX") in cuda.gpu_archs]
    dropped = [a for a in arch_list.split(";") if a not in kept]
    if not kept:
        raise ToolchainError(
            f"None of the arches {arch_list} can be built by nvcc {cuda.full_version} at {cuda.home} "
            f"(it supports {', '.join(cuda.gpu_archs)}). Set arch-list to arches it supports."
        )
    if dropped:
        notices.append(f"arch list clipped to what nvcc {cuda.full_version} supports: dropped {', '.join(dropped)}")
    return ";".join(kept)


def cmake_cuda_architectures(arch_list: str) -> str:
    """7.5;12.0+PTX -> 75-real;120 (SASS only, and SASS plus PTX for +PTX entries)."""
    out = []
    for arch in arch_list.split(";"):
        number = arch.removesuffix("+PTX").replace(".", "")
        out.append(number if arch.endswith("+PTX") else f"{number}-real")
    return ";".join(out)


def _max_jobs(host: Host, accelerated: bool) -> int:
    """Cores minus two on big machines (capped at 12: FlashAttention-sized units OOM beyond),
    all cores on small ones, and no more jobs than memory allows (2 GiB each, 4 GiB for nvcc/hipcc)."""
    cores = host.cpu_count if host.cpu_count <= 4 else host.cpu_count - 2
    per_job = (4 if accelerated else 2) * 1024**3
    by_memory = host.memory_bytes // per_job if host.memory_bytes else cores
    return max(1, min(cores, 12, by_memory))


def source_date_epoch(host: Host, root: Path | None = None) -> int:
    """SOURCE_DATE_EPOCH if set, else the project's last commit time, else 1980-01-01."""
    raw = host.environ.get("SOURCE_DATE_EPOCH")
    if raw:
        if not raw.isdigit():
            raise ConfigError(
                f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds since 1970. Set it to an integer or unset it."
            )
        return int(raw)
    if root is None:
        return EPOCH_1980
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "log", "-1", "--format=%ct"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return EPOCH_1980
    text = out.stdout.strip()
    return int(text) if out.returncode == 0 and text.isdigit() else EPOCH_1980


def docker_image(config: BuildConfig, catalog: Catalog) -> str | None:
    family = catalog.images.get(config.package_type.value, {})
    template = family.get(config.accelerator.kind)
    if not template:
        return None
    # Content-addressed: the tag `builder image build` gives the image of this definition.
    return image_tag(template.format(version=config.accelerator.version or ""), config.accelerator)


def repair_plan(config: BuildConfig, catalog: Catalog) -> RepairPlan:
    accel = config.accelerator
    packages: tuple[RuntimePackage, ...] = ()
    sonames: tuple[str, ...] = ()
    if accel.kind == "cuda" and accel.version:
        sonames = catalog.cuda_sonames
        if config.options.cuda_mode is CudaMode.PYPI:
            packages = catalog.cuda[accel.version].packages
            if not packages:
                raise ConfigError(
                    f"CUDA {accel.version} has no NVIDIA runtime wheels in the catalog, so cuda-mode = pypi cannot "
                    "work for it. Set cuda-mode = bundled (--cuda-mode bundled)."
                )
    elif accel.kind == "rocm":
        sonames = catalog.rocm_sonames
        if config.options.cuda_mode is CudaMode.PYPI:
            # No ROCm runtime wheels are pinned in the catalog: ROCm builds bundle, as PyTorch's do.
            return RepairPlan(
                CudaMode.BUNDLED,
                _excludes(config, catalog),
                _keep(config, catalog),
                catalog.driver_sonames,
                sonames,
                (),
            )
    return RepairPlan(
        config.options.cuda_mode,
        _excludes(config, catalog),
        _keep(config, catalog),
        catalog.driver_sonames,
        sonames,
        packages,
    )


def _excludes(config: BuildConfig, catalog: Catalog) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*catalog.exclude, *config.options.exclude)))


def _keep(config: BuildConfig, catalog: Catalog) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*catalog.keep_names, *config.options.keep_name)))


def _with_env_vars(env: BuildEnvironment, host: Host, catalog: Catalog) -> BuildEnvironment:
    return replace(env, env=dict(sorted(build_env_vars(env, host, catalog).items())))


def build_env_vars(env: BuildEnvironment, host: Host, catalog: Catalog) -> dict[str, str]:
    """The variables a build step runs with (the set PyTorch's binary_populate_env writes)."""
    out = _common_vars(env, host)
    accel = env.config.accelerator
    cmake_args = [
        f"-DUSE_CUDA={'ON' if accel.kind == 'cuda' else 'OFF'}",
        f"-DUSE_ROCM={'ON' if accel.kind == 'rocm' else 'OFF'}",
    ]
    if env.config.cxx_abi is CxxAbi.PRE_CXX11:
        cmake_args.append("-DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0")
    path_dirs: list[str] = []
    _cuda_vars(env, catalog, out, cmake_args, path_dirs)
    _rocm_vars(env, out, cmake_args, path_dirs)
    if env.host_compiler:
        out.update({"CC": env.host_compiler.cc, "CXX": env.host_compiler.cxx})
        if env.cuda:
            cmake_args.append(f"-DCMAKE_CUDA_HOST_COMPILER={env.host_compiler.cxx}")
    out["CMAKE_ARGS"] = " ".join(shlex.quote(arg) for arg in cmake_args)
    if env.interpreter:
        out["PYTHON_EXECUTABLE"] = env.interpreter.path
        path_dirs.append(str(Path(env.interpreter.path).parent))
    if env.probed:
        out["PATH"] = _path(path_dirs, host)
    return out


def _common_vars(env: BuildEnvironment, host: Host) -> dict[str, str]:
    config, accel = env.config, env.config.accelerator
    cxx11 = config.cxx_abi is CxxAbi.CXX11
    out = {
        "TZ": "UTC",
        "PACKAGE_TYPE": config.package_type.value,
        "DESIRED_CUDA": accel.desired_cuda,
        "GPU_ARCH_TYPE": accel.kind,
        "GPU_ARCH_VERSION": accel.version or "",
        "DESIRED_DEVTOOLSET": "cxx11-abi" if cxx11 else "pre-cxx11",
        "_GLIBCXX_USE_CXX11_ABI": "1" if cxx11 else "0",
        "DATE": utc_day(host.now),
        "PYTORCH_BUILD_VERSION": env.version,
        "PYTORCH_BUILD_NUMBER": "1",
        "OVERRIDE_PACKAGE_VERSION": env.version,
        "BUILD_VERSION": env.version,
        "UPLOAD_CHANNEL": config.channel.value,
        "PIP_UPLOAD_FOLDER": {"nightly": "nightly/", "test": "test/"}.get(config.channel.value, ""),
        "MAX_JOBS": str(env.max_jobs),
        "CMAKE_BUILD_PARALLEL_LEVEL": str(env.max_jobs),
        "SOURCE_DATE_EPOCH": str(env.source_date_epoch),
        "PYTORCH_EXTRA_INSTALL_REQUIREMENTS": " | ".join(env.repair.requires_dist),
        "USE_CUDA": "1" if accel.kind == "cuda" else "0",
        "USE_ROCM": "1" if accel.kind == "rocm" else "0",
    }
    if config.python is not None:
        out["DESIRED_PYTHON"] = str(config.python)
    if config.package_type is PackageType.LIBTORCH and config.libtorch_variant:
        out["LIBTORCH_VARIANT"] = config.libtorch_variant.value
        out["BUILD_PYTHONLESS"] = "1"
    if env.docker_image:
        out["DOCKER_IMAGE"] = env.docker_image
    return out


def _cuda_vars(
    env: BuildEnvironment, catalog: Catalog, out: dict[str, str], cmake_args: list[str], path: list[str]
) -> None:
    accel = env.config.accelerator
    if accel.kind == "cuda" and accel.version and env.arch_list:
        flags = list(catalog.cuda[accel.version].nvcc_flags)
        if env.host_compiler and not env.host_compiler.supported:
            flags.append("-allow-unsupported-compiler")
        out.update(
            {"TORCH_CUDA_ARCH_LIST": env.arch_list, "TORCH_NVCC_FLAGS": " ".join(flags), "CUDA_VERSION": accel.version}
        )
        cmake_args.append(f"-DCMAKE_CUDA_ARCHITECTURES={cmake_cuda_architectures(env.arch_list)}")
    if env.cuda:
        out.update({"CUDA_HOME": env.cuda.home, "CUDA_PATH": env.cuda.home, "CUDACXX": env.cuda.nvcc})
        cmake_args.append(f"-DCMAKE_CUDA_COMPILER={env.cuda.nvcc}")
        path.append(str(Path(env.cuda.nvcc).parent))


def _rocm_vars(env: BuildEnvironment, out: dict[str, str], cmake_args: list[str], path: list[str]) -> None:
    accel = env.config.accelerator
    if accel.kind == "rocm" and accel.version and env.arch_list:
        out.update({"PYTORCH_ROCM_ARCH": env.arch_list, "ROCM_VERSION": accel.version})
        cmake_args.append(f"-DCMAKE_HIP_ARCHITECTURES={env.arch_list}")
    if env.rocm:
        out["ROCM_PATH"] = env.rocm.home
        path.append(str(Path(env.rocm.hipcc).parent))


def _path(prepend: list[str], host: Host) -> str:
    parts = [*prepend, *host.environ.get("PATH", "").split(":")]
    return ":".join(dict.fromkeys(p for p in parts if p))
