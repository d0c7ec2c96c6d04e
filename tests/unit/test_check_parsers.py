"""Device-code parsers and the small rules of builder.check, on inputs built byte by byte.

The integration tests run the same code on real nvcc output; here each format detail is
pinned down on its own: fatbin headers, LZ4 blocks, zstd frame sizes, clang offload
bundles (plain and CCOB-compressed), and the naming rules.
"""

from __future__ import annotations

import struct
import zlib

import lz4.block
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from builder.catalog import load_catalog
from builder.check.accel import expected_cuda_archs
from builder.check.context import base_soname, is_hash_renamed, openmp_family
from builder.check.fatbin import FatbinError, cuda_entries, hip_targets, lz4_block, zstd_frame
from builder.check.findings import Finding, Severity, ignored
from builder.check.runner import require_matching_name
from builder.check.tags import _module_problem
from builder.config import config_from_id
from builder.errors import ConfigError


def cubin(kernels: list[str]) -> bytes:
    """A minimal 64-bit ELF whose section names are what the kernel counter reads."""
    names = [b"", b".shstrtab", b".text"] + [b".nv.info." + k.encode() for k in kernels]
    strtab = b"\0".join(names) + b"\0"
    offsets, pos = [], 0
    for n in names:
        offsets.append(pos)
        pos += len(n) + 1
    shoff = 64 + len(strtab)
    header = (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + struct.pack("<HHIQQQIHHHHHH", 2, 190, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(names), 1)
    )
    sections = b"".join(
        struct.pack(
            "<IIQQQQIIQQ",
            offsets[i],
            3 if i == 1 else 1,
            0,
            0,
            64 if i == 1 else 0,
            len(strtab) if i == 1 else 0,
            0,
            0,
            1,
            0,
        )
        for i in range(len(names))
    )
    return header + strtab + sections


def fatbin(entries: list[tuple[int, int, bytes, int]], sizes: tuple[int, ...] = ()) -> bytes:
    """A fatbin container: entries of (kind 1=PTX/2=ELF, sm arch, payload, flags); sizes are the
    decompressed sizes the entry headers announce."""
    body = b""
    for index, (kind, arch, payload, flags) in enumerate(entries):
        padded = payload + b"\0" * (-len(payload) % 8)
        size = sizes[index] if index < len(sizes) else 0
        head = struct.pack(
            "<HHIQIIIIIIQQQ",
            kind,
            0x101,
            64,
            len(padded),
            len(payload) if flags else 0,
            0,
            0,
            arch,
            0,
            0,
            flags,
            0,
            size,
        )
        body += head + padded
    return struct.pack("<IHHQ", 0xBA55ED50, 1, 16, len(body)) + body


def test_fatbin_counts_kernels_per_arch_and_skips_empty_cubins() -> None:
    section = (
        fatbin([(2, 75, cubin([]), 0x11), (2, 90, cubin([]), 0x11)])
        + b"\0" * 8
        + fatbin(
            [
                (2, 75, cubin(["k1", "k2"]), 0x11),
                (2, 90, cubin(["k1", "k2"]), 0x11),
                (1, 90, b".version 9.0\n.entry k1 (\n.entry k2 (\n", 0x11),
            ]
        )
    )
    entries = cuda_entries(section)
    assert [(e.kind, e.arch, e.kernels) for e in entries] == [
        ("sass", 75, 0),
        ("sass", 90, 0),
        ("sass", 75, 2),
        ("sass", 90, 2),
        ("ptx", 90, 2),
    ]


def test_fatbin_truncated_is_an_error() -> None:
    section = fatbin([(2, 75, cubin(["k"]), 0x11)])
    with pytest.raises(FatbinError):
        cuda_entries(section[:-40])


def lz4_literals(data: bytes) -> bytes:
    """An LZ4 block holding only literals (a valid, if useless, encoding)."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    extra, rest = b"", n - 15
    while rest >= 255:
        extra += b"\xff"
        rest -= 255
    return b"\xf0" + extra + bytes([rest]) + data


@given(st.binary(max_size=600))
def test_lz4_blocks_round_trip(data: bytes) -> None:
    assert lz4_block(lz4.block.compress(data, store_size=False), len(data)) == data
    assert lz4_block(lz4_literals(data), len(data)) == data  # a hand-made literals-only block too


def test_broken_compressed_payloads_give_none() -> None:
    block = lz4.block.compress(b"abababababc" * 10, store_size=False)
    assert lz4_block(block[:4], 110) is None
    assert zstd_frame(b"\x28\xb5\x2f\xfd garbage") is None


def test_lz4_compressed_cubin_is_opened() -> None:
    raw = cubin(["kernel"])
    entries = cuda_entries(fatbin([(2, 80, lz4.block.compress(raw, store_size=False), 0x2011)], (len(raw),)))
    assert entries[0].compression == "lz4" and entries[0].kernels == 1


def test_zstd_compressed_cubin_is_opened() -> None:
    raw = cubin(["a", "b", "c"])
    frame = zstandard.ZstdCompressor().compress(raw)
    entries = cuda_entries(fatbin([(2, 100, frame, 0x8011), (2, 120, frame, 0x8011)], (len(raw), len(raw))))
    assert [(e.arch, e.compression, e.kernels) for e in entries] == [(100, "zstd", 3), (120, "zstd", 3)]


def bundle(targets: list[str]) -> bytes:
    head = b"__CLANG_OFFLOAD_BUNDLE__" + struct.pack("<Q", len(targets))
    entries = b"".join(struct.pack("<QQQ", 0, 0, len(t)) + t.encode() for t in targets)
    return head + entries


def test_hip_bundles_plain_and_zlib_compressed() -> None:
    plain = bundle(["host-x86_64-unknown-linux-gnu-", "hipv4-amdgcn-amd-amdhsa--gfx90a"])
    inner = bundle(["hipv4-amdgcn-amd-amdhsa--gfx942:xnack-"])
    packed = zlib.compress(inner)
    ccob = b"CCOB" + struct.pack("<HHIIQ", 2, 0, 4 + 2 + 2 + 4 + 4 + 8 + len(packed), len(inner), 0) + packed
    section = plain + b"\0" * 32 + ccob
    assert hip_targets(section) == [
        "host-x86_64-unknown-linux-gnu-",
        "hipv4-amdgcn-amd-amdhsa--gfx90a",
        "hipv4-amdgcn-amd-amdhsa--gfx942:xnack-",
    ]


def test_expected_archs_from_arch_lists() -> None:
    assert expected_cuda_archs("7.5;8.0;12.0+PTX") == ({75, 80, 120}, {120})
    assert expected_cuda_archs("9.0a;10.0") == ({90, 100}, set())
    for cuda in load_catalog().cuda.values():  # every catalog list parses
        assert expected_cuda_archs(cuda.arch_list)[0]


def test_soname_helpers() -> None:
    assert base_soname("minitorch.libs/libgomp-a34b3233.so.1") == "libgomp.so.1"
    assert base_soname("libcuda-0123abcd.so.1") == "libcuda.so.1" and base_soname("libc10.so") == "libc10.so"
    assert is_hash_renamed("libgomp-a34b3233.so.1") and not is_hash_renamed("libgomp.so.1")
    assert openmp_family("libiomp5.so") == "Intel libiomp5" and openmp_family("libomp.so.5") == "LLVM libomp"
    assert openmp_family("libgomp-a34b3233.so.1") == "GNU libgomp" and openmp_family("libompx.so") is None


def test_extension_module_suffixes_against_tags() -> None:
    pairs = {("cp311", "cp311")}
    assert _module_problem("_C.cpython-311-x86_64-linux-gnu.so", pairs) is None
    assert _module_problem("_C.cpython-312-x86_64-linux-gnu.so", pairs)[0] == "tags.python-mismatch"  # type: ignore
    assert _module_problem("_C.cpython-311t-x86_64-linux-gnu.so", pairs)[0] == "tags.free-threaded-mismatch"  # type: ignore
    assert _module_problem("_C.abi3.so", {("cp313", "cp313t")})[0] == "tags.free-threaded-mismatch"  # type: ignore
    assert _module_problem("_C.cpython-311-x86_64-linux-gnu.so", {("cp311", "abi3")})[0] == "tags.abi-mismatch"  # type: ignore
    assert _module_problem("_C.so", pairs) is None


def test_config_must_match_the_artifact_name(catalog: object) -> None:
    cat = load_catalog()
    wheel = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    require_matching_name(config_from_id("manywheel-py3_11-cpu", cat), wheel)
    for bad, phrase in (
        ("manywheel-py3_12-cpu", "cp312"),
        ("manywheel-py3_13t-cpu", "3.13t"),
        ("manywheel-py3_11-cuda13_0", "+cu130"),
        ("manywheel-py3_11-cpu-aarch64", "aarch64"),
        ("libtorch-cpu-shared-with-deps", "libtorch"),
    ):
        with pytest.raises(ConfigError, match=phrase.replace("+", r"\+")):
            require_matching_name(config_from_id(bad, cat), wheel)
    require_matching_name(
        config_from_id("libtorch-cuda13_0-shared-with-deps", cat), "libtorch-shared-with-deps-2.13.0+cu130.zip"
    )
    with pytest.raises(ConfigError, match="zip"):
        require_matching_name(config_from_id("manywheel-py3_11-cpu", cat), "libtorch-2.13.0+cpu.zip")


def test_ignore_globs_cross_directories() -> None:
    finding = Finding("rpath.absolute", Severity.WARNING, "torch/test/deep/atest", "m")
    assert ignored(finding, ["torch/test/*"]) and not ignored(finding, ["torch/bin/*"])
    assert not ignored(Finding("meta.size-ceiling", Severity.ERROR, "", "m"), ["*"])
