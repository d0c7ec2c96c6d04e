"""`builder libtorch ...`: the click group (registered by builder.cli); the work is wheel.py's."""

from __future__ import annotations

import time
from pathlib import Path

import click

from builder.libtorch.wheel import extract_from_wheel

MB = 1_000_000


@click.group("libtorch")
def libtorch_group() -> None:
    """libtorch-style C++ archives (lib/ include/ share/cmake/ build-version build-hash)."""


@libtorch_group.command("from-wheel")
@click.argument("wheel", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("-o", "--out-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("dist"),
              show_default=True, help="Where the archive is written (atomically).")
@click.option("--debug-archive", is_flag=True, help="Split debug symbols off into debug-<archive>.zip.")
def from_wheel(wheel: Path, out_dir: Path, debug_archive: bool) -> None:
    """Extract lib<pkg>-shared-with-deps-<version>.zip from a built wheel, as PyTorch's
    extract_libtorch_from_wheel does: C++ libraries without the Python bindings, headers,
    CMake config, RPATH $ORIGIN, build-version and build-hash."""
    start = time.monotonic()
    result = extract_from_wheel(wheel, out_dir, debug_archive=debug_archive)
    click.echo(f"{result.archive}: {len(result.libraries)} libraries, {result.archive.stat().st_size / MB:.1f} MB, "
               f"build-hash {result.git_hash or 'unknown'} in {time.monotonic() - start:.1f} s")
    if result.debug_archive is not None:
        click.echo(f"{result.debug_archive}: {result.debug_archive.stat().st_size / MB:.1f} MB")
