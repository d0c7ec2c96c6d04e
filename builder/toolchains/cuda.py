"""Find and verify a CUDA toolkit: explicit CUDA_HOME, /usr/local/cuda-X.Y, /usr/local/cuda,
nvcc on PATH, or a relocatable toolkit installed from PyPI into builder's cache.

A toolkit is identified by what its nvcc prints, never by its folder name; a folder or tag
that claims another version than nvcc reports is an error naming both.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.catalog import CudaVersion
from builder.errors import ToolchainError
from builder.toolchains.run import query

_RELEASE_RE = re.compile(r"release (\d+\.\d+), V(\d+\.\d+\.\d+)")
_CLAIM_RE = re.compile(r"cuda[-_]?(\d+\.\d+)$|^cu(\d+)$")
STANDARD_ROOTS = ("/usr/local",)


@dataclass(frozen=True)
class CudaToolkit:
    version: str  # X.Y as nvcc reports it
    full_version: str  # X.Y.Z
    home: str  # CUDA_HOME-style root (bin/nvcc, include/, lib64/ or lib/)
    nvcc: str
    source: str  # CUDA_HOME, /usr/local/cuda-X.Y, /usr/local/cuda, PATH, pypi
    gpu_archs: tuple[str, ...]  # compute capabilities nvcc can target ("7.5", "12.0", ...)

    @property
    def lib_dir(self) -> str:
        home = Path(self.home)
        return str(home / "lib64") if (home / "lib64").is_dir() else str(home / "lib")


def nvcc_version(nvcc: str) -> tuple[str, str] | None:
    out = query([nvcc, "--version"])
    match = _RELEASE_RE.search(out or "")
    return (match[1], match[2]) if match else None


def nvcc_root(nvcc: str) -> Path:
    """The toolkit root of an nvcc found on PATH, which may be a wrapper script or a symlink:
    nvcc's dry run names the directory it really runs from."""
    out = query([nvcc, "--dryrun", "-x", "cu", "-c", "/dev/null", "-o", "/dev/null"]) or ""
    match = re.search(r"^#\$ _HERE_=(.+)$", out, re.MULTILINE)
    here = Path(match[1].strip()) if match else Path(nvcc).resolve().parent
    return here.parent


def gpu_archs(nvcc: str) -> tuple[str, ...]:
    """compute_75 -> 7.5, compute_120 -> 12.0; empty when this nvcc cannot list them."""
    out = query([nvcc, "--list-gpu-arch"]) or ""
    archs = [m[1] for m in re.finditer(r"compute_(\d+)", out)]
    return tuple(f"{a[:-1]}.{a[-1]}" for a in archs)


def claimed_version(home: Path) -> str | None:
    """What a folder name claims: cuda-12.8 -> 12.8, PyPI's nvidia/cu13 -> 13 (major only)."""
    match = _CLAIM_RE.search(home.name)
    if not match:
        return None
    return match[1] or match[2]


def _inspect(home: Path, source: str, wanted: str) -> CudaToolkit | str:
    """The toolkit at home if it is the wanted version; otherwise why not (for the error)."""
    nvcc = home / "bin" / "nvcc"
    if not nvcc.exists():
        return f"{home} ({source}): no bin/nvcc"
    reported = nvcc_version(str(nvcc))
    if reported is None:
        return f"{home} ({source}): {nvcc} --version failed"
    version, full = reported
    claim = claimed_version(home)
    if claim and not (version == claim or version.split(".")[0] == claim):
        raise ToolchainError(
            f"The CUDA toolkit at {home} ({source}) is named for CUDA {claim}, but its nvcc reports "
            f"CUDA {full}. Builder trusts the compiler, not the folder name: fix or remove that install, "
            f"or point CUDA_HOME / --cuda-home at a real CUDA {wanted} toolkit."
        )
    if version != wanted:
        return f"{home} ({source}): nvcc reports {full}"
    return CudaToolkit(version, full, str(home), str(nvcc), source, gpu_archs(str(nvcc)))


def find_cuda(
    wanted: CudaVersion,
    environ: Mapping[str, str],
    cache_dir: Path,
    explicit: str | None = None,
    roots: Sequence[str] = STANDARD_ROOTS,
) -> CudaToolkit:
    version = wanted.version
    if explicit:
        result = _inspect(Path(explicit), "CUDA_HOME", version)
        if isinstance(result, CudaToolkit):
            return result
        raise ToolchainError(
            f"CUDA_HOME / cuda-home points at {explicit}, which is not a CUDA {version} toolkit: "
            f"{result.split(': ', 1)[1]}. "
            f"Point it at a CUDA {version} toolkit or unset it to let builder search."
        )
    looked: list[str] = []
    homes: list[tuple[Path, str]] = []
    for root in roots:
        homes += [(Path(root) / f"cuda-{version}", f"{root}/cuda-{version}"), (Path(root) / "cuda", f"{root}/cuda")]
    on_path = shutil.which("nvcc", path=environ.get("PATH", ""))
    if on_path:
        homes.append((nvcc_root(on_path), "PATH"))
    homes += [
        (nvcc.parent.parent, "pypi") for nvcc in sorted(cache_dir.glob(f"toolkits/cuda-{version}/nvidia/cu*/bin/nvcc"))
    ]
    seen: set[Path] = set()
    for home, source in homes:
        if home.resolve() in seen or not home.exists():
            continue
        seen.add(home.resolve())
        result = _inspect(home, source, version)
        if isinstance(result, CudaToolkit):
            return result
        looked.append(result)
    hint = f" or `builder toolchain install cuda{version}` (a relocatable toolkit from PyPI)" if wanted.toolkit else ""
    raise ToolchainError(
        f"No CUDA {version} toolkit found. Looked at: {'; '.join(looked) or 'no candidate folders exist'}. "
        f"Install CUDA {version} and set CUDA_HOME{hint}, build inside the config's Docker image with --docker, "
        "or choose a config for a CUDA version this machine has."
    )


def pip_toolkit_prefix(cache_dir: Path, version: str) -> Path:
    return cache_dir / "toolkits" / f"cuda-{version}"


def install_pip_toolkit(wanted: CudaVersion, python: str, cache_dir: Path) -> Path:
    """pip-install the catalog's toolkit wheels into builder's cache; returns the CUDA_HOME."""
    if not wanted.toolkit:
        raise ToolchainError(
            f"CUDA {wanted.version} has no compiling toolkit on PyPI (only 13.x wheels ship a working nvcc). "
            "Install it from NVIDIA or your distribution, or build with --docker."
        )
    prefix = pip_toolkit_prefix(cache_dir, wanted.version)
    partial = prefix.with_name(prefix.name + ".partial")
    subprocess.run(["rm", "-rf", str(partial)], check=True)
    # not --no-deps: nvcc 13.x takes its crt headers and nvvm from dependency wheels
    cmd = [python, "-m", "pip", "install", "--quiet", "--target", str(partial), *wanted.toolkit]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ToolchainError(
            f"Installing the CUDA {wanted.version} toolkit from PyPI failed ({' '.join(cmd)}): "
            f"{done.stderr.strip()[-2000:]}"
        )
    subprocess.run(["rm", "-rf", str(prefix)], check=True)
    partial.rename(prefix)  # appears complete or not at all
    homes = sorted(prefix.glob("nvidia/cu*/bin/nvcc"))
    if not homes:
        raise ToolchainError(
            f"The PyPI toolkit in {prefix} has no nvidia/cu*/bin/nvcc; the wheels {wanted.toolkit} changed layout."
        )
    return homes[0].parent.parent
