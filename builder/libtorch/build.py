"""Build a project's C++ library without Python and package it as a libtorch-style archive.

The project is configured with plain CMake and the resolved build variables (CMAKE_ARGS,
CUDA_HOME, BUILD_VERSION, ...). Two project-agnostic conventions say what to build:
PyTorch's ``BUILD_PYTHONLESS=1`` (the resolver exports it for libtorch configs) and CMake's
own ``BUILD_SHARED_LIBS`` (OFF for the static variants). A project honours them by making
them the defaults of its own options, as examples/minitorch does.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder import output
from builder.config import CudaMode, LibtorchVariant
from builder.errors import BuildError
from builder.executors.host import HostExecutor
from builder.fsutil import exclusive
from builder.libtorch.archive import (
    ArchiveName,
    DependencyPolicy,
    archive_stem,
    bundle_shared_dependencies,
    bundle_static_dependencies,
    git_head,
    missing_layout,
    pack,
    set_origin_rpaths,
    split_debug,
    toolchain_runtime,
    write_build_info,
)
from builder.manywheel.build import cudart_link_dir
from builder.resolver import BuildEnvironment

if TYPE_CHECKING:
    from builder.pipeline import Workspace

COMPANIONS = "companions"  # files in <work>/companions travel with the artifact (the debug archive)
OPENMP_RUNTIMES = ("libgomp.so.1",)


@dataclass(frozen=True)
class LibtorchBuild:
    archive: Path
    debug_archive: Path | None
    bundled: tuple[str, ...]


def variant_of(env: BuildEnvironment) -> LibtorchVariant:
    return env.config.libtorch_variant or LibtorchVariant.SHARED_WITH_DEPS


def is_static(variant: LibtorchVariant) -> bool:
    return variant.value.startswith("static-")


def with_deps(variant: LibtorchVariant) -> bool:
    return variant.value.endswith("-with-deps")


def cmake_argv(env: BuildEnvironment, source: Path, build_dir: Path, generator: str | None) -> list[str]:
    variant = variant_of(env)
    # RelWithDebInfo only when the debug symbols are wanted: they are split off afterwards.
    build_type = "RelWithDebInfo" if env.config.options.debug_archive else "Release"
    argv = ["cmake", "-S", str(source), "-B", str(build_dir), f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DBUILD_SHARED_LIBS={'OFF' if is_static(variant) else 'ON'}"]
    if generator:
        argv += ["-G", generator]
    return argv + shlex.split(env.env.get("CMAKE_ARGS", ""))


def build_variables(env: BuildEnvironment, build_dir: Path) -> dict[str, str]:
    variables = dict(env.env)
    link_dir = cudart_link_dir(env, build_dir)
    if link_dir:  # a PyPI toolkit lacks the unversioned libcudart.so that -lcudart needs
        existing = variables.get("LIBRARY_PATH", "")
        variables["LIBRARY_PATH"] = f"{link_dir}:{existing}" if existing else str(link_dir)
    return variables


def _run(executor: HostExecutor, argv: Sequence[str], variables: dict[str, str], log: Path, what: str) -> None:
    result = executor.run(argv, variables, log)
    if result.returncode != 0:
        raise BuildError(f"{what} failed (exit {result.returncode}); the full log is {log}. Last lines:\n"
                         f"{result.tail()}")


def compile_and_install(env: BuildEnvironment, executor: HostExecutor, build_dir: Path, prefix: Path,
                        log: Path) -> None:
    variables = build_variables(env, build_dir)
    # A configured build directory remembers its generator (naming another one is an error).
    fresh = not (build_dir / "CMakeCache.txt").exists()
    generator = "Ninja" if fresh and shutil.which("ninja") else None
    _run(executor, cmake_argv(env, env.project.root, build_dir, generator), variables, log,
         f"Configuring {env.config.id}")
    _run(executor, ["cmake", "--build", str(build_dir), "--parallel", str(env.max_jobs)], variables, log,
         f"Building {env.config.id}")
    _run(executor, ["cmake", "--install", str(build_dir), "--prefix", str(prefix)], variables, log,
         f"Installing {env.config.id}")


def package_tree(env: BuildEnvironment, top: Path) -> tuple[str, ...]:
    """Fix up an installed tree in place: layout, RPATHs, bundled dependencies, build info."""
    missing = missing_layout(top)
    if missing:
        raise BuildError(
            f"The install tree of {env.project.root} has no {', '.join(missing)}. A libtorch archive needs lib/, "
            "include/ and share/cmake/<Pkg>/: install the library, its headers and a CMake package config "
            "(install(EXPORT ...)) at the prefix root when BUILD_PYTHONLESS=1."
        )
    variant = variant_of(env)
    lib_dir = top / "lib"
    bundled: list[str] = []
    if with_deps(variant):
        bundle_accel = env.repair.mode is CudaMode.BUNDLED
        search = (env.cuda.lib_dir,) if env.cuda else ()
        policy = DependencyPolicy.for_arch(env.config.arch, env.repair.driver_sonames,
                                           env.repair.accelerator_sonames, bundle_accel, search)
        bundled += bundle_shared_dependencies(lib_dir, policy)
        if is_static(variant):
            bundled += bundle_static_dependencies(lib_dir, _static_candidates(env, bundle_accel))
    set_origin_rpaths(lib_dir)
    write_build_info(top, env.version, git_head(env.project.root))
    return tuple(bundled)


def _static_candidates(env: BuildEnvironment, bundle_accel: bool) -> list[Path]:
    cxx = env.env.get("CXX") or "c++"
    found = [p for p in (toolchain_runtime(cxx, so) for so in OPENMP_RUNTIMES) if p is not None]
    if bundle_accel and env.cuda:
        found += sorted(Path(env.cuda.lib_dir).glob("libcudart.so.[0-9]*"))[:1]
    return found


def archive_name(env: BuildEnvironment) -> ArchiveName:
    return ArchiveName(archive_stem(env.project.name or env.project.root.name), variant_of(env), env.version)


def build_archive(env: BuildEnvironment, executor: HostExecutor, work: Path, build_dir: Path,
                  log: Path) -> LibtorchBuild:
    """Configure, build and install into <work>/stage/<stem>, package, zip (and the debug zip)."""
    name = archive_name(env)
    stage = work / "stage"
    top = stage / name.stem
    shutil.rmtree(stage, ignore_errors=True)
    compile_and_install(env, executor, build_dir, top, log)
    bundled = package_tree(env, top)
    debug = None
    if env.config.options.debug_archive:
        debug_stage = work / "debug-stage"
        if split_debug(top / "lib", debug_stage / name.stem / "lib"):
            debug = work / COMPANIONS / name.debug_file_name
            debug.parent.mkdir(parents=True, exist_ok=True)
            pack(debug_stage, debug, env.source_date_epoch)
    archive = work / name.file_name
    pack(stage, archive, env.source_date_epoch)
    return LibtorchBuild(archive, debug, bundled)


def build_libtorch(env: BuildEnvironment, space: Workspace) -> Path:
    """The pipeline's builder for libtorch configs (see builder.pipeline.BUILDERS)."""
    with space.step("build"), exclusive(space.build_dir.with_name(space.build_dir.name + ".lock")):
        result = build_archive(env, space.executor, space.work, space.build_dir, space.log)
    if result.bundled:
        output.notice(f"{env.config.id}: bundled {', '.join(result.bundled)} into lib/")
    return result.archive
