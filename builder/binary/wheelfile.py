"""Defensive wheel (zip) reading and fast, reproducible, atomic wheel writing.

Repair rewrites a wheel in which almost nothing changed.  Decompressing and recompressing
the torch wheel costs ~23 s; copying the unchanged members' *compressed* bytes costs only
I/O.  :class:`WheelWriter` therefore copies unchanged members raw, compresses new members
in parallel (zlib releases the GIL; large files are cut into chunks that are deflated
independently, pigz-style, so even one big library uses every core), and regenerates
``RECORD``.

Every archive is read defensively (:class:`WheelReader`): names that could escape an
extraction directory, escaping symlinks, overlapping or out-of-range member data, and
local/central header disagreement are errors that name the member.  Output is
reproducible: sorted members (``.dist-info`` last, ``RECORD`` very last), timestamps from
``SOURCE_DATE_EPOCH``, fixed permissions, no time-bearing extra fields.  It is written to a
temporary file in the destination directory, fsynced and renamed, so a wheel appears
complete or not at all.  ZIP64 is used exactly where a size, offset or count needs it.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import mmap
import os
import posixpath
import stat
import struct
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

__all__ = [
    "DEFAULT_LEVEL",
    "RecordEntry",
    "RecordProblem",
    "RecordReport",
    "WheelFileError",
    "WheelReader",
    "WheelWriter",
    "WriteResult",
    "WrittenMember",
    "ZipMember",
    "pack_directory",
    "record_hash",
    "rewrite_wheel",
]

StrPath = str | os.PathLike[str]

DEFAULT_LEVEL = 6
CHUNK_SIZE = 4 << 20  # larger new members are deflated in chunks of this size, in parallel
_WINDOW = 32 * 1024  # deflate's history: each chunk is primed with the previous chunk's tail
_READ_SIZE = 1 << 20

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<IHHHHIIH")
_Z64_LOCATOR = struct.Struct("<IIQI")
_Z64_EOCD = struct.Struct("<IQHHIIQQQQ")
_SIG_LOCAL, _SIG_CENTRAL = 0x04034B50, 0x02014B50
_SIG_EOCD, _SIG_Z64_EOCD, _SIG_Z64_LOCATOR = 0x06054B50, 0x06064B50, 0x07064B50
_U32, _U16 = 0xFFFFFFFF, 0xFFFF
_FLAG_ENCRYPTED, _FLAG_UTF8 = 0x1, 0x800
_STORED, _DEFLATED = 0, 8
_UNIX = 3
_VERSION_NEEDED = {_STORED: 10, _DEFLATED: 20}
_ZIP64_VERSION = 45
_DOS_MIN, _DOS_MAX = 315532800, 4354819199  # 1980-01-01 .. 2107-12-31T23:59:59 UTC
_HASH_ALGORITHMS = ("sha256", "sha384", "sha512", "blake2b", "blake2s", "sha3_256",
                    "sha3_384", "sha3_512")


class WheelFileError(ValueError):
    """An archive is not a safe, well-formed zip/wheel, or could not be written."""


# --------------------------------------------------------------------------------------
# Names and hashes
# --------------------------------------------------------------------------------------
def check_member_name(name: str) -> None:
    """Raise WheelFileError unless ``name`` stays inside an extraction directory."""
    problem = _name_problem(name)
    if problem:
        raise WheelFileError(f"member {name!r}: {problem}")


def _name_problem(name: str) -> str | None:
    if not name or name == "/":
        return "empty name"
    if "\\" in name:
        return "contains a backslash (a path separator on Windows)"
    if "\0" in name:
        return "contains a NUL byte"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "contains a '..' component"
    if any(p in ("", ".") for p in parts):
        return "is not normalized (empty or '.' component)"
    return None


def record_hash(digest: bytes, algorithm: str = "sha256") -> str:
    """The RECORD spelling of a digest: ``sha256=<urlsafe base64, no padding>``."""
    return f"{algorithm}=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _dos_datetime(epoch: int) -> tuple[int, int]:
    t = time.gmtime(min(max(epoch, _DOS_MIN), _DOS_MAX))
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return dos_time, dos_date


def resolve_source_date_epoch(value: int | None = None) -> int:
    """The timestamp for members: ``value``, else $SOURCE_DATE_EPOCH, else 1980-01-01."""
    if value is not None:
        return value
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return _DOS_MIN
    try:
        return int(raw)
    except ValueError:
        raise WheelFileError(f"SOURCE_DATE_EPOCH={raw!r} is not an integer number of "
                             "seconds since 1970; unset it or set e.g. "
                             "SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)") from None


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZipMember:
    """One member as the central directory describes it (after validation)."""

    name: str
    method: int
    crc32: int
    compressed_size: int
    size: int
    mode: int  # st_mode from the external attributes; 0 when the archive was not made on Unix
    header_offset: int
    data_offset: int

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def is_executable(self) -> bool:
        return bool(self.mode & 0o111)


@dataclass(frozen=True)
class RecordEntry:
    """One RECORD row: ``hash`` is ``"sha256=..."`` or "" and ``size`` None when absent."""

    path: str
    hash: str
    size: int | None


@dataclass(frozen=True)
class RecordProblem:
    """A disagreement between RECORD and the archive."""

    name: str
    problem: str  # "hash", "size", "unlisted", "missing", "unhashed"
    detail: str


@dataclass(frozen=True)
class RecordReport:
    record_path: str
    checked: int
    problems: tuple[RecordProblem, ...]
    extracted: tuple[str, ...] = ()  # members verify_record(extract_to=...) wrote out

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _EndRecord:
    count: int
    cd_size: int
    cd_offset: int
    end: int  # where the central directory must end (start of the end records)


class WheelReader:
    """A validated view of a zip/wheel.  Use as a context manager; thread-safe reads."""

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        self._map: mmap.mmap | None = None
        self._record_cache: dict[str, RecordEntry] | None = None
        self._dist_info: str | None = None
        try:
            self._size = os.fstat(self._fd).st_size
            if self._size < _EOCD.size:
                raise self._error(f"not a zip archive ({self._size} bytes, too short)")
            self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
            self.members: tuple[ZipMember, ...] = ()
            self.members = self._read_members()
            self._by_name = {m.name: m for m in self.members}
            self._check_symlinks()
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> WheelReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def _data(self) -> mmap.mmap:
        if self._map is None:
            raise self._error("archive is closed")
        return self._map

    def fileno(self) -> int:
        if self._fd < 0:
            raise self._error("archive is closed (keep the reader open until write() returns)")
        return self._fd

    def _error(self, what: str) -> WheelFileError:
        return WheelFileError(f"{self.path}: {what}")

    # -- central directory ---------------------------------------------------------------
    def _find_end(self) -> _EndRecord:
        tail_start = max(0, self._size - _EOCD.size - _U16)
        tail = self._data[tail_start:]
        pos = tail.rfind(b"PK\x05\x06")
        # The real end record is the one whose comment ends exactly at the end of the file;
        # anything else is a look-alike inside data or a comment, or the file is truncated.
        while pos >= 0 and not (pos + _EOCD.size <= len(tail) and pos + _EOCD.size
                                + struct.unpack_from("<H", tail, pos + 20)[0] == len(tail)):
            pos = tail.rfind(b"PK\x05\x06", 0, pos)
        if pos < 0:
            raise self._error("not a zip archive, or truncated (no end-of-central-directory "
                              "record)")
        eocd_at = tail_start + pos
        _, disk, cd_disk, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
        if disk or cd_disk:
            raise self._error("multi-disk (split) archives are not supported")
        if count == _U16 or cd_size == _U32 or cd_offset == _U32:
            return self._find_zip64_end(eocd_at)
        return _EndRecord(count, cd_size, cd_offset, eocd_at)

    def _find_zip64_end(self, eocd_at: int) -> _EndRecord:
        loc_at = eocd_at - _Z64_LOCATOR.size
        if loc_at < 0:
            raise self._error("ZIP64 end record expected but no locator (truncated?)")
        sig, _, z64_at, _ = _Z64_LOCATOR.unpack_from(self._data, loc_at)
        if sig != _SIG_Z64_LOCATOR or z64_at + _Z64_EOCD.size > loc_at:
            raise self._error("ZIP64 end-of-central-directory locator is missing or corrupt")
        rec = _Z64_EOCD.unpack_from(self._data, z64_at)
        if rec[0] != _SIG_Z64_EOCD:
            raise self._error("ZIP64 end-of-central-directory record is corrupt")
        return _EndRecord(rec[7], rec[8], rec[9], z64_at)

    def _read_members(self) -> tuple[ZipMember, ...]:
        end = self._find_end()
        if end.cd_offset + end.cd_size != end.end:
            raise self._error(
                f"central directory ({end.cd_size} bytes at {end.cd_offset}) does not end "
                f"where the end record starts ({end.end}): truncated, or data was "
                "prepended/appended to the archive")
        members: list[ZipMember] = []
        pos = end.cd_offset
        for _ in range(end.count):
            member, pos = self._central_entry(pos, end.end)
            members.append(member)
        if pos != end.end:
            raise self._error(f"central directory holds more than the {end.count} entries "
                              "its end record announces")
        self._check_layout(members, end.cd_offset)
        return tuple(members)

    def _central_entry(self, pos: int, limit: int) -> tuple[ZipMember, int]:
        if pos + _CENTRAL.size > limit:
            raise self._error("central directory is truncated")
        (sig, made_by, _, flags, method, _, _, crc, csize, usize, name_len, extra_len,
         comment_len, _, _, ext_attr, offset) = _CENTRAL.unpack_from(self._data, pos)
        if sig != _SIG_CENTRAL:
            raise self._error(f"bad central directory entry signature at offset {pos}")
        raw_name = self._data[pos + 46:pos + 46 + name_len]
        name = self._decode_name(raw_name, flags)
        extra = self._data[pos + 46 + name_len:pos + 46 + name_len + extra_len]
        usize, csize, offset = _zip64_values(extra, usize, csize, offset,
                                             lambda: self._error(f"member {name!r}: bad "
                                                                 "ZIP64 extra field"))
        if flags & _FLAG_ENCRYPTED:
            raise self._error(f"member {name!r} is encrypted")
        check = _name_problem(name)
        if check:
            raise self._error(f"member {name!r} {check}")
        mode = (ext_attr >> 16) if (made_by >> 8) == _UNIX else 0
        data_offset = self._local_header(name, raw_name, offset)
        member = ZipMember(name, method, crc, csize, usize, mode, offset, data_offset)
        return member, pos + 46 + name_len + extra_len + comment_len

    def _decode_name(self, raw: bytes, flags: int) -> str:
        try:
            return raw.decode("utf-8") if flags & _FLAG_UTF8 else raw.decode("cp437")
        except UnicodeDecodeError:
            raise self._error(f"member name {raw!r} is flagged UTF-8 but is not") from None

    def _local_header(self, name: str, raw_name: bytes, offset: int) -> int:
        if offset + _LOCAL.size > self._size:
            raise self._error(f"member {name!r}: local header at {offset} is past the end")
        fields = _LOCAL.unpack_from(self._data, offset)
        if fields[0] != _SIG_LOCAL:
            raise self._error(f"member {name!r}: no local header at offset {offset}")
        name_len, extra_len = int(fields[9]), int(fields[10])
        local_name = self._data[offset + 30:offset + 30 + name_len]
        if local_name != raw_name:
            raise self._error(f"member {name!r}: local header names it {local_name!r}; "
                              "central and local headers disagree")
        return offset + 30 + name_len + extra_len

    def _check_layout(self, members: list[ZipMember], cd_offset: int) -> None:
        seen: set[str] = set()
        previous_end, previous = 0, ""
        for m in sorted(members, key=lambda m: m.header_offset):
            if m.name in seen:
                raise self._error(f"member {m.name!r} appears more than once")
            seen.add(m.name)
            if m.header_offset < previous_end:
                raise self._error(f"member {m.name!r} overlaps member {previous!r}")
            previous_end, previous = m.data_offset + m.compressed_size, m.name
            if previous_end > cd_offset:
                raise self._error(f"member {m.name!r}: data runs past the central directory "
                                  "(truncated or corrupt)")

    def _check_symlinks(self) -> None:
        links = [m for m in self.members if m.is_symlink]
        link_names = {m.name for m in links}
        for m in self.members:
            parts = m.name.rstrip("/").split("/")
            for i in range(1, len(parts)):
                if "/".join(parts[:i]) in link_names:
                    raise self._error(f"member {m.name!r} lies under symlink member "
                                      f"{'/'.join(parts[:i])!r}")
        for m in links:
            target = self.read(m.name).decode("utf-8", "surrogateescape")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                raise self._error(f"member {m.name!r} is a symlink to {target!r}, which "
                                  "points outside the archive tree")

    # -- member access -------------------------------------------------------------------
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    def member(self, name: str) -> ZipMember:
        try:
            return self._by_name[name]
        except KeyError:
            raise self._error(f"no member named {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def raw_chunks(self, member: ZipMember) -> Iterator[bytes]:
        """The member's stored (compressed) bytes."""
        end = member.data_offset + member.compressed_size
        for pos in range(member.data_offset, end, _READ_SIZE):
            yield self._data[pos:min(pos + _READ_SIZE, end)]

    def iter_chunks(self, name: str) -> Iterator[bytes]:
        """Decompressed content, streamed; the CRC and size are checked at the end."""
        member = self.member(name)
        if member.method not in (_STORED, _DEFLATED):
            raise self._error(f"member {name!r}: compression method {member.method} is not "
                              "allowed in wheels (only stored and deflate)")
        inflate = zlib.decompressobj(-15) if member.method == _DEFLATED else None
        crc, size = 0, 0
        try:
            for raw in self.raw_chunks(member):
                data = inflate.decompress(raw) if inflate else raw
                crc, size = zlib.crc32(data, crc), size + len(data)
                yield data
            if inflate:
                tail = inflate.flush()
                crc, size = zlib.crc32(tail, crc), size + len(tail)
                yield tail
        except zlib.error as exc:
            raise self._error(f"member {name!r}: corrupt compressed data ({exc})") from None
        if crc != member.crc32 or size != member.size:
            raise self._error(f"member {name!r}: content does not match its CRC/size "
                              f"(crc {crc:08x} != {member.crc32:08x} or size {size} != "
                              f"{member.size})")

    def read(self, name: str) -> bytes:
        return b"".join(self.iter_chunks(name))

    def hash_member(self, name: str, algorithm: str = "sha256") -> tuple[str, int]:
        """(RECORD-style hash, size) of the member's content, by streaming decompression."""
        h = hashlib.new(algorithm)
        size = 0
        for chunk in self.iter_chunks(name):
            h.update(chunk)
            size += len(chunk)
        return record_hash(h.digest(), algorithm), size

    # -- wheel metadata ------------------------------------------------------------------
    @property
    def dist_info(self) -> str | None:
        """The single top-level ``*.dist-info`` directory, or None for a plain zip."""
        if self._dist_info is None:
            dirs = {m.name.split("/", 1)[0] for m in self.members if "/" in m.name}
            found = sorted(d for d in dirs if d.endswith(".dist-info"))
            if len(found) > 1:
                raise self._error(f"more than one .dist-info directory: {', '.join(found)}")
            self._dist_info = found[0] if found else ""
        return self._dist_info or None

    @property
    def record_path(self) -> str | None:
        info = self.dist_info
        return f"{info}/RECORD" if info else None

    def record(self) -> dict[str, RecordEntry]:
        """The parsed RECORD (a fresh dict); WheelFileError if absent or malformed."""
        return dict(self.record_entries())

    def record_entries(self) -> Mapping[str, RecordEntry]:
        """The parsed RECORD, parsed once and shared (read-only)."""
        if self._record_cache is None:
            self._record_cache = self._parse_record()
        return self._record_cache

    def _parse_record(self) -> dict[str, RecordEntry]:
        path = self.record_path
        if path is None or path not in self:
            raise self._error("no .dist-info/RECORD: not a wheel")
        text = self.read(path).decode("utf-8")
        entries: dict[str, RecordEntry] = {}
        for lineno, row in enumerate(csv.reader(io.StringIO(text)), 1):
            if not row:
                continue
            if len(row) != 3:
                raise self._error(f"{path} line {lineno}: expected 3 fields, got {len(row)}")
            name, digest, size = row
            try:
                entries[name] = RecordEntry(name, digest, int(size) if size else None)
            except ValueError:
                raise self._error(f"{path} line {lineno}: size {size!r} is not an integer") \
                    from None
        return entries

    def verify_record(self, *, workers: int | None = None, extract_to: StrPath | None = None,
                      extract_if: Callable[[str, bytes], bool] | None = None) -> RecordReport:
        """Hash every member (streaming, in parallel) and compare with RECORD.

        With ``extract_to``, members whose first decompressed chunk satisfies ``extract_if``
        are written there in the same pass (repair needs the ELF files and the hashes, and
        inflating a 400 MB library twice is the biggest cost of a repair)."""
        record_path = self.record_path
        entries = self.record_entries()
        problems: list[RecordProblem] = []
        to_hash: list[tuple[str, str]] = []
        for m in self.members:
            if m.is_dir or m.name == record_path or _is_signature(m.name, record_path):
                continue
            entry = entries.get(m.name)
            problem = _cheap_record_problem(m, entry)
            if problem:
                problems.append(problem)
            elif entry is not None:
                to_hash.append((m.name, entry.hash))
        to_hash.sort(key=lambda item: -self._by_name[item[0]].size)  # biggest inflate first
        problems += [RecordProblem(n, "missing", "listed in RECORD but not in the archive")
                     for n in entries if n not in self and n != record_path]
        root = Path(extract_to) if extract_to is not None else None
        extracted: list[str] = []
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            futures = [pool.submit(self._hash_and_extract, n, h.split("=", 1)[0], root, extract_if)
                       for n, h in to_hash]
            for (name, expected), fut in zip(to_hash, futures, strict=True):
                actual, was_extracted = fut.result()
                if was_extracted:
                    extracted.append(name)
                if actual != expected:
                    problems.append(RecordProblem(name, "hash", f"RECORD says {expected}, "
                                                  f"content is {actual}"))
        return RecordReport(record_path or "", len(to_hash), tuple(problems), tuple(sorted(extracted)))

    def _hash_and_extract(self, name: str, algorithm: str, root: Path | None,
                          want: Callable[[str, bytes], bool] | None) -> tuple[str, bool]:
        h = hashlib.new(algorithm)
        out: BinaryIO | None = None
        first = True
        try:
            for chunk in self.iter_chunks(name):
                if first and root is not None and want is not None and want(name, chunk):
                    out = self._open_target(self.member(name), root)
                first = False
                h.update(chunk)
                if out is not None:
                    out.write(chunk)
        finally:
            if out is not None:
                out.close()
        return record_hash(h.digest(), algorithm), out is not None

    def _open_target(self, m: ZipMember, root: Path) -> BinaryIO:
        target = root.joinpath(*m.name.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        return os.fdopen(os.open(target, flags, 0o755 if m.is_executable else 0o644), "wb")

    def extract(self, dest: StrPath, names: Iterable[str] | None = None) -> list[Path]:
        """Extract members under ``dest`` (which should be empty); returns the files written."""
        root = Path(dest)
        written: list[Path] = []
        for m in self.members if names is None else [self.member(n) for n in names]:
            target = root.joinpath(*m.name.rstrip("/").split("/"))
            if m.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if m.is_symlink:
                os.symlink(self.read(m.name).decode("utf-8", "surrogateescape"), target)
            else:
                self._extract_file(m, target)
            written.append(target)
        return written

    def _extract_file(self, m: ZipMember, target: Path) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(target, flags, 0o755 if m.is_executable else 0o644)
        with os.fdopen(fd, "wb") as out:
            for chunk in self.iter_chunks(m.name):
                out.write(chunk)


def _zip64_values(extra: bytes, usize: int, csize: int, offset: int,
                  error: Callable[[], WheelFileError]) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        if tag == 0x0001:
            values = list(struct.unpack_from(f"<{length // 8}Q", extra, pos + 4))
            try:
                if usize == _U32:
                    usize = values.pop(0)
                if csize == _U32:
                    csize = values.pop(0)
                if offset == _U32:
                    offset = values.pop(0)
            except IndexError:
                raise error() from None
            return usize, csize, offset
        pos += 4 + length
    if _U32 in (usize, csize, offset):
        raise error()
    return usize, csize, offset


def _is_signature(name: str, record_path: str | None) -> bool:
    return record_path is not None and name in (record_path + ".jws", record_path + ".p7s")


def _cheap_record_problem(m: ZipMember, entry: RecordEntry | None) -> RecordProblem | None:
    if entry is None:
        return RecordProblem(m.name, "unlisted", "in the archive but not in RECORD")
    algorithm = entry.hash.split("=", 1)[0]
    if not entry.hash or algorithm not in _HASH_ALGORITHMS:
        return RecordProblem(m.name, "unhashed",
                             f"RECORD gives no acceptable hash ({entry.hash or 'empty'})")
    if entry.size is not None and entry.size != m.size:
        return RecordProblem(m.name, "size", f"RECORD says {entry.size} bytes, "
                             f"the archive holds {m.size}")
    return None


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WrittenMember:
    name: str
    size: int
    compressed_size: int
    hash: str  # RECORD spelling, "" for RECORD itself
    copied: bool  # True when the compressed bytes were copied from a source archive


@dataclass(frozen=True)
class WriteResult:
    path: Path
    members: tuple[WrittenMember, ...]
    record_path: str | None
    archive_size: int

    @property
    def copied(self) -> int:
        return sum(m.copied for m in self.members)

    @property
    def compressed(self) -> int:
        return sum(not m.copied for m in self.members)


@dataclass(frozen=True)
class _Copy:
    reader: WheelReader
    member: ZipMember
    claimed: str | None  # sha256 hash RECORD claims, if any
    trusted: bool  # use ``claimed`` without hashing


@dataclass(frozen=True)
class _Bytes:
    data: bytes


@dataclass(frozen=True)
class _File:
    path: Path
    size: int


@dataclass(frozen=True)
class _Planned:
    name: str
    source: _Copy | _Bytes | _File
    mode: int  # full st_mode stored in the external attributes
    compress: bool


@dataclass(frozen=True)
class _Payload:
    """A member compressed in one piece."""

    crc: int
    size: int
    hash: str
    data: bytes


@dataclass(frozen=True)
class _Central:
    name: bytes
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    offset: int
    mode: int
    zip64_local: bool


def _flags(name: str) -> int:
    return 0 if name.isascii() else _FLAG_UTF8


def _mode(executable: bool) -> int:
    return stat.S_IFREG | (0o755 if executable else 0o644)


def _deflate(data: bytes, level: int, zdict: bytes = b"", last: bool = True) -> bytes:
    # Raw deflate (wbits -15) is what zip stores.  Non-final chunks end with a sync flush
    # so that the independently compressed chunks concatenate into one valid stream.
    comp = (zlib.compressobj(level, zlib.DEFLATED, -15, zdict=zdict) if zdict
            else zlib.compressobj(level, zlib.DEFLATED, -15))
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _payload(data: bytes, level: int, compress: bool) -> _Payload:
    body = _deflate(data, level) if compress else data
    return _Payload(zlib.crc32(data), len(data), record_hash(hashlib.sha256(data).digest()),
                    body)


def _file_payload(path: Path, level: int, compress: bool) -> _Payload:
    return _payload(path.read_bytes(), level, compress)


def _file_chunks(path: Path, size: int) -> Iterator[tuple[bytes, bytes, bool]]:
    """(chunk, tail of the previous chunk, is last chunk) for a file, reading one ahead."""
    with open(path, "rb") as fh:
        tail = b""
        chunk = fh.read(size)
        while chunk:
            following = fh.read(size)
            yield chunk, tail, not following
            tail = chunk[-_WINDOW:]
            chunk = following


def _local_header(c: _Central, dos: tuple[int, int]) -> bytes:
    extra, csize, usize = b"", c.csize, c.usize
    if c.zip64_local:  # both sizes must be in the local ZIP64 field
        extra, csize, usize = struct.pack("<HHQQ", 1, 16, c.usize, c.csize), _U32, _U32
    version = _ZIP64_VERSION if c.zip64_local else _VERSION_NEEDED.get(c.method, 20)
    return _LOCAL.pack(_SIG_LOCAL, version, c.flags, c.method, dos[0], dos[1], c.crc, csize,
                       usize, len(c.name), len(extra)) + c.name + extra


def _central_header(c: _Central, dos: tuple[int, int]) -> bytes:
    fields: list[int] = []
    usize, csize, offset = c.usize, c.csize, c.offset
    if usize >= _U32:
        fields.append(usize)
        usize = _U32
    if csize >= _U32:
        fields.append(csize)
        csize = _U32
    if offset >= _U32:
        fields.append(offset)
        offset = _U32
    extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
    zip64 = bool(fields) or c.zip64_local
    version = _ZIP64_VERSION if zip64 else _VERSION_NEEDED.get(c.method, 20)
    return _CENTRAL.pack(_SIG_CENTRAL, (_UNIX << 8) | max(version, 20), version, c.flags,
                         c.method, dos[0], dos[1], c.crc, csize, usize, len(c.name),
                         len(extra), 0, 0, 0, c.mode << 16, offset) + c.name + extra


def _end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    out = b""
    if count >= _U16 or cd_offset >= _U32 or cd_size >= _U32:
        z64_at = cd_offset + cd_size
        out += _Z64_EOCD.pack(_SIG_Z64_EOCD, _Z64_EOCD.size - 12, (_UNIX << 8) | _ZIP64_VERSION,
                              _ZIP64_VERSION, 0, 0, count, count, cd_size, cd_offset)
        out += _Z64_LOCATOR.pack(_SIG_Z64_LOCATOR, 0, z64_at, 1)
    return out + _EOCD.pack(_SIG_EOCD, 0, 0, min(count, _U16), min(count, _U16),
                            min(cd_size, _U32), min(cd_offset, _U32), 0)


class _Output:
    """Sequential output with our own buffer, so that kernel copies and patches can be mixed
    in without a buffered file object's idea of the position going stale."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pos = 0
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        self.pos += len(data)
        if len(self._buf) >= _READ_SIZE:
            self.flush()
        return len(data)

    def flush(self) -> None:
        with memoryview(self._buf) as view:
            done = 0
            while done < len(view):
                done += os.write(self.fd, view[done:])
        self._buf.clear()

    def copy_range(self, src_fd: int, offset: int, count: int) -> None:
        self.flush()
        _copy_range(src_fd, self.fd, offset, count)
        self.pos += count

    def patch(self, offset: int, data: bytes) -> None:
        self.flush()
        os.pwrite(self.fd, data, offset)


def _copy_range(src_fd: int, dst_fd: int, offset: int, count: int) -> None:
    # copy_file_range keeps the bytes in the kernel (and may reflink); fall back to
    # pread/write where the filesystem pair does not support it.
    end = offset + count
    if hasattr(os, "copy_file_range"):
        try:
            while offset < end:
                n = os.copy_file_range(src_fd, dst_fd, end - offset, offset)
                if n == 0:
                    raise WheelFileError("source archive shrank while being copied")
                offset += n
            return
        except OSError:
            pass
    while offset < end:
        data = os.pread(src_fd, min(_READ_SIZE, end - offset), offset)
        if not data:
            raise WheelFileError("source archive shrank while being copied")
        os.write(dst_fd, data)
        offset += len(data)


class _AtomicFile:
    """A temporary file next to ``dest``, renamed over it only after a successful fsync."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.fd, self.tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.",
                                             suffix=".partial")

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        done = False
        try:
            if exc_type is None:
                os.fchmod(self.fd, 0o644)
                os.fsync(self.fd)
                os.close(self.fd)
                self.fd = -1
                os.replace(self.tmp, self.dest)
                done = True
        finally:
            if self.fd >= 0:
                os.close(self.fd)
            if not done:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.tmp)
        if not done:
            return
        dir_fd = os.open(self.dest.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # make the rename itself durable
        finally:
            os.close(dir_fd)


class WheelWriter:
    """Plans a wheel (or plain zip) member by member, then :meth:`write` builds it.

    Unchanged members are copied as compressed bytes (:meth:`copy`); new ones are compressed
    in parallel.  ``RECORD`` is regenerated when the archive has a ``.dist-info`` directory
    (any RECORD or RECORD signature added by the caller is dropped: they would be stale).
    """

    def __init__(self, dest: StrPath, *, level: int = DEFAULT_LEVEL, workers: int | None = None,
                 source_date_epoch: int | None = None, chunk_size: int = CHUNK_SIZE) -> None:
        if not 0 <= level <= 9:
            raise ValueError(f"deflate level must be 0..9, got {level}")
        self.dest = Path(dest)
        self.level = level
        self.workers = workers or os.cpu_count() or 1
        self.chunk_size = chunk_size
        self._dos = _dos_datetime(resolve_source_date_epoch(source_date_epoch))
        self._planned: dict[str, _Planned] = {}

    # -- planning ------------------------------------------------------------------------
    def _plan(self, item: _Planned) -> None:
        check_member_name(item.name)
        if item.name.endswith("/"):
            raise WheelFileError(f"member {item.name!r}: directory entries are not written")
        if item.name in self._planned:
            raise WheelFileError(f"member {item.name!r} added twice")
        self._planned[item.name] = item

    def add_bytes(self, name: str, data: bytes, *, executable: bool = False,
                  compress: bool = True) -> None:
        self._plan(_Planned(name, _Bytes(bytes(data)), _mode(executable), compress))

    def add_file(self, name: str, path: StrPath, *, executable: bool | None = None,
                 compress: bool = True) -> None:
        """Add a file's content; ``executable`` defaults to the file's own execute bits."""
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise WheelFileError(f"member {name!r}: {path} is not a regular file")
        exe = bool(st.st_mode & 0o111) if executable is None else executable
        self._plan(_Planned(name, _File(Path(path), st.st_size), _mode(exe), compress))

    def add_symlink(self, name: str, target: str) -> None:
        """A symlink member (plain zips such as libtorch archives carry ``libx.so -> libx.so.1``).
        Only relative targets that stay inside the archive: readers reject anything else."""
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            raise WheelFileError(f"member {name!r}: symlink target {target!r} points outside the archive")
        self._plan(_Planned(name, _Bytes(target.encode("utf-8", "surrogateescape")), stat.S_IFLNK | 0o777, False))

    def copy(self, reader: WheelReader, name: str, *, new_name: str | None = None,
             verify: bool = False) -> None:
        """Copy a member's compressed bytes from ``reader``.

        Its RECORD hash is taken from the source RECORD when that entry is sha256 and its
        size matches; with ``verify`` (or without such an entry) the content is hashed by
        streaming decompression, and a RECORD that disagrees is an error at :meth:`write`.
        """
        member = reader.member(name)
        if member.is_dir:
            raise WheelFileError(f"member {name!r}: directory entries are not written")
        has_record = reader.record_path is not None and reader.record_path in reader
        entry = reader.record_entries().get(name) if has_record else None
        claimed = entry.hash if entry and entry.hash.startswith("sha256=") else None
        trusted = (not verify and claimed is not None and entry is not None
                   and entry.size == member.size)
        mode = (stat.S_IFLNK | 0o777) if member.is_symlink else _mode(member.is_executable)
        self._plan(_Planned(new_name or name, _Copy(reader, member, claimed, trusted), mode,
                            member.method != _STORED))

    # -- writing -------------------------------------------------------------------------
    def write(self) -> WriteResult:
        """Build the archive atomically at ``dest`` and return what was written."""
        plan, record_path = self._ordered_plan()
        compress_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="wheel-deflate")
        hash_pool = ThreadPoolExecutor(self.workers, thread_name_prefix="wheel-hash")
        try:
            with _AtomicFile(self.dest) as fd:
                out = _Output(fd)
                written = self._write_all(out, plan, record_path, compress_pool, hash_pool)
                size = out.pos
        finally:
            compress_pool.shutdown(wait=True, cancel_futures=True)
            hash_pool.shutdown(wait=True, cancel_futures=True)
        return WriteResult(self.dest, tuple(written), record_path, size)

    def _ordered_plan(self) -> tuple[list[_Planned], str | None]:
        tops = {n.split("/", 1)[0] for n in self._planned if "/" in n}
        infos = sorted(t for t in tops if t.endswith(".dist-info"))
        if len(infos) > 1:
            raise WheelFileError(f"more than one .dist-info directory: {', '.join(infos)}")
        record_path = f"{infos[0]}/RECORD" if infos else None
        items = [p for p in self._planned.values()
                 if p.name != record_path and not _is_signature(p.name, record_path)]
        prefix = f"{infos[0]}/" if infos else None
        # Wheel convention: metadata last so that a streaming reader sees files first.
        items.sort(key=lambda p: (prefix is not None and p.name.startswith(prefix), p.name))
        return items, record_path

    def _write_all(self, out: _Output, plan: list[_Planned], record_path: str | None,
                   compress_pool: ThreadPoolExecutor,
                   hash_pool: ThreadPoolExecutor) -> list[WrittenMember]:
        to_hash = [(p.name, p.source) for p in plan
                   if isinstance(p.source, _Copy) and not p.source.trusted]
        # Largest first: one big library's inflate is the critical path; start it at once.
        to_hash.sort(key=lambda item: -item[1].member.size)
        hashes = {name: hash_pool.submit(src.reader.hash_member, src.member.name)
                  for name, src in to_hash}
        ahead = _Lookahead(plan, lambda p: self._submit(compress_pool, p), 4 * self.workers + 16)
        central: list[_Central] = []
        written: list[WrittenMember] = []
        for index, item in enumerate(plan):
            future = ahead.take(index)
            if isinstance(item.source, _Copy):
                central.append(self._write_copy(out, item, item.source))
                written.append(WrittenMember(item.name, item.source.member.size,
                                             item.source.member.compressed_size,
                                             item.source.claimed or "", True))
            else:
                c, digest = (self._write_payload(out, item, future.result()) if future
                             else self._write_streamed(out, item, compress_pool))
                central.append(c)
                written.append(WrittenMember(item.name, c.usize, c.csize, digest, False))
        written = _resolve_copied_hashes(written, plan, hashes)
        if record_path is not None:
            record = _record_bytes(written, record_path)
            c, _ = self._write_payload(out, _Planned(record_path, _Bytes(record), _mode(False),
                                                     True), _payload(record, self.level, True))
            central.append(c)
            written.append(WrittenMember(record_path, c.usize, c.csize, "", False))
        self._write_central(out, central)
        return written

    def _submit(self, pool: ThreadPoolExecutor, item: _Planned) -> Future[_Payload] | None:
        src = item.source
        if isinstance(src, _Bytes):
            return pool.submit(_payload, src.data, self.level, item.compress)
        if isinstance(src, _File) and src.size <= self.chunk_size:
            return pool.submit(_file_payload, src.path, self.level, item.compress)
        return None  # copies need no work; big files are compressed chunk-parallel in turn

    def _write_copy(self, out: _Output, item: _Planned, src: _Copy) -> _Central:
        name = item.name.encode("utf-8")
        m = src.member
        c = _Central(name, _flags(item.name), m.method, m.crc32, m.compressed_size,
                     m.size, out.pos, item.mode,
                     m.size >= _U32 or m.compressed_size >= _U32)
        out.write(_local_header(c, self._dos))
        out.copy_range(src.reader.fileno(), m.data_offset, m.compressed_size)
        return c

    def _write_payload(self, out: _Output, item: _Planned,
                       payload: _Payload) -> tuple[_Central, str]:
        name = item.name.encode("utf-8")
        method = _DEFLATED if item.compress else _STORED
        c = _Central(name, _flags(item.name), method, payload.crc, len(payload.data),
                     payload.size, out.pos, item.mode,
                     payload.size >= _U32 or len(payload.data) >= _U32)
        out.write(_local_header(c, self._dos))
        out.write(payload.data)
        return c, payload.hash

    def _write_streamed(self, out: _Output, item: _Planned,
                        pool: ThreadPoolExecutor) -> tuple[_Central, str]:
        assert isinstance(item.source, _File)
        src = item.source
        name = item.name.encode("utf-8")
        method = _DEFLATED if item.compress else _STORED
        # Sizes are patched in afterwards; decide ZIP64 now with room for deflate's
        # worst-case growth (stored blocks: 5 bytes per 64 KiB, plus sync markers).
        zip64 = src.size + src.size // 4096 + 4096 >= _U32
        at = out.pos
        out.write(_local_header(_Central(name, _flags(item.name), method, 0, 0, 0, at,
                                         item.mode, zip64), self._dos))
        crc, size, csize, sha = self._stream_body(out, src, item.compress, pool)
        if size != src.size:
            raise WheelFileError(f"member {item.name!r}: {src.path} changed size while being "
                                 f"written ({src.size} -> {size} bytes)")
        if zip64:
            out.patch(at + 14, struct.pack("<I", crc))
            out.patch(at + _LOCAL.size + len(name) + 4, struct.pack("<QQ", size, csize))
        else:
            out.patch(at + 14, struct.pack("<III", crc, csize, size))
        c = _Central(name, _flags(item.name), method, crc, csize, size, at, item.mode,
                     zip64)
        return c, record_hash(sha.digest())

    def _stream_body(self, out: _Output, src: _File, compress: bool,
                     pool: ThreadPoolExecutor) -> tuple[int, int, int, hashlib._Hash]:
        crc, size, csize = 0, 0, 0
        sha = hashlib.sha256()
        pending: deque[Future[bytes]] = deque()
        for chunk, tail, last in _file_chunks(src.path, self.chunk_size):
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            sha.update(chunk)
            if not compress:
                csize += out.write(chunk)
                continue
            pending.append(pool.submit(_deflate, chunk, self.level, tail, last))
            while len(pending) > 2 * self.workers:
                csize += out.write(pending.popleft().result())
        while pending:
            csize += out.write(pending.popleft().result())
        return crc, size, csize, sha

    def _write_central(self, out: _Output, central: list[_Central]) -> None:
        cd_offset = out.pos
        for c in central:
            out.write(_central_header(c, self._dos))
        out.write(_end_records(len(central), cd_offset, out.pos - cd_offset))
        out.flush()


class _Lookahead:
    """Submits work for the next few planned members while earlier ones are written, so the
    pool stays busy without holding every compressed member in memory at once."""

    def __init__(self, plan: list[_Planned],
                 submit: Callable[[_Planned], Future[_Payload] | None], window: int) -> None:
        self._plan, self._submit, self._window = plan, submit, window
        self._next = 0
        self._futures: dict[int, Future[_Payload]] = {}

    def take(self, index: int) -> Future[_Payload] | None:
        while self._next < len(self._plan) and self._next <= index + self._window:
            future = self._submit(self._plan[self._next])
            if future is not None:
                self._futures[self._next] = future
            self._next += 1
        return self._futures.pop(index, None)


def _resolve_copied_hashes(written: list[WrittenMember], plan: list[_Planned],
                           hashes: Mapping[str, Future[tuple[str, int]]]) -> list[WrittenMember]:
    lies: list[str] = []
    claims = {p.name: p.source.claimed for p in plan if isinstance(p.source, _Copy)}
    resolved: list[WrittenMember] = []
    for w in written:
        if w.name in hashes:
            actual = hashes[w.name].result()[0]
            claimed = claims[w.name]
            if claimed is not None and claimed != actual:
                lies.append(f"{w.name} (RECORD {claimed}, content {actual})")
            w = WrittenMember(w.name, w.size, w.compressed_size, actual, True)
        resolved.append(w)
    if lies:
        shown = "; ".join(lies[:5]) + (f"; and {len(lies) - 5} more" if len(lies) > 5 else "")
        raise WheelFileError(f"source RECORD does not match the content of {len(lies)} "
                             f"member(s): {shown}.  The wheel is corrupt or was modified "
                             "after it was built; rebuild it")
    return resolved


def _record_bytes(written: list[WrittenMember], record_path: str) -> bytes:
    buf = io.StringIO()
    rows = csv.writer(buf, lineterminator="\n")
    for w in written:
        rows.writerow((w.name, w.hash, w.size))
    rows.writerow((record_path, "", ""))
    return buf.getvalue().encode("utf-8")


def rewrite_wheel(src: StrPath, dest: StrPath, *,
                  replace: Mapping[str, bytes | StrPath] | None = None,
                  remove: Iterable[str] = (), level: int = DEFAULT_LEVEL,
                  workers: int | None = None, verify: bool = False,
                  source_date_epoch: int | None = None) -> WriteResult:
    """Write ``dest`` as ``src`` with members replaced/added (bytes or a file path) and
    removed; everything else is copied without recompression.  ``dest`` may equal ``src``."""
    replace = dict(replace or {})
    removed = set(remove)
    with WheelReader(src) as reader:
        unknown = sorted(removed - set(reader.names()))
        if unknown:
            raise WheelFileError(f"{src}: cannot remove {', '.join(map(repr, unknown))}: "
                                 "no such member")
        writer = WheelWriter(dest, level=level, workers=workers,
                             source_date_epoch=source_date_epoch)
        for m in reader.members:
            if not (m.is_dir or m.name in removed or m.name in replace
                    or m.name == reader.record_path or _is_signature(m.name, reader.record_path)):
                writer.copy(reader, m.name, verify=verify)
        for name, content in replace.items():
            if isinstance(content, (bytes, bytearray)):
                old = reader.member(name) if name in reader else None
                writer.add_bytes(name, bytes(content), executable=bool(old and old.is_executable))
            else:
                writer.add_file(name, content)
        return writer.write()


def pack_directory(root: StrPath, dest: StrPath, *, level: int = DEFAULT_LEVEL,
                   workers: int | None = None,
                   source_date_epoch: int | None = None, symlinks: bool = False) -> WriteResult:
    """Zip a directory tree (e.g. an unpacked wheel) reproducibly; RECORD is regenerated.

    Wheels cannot carry symlinks (pip installs them as copies or fails), so a link is an error
    unless ``symlinks``: plain zips such as libtorch archives keep in-tree links as links."""
    base = Path(root)
    writer = WheelWriter(dest, level=level, workers=workers,
                         source_date_epoch=source_date_epoch)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for entry in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, entry)
            name = path.relative_to(base).as_posix()
            if path.is_symlink() and symlinks:
                writer.add_symlink(name, os.readlink(path))
                continue
            if path.is_symlink():
                raise WheelFileError(f"{path}: symlinks cannot be packed into a wheel portably; "
                                     "copy the file or fix the build that made the link")
            writer.add_file(name, path)
    return writer.write()
