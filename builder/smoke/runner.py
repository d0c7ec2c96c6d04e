"""run_smoke: a fresh environment for the config's Python, the artifact installed, the harness run.

The harness (``harness.py``) is copied next to its JSON spec in a scratch directory and run
with ``python -I``: isolated mode keeps builder's own directory off ``sys.path`` and ignores
PYTHON* variables, and the empty working directory keeps a source checkout from shadowing
the installed package.  LD_LIBRARY_PATH is unset (``venv.clean_environ``), as in PyTorch's
check_binary.sh, so libraries must resolve through their RPATHs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from builder.check.context import PROFILES
from builder.check.runner import require_matching_name
from builder.config import BuildConfig, CxxAbi, PythonVersion
from builder.errors import ConfigError, SmokeError
from builder.resolver import BuildEnvironment
from builder.smoke.venv import FreshEnv, clean_environ, create, run_in_tmp_cwd
from builder.toolchains.python import find_interpreter
from builder.wheelinfo import top_level_modules

HARNESS = Path(__file__).with_name("harness.py")
MARK = "@@smoke "
TORCH_EXTRAS = ("numpy",)  # the numpy interop check needs it; torch does not depend on it


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    status: str  # pass | fail | skip
    detail: str
    seconds: float


@dataclass(frozen=True)
class SmokeReport:
    artifact: str
    profile: str
    config: str | None
    python: str  # the interpreter the environment was made from
    env_tool: str  # uv | venv
    env_seconds: float  # creating the fresh environment
    install_seconds: float
    checks: tuple[SmokeCheck, ...]
    seconds: float
    output: str = ""  # the harness's other output (tracebacks, library warnings)

    @property
    def failed(self) -> tuple[SmokeCheck, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "profile": self.profile, "config": self.config, "ok": self.ok,
                "python": self.python, "env_tool": self.env_tool, "env_seconds": round(self.env_seconds, 2),
                "install_seconds": round(self.install_seconds, 2), "seconds": round(self.seconds, 2),
                "checks": [c.__dict__ for c in self.checks]}


def run_smoke(
    artifact: str | os.PathLike[str],
    config: BuildConfig | None = None,
    interpreter: str | None = None,
    index_args: Sequence[str] = (),
    profile: str = "generic",
    *,
    env: BuildEnvironment | None = None,
    extra_requirements: Sequence[str] = (),
    timeout: float = 900,
    gpu_timeout: float = 60,
) -> SmokeReport:
    """Install ``artifact`` into a fresh environment and run the harness there.

    ``interpreter`` defaults to the config's Python (from ``env`` when resolved, else found
    like the resolver finds it), or the wheel's own tag without a config.  ``index_args``
    are pip options (``--index-url URL``, ``--find-links DIR``) for the dependencies.
    Returns the report; a failed check is in it, not raised.  Raises SmokeError when the
    environment cannot be made or the artifact cannot be installed.
    """
    if Path(artifact).suffix == ".zip":  # a libtorch-style archive: a consumer project, not a venv
        from builder.smoke.archive import run_archive_smoke  # imports this module

        return run_archive_smoke(artifact, config, env=env, timeout=timeout)
    start = time.monotonic()
    wheel = Path(artifact)
    if profile not in PROFILES:
        raise ConfigError(f"Unknown smoke profile {profile!r}. Accepted: {', '.join(PROFILES)}.")
    config = config or (env.config if env is not None else None)
    dist, version, python = _wheel_facts(wheel, config)
    python_path = interpreter or (env.interpreter.path if env is not None and env.interpreter else None) or \
        find_interpreter(python, os.environ, Path.home()).path
    extras = (*extra_requirements, *(TORCH_EXTRAS if profile == "torch" else ()))
    spec = _spec(wheel, dist, env.version if env is not None else version, config, profile, timeout, gpu_timeout)
    with tempfile.TemporaryDirectory(prefix="builder-smoke-") as tmp:
        work = Path(tmp)
        fresh = create(python_path, work / "env")
        install_seconds = _install(fresh, wheel, extras, index_args, work / "install.log")
        checks, output = _run_harness(fresh, spec, work, timeout)
    return SmokeReport(str(wheel), profile, config.id if config else None, python_path, fresh.tool, fresh.seconds,
                       install_seconds, checks, time.monotonic() - start, output)


def _wheel_facts(wheel: Path, config: BuildConfig | None) -> tuple[str, str, PythonVersion]:
    if not wheel.is_file() or wheel.suffix != ".whl":
        raise ConfigError(f"{wheel} is not a wheel file. builder smoke installs a .whl into a fresh environment.")
    try:
        name, version, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as exc:
        raise ConfigError(f"{wheel.name} is not a valid wheel file name ({exc}).") from None
    if config is not None:
        require_matching_name(config, wheel.name)
        if config.python is not None:
            return name, str(version), config.python
    for tag in sorted(tags, key=str):
        digits = tag.interpreter.removeprefix("cp")
        if tag.interpreter.startswith("cp") and digits.isdigit() and len(digits) >= 2:
            return name, str(version), PythonVersion(int(digits[0]), int(digits[1:]), tag.abi.endswith("t"))
    raise ConfigError(f"{wheel.name} names no CPython version in its tags; pass --config or --python.")


def _spec(wheel: Path, dist: str, version: str, config: BuildConfig | None, profile: str, timeout: float,
          gpu_timeout: float) -> dict[str, Any]:
    accel = config.accelerator if config is not None else None
    return {
        "profile": profile,
        "distribution": dist,
        "modules": top_level_modules(wheel),
        "version": version,
        "accelerator": {"kind": accel.kind, "version": accel.version} if accel else None,
        "cxx11_abi": (config.cxx_abi is CxxAbi.CXX11) if config is not None else (True if profile == "torch" else
                                                                                    None),
        "commands": list(config.options.smoke_commands) if config is not None else [],
        "timeout": min(timeout, 300),
        "gpu_timeout": gpu_timeout,
    }


def _install(fresh: FreshEnv, wheel: Path, extras: Sequence[str], index_args: Sequence[str], log: Path) -> float:
    """pip install the wheel (and extra requirements) in one resolver run; seconds taken."""
    start = time.monotonic()
    argv = [str(fresh.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *index_args,
            str(wheel), *extras]
    with log.open("w") as handle:
        done = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, env=clean_environ(), check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SmokeError(f"Installing {wheel.name}{' with ' + ', '.join(extras) if extras else ''} into a fresh "
                         f"environment failed (exit {done.returncode}); the dependencies may be missing from the "
                         f"index (pass --index-url/--find-links). pip said:\n{tail}")
    return time.monotonic() - start


def _run_harness(fresh: FreshEnv, spec: dict[str, Any], work: Path, timeout: float) -> tuple[tuple[SmokeCheck, ...],
                                                                                             str]:
    harness = work / "harness.py"
    shutil.copyfile(HARNESS, harness)
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    try:
        done = run_in_tmp_cwd(fresh, ["-I", str(harness), str(spec_path)], timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SmokeError(f"The smoke harness did not finish within {timeout:g} s; something hangs.") from None
    checks, other = [], []
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            record = json.loads(line[len(MARK):])
            checks.append(SmokeCheck(record["check"], record["status"], record["detail"], record["seconds"]))
        else:
            other.append(line)
    if not checks:
        raise SmokeError(f"The smoke harness crashed before its first check (exit {done.returncode}):\n"
                         f"{done.stderr.strip()[-2000:]}")
    return tuple(checks), "\n".join(other + done.stderr.splitlines())
