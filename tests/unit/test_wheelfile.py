"""builder.binary.wheelfile: defensive reading, raw-copy rewrites, RECORD, ZIP64, atomicity."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import stat
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from builder.binary.wheelfile import (
    WheelFileError,
    WheelReader,
    WheelWriter,
    pack_directory,
    rewrite_wheel,
)

DIST = "demo-1.0.dist-info"
RECORD = f"{DIST}/RECORD"


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_zip(
    path: Path,
    members: dict[str, bytes],
    *,
    modes: dict[str, int] | None = None,
    record: bool = True,
    record_override: dict[str, str] | None = None,
) -> Path:
    """A wheel written by Python's zipfile (an independent writer) with a correct RECORD."""
    modes = modes or {}
    members = dict(members)
    if record:
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        for name, data in members.items():
            writer.writerow((name, (record_override or {}).get(name, _hash(data)), len(data)))
        writer.writerow((RECORD, "", ""))
        members[RECORD] = rows.getvalue().encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 2, 3, 4, 6))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = modes.get(name, stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            zf.writestr(info, data)
    return path


SAMPLE = {
    "demo/__init__.py": b"print('hello')\n" * 50,
    "demo/_native.so": b"\x7fELF" + os.urandom(3000),
    "demo/data/big.txt": b"".join(b"line %d\n" % i for i in range(40000)),
    "demo/tool": b"#!/bin/sh\necho tool\n",
    f"{DIST}/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
    f"{DIST}/WHEEL": b"Wheel-Version: 1.0\nTag: cp311-cp311-linux_x86_64\n",
}
EXEC = {"demo/tool": stat.S_IFREG | 0o755, "demo/_native.so": stat.S_IFREG | 0o775}


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return make_zip(tmp_path / "demo-1.0-cp311-cp311-linux_x86_64.whl", SAMPLE, modes=EXEC)


def contents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        return {i.filename: zf.read(i) for i in zf.infolist()}


# ---------------------------------------------------------------------------------------
# reading defensively
# ---------------------------------------------------------------------------------------
def test_reader_lists_and_reads(wheel: Path) -> None:
    with WheelReader(wheel) as r:
        assert sorted(r.names()) == sorted([*SAMPLE, RECORD])
        assert r.read("demo/data/big.txt") == SAMPLE["demo/data/big.txt"]
        assert r.dist_info == DIST and r.record_path == RECORD
        assert r.member("demo/tool").is_executable
        assert not r.member("demo/__init__.py").is_executable
        assert r.verify_record().ok


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04" + bytes(100)])
def test_not_a_zip(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.whl"
    bad.write_bytes(content)
    with pytest.raises(WheelFileError, match=r"bad.whl: not a zip"):
        WheelReader(bad)


@pytest.mark.parametrize("keep", [0.5, 0.9, -10, -23])
def test_truncated_zip(wheel: Path, tmp_path: Path, keep: float) -> None:
    data = wheel.read_bytes()
    cut = int(len(data) * keep) if keep > 0 else len(data) + int(keep)
    bad = tmp_path / "cut.whl"
    bad.write_bytes(data[:cut])
    with pytest.raises(WheelFileError, match=r"cut.whl"):
        WheelReader(bad)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../evil.py", r"'\.\.' component"),
        ("demo/../../evil.py", r"'\.\.' component"),
        ("/etc/evil", "absolute path"),
        ("C:/evil", "absolute path"),
        ("demo\\..\\..\\evil", "backslash"),
        ("demo//x.py", "not normalized"),
        ("demo/./x.py", "not normalized"),
    ],
)
def test_unsafe_member_names(tmp_path: Path, name: str, why: str) -> None:
    path = tmp_path / "unsafe.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo/ok.py", b"ok")
        info = zipfile.ZipInfo("placeholder")
        info.filename = name  # bypass ZipInfo's own normalization: hostile archives do
        zf.writestr(info, b"x")
    with pytest.raises(WheelFileError, match=why) as exc:
        WheelReader(path)
    assert repr(name) in str(exc.value) or name in str(exc.value)


def _with_symlink(path: Path, link: str, target: str, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo/lib/libreal.so.1", b"\x7fELF real")
        info = zipfile.ZipInfo(link)
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("target", ["../../../etc/passwd", "/etc/passwd", "../../.."])
def test_escaping_symlink(tmp_path: Path, target: str) -> None:
    with pytest.raises(WheelFileError, match=r"demo/lib/libreal.so.*points outside"):
        WheelReader(_with_symlink(tmp_path / "l.whl", "demo/lib/libreal.so", target))


def test_symlink_inside_tree_is_allowed_and_extracted(tmp_path: Path) -> None:
    path = _with_symlink(tmp_path / "ok.whl", "demo/lib/libreal.so", "libreal.so.1")
    with WheelReader(path) as r:
        assert r.member("demo/lib/libreal.so").is_symlink
        r.extract(tmp_path / "out")
    link = tmp_path / "out/demo/lib/libreal.so"
    assert link.is_symlink() and link.read_bytes() == b"\x7fELF real"


def test_member_under_a_symlink_is_rejected(tmp_path: Path) -> None:
    path = _with_symlink(tmp_path / "l.whl", "demo/sub", ".", {"demo/sub/x/../../../e": b""})
    with pytest.raises(WheelFileError):
        WheelReader(path)
    path = _with_symlink(tmp_path / "m.whl", "demo/sub", "lib", {"demo/sub/evil": b"x"})
    with pytest.raises(WheelFileError, match=r"lies under symlink member 'demo/sub'"):
        WheelReader(path)


def test_duplicate_member(tmp_path: Path) -> None:
    path = tmp_path / "dup.whl"
    with pytest.warns(UserWarning), zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo/a.py", b"1")
        zf.writestr("demo/a.py", b"2")
    with pytest.raises(WheelFileError, match=r"'demo/a.py' appears more than once"):
        WheelReader(path)


def test_local_and_central_names_disagree(wheel: Path, tmp_path: Path) -> None:
    data = bytearray(wheel.read_bytes())
    at = data.index(b"demo/tool")  # first occurrence: the local header
    data[at : at + 9] = b"demo/evil"
    bad = tmp_path / "confused.whl"
    bad.write_bytes(bytes(data))
    with pytest.raises(WheelFileError, match=r"central and local headers disagree"):
        WheelReader(bad)


def test_corrupt_compressed_data_is_caught_on_read(wheel: Path, tmp_path: Path) -> None:
    with WheelReader(wheel) as r:
        m = r.member("demo/data/big.txt")
    data = bytearray(wheel.read_bytes())
    for i in range(m.data_offset + 100, m.data_offset + 140):
        data[i] ^= 0x55
    bad = tmp_path / "bitrot.whl"
    bad.write_bytes(bytes(data))
    with WheelReader(bad) as r, pytest.raises(WheelFileError, match=r"demo/data/big.txt"):
        r.read("demo/data/big.txt")


# ---------------------------------------------------------------------------------------
# RECORD
# ---------------------------------------------------------------------------------------
def test_lying_record_is_reported(tmp_path: Path) -> None:
    lie = _hash(b"something else")
    path = make_zip(tmp_path / "lie.whl", SAMPLE, record_override={"demo/__init__.py": lie})
    with WheelReader(path) as r:
        report = r.verify_record()
    assert not report.ok
    assert [(p.name, p.problem) for p in report.problems] == [("demo/__init__.py", "hash")]


def test_record_missing_and_unlisted_members(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "w.whl", SAMPLE)
    with WheelReader(path) as r:
        record = r.read(RECORD).decode()
    record = record.replace("demo/tool,", "demo/tool-gone,")
    members = {**SAMPLE, RECORD: record.encode()}
    path = make_zip(tmp_path / "w2.whl", members, record=False)
    with WheelReader(path) as r:
        problems = {(p.name, p.problem) for p in r.verify_record().problems}
    assert problems == {("demo/tool", "unlisted"), ("demo/tool-gone", "missing")}


def test_rewrite_refuses_to_launder_a_lying_record(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "lie.whl", SAMPLE, record_override={"demo/__init__.py": _hash(b"other")})
    with pytest.raises(WheelFileError, match=r"RECORD does not match.*demo/__init__.py"):
        rewrite_wheel(path, tmp_path / "out.whl", verify=True)
    assert not (tmp_path / "out.whl").exists()


def test_rewrite_rehashes_members_whose_record_size_is_wrong(tmp_path: Path) -> None:
    """Even without verify, a RECORD entry is only trusted when its size matches."""
    members = {**SAMPLE}
    rows = io.StringIO()
    w = csv.writer(rows, lineterminator="\n")
    for name, data in members.items():
        w.writerow(
            (name, _hash(b"lie" if name == "demo/tool" else data), len(data) + (1 if name == "demo/tool" else 0))
        )
    w.writerow((RECORD, "", ""))
    path = make_zip(tmp_path / "w.whl", {**members, RECORD: rows.getvalue().encode()}, record=False)
    with pytest.raises(WheelFileError, match=r"demo/tool"):
        rewrite_wheel(path, tmp_path / "out.whl")


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------
def test_rewrite_copies_replaces_and_regenerates_record(wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.whl"
    new_wheel = SAMPLE[f"{DIST}/WHEEL"].replace(b"linux", b"manylinux_2_28")
    result = rewrite_wheel(
        wheel, out, replace={f"{DIST}/WHEEL": new_wheel, "demo/added.txt": b"new\n"}, remove=["demo/data/big.txt"]
    )
    got = contents(out)
    expected = {k: v for k, v in SAMPLE.items() if k != "demo/data/big.txt"}
    expected |= {f"{DIST}/WHEEL": new_wheel, "demo/added.txt": b"new\n"}
    assert {k: v for k, v in got.items() if k != RECORD} == expected
    assert result.copied == 4 and result.compressed == 3  # 2 new + RECORD
    with WheelReader(out) as r:
        assert r.verify_record().ok
        rows = list(csv.reader(io.StringIO(r.read(RECORD).decode())))
    assert rows[-1] == [RECORD, "", ""]
    assert {row[0]: row[1] for row in rows[:-1]} == {k: _hash(v) for k, v in expected.items()}


def test_order_modes_and_timestamps(wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14T22:13:20Z
    out = tmp_path / "out.whl"
    rewrite_wheel(wheel, out, replace={"demo/zzz.py": b"z"})
    with zipfile.ZipFile(out) as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names[-1] == RECORD
    first_meta = next(i for i, n in enumerate(names) if n.startswith(DIST))
    assert all(n.startswith(DIST) for n in names[first_meta:])
    assert names[:first_meta] == sorted(names[:first_meta])
    for info in infos:
        assert info.date_time == (2023, 11, 14, 22, 13, 20)
        assert info.create_system == 3
        assert info.extra == b""
        expected = 0o755 if info.filename in EXEC else 0o644
        assert info.external_attr >> 16 == stat.S_IFREG | expected, info.filename


@pytest.mark.parametrize(("epoch", "date"), [("0", (1980, 1, 1, 0, 0, 0)), ("99999999999", (2107, 12, 31, 23, 59, 58))])
def test_source_date_epoch_is_clipped(
    wheel: Path, tmp_path: Path, epoch: str, date: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    rewrite_wheel(wheel, tmp_path / "out.whl")
    with zipfile.ZipFile(tmp_path / "out.whl") as zf:
        assert {i.date_time for i in zf.infolist()} == {date}


def test_bad_source_date_epoch(wheel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(WheelFileError, match=r"SOURCE_DATE_EPOCH='yesterday'"):
        rewrite_wheel(wheel, tmp_path / "out.whl")


def test_reproducible_bytes(wheel: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300_000) + bytes(500_000) + SAMPLE["demo/data/big.txt"] * 3)
    outs = []
    for workers in (1, 4):
        out = tmp_path / f"out{workers}.whl"
        writer = WheelWriter(out, workers=workers, chunk_size=64 * 1024)
        with WheelReader(wheel) as r:
            for name in r.names():
                if name != RECORD:
                    writer.copy(r, name)
            writer.add_file("demo/big.bin", big)
            writer.add_bytes("demo/small.txt", b"small")
            writer.write()
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert contents(tmp_path / "out1.whl")["demo/big.bin"] == big.read_bytes()
    again = tmp_path / "again.whl"
    rewrite_wheel(tmp_path / "out1.whl", again)
    rewrite_wheel(again, tmp_path / "again2.whl")
    assert again.read_bytes() == (tmp_path / "again2.whl").read_bytes()


def test_chunked_deflate_is_a_valid_stream(tmp_path: Path) -> None:
    data = b"".join(hashlib.sha256(str(i).encode()).hexdigest().encode() * (i % 7 + 1) for i in range(60000))
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    out = tmp_path / "plain.zip"
    writer = WheelWriter(out, chunk_size=100_000, level=9)
    writer.add_file("data.bin", src)
    writer.add_file("stored.bin", src, compress=False)
    result = writer.write()
    assert result.record_path is None
    got = contents(out)
    assert got == {"data.bin": data, "stored.bin": data}
    assert result.members[0].compressed_size < len(data) // 2
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(out)], check=True, capture_output=True)


def test_failed_write_leaves_nothing(wheel: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "dist"
    out_dir.mkdir()
    (out_dir / "demo.whl").write_bytes(b"previous artifact")
    gone = tmp_path / "gone.bin"
    gone.write_bytes(b"x" * 10)
    writer = WheelWriter(out_dir / "demo.whl")
    with WheelReader(wheel) as r:
        for name in r.names():
            writer.copy(r, name)
        writer.add_file("demo/gone.bin", gone)
        gone.unlink()
        with pytest.raises(FileNotFoundError):
            writer.write()
    assert os.listdir(out_dir) == ["demo.whl"]
    assert (out_dir / "demo.whl").read_bytes() == b"previous artifact"


def test_rewrite_in_place(wheel: Path) -> None:
    rewrite_wheel(wheel, wheel, replace={"demo/new.txt": b"n"})
    assert contents(wheel)["demo/new.txt"] == b"n"
    assert sorted(os.listdir(wheel.parent)) == [wheel.name]


def test_writing_after_the_source_is_closed_is_a_clear_error(wheel: Path, tmp_path: Path) -> None:
    writer = WheelWriter(tmp_path / "o.whl")
    with WheelReader(wheel) as r:
        writer.copy(r, "demo/tool")
    with pytest.raises(WheelFileError, match=r"archive is closed"):
        writer.write()
    assert os.listdir(tmp_path) == [wheel.name]


def test_remove_unknown_member(wheel: Path, tmp_path: Path) -> None:
    with pytest.raises(WheelFileError, match=r"'demo/nope.py': no such member"):
        rewrite_wheel(wheel, tmp_path / "o.whl", remove=["demo/nope.py"])


def test_writer_rejects_unsafe_and_duplicate_names(tmp_path: Path) -> None:
    writer = WheelWriter(tmp_path / "x.whl")
    for bad in ("../x", "/abs", "a\\b", "a//b"):
        with pytest.raises(WheelFileError):
            writer.add_bytes(bad, b"")
    writer.add_bytes("a/b", b"")
    with pytest.raises(WheelFileError, match=r"added twice"):
        writer.add_bytes("a/b", b"")


def test_pack_directory_and_extract_roundtrip(wheel: Path, tmp_path: Path) -> None:
    with WheelReader(wheel) as r:
        r.extract(tmp_path / "tree")
    assert os.stat(tmp_path / "tree/demo/tool").st_mode & 0o777 == 0o755
    assert os.stat(tmp_path / "tree/demo/__init__.py").st_mode & 0o777 == 0o644
    result = pack_directory(tmp_path / "tree", tmp_path / "packed.whl")
    assert result.record_path == RECORD
    got = contents(tmp_path / "packed.whl")
    assert {k: v for k, v in got.items() if k != RECORD} == SAMPLE
    with WheelReader(tmp_path / "packed.whl") as r:
        assert r.verify_record().ok
    (tmp_path / "tree/demo/link").symlink_to("tool")
    with pytest.raises(WheelFileError, match=r"symlinks cannot be packed"):
        pack_directory(tmp_path / "tree", tmp_path / "packed2.whl")


@pytest.mark.slow
def test_more_than_65535_members(tmp_path: Path) -> None:
    out = tmp_path / "many.zip"
    writer = WheelWriter(out)
    for i in range(70_000):
        writer.add_bytes(f"m/{i:05d}", b"%d" % i)
    writer.write()
    with zipfile.ZipFile(out) as zf:
        assert len(zf.infolist()) == 70_000
        assert zf.read("m/69999") == b"69999"
    with WheelReader(out) as r:
        assert len(r.members) == 70_000
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(out)], check=True, capture_output=True)


# ---------------------------------------------------------------------------------------
# ZIP64 with real > 4 GiB data
# ---------------------------------------------------------------------------------------
FOUR_GIB = 1 << 32


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # zeros without disk use; deflate turns them into a few MB
    return path


def _unzip_test(path: Path) -> None:
    if shutil.which("unzip") is None:
        pytest.skip("unzip not installed (apt-get install unzip)")
    proc = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "No errors detected" in proc.stdout


def _zipfile_crc_check(path: Path, name: str, size: int) -> None:
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        assert info.file_size == size
        with zf.open(info) as fh:  # reading to EOF makes zipfile verify the CRC
            total = 0
            while chunk := fh.read(1 << 24):
                total += len(chunk)
        assert total == size


@pytest.mark.slow
def test_zip64_member_larger_than_4gib(tmp_path: Path) -> None:
    size = FOUR_GIB + 12345
    big = _sparse(tmp_path / "zeros.bin", size)
    out = tmp_path / "big-1.0-py3-none-any.whl"
    writer = WheelWriter(out, level=1)  # ZIP64 does not depend on the level; 1 is faster
    writer.add_file("big/zeros.bin", big)
    writer.add_bytes("big/after.txt", b"after the big one\n")
    writer.add_bytes("big-1.0.dist-info/METADATA", b"Name: big\nVersion: 1.0\n")
    writer.write()
    big.unlink()
    _zipfile_crc_check(out, "big/zeros.bin", size)
    _unzip_test(out)
    copied = tmp_path / "copied.whl"  # the raw copy path reads and writes ZIP64 headers
    rewrite_wheel(out, copied, replace={"big/after.txt": b"changed\n"})
    with WheelReader(copied) as r:
        assert r.member("big/zeros.bin").size == size
        assert r.read("big/after.txt") == b"changed\n"
    with zipfile.ZipFile(copied) as zf:
        assert zf.getinfo("big/zeros.bin").file_size == size
        assert zf.read("big/after.txt") == b"changed\n"
    assert out.read_bytes()[:4] == copied.read_bytes()[:4]


@pytest.mark.slow
def test_zip64_archive_larger_than_4gib(tmp_path: Path) -> None:
    if shutil.disk_usage(tmp_path).free < 3 * FOUR_GIB:
        pytest.skip("needs ~12 GiB free disk")
    size = FOUR_GIB + 4096
    big = _sparse(tmp_path / "zeros.bin", size)
    out = tmp_path / "huge.zip"
    writer = WheelWriter(out)
    writer.add_file("a/stored.bin", big, compress=False)
    writer.add_bytes("b/small.txt", b"beyond 4 GiB\n")
    writer.write()
    big.unlink()
    assert out.stat().st_size > FOUR_GIB
    with zipfile.ZipFile(out) as zf:
        info = zf.getinfo("b/small.txt")
        assert info.header_offset > FOUR_GIB
        assert zf.read(info) == b"beyond 4 GiB\n"
    data = out.read_bytes()[-200:]
    assert struct.pack("<I", 0x06064B50) in data and struct.pack("<I", 0x07064B50) in data
    _unzip_test(out)
    with WheelReader(out) as r:
        assert r.member("b/small.txt").header_offset > FOUR_GIB


# ---------------------------------------------------------------------------------------
# The real torch 2.13.0 wheel
# ---------------------------------------------------------------------------------------
def test_torch_wheel_record_is_honest(torch_wheel: Path) -> None:
    with WheelReader(torch_wheel) as r:
        report = r.verify_record()
    assert report.ok, report.problems[:5]
    assert report.checked > 12000


@pytest.mark.slow
def test_torch_rewrite_is_fast_and_correct(torch_wheel: Path, tmp_path: Path) -> None:
    with WheelReader(torch_wheel) as r:
        info = r.dist_info
        assert info is not None
        wheel_file = r.read(f"{info}/WHEEL")
        metadata = r.read(f"{info}/METADATA")
    replace = {
        f"{info}/WHEEL": wheel_file + b"Tag: cp311-cp311-manylinux_2_28_x86_64\n",
        f"{info}/METADATA": metadata + b"\n",
        "torch/_repaired_by_builder.txt": b"builder\n",
    }
    timings = []
    for attempt in range(2):
        start = time.perf_counter()
        result = rewrite_wheel(torch_wheel, tmp_path / f"torch{attempt}.whl", replace=replace)
        timings.append(time.perf_counter() - start)
    start = time.perf_counter()
    rewrite_wheel(torch_wheel, tmp_path / "verified.whl", replace=replace, verify=True)
    verified = time.perf_counter() - start
    print(f"torch rewrite: {timings[1]:.2f} s (trusting RECORD), {verified:.2f} s (verify)")
    assert result.compressed == 4 and result.copied > 12000
    assert timings[1] < 5.0
    first = (tmp_path / "torch0.whl").read_bytes()
    assert first == (tmp_path / "torch1.whl").read_bytes() == (tmp_path / "verified.whl").read_bytes()
    with WheelReader(tmp_path / "torch0.whl") as r:
        assert r.verify_record().ok
        assert r.read("torch/_repaired_by_builder.txt") == b"builder\n"
    with zipfile.ZipFile(tmp_path / "torch0.whl") as zf:
        assert zf.testzip() is None
