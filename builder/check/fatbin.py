"""Read the device code embedded in host libraries: CUDA fatbins and HIP offload bundles.

Why parse ourselves instead of running ``cuobjdump --list-elf``: the system CUDA toolkit has
no cuobjdump, the PyPI one is a 13.x download a check should not need, and cuobjdump lists
*entries*, not kernels.  A fatbin is a short chain of fixed headers (per entry: kind, SM
arch, flags, sizes), so reading the headers is exact and costs microseconds.  Kernels are
counted inside each cubin (its ``.nv.info.<kernel>`` sections) because an arch can appear as
an entry without code: with static cudart every arch appears twice, once as cudart's empty
cubin.  Compressed cubins (LZ4 blocks, nvcc's default before CUDA 13; zstd frames, CUDA 13's
``-compress-mode`` default) are opened with the ``lz4`` and ``zstandard`` libraries.  An entry
that cannot be opened keeps ``kernels = None`` and still counts for its arch.

HIP: ``.hip_fatbin`` holds clang offload bundles (``__CLANG_OFFLOAD_BUNDLE__``: a count,
then offset/size/target triple per entry; or ``CCOB``, the same compressed with zlib or
zstd).  Their targets (``hipv4-amdgcn-amd-amdhsa--gfx90a``) are what
``clang-offload-bundler --list`` prints.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

import lz4.block
import zstandard

FATBIN_MAGIC = 0xBA55ED50
BUNDLE_MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"
COMPRESSED_BUNDLE_MAGIC = b"CCOB"
_KIND = {1: "ptx", 2: "sass"}
_FLAG_LZ4, _FLAG_ZSTD = 0x2000, 0x8000
LZ4_BUDGET = 256 << 20  # decompressed bytes one library's fatbins may ask for (a hostile header could ask for more)


class FatbinError(ValueError):
    """A fatbin or offload bundle is truncated or malformed."""


@dataclass(frozen=True)
class DeviceCode:
    kind: str  # "sass" | "ptx" | "other"
    arch: int  # SM number: 75, 90, 120
    compression: str | None  # None | "lz4" | "zstd"
    kernels: int | None  # None: the entry could not be opened


@dataclass(frozen=True)
class _Raw:
    code: DeviceCode
    payload: bytes
    size: int  # decompressed size the header announces (0 when stored)


def cuda_entries(section: bytes) -> list[DeviceCode]:
    """Every entry of every fatbin container in a ``.nv_fatbin`` section, kernels counted."""
    budget = LZ4_BUDGET
    out = []
    for raw in _containers(section):
        data: bytes | None = raw.payload
        if raw.code.compression is not None:
            data = None
            if raw.size <= budget:  # bound the memory a hostile header can ask for
                data = (
                    lz4_block(raw.payload, raw.size)
                    if raw.code.compression == "lz4"
                    else zstd_frame(raw.payload, raw.size)
                )
                budget -= raw.size
        out.append(replace(raw.code, kernels=_kernels(data) if data is not None else None))
    return out


def _containers(section: bytes) -> list[_Raw]:
    out: list[_Raw] = []
    pos = 0
    while pos + 16 <= len(section):
        magic, _version, header, size = struct.unpack_from("<IHHQ", section, pos)
        if magic != FATBIN_MAGIC:
            pos += 8  # containers are 8-byte aligned; padding lies between them
            continue
        end = pos + header + size
        if header < 16 or end > len(section):
            raise FatbinError(f"fatbin container at offset {pos} runs past the section ({end} > {len(section)})")
        out += _entries(section, pos + header, end)
        pos = (end + 7) & ~7
    return out


def _entries(data: bytes, pos: int, end: int) -> list[_Raw]:
    out = []
    while pos + 16 <= end:
        kind, _version, header, padded = struct.unpack_from("<HHIQ", data, pos)
        if header < 32 or pos + header + padded > end:
            raise FatbinError(f"fatbin entry at offset {pos} is malformed (header {header}, payload {padded})")
        stored, _, _, arch = struct.unpack_from("<IIII", data, pos + 16)
        flags = struct.unpack_from("<Q", data, pos + 40)[0] if header >= 48 else 0
        size = struct.unpack_from("<Q", data, pos + 56)[0] if header >= 64 else 0
        compression = "zstd" if flags & _FLAG_ZSTD else "lz4" if flags & _FLAG_LZ4 else None
        length = stored if compression and 0 < stored <= padded else padded
        payload = data[pos + header : pos + header + length]
        out.append(_Raw(DeviceCode(_KIND.get(kind, "other"), arch, compression, None), payload, size))
        pos += header + padded
    return out


def _kernels(data: bytes) -> int | None:
    """Kernels in a cubin (one ``.nv.info.<kernel>`` section each; device functions have none)
    or in PTX text (one ``.entry`` each); None for anything else."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return data.count(b".entry ") if b".version" in data[:4096] else None
    is64 = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    if is64:
        (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
    else:
        (shoff,) = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
    if shoff + shnum * shentsize > len(data) or shstrndx >= shnum:
        return None
    fmt = order + ("IIQQQQ" if is64 else "IIIIII")

    def header(i: int) -> tuple[int, ...]:
        return struct.unpack_from(fmt, data, shoff + i * shentsize)

    names_at, names_size = header(shstrndx)[4], header(shstrndx)[5]
    names = data[names_at : names_at + names_size]
    count = 0
    for i in range(shnum):
        offset = header(i)[0]
        if names.startswith(b".nv.info.", offset):
            count += 1
    return count


# --------------------------------------------------------------------------------------
# Decompression


def lz4_block(payload: bytes, size: int) -> bytes | None:
    """One raw LZ4 block (no frame) of known output size; None if it is malformed."""
    try:
        return bytes(lz4.block.decompress(payload, uncompressed_size=size))
    except (lz4.block.LZ4BlockError, ValueError):
        return None


def zstd_frame(payload: bytes, size: int = 0) -> bytes | None:
    """One zstd frame; the size (0: unknown) bounds the output when the frame does not declare it."""
    try:
        return zstandard.ZstdDecompressor().decompress(payload, max_output_size=size or 1 << 31)
    except zstandard.ZstdError:
        return None


# --------------------------------------------------------------------------------------
# HIP offload bundles


def hip_targets(section: bytes) -> list[str]:
    """Offload targets (``hipv4-amdgcn-amd-amdhsa--gfx90a``) of every bundle in ``.hip_fatbin``."""
    targets: list[str] = []
    pos = 0
    while True:
        plain = section.find(BUNDLE_MAGIC, pos)
        packed = section.find(COMPRESSED_BUNDLE_MAGIC, pos)
        starts = [p for p in (plain, packed) if p >= 0]
        if not starts:
            return targets
        pos = min(starts)
        if pos == plain:
            found, pos = _bundle_targets(section, pos)
        else:
            found, pos = _compressed_bundle_targets(section, pos)
        targets += found


def _bundle_targets(data: bytes, pos: int) -> tuple[list[str], int]:
    at = pos + len(BUNDLE_MAGIC)
    if at + 8 > len(data):
        raise FatbinError(f"offload bundle at offset {pos} is truncated")
    (count,) = struct.unpack_from("<Q", data, at)
    at += 8
    targets, end = [], at
    for _ in range(min(count, 4096)):
        if at + 24 > len(data):
            raise FatbinError(f"offload bundle at offset {pos} is truncated")
        offset, size, length = struct.unpack_from("<QQQ", data, at)
        at += 24
        targets.append(data[at : at + length].decode("ascii", "replace"))
        at += length
        end = max(end, pos + offset + size)
    return targets, max(at, end)


def _compressed_bundle_targets(data: bytes, pos: int) -> tuple[list[str], int]:
    """CCOB v1-v3: magic, u16 version, u16 method (0 zlib, 1 zstd), sizes, u64 hash, data."""
    version, method = struct.unpack_from("<HH", data, pos + 4)
    if version == 1:
        total, head = None, 4 + 2 + 2 + 4 + 8
    elif version == 2:
        total, head = struct.unpack_from("<I", data, pos + 8)[0], 4 + 2 + 2 + 4 + 4 + 8
    elif version == 3:
        total, head = struct.unpack_from("<Q", data, pos + 8)[0], 4 + 2 + 2 + 8 + 8 + 8
    else:
        raise FatbinError(f"compressed offload bundle at offset {pos} has unknown version {version}")
    end = pos + total if total else len(data)
    payload = data[pos + head : end]
    inflated = zlib.decompress(payload) if method == 0 else zstd_frame(payload)
    if inflated is None:
        raise FatbinError(f"compressed offload bundle at offset {pos} does not decompress")
    return _bundle_targets(inflated, 0)[0], end
