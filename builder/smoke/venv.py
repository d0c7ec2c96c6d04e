"""Fresh environments for smoke tests: uv when present (fast), venv otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.errors import SmokeError


@dataclass(frozen=True)
class FreshEnv:
    root: Path
    python: Path
    tool: str  # "uv" or "venv"
    seconds: float


def create(interpreter: str, root: Path) -> FreshEnv:
    start = time.monotonic()
    uv = shutil.which("uv") or shutil.which("uv", path=os.path.dirname(sys.executable))
    if uv:
        argv = [uv, "venv", "--quiet", "--seed", "--python", interpreter, str(root)]
    else:
        argv = [interpreter, "-m", "venv", str(root)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SmokeError(f"Creating a fresh environment with {interpreter} failed: {done.stderr.strip()[-1500:]}")
    return FreshEnv(root, root / "bin" / "python", "uv" if uv else "venv", time.monotonic() - start)


def clean_environ() -> dict[str, str]:
    """The caller's environment without what would let a broken artifact pass."""
    drop = ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX")
    return {k: v for k, v in os.environ.items() if k not in drop}


def install(env: FreshEnv, artifacts: Sequence[Path], index_args: Sequence[str], log: Path) -> None:
    argv = [
        str(env.python),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *index_args,
        *map(str, artifacts),
    ]
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}\n")
        handle.flush()
        done = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, env=clean_environ(), check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise SmokeError(
            f"Installing {', '.join(a.name for a in artifacts)} into a fresh environment failed; log {log}:\n{tail}"
        )


def run_in_tmp_cwd(env: FreshEnv, argv: Sequence[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run from an empty temporary directory, so nothing is imported from a source tree."""
    with tempfile.TemporaryDirectory(prefix="builder-smoke-cwd-") as cwd:
        return subprocess.run(
            [str(env.python), *argv],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=clean_environ(),
            timeout=timeout,
            check=False,
        )
