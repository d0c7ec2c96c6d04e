"""The project being built: its name, base version and [tool.builder] table."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from builder.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class Project:
    root: Path
    name: str | None
    base_version: str | None  # X.Y.Z without pre/dev/local parts ("2.15.0a0" -> "2.15.0")
    tool_settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pyproject(self) -> Path:
        return self.root / "pyproject.toml"


def load_project(root: Path) -> Project:
    """Read pyproject.toml (if any) and version.txt (PyTorch's convention) under root."""
    root = root.resolve()
    if not root.is_dir():
        raise ConfigError(
            f"Project directory {root} does not exist. Pass the directory that holds the project's pyproject.toml."
        )
    data: Mapping[str, Any] = {}
    if (root / "pyproject.toml").is_file():
        try:
            data = tomllib.loads((root / "pyproject.toml").read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{root / 'pyproject.toml'} is not valid TOML: {exc}. Fix the file.") from None
    project = data.get("project", {})
    tool = data.get("tool", {}).get("builder", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"[tool.builder] in {root / 'pyproject.toml'} must be a table.")
    version = project.get("version")
    if version is None and (root / "version.txt").is_file():
        version = (root / "version.txt").read_text().strip()
    return Project(
        root=root,
        name=project.get("name"),
        base_version=base_version(version, root) if version else None,
        tool_settings=tool,
    )


def base_version(text: str, where: Path) -> str:
    try:
        return Version(text).base_version
    except InvalidVersion:
        raise ConfigError(
            f"Project version {text!r} in {where} is not a PEP 440 version. Use X.Y.Z (optionally a0)."
        ) from None
