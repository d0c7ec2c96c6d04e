"""Find a CPython interpreter for a requested version: pyenv, /opt/python (manylinux), PATH."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.config import PythonVersion
from builder.errors import ToolchainError
from builder.toolchains.run import query

_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3], "
    "'free_threaded': bool(sysconfig.get_config_var('Py_GIL_DISABLED')), 'executable': sys.executable}))"
)


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # "3.12.1"
    free_threaded: bool
    source: str  # where it was found: explicit, pyenv, manylinux, PATH


def probe(path: str) -> Interpreter | None:
    out = query([path, "-c", _PROBE], timeout=30)
    if out is None:
        return None
    try:
        info = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None
    return Interpreter(path=path, version=info["version"], free_threaded=info["free_threaded"], source="")


def matches(found: Interpreter, wanted: PythonVersion) -> bool:
    return (
        found.version.split(".")[:2] == wanted.minor_version.split(".") and found.free_threaded == wanted.free_threaded
    )


def candidates(wanted: PythonVersion, environ: Mapping[str, str], home: Path) -> list[tuple[str, str]]:
    """(path, source) pairs in search order; newest pyenv patch release first."""
    name = f"python{wanted}"  # python3.12 / python3.13t
    found: list[tuple[str, str]] = []
    pyenv_root = Path(environ.get("PYENV_ROOT") or home / ".pyenv")
    pattern = re.compile(rf"^{re.escape(wanted.minor_version)}\.(\d+){'t' if wanted.free_threaded else ''}$")
    versions = pyenv_root / "versions"
    if versions.is_dir():
        entries = [(int(m[1]), d) for d in versions.iterdir() if (m := pattern.match(d.name))]
        for _, directory in sorted(entries, reverse=True):
            found.append((str(directory / "bin" / name), "pyenv"))
    tag = wanted.abi_tag
    found.append((f"/opt/python/cp{wanted.major}{wanted.minor}-{tag}/bin/python", "manylinux"))
    on_path = shutil.which(name, path=environ.get("PATH", ""))
    if on_path:
        found.append((on_path, "PATH"))
    return found


def find_interpreter(
    wanted: PythonVersion, environ: Mapping[str, str], home: Path, explicit: str | None = None
) -> Interpreter:
    if explicit:
        found = probe(explicit)
        if found is None:
            raise ToolchainError(
                f"The interpreter {explicit} (python-executable) does not run. "
                f"Point --python-executable at a working CPython {wanted}."
            )
        if not matches(found, wanted):
            kind = " free-threaded" if found.free_threaded else ""
            raise ToolchainError(
                f"The interpreter {explicit} is CPython {found.version}{kind}, but the config asks for {wanted}. "
                f"Pass an interpreter for {wanted} or change the config's Python."
            )
        return Interpreter(explicit, found.version, found.free_threaded, "explicit")
    looked: list[str] = []
    for path, source in candidates(wanted, environ, home):
        if not Path(path).exists():
            looked.append(f"{path} (absent)")
            continue
        found = probe(path)
        if found is None:
            looked.append(f"{path} (does not run)")
        elif not matches(found, wanted):
            looked.append(f"{path} (is {found.version}{'t' if found.free_threaded else ''})")
        else:
            return Interpreter(path, found.version, found.free_threaded, source)
    raise ToolchainError(
        f"No CPython {wanted} interpreter found. Looked at: {'; '.join(looked) or 'nothing'}. "
        f"Install it (e.g. `pyenv install {wanted.minor_version}{'t' if wanted.free_threaded else ''}`), "
        "put python{wanted} on PATH, or pass --python-executable PATH.".replace("{wanted}", str(wanted))
    )
