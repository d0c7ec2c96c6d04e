"""Running a tool to ask it what it is."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence


def query(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60) -> str | None:
    """stdout+stderr of a successful run, or None if the tool is missing, fails or hangs."""
    try:
        out = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout + out.stderr
