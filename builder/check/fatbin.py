"""Read the device code embedded in host libraries: CUDA fatbins and HIP offload bundles.

Why parse ourselves instead of running ``cuobjdump --list-elf``: the system CUDA toolkit has
no cuobjdump, the PyPI one is a 13.x download a check should not need, and cuobjdump lists
*entries*, not kernels.  A fatbin is a short chain of fixed headers (per entry: kind, SM
arch, flags, sizes), so reading the headers is exact and costs microseconds.  Kernels are
counted inside each cubin (its ``.nv.info.<kernel>`` sections) because an arch can appear as
an entry without code: with static cudart every arch appears twice, once as cudart's empty
cubin.  Compressed cubins are opened when a decompressor is at hand: LZ4 (nvcc's default
before CUDA 13) with the small decoder below, zstd (``-compress-mode``, CUDA 13's default)
with the ``zstd`` program or the ``zstandard`` module.  An entry that cannot be opened
keeps ``kernels = None`` and still counts for its arch.

HIP: ``.hip_fatbin`` holds clang offload bundles (``__CLANG_OFFLOAD_BUNDLE__``: a count,
then offset/size/target triple per entry; or ``CCOB``, the same compressed with zlib or
zstd).  Their targets (``hipv4-amdgcn-amd-amdhsa--gfx90a``) are what
``clang-offload-bundler --list`` prints.
"""

from __future__ import annotations

import importlib
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

FATBIN_MAGIC = 0xBA55ED50
BUNDLE_MAGIC = b"__CLANG_OFFLOAD_BUNDLE__"
COMPRESSED_BUNDLE_MAGIC = b"CCOB"
_KIND = {1: "ptx", 2: "sass"}
_FLAG_LZ4, _FLAG_ZSTD = 0x2000, 0x8000
LZ4_BUDGET = 64 << 20  # bytes of LZ4 output the pure-Python decoder may produce per call


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
    raws = _containers(section)
    zstd = _zstd_decoder()
    budget = LZ4_BUDGET
    out = []
    for raw in raws:
        data: bytes | None = raw.payload
        if raw.code.compression == "lz4":
            data = lz4_block_decompress(raw.payload, raw.size) if raw.size <= budget else None
            budget -= raw.size if data is not None else 0
        elif raw.code.compression == "zstd":
            data = None
        out.append(replace(raw.code, kernels=_kernels(data) if data is not None else None))
    zstd_raws = [i for i, raw in enumerate(raws) if raw.code.compression == "zstd"]
    if zstd is not None and zstd_raws:
        frames = [(raws[i].payload, raws[i].size) for i in zstd_raws]
        for index, data in zip(zstd_raws, zstd(frames), strict=True):
            out[index] = replace(out[index], kernels=_kernels(data) if data is not None else None)
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
        payload = data[pos + header:pos + header + length]
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
        shoff, = struct.unpack_from(order + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
    else:
        shoff, = struct.unpack_from(order + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
    if shoff + shnum * shentsize > len(data) or shstrndx >= shnum:
        return None
    fmt = order + ("IIQQQQ" if is64 else "IIIIII")

    def header(i: int) -> tuple[int, ...]:
        return struct.unpack_from(fmt, data, shoff + i * shentsize)

    names_at, names_size = header(shstrndx)[4], header(shstrndx)[5]
    names = data[names_at:names_at + names_size]
    count = 0
    for i in range(shnum):
        offset = header(i)[0]
        if names.startswith(b".nv.info.", offset):
            count += 1
    return count


# --------------------------------------------------------------------------------------
# Decompression


def lz4_block_decompress(src: bytes, size: int) -> bytes | None:
    """Decode one raw LZ4 block (no frame) of known output size; None if it is malformed."""
    out = bytearray()
    i, n = 0, len(src)
    try:
        while i < n:
            token = src[i]
            i += 1
            literals = token >> 4
            if literals == 15:
                while True:
                    extra = src[i]
                    i += 1
                    literals += extra
                    if extra != 255:
                        break
            out += src[i:i + literals]
            i += literals
            if i >= n:
                break  # the last sequence has literals only
            offset = src[i] | (src[i + 1] << 8)
            i += 2
            length = token & 15
            if length == 15:
                while True:
                    extra = src[i]
                    i += 1
                    length += extra
                    if extra != 255:
                        break
            length += 4
            if offset == 0 or offset > len(out):
                return None
            start = len(out) - offset
            if offset >= length:
                out += out[start:start + length]
            else:  # overlapping copy: the match repeats the last `offset` bytes
                for k in range(length):
                    out.append(out[start + k])
    except IndexError:
        return None
    return bytes(out) if not size or len(out) == size else None


Frame = tuple[bytes, int]  # a zstd frame and its decompressed size (0: unknown)


def _zstd_decoder() -> Callable[[list[Frame]], list[bytes | None]] | None:
    """Batch zstd decoding: the zstandard module, else one run of the zstd program over all
    frames (concatenated frames decode to the concatenated outputs, split by their sizes:
    the fatbin entry header's, else the frame header's)."""
    try:
        module = importlib.import_module("zstandard")
    except ImportError:
        module = None
    if module is not None:
        decompressor = module.ZstdDecompressor()

        def with_module(frames: list[Frame]) -> list[bytes | None]:
            out: list[bytes | None] = []
            for frame, _ in frames:
                try:
                    out.append(decompressor.decompressobj().decompress(frame))
                except Exception:  # zstandard raises its own error type
                    out.append(None)
            return out

        return with_module
    program = shutil.which("zstd")
    if program is None:
        return None
    return lambda frames: _zstd_program(program, frames)


def _zstd_program(program: str, frames: list[Frame]) -> list[bytes | None]:
    sizes = [size or _frame_content_size(frame) for frame, size in frames]
    if any(s is None for s in sizes):
        return [None] * len(frames)
    done = subprocess.run([program, "-d", "-c", "-q"], input=b"".join(f for f, _ in frames), capture_output=True,
                          check=False)
    if done.returncode != 0 or len(done.stdout) != sum(s or 0 for s in sizes):
        return [None] * len(frames)
    out: list[bytes | None] = []
    pos = 0
    for size in sizes:
        out.append(done.stdout[pos:pos + (size or 0)])
        pos += size or 0
    return out


def _frame_content_size(frame: bytes) -> int | None:
    """The decompressed size a zstd frame header declares (RFC 8878 3.1.1.1), if it does."""
    if len(frame) < 6 or frame[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = frame[4]
    fcs_flag, single = descriptor >> 6, (descriptor >> 5) & 1
    dict_bytes = (0, 1, 2, 4)[descriptor & 3]
    at = 5 + (0 if single else 1) + dict_bytes
    width = (1 if single else 0, 2, 4, 8)[fcs_flag]
    if width == 0 or at + width > len(frame):
        return None
    value = int.from_bytes(frame[at:at + width], "little")
    return value + 256 if width == 2 else value


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
    count, = struct.unpack_from("<Q", data, at)
    at += 8
    targets, end = [], at
    for _ in range(min(count, 4096)):
        if at + 24 > len(data):
            raise FatbinError(f"offload bundle at offset {pos} is truncated")
        offset, size, length = struct.unpack_from("<QQQ", data, at)
        at += 24
        targets.append(data[at:at + length].decode("ascii", "replace"))
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
    payload = data[pos + head:end]
    if method == 0:
        inflated: bytes | None = zlib.decompress(payload)
    else:
        decoder = _zstd_decoder()
        inflated = decoder([(payload, 0)])[0] if decoder else None
    if inflated is None:
        raise FatbinError(f"compressed offload bundle at offset {pos} cannot be decompressed here "
                          "(zstd: install the zstd program)")
    return _bundle_targets(inflated, 0)[0], end
