"""Static libraries (``lib/*.a``) of libtorch-style archives: reached on disk and opened into objects.

A scanned zip only has its ELF members written out; an ar archive is not ELF, so it is
extracted on demand. Its objects are ELF (relocatable): the ABI and device-code checks read
them like any other ELF file.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from builder.binary.elf import is_elf
from builder.binary.wheelfile import WheelReader
from builder.check.context import Context


def static_members(ctx: Context) -> list[str]:
    return sorted(m for m in ctx.scan.files if m.endswith(".a") and "/lib/" in f"/{m}")


def on_disk(ctx: Context, member: str) -> Path:
    path = ctx.scan.root.joinpath(*member.split("/"))
    if not path.exists():  # zips are scanned with only their ELF members written out
        with WheelReader(ctx.scan.path) as reader:
            reader.extract(ctx.scan.root, [member])
    return path


@contextlib.contextmanager
def objects(ctx: Context, member: str) -> Iterator[list[Path]]:
    """The ELF objects of a static library, unpacked into a temporary directory (never next to
    the library: a checked directory is the user's)."""
    path = on_disk(ctx, member).resolve()
    with tempfile.TemporaryDirectory(prefix="builder-check-ar-") as tmp:
        subprocess.run(["ar", "x", str(path)], cwd=tmp, capture_output=True, check=False)
        yield sorted(p for p in Path(tmp).iterdir() if p.is_file() and is_elf(p))
