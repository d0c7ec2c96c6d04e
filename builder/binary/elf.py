"""Fast ELF reader: only the dynamic-linking facts that repair and check need.

pyelftools builds Python objects for every symbol and section; reading the torch wheel that
way costs ~55 s.  Here we read the handful of tables we need with ``struct.unpack_from``
straight from an mmap, so the whole wheel is read in milliseconds.  Both classes (32/64-bit)
and both byte orders are supported; every offset taken from the file is bounds-checked so a
truncated or corrupt file raises :class:`ElfError` instead of returning garbage.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "ELF_MAGIC",
    "ElfError",
    "ElfInfo",
    "dynamic_symbols",
    "is_elf",
    "max_symbol_versions",
    "parse_symbol_version",
    "read_elf",
    "section_bytes",
]

ELF_MAGIC = b"\x7fELF"

StrPath = str | os.PathLike[str]

# Tag and type numbers from the System V gABI and the GNU extensions.
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ = 0, 1, 5, 10
_DT_SONAME, _DT_RPATH, _DT_RUNPATH = 14, 15, 29
_DT_VERNEED, _DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF
_SHT_NOBITS, _SHT_DYNAMIC, _SHT_DYNSYM = 8, 6, 11
_SHT_GNU_VERNEED = 0x6FFFFFFE
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_SHN_UNDEF, _SHN_XINDEX = 0, 0xFFFF

_ELF_TYPES = {0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE"}

# Names follow wheel platform-tag architecture spellings, since that is what callers
# compare them with (manylinux_2_28_x86_64, ..._i686, ..._ppc64le).
_MACHINES_64 = {62: "x86_64", 183: "aarch64", 21: "ppc64", 22: "s390x", 243: "riscv64",
                258: "loongarch64", 8: "mips64", 43: "sparcv9"}
_MACHINES_32 = {3: "i686", 40: "armv7l", 20: "ppc", 22: "s390", 243: "riscv32", 8: "mips",
                2: "sparc", 62: "x32"}


class ElfError(ValueError):
    """A file is not ELF, or is truncated or corrupt where we need to read it."""


@dataclass(frozen=True)
class ElfInfo:
    """The dynamic-linking facts of one ELF file.

    ``needed``, ``rpath`` and ``runpath`` keep the file's order (the loader's search order).
    ``version_needs`` maps each needed library to the symbol versions required from it, e.g.
    ``{"libc.so.6": {"GLIBC_2.17", ...}}``.
    """

    path: str
    machine: str
    elf_class: int
    byteorder: str
    elf_type: str
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    version_needs: Mapping[str, frozenset[str]] = field(hash=False)
    sections: frozenset[str]
    interpreter: str | None

    @property
    def is_executable(self) -> bool:
        """True for programs (including PIE), which carry an interpreter; False for libraries."""
        return self.interpreter is not None or self.elf_type == "EXEC"


class _Layout(NamedTuple):
    ehdr: struct.Struct  # fields after e_ident
    shdr: struct.Struct
    phdr: struct.Struct
    ph_fields: tuple[int, int, int, int]  # indices of p_type, p_offset, p_vaddr, p_filesz
    dyn: struct.Struct
    sym: struct.Struct
    sym_fields: tuple[int, int]  # indices of st_name, st_shndx
    verneed: struct.Struct
    vernaux: struct.Struct


def _layout(elf_class: int, order: str) -> _Layout:
    if elf_class == 64:
        return _Layout(
            struct.Struct(order + "HHIQQQIHHHHHH"), struct.Struct(order + "IIQQQQIIQQ"),
            struct.Struct(order + "IIQQQQQQ"), (0, 2, 3, 5), struct.Struct(order + "qQ"),
            struct.Struct(order + "IBBHQQ"), (0, 3),
            struct.Struct(order + "HHIII"), struct.Struct(order + "IHHII"),
        )
    return _Layout(
        struct.Struct(order + "HHIIIIIHHHHHH"), struct.Struct(order + "IIIIIIIIII"),
        struct.Struct(order + "IIIIIIII"), (0, 1, 2, 4), struct.Struct(order + "iI"),
        struct.Struct(order + "IIIBBH"), (0, 5),
        struct.Struct(order + "HHIII"), struct.Struct(order + "IHHII"),
    )


_LAYOUTS = {(c, o): _layout(c, o) for c in (32, 64) for o in ("<", ">")}


class _Section(NamedTuple):
    name: str
    type: int
    offset: int
    size: int
    link: int
    info: int


class _Segment(NamedTuple):
    type: int
    offset: int
    vaddr: int
    filesz: int


class _Elf:
    """An open ELF image: header, section and program tables parsed, the rest on demand."""

    def __init__(self, data: mmap.mmap | bytes, path: str) -> None:
        self.data = data
        self.path = path
        if len(data) < 16 or data[:4] != ELF_MAGIC:
            raise ElfError(f"{path}: not an ELF file (bad magic)")
        classes = {1: 32, 2: 64}
        orders = {1: "<", 2: ">"}
        if data[4] not in classes or data[5] not in orders:
            raise ElfError(f"{path}: unknown ELF class {data[4]} or data encoding {data[5]}")
        self.elf_class = classes[data[4]]
        self.order = orders[data[5]]
        self.layout = _LAYOUTS[(self.elf_class, self.order)]
        hdr = self._unpack(self.layout.ehdr, 16, "ELF header")
        self.e_type, self.e_machine = hdr[0], hdr[1]
        phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx = (
            hdr[4], hdr[5], hdr[8], hdr[9], hdr[10], hdr[11], hdr[12])
        self.segments = self._read_segments(phoff, phentsize, phnum)
        self.sections = self._read_sections(shoff, shentsize, shnum, shstrndx)

    def fail(self, what: str) -> ElfError:
        return ElfError(f"{self.path}: truncated or corrupt ELF: {what}")

    def _unpack(self, st: struct.Struct, offset: int, what: str) -> tuple[int, ...]:
        if offset < 0 or offset + st.size > len(self.data):
            raise self.fail(f"{what} at offset {offset} lies beyond the end of the file")
        return st.unpack_from(self.data, offset)

    def check_range(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise self.fail(f"{what} (offset {offset}, {size} bytes) extends beyond the end "
                            f"of the file ({len(self.data)} bytes)")

    def _table(self, st: struct.Struct, offset: int, count: int, what: str) -> list[tuple[int, ...]]:
        self.check_range(offset, count * st.size, what)
        return list(st.iter_unpack(self.data[offset:offset + count * st.size]))

    def _read_segments(self, phoff: int, phentsize: int, phnum: int) -> tuple[_Segment, ...]:
        if phoff == 0 or phnum == 0:
            return ()
        if phentsize != self.layout.phdr.size:
            raise self.fail(f"program header entry size {phentsize}")
        t, o, v, f = self.layout.ph_fields
        rows = self._table(self.layout.phdr, phoff, phnum, "program header table")
        return tuple(_Segment(r[t], r[o], r[v], r[f]) for r in rows)

    def _read_sections(self, shoff: int, shentsize: int, shnum: int,
                       shstrndx: int) -> tuple[_Section, ...]:
        if shoff == 0:
            return ()
        if shentsize != self.layout.shdr.size:
            raise self.fail(f"section header entry size {shentsize}")
        if shnum == 0 or shstrndx == _SHN_XINDEX:
            # Extended numbering: the real values live in section 0 (gABI "sh_size"/"sh_link").
            first = self._unpack(self.layout.shdr, shoff, "section header 0")
            shnum = shnum or first[5]
            shstrndx = first[6] if shstrndx == _SHN_XINDEX else shstrndx
        rows = self._table(self.layout.shdr, shoff, shnum, "section header table")
        if shstrndx >= len(rows):
            raise self.fail(f"section name table index {shstrndx} >= {len(rows)} sections")
        names = rows[shstrndx]
        self.check_range(names[4], names[5], "section name table")
        return tuple(_Section(self.cstr(names[4], names[5], r[0], "section name"),
                              r[1], r[4], r[5], r[6], r[7]) for r in rows)

    def cstr(self, base: int, size: int, offset: int, what: str) -> str:
        """The NUL-terminated string at ``offset`` in the string table at ``base``."""
        if offset >= size:
            raise self.fail(f"{what} offset {offset} outside its string table ({size} bytes)")
        end = self.data.find(b"\0", base + offset, base + size)
        if end < 0:
            raise self.fail(f"{what} at offset {offset} is not NUL-terminated")
        return self.data[base + offset:end].decode("utf-8", "surrogateescape")

    def section(self, name: str) -> _Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def _of_type(self, sh_type: int) -> _Section | None:
        return next((s for s in self.sections if s.type == sh_type), None)

    def _linked(self, sec: _Section) -> _Section:
        if not 0 < sec.link < len(self.sections):
            raise self.fail(f"section {sec.name} links to section {sec.link}")
        linked = self.sections[sec.link]
        self.check_range(linked.offset, linked.size, f"section {linked.name}")
        return linked

    def vaddr_to_offset(self, vaddr: int, what: str) -> int:
        for seg in self.segments:
            if seg.type == _PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return seg.offset + vaddr - seg.vaddr
        raise self.fail(f"{what} address {vaddr:#x} is not in any loaded segment")

    def dynamic(self) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
        """Dynamic entries up to DT_NULL, and the (offset, size) of the dynamic string table."""
        sec = self._of_type(_SHT_DYNAMIC)
        if sec is not None:
            offset, size = sec.offset, sec.size
        else:  # section headers stripped: fall back to what the loader itself reads
            seg = next((s for s in self.segments if s.type == _PT_DYNAMIC), None)
            if seg is None:
                return [], None
            offset, size = seg.offset, seg.filesz
        count = size // self.layout.dyn.size
        entries: list[tuple[int, int]] = []
        for tag, val in self._table(self.layout.dyn, offset, count, "dynamic section"):
            if tag == _DT_NULL:
                break
            entries.append((tag, val))
        if sec is not None:
            strtab = self._linked(sec)
            return entries, (strtab.offset, strtab.size)
        return entries, self._strtab_from_tags(entries)

    def _strtab_from_tags(self, entries: list[tuple[int, int]]) -> tuple[int, int] | None:
        tags = dict(entries)
        if _DT_STRTAB not in tags:
            return None
        offset = self.vaddr_to_offset(tags[_DT_STRTAB], "DT_STRTAB")
        size = tags.get(_DT_STRSZ, 0)
        self.check_range(offset, size, "dynamic string table")
        return offset, size

    def version_needs(self, entries: list[tuple[int, int]],
                      strtab: tuple[int, int] | None) -> dict[str, frozenset[str]]:
        sec = self._of_type(_SHT_GNU_VERNEED)
        if sec is not None:
            linked = self._linked(sec)
            return self._walk_verneed(sec.offset, sec.info, (linked.offset, linked.size))
        tags = dict(entries)
        if _DT_VERNEED not in tags or strtab is None:
            return {}
        offset = self.vaddr_to_offset(tags[_DT_VERNEED], "DT_VERNEED")
        return self._walk_verneed(offset, tags.get(_DT_VERNEEDNUM, 0), strtab)

    def _walk_verneed(self, offset: int, count: int,
                      strtab: tuple[int, int]) -> dict[str, frozenset[str]]:
        needs: dict[str, frozenset[str]] = {}
        vn, vna = self.layout.verneed, self.layout.vernaux
        for _ in range(count):  # bounded by the count, so a looping vn_next cannot hang us
            _version, cnt, file_off, aux, nxt = self._unpack(vn, offset, "version need")
            lib = self.cstr(*strtab, file_off, "version need file")
            names: set[str] = set()
            aux_off = offset + aux
            for _ in range(cnt):
                entry = self._unpack(vna, aux_off, "version need aux")
                names.add(self.cstr(*strtab, entry[3], "version name"))
                if entry[4] == 0:
                    break
                aux_off += entry[4]
            needs[lib] = needs.get(lib, frozenset()) | names
            if nxt == 0:
                break
            offset += nxt
        return needs

    def interpreter(self) -> str | None:
        seg = next((s for s in self.segments if s.type == _PT_INTERP), None)
        if seg is None:
            return None
        self.check_range(seg.offset, seg.filesz, "PT_INTERP")
        return self.data[seg.offset:seg.offset + seg.filesz].split(b"\0", 1)[0].decode(
            "utf-8", "surrogateescape")

    def dynsym(self) -> tuple[bytes, bytes]:
        """Raw bytes of .dynsym and of its string table."""
        sec = self._of_type(_SHT_DYNSYM)
        if sec is None:
            return b"", b""
        self.check_range(sec.offset, sec.size, "dynamic symbol table")
        strtab = self._linked(sec)
        usable = sec.size - sec.size % self.layout.sym.size
        return (self.data[sec.offset:sec.offset + usable],
                self.data[strtab.offset:strtab.offset + strtab.size])


@contextmanager
def _open(path: StrPath) -> Iterator[_Elf]:
    shown = os.fspath(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise ElfError(f"{shown}: not an ELF file (empty)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            try:
                yield _Elf(data, shown)
            except (struct.error, IndexError, UnicodeError) as exc:
                # Defence in depth: every read is range-checked, but never leak a raw error.
                raise ElfError(f"{shown}: truncated or corrupt ELF: {exc}") from exc


def is_elf(data_or_path: bytes | bytearray | memoryview | StrPath) -> bool:
    """True if the bytes, or the regular file at the path, start with the ELF magic."""
    if isinstance(data_or_path, (bytes, bytearray, memoryview)):
        return bytes(data_or_path[:4]) == ELF_MAGIC
    if not os.path.isfile(data_or_path):
        return False
    with open(data_or_path, "rb") as fh:
        return fh.read(4) == ELF_MAGIC


def _split_path_list(values: list[str]) -> tuple[str, ...]:
    return tuple(part for value in values for part in value.split(":")) if values else ()


def read_elf(path: StrPath) -> ElfInfo:
    """Read the dynamic-linking facts of one ELF file; raise ElfError if it is not valid ELF."""
    with _open(path) as elf:
        entries, strtab = elf.dynamic()
        strings: dict[int, list[str]] = {_DT_NEEDED: [], _DT_SONAME: [], _DT_RPATH: [],
                                         _DT_RUNPATH: []}
        for tag, val in entries:
            if tag in strings:
                if strtab is None:
                    raise elf.fail("dynamic section has names but no string table")
                strings[tag].append(elf.cstr(*strtab, val, "dynamic entry string"))
        if elf.elf_class == 64:
            machine = _MACHINES_64.get(elf.e_machine, f"EM_{elf.e_machine}")
        else:
            machine = _MACHINES_32.get(elf.e_machine, f"EM_{elf.e_machine}")
        if machine == "ppc64" and elf.order == "<":
            machine = "ppc64le"
        return ElfInfo(
            path=elf.path,
            machine=machine,
            elf_class=elf.elf_class,
            byteorder="little" if elf.order == "<" else "big",
            elf_type=_ELF_TYPES.get(elf.e_type, f"{elf.e_type:#x}"),
            soname=strings[_DT_SONAME][0] if strings[_DT_SONAME] else None,
            needed=tuple(strings[_DT_NEEDED]),
            rpath=_split_path_list(strings[_DT_RPATH]),
            runpath=_split_path_list(strings[_DT_RUNPATH]),
            version_needs=MappingProxyType(elf.version_needs(entries, strtab)),
            sections=frozenset(s.name for s in elf.sections),
            interpreter=elf.interpreter(),
        )


def dynamic_symbols(path: StrPath, *, defined_only: bool = True) -> Iterator[str]:
    """Names (mangled) of the symbols in .dynsym, in table order.

    ``defined_only`` keeps the symbols this file defines (exports), dropping the ones it
    imports.  The tables are copied out once, so the file is closed before the first name.
    """
    with _open(path) as elf:
        symtab, strtab = elf.dynsym()
        st, (name_i, shndx_i) = elf.layout.sym, elf.layout.sym_fields
        shown = elf.path
    return _iter_symbol_names(symtab, strtab, st, name_i, shndx_i, defined_only, shown)


def _iter_symbol_names(symtab: bytes, strtab: bytes, st: struct.Struct, name_i: int,
                       shndx_i: int, defined_only: bool, path: str) -> Iterator[str]:
    find = strtab.find
    for row in st.iter_unpack(symtab):
        offset = row[name_i]
        if (defined_only and row[shndx_i] == _SHN_UNDEF) or offset == 0:
            continue
        end = find(b"\0", offset)
        if end < 0:
            raise ElfError(f"{path}: truncated or corrupt ELF: symbol name at offset "
                           f"{offset} outside its string table ({len(strtab)} bytes)")
        yield strtab[offset:end].decode("utf-8", "surrogateescape")


def section_bytes(path: StrPath, name: str) -> bytes | None:
    """Contents of the named section (e.g. ``.nv_fatbin``), b"" for NOBITS, None if absent."""
    with _open(path) as elf:
        sec = elf.section(name)
        if sec is None:
            return None
        if sec.type == _SHT_NOBITS:
            return b""
        elf.check_range(sec.offset, sec.size, f"section {name}")
        return elf.data[sec.offset:sec.offset + sec.size]


_VERSION_RE = re.compile(r"(?P<family>.+)_(?P<version>\d+(?:\.\d+)*)")


def parse_symbol_version(name: str) -> tuple[str, tuple[int, ...]] | None:
    """``"GLIBCXX_3.4.21"`` -> ``("GLIBCXX", (3, 4, 21))``; None for e.g. ``GLIBC_PRIVATE``."""
    match = _VERSION_RE.fullmatch(name)
    if match is None:
        return None
    return match["family"], tuple(int(p) for p in match["version"].split("."))


def max_symbol_versions(infos: Iterable[ElfInfo]) -> dict[str, tuple[int, ...]]:
    """Highest required version per family over all files: {"GLIBC": (2, 17), ...}.

    This is what manylinux tagging compares against a policy's limits.
    """
    best: dict[str, tuple[int, ...]] = {}
    for info in infos:
        for names in info.version_needs.values():
            for name in names:
                parsed = parse_symbol_version(name)
                if parsed is not None and parsed[1] > best.get(parsed[0], ()):
                    best[parsed[0]] = parsed[1]
    return best
