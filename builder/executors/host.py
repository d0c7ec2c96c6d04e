"""Run build commands on this machine, streaming output to a log file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Variables from the caller's environment that never reach a build: a build must find its
# libraries through RPATHs, not through whatever the caller's shell had loaded.
DROPPED = ("LD_LIBRARY_PATH", "LD_PRELOAD", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX")


@dataclass(frozen=True)
class Result:
    returncode: int
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class HostExecutor:
    """Runs commands with the host environment plus the resolved build variables."""

    def __init__(self, base_environ: Mapping[str, str] | None = None) -> None:
        source = os.environ if base_environ is None else base_environ
        self.base = {k: v for k, v in source.items() if k not in DROPPED}

    def run(self, argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> Result:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(argv)}\n")
            handle.flush()
            done = subprocess.run(
                list(argv), env={**self.base, **env}, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, check=False
            )
        return Result(done.returncode, log)
