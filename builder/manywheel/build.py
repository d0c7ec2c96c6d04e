"""Build the raw (unrepaired) wheel through PEP 517 with the resolved interpreter.

pip builds in an isolated environment holding only the project's declared build
requirements, with the resolved build variables (CMAKE_ARGS, CUDA_HOME, BUILD_VERSION, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from builder.errors import BuildError
from builder.executors.host import HostExecutor
from builder.resolver import BuildEnvironment


def build_env_vars(env: BuildEnvironment, build_dir: Path) -> dict[str, str]:
    """The resolved variables plus what the PEP 517 front end needs for a reproducible build."""
    variables = dict(env.env)
    # A fixed build directory: the same paths give the same bytes, and a rebuild is incremental.
    variables["SKBUILD_BUILD_DIR"] = str(build_dir)
    variables["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    variables["PYTHONDONTWRITEBYTECODE"] = "1"
    link_dir = cudart_link_dir(env, build_dir)
    if link_dir:
        existing = variables.get("LIBRARY_PATH", "")
        variables["LIBRARY_PATH"] = f"{link_dir}:{existing}" if existing else str(link_dir)
    return variables


def cudart_link_dir(env: BuildEnvironment, build_dir: Path) -> Path | None:
    """A directory with libcudart.so when the toolkit lacks the unversioned name.

    NVIDIA's PyPI runtime wheels ship only libcudart.so.N; linking with -lcudart needs the
    development symlink, which builder makes outside the toolkit (it may be read-only)."""
    if env.cuda is None:
        return None
    lib = Path(env.cuda.lib_dir)
    if (lib / "libcudart.so").exists():
        return None
    versioned = sorted(lib.glob("libcudart.so.*"))
    if not versioned:
        return None
    links = build_dir.parent / f"{build_dir.name}-links"
    links.mkdir(parents=True, exist_ok=True)
    target = links / "libcudart.so"
    if not target.is_symlink() or os.readlink(target) != str(versioned[0]):
        target.unlink(missing_ok=True)
        target.symlink_to(versioned[0])
    return links


def build_wheel(env: BuildEnvironment, executor: HostExecutor, work: Path, build_dir: Path, log: Path) -> Path:
    """Run the PEP 517 build; returns the one wheel it produced."""
    if env.interpreter is None:
        raise BuildError(f"{env.config.id} has no interpreter to build with (resolved with --no-host?).")
    out = work / "raw"
    out.mkdir(parents=True, exist_ok=True)
    argv = [env.interpreter.path, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(env.project.root)]
    result = executor.run(argv, build_env_vars(env, build_dir), log)
    if result.returncode != 0:
        raise BuildError(
            f"Building {env.config.id} failed (exit {result.returncode}); the full log is {log}. "
            f"Last lines:\n{result.tail()}"
        )
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"Building {env.config.id} produced {len(wheels)} wheels in {out}, expected one; see {log}.")
    return wheels[0]
