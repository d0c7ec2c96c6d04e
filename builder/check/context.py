"""What every check family receives: the scanned artifact and what it is expected to be."""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from pathlib import PurePosixPath
from typing import Any

from packaging.tags import Tag, parse_tag
from packaging.utils import canonicalize_name

from builder.binary.elf import ElfInfo
from builder.catalog import Catalog
from builder.check.artifact import Scan
from builder.config import BuildConfig
from builder.resolver import BuildEnvironment, RepairPlan

PROFILES = ("generic", "torch")
DEFAULT_MAX_SIZE_MB = 850.0  # PyTorch's WHEEL_SIZE_THRESHOLD_MB for release validation

# OpenMP runtimes by family: GNU, Intel, LLVM.  A hash-renamed graft keeps its stem.
OPENMP_RUNTIMES = {"libgomp": "GNU libgomp", "libiomp5": "Intel libiomp5", "libomp": "LLVM libomp"}
_HASHED = re.compile(r"^(?P<stem>lib[\w+.]*?)-[0-9a-f]{8}(?P<rest>\.so(?:\.[\d.]*)?)$")


@dataclass(frozen=True, kw_only=True)
class CheckOptions:
    """Knobs of `builder check` that are not part of a build config."""

    abi_namespaces: tuple[str, ...] = ()  # generic profile: C++ namespaces of the project (default: its name)
    main_library: str | None = None  # glob naming the project's main library (default: the largest own library)
    max_size_mb: float | None = DEFAULT_MAX_SIZE_MB  # None: report the size, enforce no ceiling
    expected_version: str | None = None  # exact version to require (default: env.version, else config rules)
    today: dt.date | None = None  # for the nightly date check (default: today in UTC)
    nightly_max_age_days: int = 3  # PyTorch's NIGHTLY_ALLOWED_DELTA


@dataclass(frozen=True)
class Context:
    scan: Scan
    elves: Mapping[str, ElfInfo]  # ELF members the checks look at (--ignore'd ones left out)
    config: BuildConfig | None
    env: BuildEnvironment | None
    profile: str
    options: CheckOptions
    catalog: Catalog
    plan: RepairPlan | None  # the config's repair plan; None without a config
    facts: dict[str, Any] = field(default_factory=dict)  # checks record what they measured here

    @property
    def metadata(self) -> Message | None:
        text = self.scan.texts.get(f"{self.scan.dist_info}/METADATA") if self.scan.dist_info else None
        return HeaderParser().parsestr(text.decode("utf-8", "replace")) if text is not None else None

    @property
    def wheel_file_tags(self) -> tuple[Tag, ...]:
        text = self.scan.texts.get(f"{self.scan.dist_info}/WHEEL") if self.scan.dist_info else None
        if text is None:
            return ()
        headers = HeaderParser().parsestr(text.decode("utf-8", "replace"))
        return tuple(t for line in headers.get_all("Tag") or [] for t in parse_tag(line.strip()))

    def requires(self) -> dict[str, str]:
        """Requires-Dist by canonical name -> the full requirement line."""
        meta = self.metadata
        out: dict[str, str] = {}
        for line in (meta.get_all("Requires-Dist") or []) if meta is not None else []:
            name = re.split(r"[\s\[;(<>=!~]", line.strip(), maxsplit=1)[0]
            out[canonicalize_name(name)] = line.strip()
        return out

    def keep_names(self) -> tuple[str, ...]:
        return self.plan.keep_names if self.plan is not None else self.catalog.keep_names

    def is_driver(self, soname: str) -> bool:
        return any(fnmatch.fnmatchcase(base_soname(soname), p) for p in self.catalog.driver_sonames)

    def is_accelerator(self, soname: str) -> bool:
        patterns = (*self.catalog.cuda_sonames, *self.catalog.rocm_sonames)
        return any(fnmatch.fnmatchcase(base_soname(soname), p) for p in patterns)

    def providers(self, soname: str) -> dict[str, str]:
        """NVIDIA runtime wheels (any CUDA version in the catalog) that ship ``soname``:
        canonical name -> site-packages-relative library directory."""
        out: dict[str, str] = {}
        for cuda in self.catalog.cuda.values():
            pkg = cuda.package_for(soname)
            if pkg is not None:
                out[canonicalize_name(pkg.name)] = pkg.lib_dir
        return out


def base_soname(name: str) -> str:
    """``libgomp-a34b3233.so.1`` (a hash-renamed graft) -> ``libgomp.so.1``; others unchanged."""
    match = _HASHED.match(PurePosixPath(name).name)
    return f"{match['stem']}{match['rest']}" if match else PurePosixPath(name).name


def is_hash_renamed(name: str) -> bool:
    return _HASHED.match(PurePosixPath(name).name) is not None


def openmp_family(soname: str) -> str | None:
    stem = base_soname(soname).split(".so", 1)[0]
    return OPENMP_RUNTIMES.get(stem)


def is_extension_module(member: str) -> bool:
    name = PurePosixPath(member).name
    return ".cpython-" in name or name.endswith(".abi3.so") or bool(re.search(r"\.cp\d+-win", name))


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)
