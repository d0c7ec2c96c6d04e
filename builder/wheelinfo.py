"""Facts read from a wheel's file name and member list."""

from __future__ import annotations

from pathlib import Path

from builder.binary.wheelfile import WheelReader


def top_level_modules(wheel: Path) -> list[str]:
    """Importable top-level names: packages and modules at the root, not metadata or grafts."""
    with WheelReader(wheel) as reader:
        names = reader.names()
    modules = set()
    for name in names:
        head, sep, _ = name.partition("/")
        if sep:
            if not head.endswith((".dist-info", ".data", ".libs")) and head.isidentifier():
                modules.add(head)
        elif name.endswith(".py") or ".cpython-" in name or name.endswith(".abi3.so"):
            modules.add(name.split(".", 1)[0])
    return sorted(modules)
