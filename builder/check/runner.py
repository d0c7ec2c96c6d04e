"""run_checks: read an artifact once, run every check family, return the report."""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from builder.catalog import load_catalog
from builder.check.abi import check_abi
from builder.check.accel import check_accelerators
from builder.check.artifact import ArtifactError, Scan, scan
from builder.check.context import PROFILES, CheckOptions, Context, matches_any
from builder.check.findings import CheckReport, Finding, error, ignored, sort_findings
from builder.check.layout import check_layout
from builder.check.loading import check_loading, check_rpaths
from builder.check.metadata import check_metadata
from builder.check.openmp import check_openmp
from builder.check.record import check_record
from builder.check.tags import check_tags
from builder.config import BuildConfig, PackageType
from builder.errors import ConfigError
from builder.resolver import BuildEnvironment, repair_plan

CHECKS: tuple[Callable[[Context], list[Finding]], ...] = (
    check_tags,
    check_record,
    check_loading,
    check_rpaths,
    check_abi,
    check_accelerators,
    check_openmp,
    check_metadata,
    check_layout,
)
_LOCAL_ACCEL = re.compile(r"cpu|xpu|cu\d{2,3}|rocm\d+(?:\.\d+)*")


def run_checks(
    path: str | os.PathLike[str],
    config: BuildConfig | None = None,
    env: BuildEnvironment | None = None,
    profile: str = "generic",
    ignore: Sequence[str] = (),
    *,
    options: CheckOptions | None = None,
) -> CheckReport:
    """Static checks of a wheel, libtorch zip or installed/unpacked directory.

    ``config`` (or ``env.config``) says what the artifact should be; without one, only what
    the artifact says about itself is checked.  Findings on files matching an ``ignore`` glob
    are dropped (and those files' ELF contents are left out of the checks).  Raises
    ConfigError for an input that is not an artifact or does not match the config's name.
    """
    start = time.monotonic()
    if profile not in PROFILES:
        raise ConfigError(f"Unknown check profile {profile!r}. Accepted: {', '.join(PROFILES)}.")
    config = config or (env.config if env is not None else None)
    options = options or CheckOptions()
    artifact = Path(path)
    if config is not None and artifact.is_file():
        require_matching_name(config, artifact.name)
    with tempfile.TemporaryDirectory(prefix="builder-check-") as tmp:
        try:
            scanned = scan(artifact, Path(tmp))
        except ArtifactError as exc:
            return _unreadable(artifact, str(exc), profile, config, time.monotonic() - start)
        ctx = _context(scanned, config, env, profile, ignore, options)
        findings = list(scanned.problems) + _name_problems(scanned)
        for check in CHECKS:
            findings += check(ctx)
    kept = [f for f in findings if not ignored(f, ignore)]
    return CheckReport(
        artifact=str(artifact),
        kind=scanned.kind,
        profile=profile,
        config=config.id if config is not None else None,
        findings=sort_findings(kept),
        size=scanned.size,
        unpacked_size=scanned.unpacked_size,
        files=len(scanned.files),
        elf_files=len(scanned.elves),
        seconds=time.monotonic() - start,
        ignored=len(findings) - len(kept),
        facts=ctx.facts,
    )


def _context(scanned: Scan, config: BuildConfig | None, env: BuildEnvironment | None, profile: str,
             ignore: Sequence[str], options: CheckOptions) -> Context:
    catalog = load_catalog()
    if config is not None and scanned.kind == "dir" and scanned.dist_info:
        tags = Context(scanned, {}, None, None, profile, options, catalog, None).wheel_file_tags
        if tags:
            require_matching_name(config, f"x-0-{'.'.join(sorted({t.interpreter for t in tags}))}-"
                                  f"{'.'.join(sorted({t.abi for t in tags}))}-"
                                  f"{'.'.join(sorted({t.platform for t in tags}))}.whl")
    plan = env.repair if env is not None else (repair_plan(config, catalog) if config is not None else None)
    elves = {n: i for n, i in scanned.elves.items() if not matches_any(n, ignore)}
    ctx = Context(scanned, elves, config, env, profile, options, catalog, plan)
    if ignore:
        ctx.facts["ignored_elf_files"] = len(scanned.elves) - len(elves)
    return ctx


def _unreadable(artifact: Path, problem: str, profile: str, config: BuildConfig | None,
                seconds: float) -> CheckReport:
    finding = error("archive.invalid", "", f"{problem}. The artifact is corrupt, truncated or unsafe to unpack: "
                    "rebuild or re-download it.")
    size = artifact.stat().st_size if artifact.is_file() else 0
    return CheckReport(str(artifact), "zip" if artifact.suffix == ".zip" else "wheel", profile,
                       config.id if config else None, (finding,), size, 0, 0, 0, seconds)


def _name_problems(scanned: Scan) -> list[Finding]:
    if scanned.kind != "wheel":
        return []
    try:
        parse_wheel_filename(scanned.path.name)
    except InvalidWheelFilename as exc:
        return [error("tags.invalid-filename", "", f"{scanned.path.name} is not a valid wheel file name ({exc}). "
                      "Wheels are named <dist>-<version>-<python>-<abi>-<platform>.whl; rebuild it.")]
    return []


# --------------------------------------------------------------------------------------
# Config against the artifact's name


def require_matching_name(config: BuildConfig, name: str) -> None:
    """ConfigError (exit 2) when the config cannot describe an artifact of this name."""
    problems, looks_like = _name_mismatch(config, name)
    if problems:
        hint = f" It looks like {looks_like}." if looks_like else ""
        raise ConfigError(
            f"The config {config.id} does not match {name}: {'; '.join(problems)}.{hint} Pass the config the "
            "artifact was built for (--config), or check the artifact that config builds."
        )


def _name_mismatch(config: BuildConfig, name: str) -> tuple[list[str], str | None]:
    if name.endswith(".zip"):
        if config.package_type is not PackageType.LIBTORCH:
            return [f"the config builds {config.package_type.value} wheels, the artifact is a zip archive"], None
        local = re.search(r"\+([a-z0-9.]+?)\.zip$", name)
        return _accelerator(config, local[1] if local else None), None
    if not name.endswith(".whl"):
        return [], None
    if config.package_type is PackageType.LIBTORCH:
        return ["the config builds libtorch archives, the artifact is a wheel"], None
    try:
        _, version, _, tags = parse_wheel_filename(name)
    except InvalidWheelFilename:
        return [], None  # the check reports the name itself
    problems = _python(config, {(t.interpreter, t.abi) for t in tags})
    platforms = {t.platform for t in tags}
    if not any(p == "any" or p.endswith("_" + config.arch) or p == config.arch for p in platforms):
        problems.append(f"the config is for {config.arch}, the platform tag is {'.'.join(sorted(platforms))}")
    problems += _accelerator(config, version.local)
    return problems, _derived_id(config, tags, version.local)


def _python(config: BuildConfig, pairs: set[tuple[str, str]]) -> list[str]:
    if config.python is None:
        return []
    interp = f"cp{config.python.major}{config.python.minor}"
    abi = config.python.abi_tag
    if any((i, a) == (interp, abi) or a == "none" or (a == "abi3" and not config.python.free_threaded)
           for i, a in pairs):
        return []
    shown = ", ".join(sorted(f"{i}-{a}" for i, a in pairs))
    return [f"the config is for CPython {config.python} ({interp}-{abi}), the wheel is tagged {shown}"]


def _accelerator(config: BuildConfig, local: str | None) -> list[str]:
    if not local or not _LOCAL_ACCEL.fullmatch(local):
        return []
    wanted = config.accelerator.desired_cuda
    if local == wanted:
        return []
    return [f"the config is for {config.accelerator} (+{wanted}), the artifact's version says +{local}"]


def _derived_id(config: BuildConfig, tags: frozenset[Tag], local: str | None) -> str | None:
    abis = sorted({t.abi for t in tags if t.abi.startswith("cp")})
    if not abis:
        return None
    py = abis[0].removeprefix("cp")
    accel = config.accelerator.id
    if local and _LOCAL_ACCEL.fullmatch(local):
        accel = ("cuda" + local[2:-1] + "_" + local[-1]) if local.startswith("cu") else local.replace(".", "_")
    return f"{config.package_type.value}-py{py[0]}_{py[1:]}-{accel}"
