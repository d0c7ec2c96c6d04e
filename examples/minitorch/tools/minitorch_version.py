"""In-tree scikit-build-core metadata provider for minitorch's version.

The version of a release build comes from the environment, as with torch:
``BUILD_VERSION`` (what builder sets), then ``PYTORCH_BUILD_VERSION``, then the
base version in ``version.txt`` (``0.3.0a0``) for a plain developer build.
A stock provider cannot read an environment variable, hence this small plugin
(``provider-path`` in pyproject.toml). CMakeLists.txt applies the same rules
when it runs without scikit-build-core, so both always agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_VARS = ("BUILD_VERSION", "PYTORCH_BUILD_VERSION")
VERSION_FILE = Path(__file__).resolve().parent.parent / "version.txt"


def raw_version() -> tuple[str, str]:
    """The version string and where it came from."""
    for var in ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            return value, f"environment variable {var}"
    return VERSION_FILE.read_text(encoding="utf-8").strip(), str(VERSION_FILE)


def dynamic_metadata(field: str, settings: Mapping[str, Any] | None = None) -> str:
    if field != "version":
        raise RuntimeError(f"minitorch_version only provides 'version', not {field!r}")
    if settings:
        raise RuntimeError(f"minitorch_version takes no settings, got {sorted(settings)}")

    from packaging.version import InvalidVersion, Version  # scikit-build-core depends on it

    value, source = raw_version()
    try:
        # Normalised, so the wheel name, METADATA and minitorch.__version__ agree.
        return str(Version(value))
    except InvalidVersion:
        raise RuntimeError(
            f"{source} = {value!r} is not a PEP 440 version "
            "(expected e.g. 0.3.0, 0.3.0.dev20261122+cpu or 0.3.0rc1+cu130)"
        ) from None
