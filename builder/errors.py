"""One exception hierarchy; each class has a stable process exit code (see README)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BuilderError(Exception):
    """A user-facing error: printed as one paragraph, never as a traceback."""

    exit_code = 1


class ConfigError(BuilderError):
    """A build configuration, flag, environment variable or [tool.builder] key is wrong."""

    exit_code = 2


class CatalogError(BuilderError):
    """A file under builder/data is malformed."""

    exit_code = 3


class ToolchainError(BuilderError):
    """A required interpreter, compiler or CUDA/ROCm toolkit is missing or lies about itself."""

    exit_code = 4


class BuildError(BuilderError):
    exit_code = 5


class RepairError(BuilderError):
    exit_code = 6


class CheckError(BuilderError):
    exit_code = 7


class SmokeError(BuilderError):
    exit_code = 8


class DockerError(BuilderError):
    exit_code = 9


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' Did you mean X?' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""
