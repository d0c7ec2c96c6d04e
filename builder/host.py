"""Facts about the machine a resolution runs on, captured once and passed along frozen."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Host:
    environ: Mapping[str, str] = field(default_factory=dict)
    cpu_count: int = 1
    memory_bytes: int = 0
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    probe: bool = True  # False: resolve without running anything on this machine (--no-host)

    @classmethod
    def current(cls, *, probe: bool = True) -> Host:
        return cls(environ=dict(os.environ), cpu_count=_cpu_count(), memory_bytes=_memory_bytes(), probe=probe)

    @property
    def home(self) -> Path:
        return Path(self.environ.get("HOME") or Path.home())

    @property
    def cache_dir(self) -> Path:
        """Where builder keeps downloaded toolkits and test inputs (BUILDER_CACHE_DIR overrides)."""
        if self.environ.get("BUILDER_CACHE_DIR"):
            return Path(self.environ["BUILDER_CACHE_DIR"])
        base = self.environ.get("XDG_CACHE_HOME") or str(self.home / ".cache")
        return Path(base) / "builder"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 0
