"""The host C/C++ compiler and whether a CUDA version accepts it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from builder.errors import ToolchainError
from builder.toolchains.run import query


@dataclass(frozen=True)
class HostCompiler:
    cc: str
    cxx: str
    version: str  # gcc -dumpfullversion
    supported: bool  # by the CUDA version in use (True when there is none)
    supported_range: str  # "6..15", or "" without CUDA

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def find_host_compiler(environ: Mapping[str, str], gcc_range: tuple[int, int] | None) -> HostCompiler:
    path = environ.get("PATH", "")
    cc = environ.get("CC") or shutil.which("gcc", path=path)
    cxx = environ.get("CXX") or shutil.which("g++", path=path)
    if not cc or not cxx:
        raise ToolchainError(
            "No host C/C++ compiler found (CC/CXX unset and gcc/g++ not on PATH). "
            "Install gcc and g++ (apt-get install -y g++)."
        )
    version = (query([cc, "-dumpfullversion"]) or "").strip()
    if not version[:1].isdigit():
        raise ToolchainError(
            f"The host compiler {cc} did not report a version with -dumpfullversion; builder supports gcc. "
            "Set CC/CXX to gcc/g++."
        )
    major = int(version.split(".")[0])
    if gcc_range is None:
        return HostCompiler(cc, cxx, version, True, "")
    low, high = gcc_range
    return HostCompiler(cc, cxx, version, low <= major <= high, f"{low}..{high}")
