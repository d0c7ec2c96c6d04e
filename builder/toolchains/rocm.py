"""Find and verify a ROCm/HIP toolchain by running hipcc --version."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.errors import ToolchainError
from builder.toolchains.run import query

_HIP_RE = re.compile(r"HIP version: (\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class RocmToolkit:
    version: str  # X.Y as hipcc reports it
    full_version: str
    home: str
    hipcc: str
    source: str


def hipcc_version(hipcc: str) -> tuple[str, str] | None:
    match = _HIP_RE.search(query([hipcc, "--version"]) or "")
    return (f"{match[1]}.{match[2]}", f"{match[1]}.{match[2]}.{match[3]}") if match else None


def find_rocm(
    wanted: str, environ: Mapping[str, str], explicit: str | None = None, roots: Sequence[str] = ("/opt",)
) -> RocmToolkit:
    """wanted is X.Y or X.Y.Z; hipcc reports X.Y.<build>, so X.Y is what can be verified."""
    minor = ".".join(wanted.split(".")[:2])
    homes: list[tuple[Path, str]] = [(Path(explicit), "ROCM_PATH")] if explicit else []
    if not explicit:
        for root in roots:
            homes += [(Path(root) / f"rocm-{wanted}", f"{root}/rocm-{wanted}"), (Path(root) / "rocm", f"{root}/rocm")]
        on_path = shutil.which("hipcc", path=environ.get("PATH", ""))
        if on_path:
            homes.append((Path(on_path).resolve().parent.parent, "PATH"))
    looked = []
    for home, source in homes:
        hipcc = home / "bin" / "hipcc"
        reported = hipcc_version(str(hipcc)) if hipcc.exists() else None
        if reported is None:
            looked.append(f"{home} ({source}): no working bin/hipcc")
            continue
        claim = re.search(r"rocm-(\d+\.\d+)", home.name)
        if claim and claim[1] != reported[0]:
            raise ToolchainError(
                f"The ROCm install at {home} is named for ROCm {claim[1]}, but its hipcc reports HIP {reported[1]}. "
                f"Fix that install or set ROCM_PATH to a real ROCm {wanted}."
            )
        if reported[0] == minor:
            return RocmToolkit(minor, reported[1], str(home), str(hipcc), source)
        if explicit:
            raise ToolchainError(
                f"ROCM_PATH / rocm-path points at {home}, whose hipcc reports HIP {reported[1]}, but the config asks "
                f"for ROCm {wanted}. Point it at ROCm {wanted} or unset it."
            )
        looked.append(f"{home} ({source}): hipcc reports {reported[1]}")
    raise ToolchainError(
        f"No ROCm {wanted} toolchain found. Looked at: {'; '.join(looked) or 'nothing'}. "
        "Install ROCm (hipcc) and set ROCM_PATH, or build inside the config's Docker image with --docker."
    )
