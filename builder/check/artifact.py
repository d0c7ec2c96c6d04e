"""Read an artifact once: every member hashed, only ELF members written out, ELF headers parsed.

A wheel's RECORD can only be verified by inflating every member, so that one pass does all
the work a check needs from the archive: each member is inflated exactly once (largest
first, in threads: zlib and hashlib release the GIL), hashed with the algorithm its RECORD
row names, and written to the scratch tree only when its first bytes are ELF.  Nothing else
is unpacked.  Archives without RECORD (libtorch zips) stop inflating a member as soon as its
first bytes say it is not ELF.

Directories are either an unpacked tree (a libtorch install, an unpacked wheel) or an
installed package (``site-packages/torch``, whose ``*.dist-info`` lies beside it); then the
files are read in place and nothing is copied.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.binary.elf import ELF_MAGIC, ElfError, ElfInfo, read_elf
from builder.binary.wheelfile import WheelFileError, WheelReader, ZipMember, record_hash
from builder.check.findings import Finding, error
from builder.errors import ConfigError

# Small files the checks read whole (wheel metadata, libtorch's version stamps).
TEXT_NAMES = ("WHEEL", "METADATA", "build-version", "build-hash")
HASHES = frozenset({"sha256", "sha384", "sha512", "blake2b", "blake2s", "sha3_256", "sha3_384", "sha3_512"})


@dataclass(frozen=True)
class RecordRow:
    path: str
    hash: str  # "sha256=..." or ""
    size: int | None
    line: int


@dataclass(frozen=True)
class Digest:
    """What a member really holds, for the RECORD comparison."""

    hash: str | None  # in the algorithm its RECORD row asked for; None when not hashed
    size: int


@dataclass(frozen=True)
class Scan:
    """One artifact, read: what every check works from."""

    path: Path
    kind: str  # "wheel" | "zip" | "dir"
    root: Path  # ELF files (and symlinks) at their artifact-relative paths
    files: Mapping[str, int]  # every file -> size, artifact-relative ('/'-separated)
    symlinks: Mapping[str, str]  # member -> link target
    elves: Mapping[str, ElfInfo]
    texts: Mapping[str, bytes]
    dist_info: str | None
    record: tuple[RecordRow, ...] | None  # None: the artifact has no RECORD
    digests: Mapping[str, Digest]
    problems: tuple[Finding, ...]  # found while reading (corrupt members, bad ELF)
    size: int
    site_root: Path | None = None  # installed package: the site-packages it lives in

    @property
    def unpacked_size(self) -> int:
        return sum(self.files.values())


class ArtifactError(Exception):
    """The archive cannot be read at all (not a zip, truncated, members escaping the tree)."""


def scan(path: Path, work: Path) -> Scan:
    """Read ``path`` (wheel, zip or directory); ELF members go under ``work``."""
    if path.is_dir():
        return _scan_dir(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist. Pass a wheel (.whl), a libtorch archive (.zip) or a directory.")
    if path.suffix not in (".whl", ".zip"):
        raise ConfigError(
            f"{path} is neither a wheel (.whl), a zip archive (.zip) nor a directory. "
            "builder check reads wheels, libtorch zips and installed or unpacked trees."
        )
    try:
        with WheelReader(path) as reader:
            return _scan_archive(path, reader, work)
    except WheelFileError as exc:
        raise ArtifactError(str(exc)) from None


# --------------------------------------------------------------------------------------
# Archives


def _scan_archive(path: Path, reader: WheelReader, work: Path) -> Scan:
    wheel = path.suffix == ".whl"
    dist_info = reader.dist_info if wheel else None
    record_name = reader.record_path if wheel else None
    record = _parse_record(reader.read(record_name).decode("utf-8", "replace")) if (
        record_name and record_name in reader) else None
    algorithms = {row.path: _algorithm(row.hash) for row in record or ()}
    members = sorted((m for m in reader.members if not m.is_dir), key=lambda m: -m.size)
    with ThreadPoolExecutor(_workers(), thread_name_prefix="check-scan") as pool:
        results = list(pool.map(lambda m: _scan_member(reader, m, work, algorithms.get(m.name)), members))
    problems = [r.problem for r in results if r.problem is not None]
    elf_names = [r.name for r in results if r.is_elf and r.problem is None]
    elves, elf_problems = read_elves(work, elf_names)
    texts = {m.name: reader.read(m.name) for m in members if _is_text(m.name, dist_info) and m.size < 1 << 24}
    return Scan(
        path=path,
        kind="wheel" if wheel else "zip",
        root=work,
        files={m.name: m.size for m in members if not m.is_symlink},
        symlinks={r.name: r.link for r in results if r.link is not None},
        elves=elves,
        texts=texts,
        dist_info=dist_info,
        record=record,
        digests={r.name: Digest(r.hash, r.size) for r in results},
        problems=tuple(problems + elf_problems),
        size=path.stat().st_size,
    )


@dataclass(frozen=True)
class _MemberResult:
    name: str
    size: int
    hash: str | None
    is_elf: bool
    link: str | None = None
    problem: Finding | None = None


def _scan_member(reader: WheelReader, m: ZipMember, work: Path, algorithm: str | None) -> _MemberResult:
    """Inflate once: hash it, and write it out if it is ELF.  A non-ELF member that needs no
    hash (no RECORD row asks for one) is abandoned after its first chunk."""
    try:
        if m.is_symlink:
            target = reader.read(m.name)
            link = work.joinpath(*m.name.split("/"))
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target.decode("utf-8", "surrogateescape"), link)
            return _MemberResult(m.name, len(target), _digest(target, algorithm), False,
                                 target.decode("utf-8", "surrogateescape"))
        return _stream_member(reader, m, work, algorithm)
    except WheelFileError as exc:
        return _MemberResult(m.name, m.size, None, False, problem=error(
            "archive.corrupt-member", m.name,
            f"{m.name} cannot be read from the archive ({exc}). The artifact is damaged: rebuild or re-download it."))


def _stream_member(reader: WheelReader, m: ZipMember, work: Path, algorithm: str | None) -> _MemberResult:
    hasher = hashlib.new(algorithm) if algorithm else None
    pending: list[bytes] = []  # chunks seen before the first four bytes decide ELF or not
    out: io.BufferedWriter | None = None
    decided = False
    size = 0
    chunks = reader.iter_chunks(m.name)
    try:
        for chunk in chunks:
            size += len(chunk)
            if hasher is not None:
                hasher.update(chunk)
            if decided:
                if out is not None:
                    out.write(chunk)
                continue
            pending.append(chunk)
            head = b"".join(pending)[:4]
            if len(head) < 4:
                continue
            decided = True
            if head == ELF_MAGIC:
                out = _open_out(work, m.name)
                out.writelines(pending)
            elif hasher is None:
                break  # not ELF and nothing to hash: stop inflating
            pending = []
    finally:
        if out is not None:
            out.close()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    digest = record_hash(hasher.digest(), algorithm) if hasher is not None and algorithm else None
    return _MemberResult(m.name, size, digest, out is not None)


def _open_out(work: Path, name: str) -> io.BufferedWriter:
    target = work.joinpath(*name.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    return os.fdopen(fd, "wb")


def _digest(data: bytes, algorithm: str | None) -> str | None:
    return record_hash(hashlib.new(algorithm, data).digest(), algorithm) if algorithm else None


def _algorithm(spelled: str) -> str | None:
    name = spelled.split("=", 1)[0] if "=" in spelled else ""
    return name if name in HASHES else None


def _is_text(name: str, dist_info: str | None) -> bool:
    head, _, base = name.rpartition("/")
    if base not in TEXT_NAMES:
        return False
    if dist_info is not None and head == dist_info:
        return base in ("WHEEL", "METADATA")
    return base.startswith("build-") and head.count("/") == 0  # "build-version" or "libtorch/build-version"


def _parse_record(text: str) -> tuple[RecordRow, ...]:
    rows = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row:
            continue
        path, digest, size = [*row, "", "", ""][:3]
        rows.append(RecordRow(path, digest, int(size) if size.isdigit() else None, lineno))
    return tuple(rows)


def _workers() -> int:
    try:
        return max(2, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(2, os.cpu_count() or 2)


def read_elves(root: Path, names: list[str]) -> tuple[dict[str, ElfInfo], list[Finding]]:
    """read_elf on every ELF member; a file that is ELF by magic but unreadable is a finding."""
    infos: dict[str, ElfInfo] = {}
    problems: list[Finding] = []
    for name in sorted(names):
        try:
            infos[name] = read_elf(root.joinpath(*name.split("/")))
        except ElfError as exc:
            problems.append(error("elf.invalid", name, f"{name} starts like an ELF file but cannot be read: "
                                  f"{str(exc).split(': ', 1)[-1]}. Rebuild it; a truncated binary cannot load."))
    return infos, problems


# --------------------------------------------------------------------------------------
# Directories


def _scan_dir(path: Path) -> Scan:
    root, dist_info, scope = _dir_layout(path.resolve())
    files: dict[str, int] = {}
    symlinks: dict[str, str] = {}
    for rel in scope:
        full = root / rel
        if full.is_symlink():
            symlinks[rel] = os.readlink(full)
        elif full.is_file():
            files[rel] = full.stat().st_size
    record_name = f"{dist_info}/RECORD" if dist_info else None
    record = _parse_record((root / record_name).read_text(errors="replace")) if (
        record_name and (root / record_name).is_file()) else None
    algorithms = {row.path: _algorithm(row.hash) for row in record or ()}
    with ThreadPoolExecutor(_workers(), thread_name_prefix="check-scan") as pool:
        facts = dict(zip(files, pool.map(lambda rel: _file_facts(root / rel, algorithms.get(rel)), files), strict=True))
    elves, problems = read_elves(root, [rel for rel, (_, is_elf) in facts.items() if is_elf])
    texts = {rel: (root / rel).read_bytes() for rel in files if _is_text(rel, dist_info)}
    return Scan(
        path=path,
        kind="dir",
        root=root,
        files=files,
        symlinks=symlinks,
        elves=elves,
        texts=texts,
        dist_info=dist_info,
        record=record,
        digests={rel: Digest(h, files[rel]) for rel, (h, _) in facts.items()},
        problems=tuple(problems),
        size=sum(files.values()),
        site_root=root if root != path.resolve() else None,
    )


def _file_facts(path: Path, algorithm: str | None) -> tuple[str | None, bool]:
    """(RECORD-style hash or None, is ELF) of a file, reading it once."""
    hasher = hashlib.new(algorithm) if algorithm else None
    with path.open("rb") as handle:
        head = handle.read(1 << 20)
        is_elf = head[:4] == ELF_MAGIC
        if hasher is None:
            return None, is_elf
        while head:
            hasher.update(head)
            head = handle.read(1 << 20)
    return record_hash(hasher.digest(), algorithm or "sha256"), is_elf


def _dir_layout(path: Path) -> tuple[Path, str | None, list[str]]:
    """(root, dist-info, files in scope) for an unpacked tree or an installed package."""
    infos = sorted(p.name for p in path.glob("*.dist-info") if p.is_dir())
    if len(infos) > 1:
        raise ConfigError(
            f"{path} holds {len(infos)} distributions ({', '.join(infos[:4])}...). Pass one package's "
            f"directory instead, e.g. {path / infos[0].split('-')[0]}."
        )
    if infos:
        return path, infos[0], _walk(path, path)
    owner = _owning_dist_info(path)
    if owner is None:
        return path, None, _walk(path, path)
    root = path.parent
    listed = [row.path for row in _parse_record((root / owner / "RECORD").read_text(errors="replace"))]
    inside = [p for p in listed if not p.startswith(("../", "/")) and (root / p).exists()]
    return root, owner, sorted(set(inside) | set(_walk(root, path)))


def _owning_dist_info(package: Path) -> str | None:
    """The *.dist-info next to an installed package whose RECORD lists files of it."""
    prefix = package.name + "/"
    for info in sorted(package.parent.glob("*.dist-info")):
        record = info / "RECORD"
        lines = record.read_text(errors="replace").splitlines() if record.is_file() else []
        if any(line.startswith(prefix) for line in lines):
            return info.name
    return None


def _walk(root: Path, top: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]  # written by Python after install
        here = Path(dirpath)
        entries = filenames + [d for d in dirnames if (here / d).is_symlink()]
        out += [(here / name).relative_to(root).as_posix() for name in entries]
    return sorted(out)
