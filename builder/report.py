"""build-report.json and the end-of-run summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder import __version__, output
from builder.fsutil import atomic_write_text, sha256_file


@dataclass(frozen=True)
class Artifact:
    name: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> Artifact:
        return cls(path.name, path.stat().st_size, sha256_file(path))


@dataclass
class BuildRecord:
    """One config's build, filled in as its steps run."""

    config: str
    environment: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    artifacts: list[Artifact] = field(default_factory=list)
    status: str = "running"
    error: str | None = None
    exit_code: int = 0
    log: str | None = None
    checks: dict[str, Any] = field(default_factory=dict)  # builder check's report
    smoke: dict[str, Any] = field(default_factory=dict)  # builder smoke's report


def write_report(records: list[BuildRecord], out_dir: Path) -> Path:
    path = out_dir / "build-report.json"
    doc = {"builder_version": __version__, "builds": [asdict(r) for r in records]}
    atomic_write_text(path, json.dumps(doc, indent=2, default=str) + "\n")
    return path


def print_summary(records: list[BuildRecord]) -> None:
    rows = []
    for r in records:
        artifact = r.artifacts[0] if r.artifacts else None
        total = sum(r.steps.values())
        rows.append(
            [
                r.config,
                r.status,
                artifact.name if artifact else "-",
                f"{artifact.size / 1e6:.2f} MB" if artifact else "-",
                f"{total:.1f} s",
            ]
        )
    headers = ["config", "status", "artifact", "size", "time"]
    output.table("builds", headers, rows)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]
    output.step_summary("\n".join(lines))
