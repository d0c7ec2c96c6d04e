"""Findings and the check report: what `builder check` says about one artifact.

Every finding carries a stable id (``load.unresolved``): CI scripts, ``--ignore`` rules and
tests match on it, so an id never changes meaning once released.  The message says what is
wrong and what to do about it.
"""

from __future__ import annotations

import enum
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    id: str  # family.problem, e.g. "record.hash-mismatch"
    severity: Severity
    file: str  # artifact-relative path ("" for the artifact as a whole)
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "severity": self.severity.value, "file": self.file, "message": self.message}


def error(finding_id: str, file: str, message: str) -> Finding:
    return Finding(finding_id, Severity.ERROR, file, message)


def warning(finding_id: str, file: str, message: str) -> Finding:
    return Finding(finding_id, Severity.WARNING, file, message)


def ignored(finding: Finding, patterns: Sequence[str]) -> bool:
    """True when the finding's file matches an --ignore glob (fnmatch: '*' crosses '/')."""
    return bool(finding.file) and any(fnmatch.fnmatchcase(finding.file, p) for p in patterns)


@dataclass(frozen=True)
class CheckReport:
    """The outcome of `builder check` on one artifact."""

    artifact: str
    kind: str  # wheel | zip | dir
    profile: str
    config: str | None
    findings: tuple[Finding, ...]
    size: int  # bytes of the artifact file (the sum of its files for a directory)
    unpacked_size: int
    files: int
    elf_files: int
    seconds: float
    ignored: int = 0  # findings dropped by --ignore
    facts: Mapping[str, Any] = field(default_factory=dict)  # what was measured, for humans and JSON

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    def ids(self, severity: Severity | None = None) -> set[str]:
        return {f.id for f in self.findings if severity is None or f.severity is severity}

    def as_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "kind": self.kind,
            "profile": self.profile,
            "config": self.config,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "ignored": self.ignored,
            "size": self.size,
            "unpacked_size": self.unpacked_size,
            "files": self.files,
            "elf_files": self.elf_files,
            "seconds": round(self.seconds, 3),
            "facts": dict(self.facts),
            "findings": [f.as_dict() for f in self.findings],
        }


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Errors first, then by id and file: stable output that diffs well between runs."""
    return tuple(sorted(findings, key=lambda f: (f.severity is not Severity.ERROR, f.id, f.file, f.message)))
