"""Check family 8: version, Requires-Dist pins, size.

The version must be what the build config says: exactly the resolved version when a build
environment (or --expect-version) is given; otherwise the config's rules: the local suffix
(+cpu, +cu130), a .devYYYYMMDD at most a few days old for nightlies, and no dev/pre part for
test and release builds.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from pathlib import PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from builder.check.context import Context, base_soname
from builder.check.findings import Finding, error
from builder.config import Channel, CudaMode
from builder.versions import local_suffix

_NIGHTLY = re.compile(r"\.dev(\d{8})")
MB = 1_000_000


def artifact_version(ctx: Context) -> tuple[str | None, str]:
    """(version, where it was read): METADATA for wheels and installs, build-version for libtorch."""
    meta = ctx.metadata
    if meta is not None and meta.get("Version"):
        return str(meta.get("Version")).strip(), f"{ctx.scan.dist_info}/METADATA"
    for name, text in sorted(ctx.scan.texts.items()):
        if PurePosixPath(name).name == "build-version":
            return text.decode("utf-8", "replace").strip(), name
    return None, ""


def check_metadata(ctx: Context) -> list[Finding]:
    version, where = artifact_version(ctx)
    ctx.facts["version"] = version
    out = _version(ctx, version, where) if version else []
    return out + _pins(ctx) + _size(ctx)


def _version(ctx: Context, version: str, where: str) -> list[Finding]:
    try:
        parsed = Version(version)
    except InvalidVersion:
        return [error("meta.version-invalid", where, f"{where} gives version {version!r}, which is not a PEP 440 "
                      "version. Fix the project's version (version.txt / [project] version).")]
    out = []
    if ctx.scan.kind == "wheel":
        in_name = ctx.scan.path.name.split("-")[1] if ctx.scan.path.name.count("-") >= 4 else version
        if _same(in_name, parsed) is False:
            out.append(error("meta.version-mismatch", where, f"The file name says version {in_name}, {where} says "
                             f"{version}. Rebuild the wheel; never rename one."))
    expected = ctx.options.expected_version or (ctx.env.version if ctx.env is not None else None)
    if expected is not None:
        if _same(expected, parsed) is not True:
            out.append(error("meta.version-mismatch", where, f"The version is {version}, the build config resolves to "
                             f"{expected}. Build with the config (builder sets BUILD_VERSION), or check against the "
                             "config that made it."))
        return out
    if ctx.config is not None:
        out += _config_rules(ctx, version, parsed, where)
    return out


def _same(text: str, parsed: Version) -> bool | None:
    try:
        return Version(text) == parsed and Version(text).local == parsed.local
    except InvalidVersion:
        return None


def _config_rules(ctx: Context, version: str, parsed: Version, where: str) -> list[Finding]:
    assert ctx.config is not None
    problems = []
    want_local = local_suffix(ctx.config).removeprefix("+") or None
    if parsed.local != want_local:
        problems.append(f"its local part is {('+' + parsed.local) if parsed.local else 'missing'}, the config wants "
                        f"{('+' + want_local) if want_local else 'none'}")
    if ctx.config.channel is Channel.NIGHTLY:
        problems += _nightly(ctx, version)
    elif parsed.dev is not None or parsed.pre is not None:
        problems.append(f"the {ctx.config.channel.value} channel carries final versions (no dev or rc part)")
    if not problems:
        return []
    return [error("meta.version-mismatch", where, f"Version {version} does not fit {ctx.config.id} "
                  f"({ctx.config.channel.value} channel): {'; '.join(problems)}. Build with the config (builder sets "
                  "BUILD_VERSION), or check against the config that made it.")]


def _nightly(ctx: Context, version: str) -> list[str]:
    match = _NIGHTLY.search(version)
    if match is None:
        return ["a nightly needs a .devYYYYMMDD part"]
    try:
        day = dt.datetime.strptime(match[1], "%Y%m%d").date()
    except ValueError:
        return [f".dev{match[1]} is not a date"]
    today = ctx.options.today or dt.datetime.now(dt.timezone.utc).date()
    age = (today - day).days
    if age < -1 or age > ctx.options.nightly_max_age_days:
        return [f"its date {day} is {age} days from today ({today}); nightlies must be at most "
                f"{ctx.options.nightly_max_age_days} days old"]
    return []


def _pins(ctx: Context) -> list[Finding]:
    """pypi mode: each runtime wheel that provides a needed library is pinned as the catalog says."""
    plan = ctx.plan
    if plan is None or plan.mode is not CudaMode.PYPI or not plan.runtime_packages:
        return []
    inside = {base_soname(i.soname or PurePosixPath(m).name) for m, i in ctx.elves.items()}
    requires = ctx.requires()
    where = f"{ctx.scan.dist_info}/METADATA"
    out = []
    for soname in sorted({s for i in ctx.elves.values() for s in i.needed if plan.is_accelerator(s)} - inside):
        package = next((p for p in plan.runtime_packages
                        if any(fnmatch.fnmatchcase(soname, pattern) for pattern in p.sonames)), None)
        declared = set(ctx.providers(soname)) & set(requires)
        if package is None or not declared:
            continue  # the loading check reports libraries nothing provides
        line = requires.get(canonicalize_name(package.name))
        if line is None:
            out.append(error("meta.requires-dist-missing", where, f"{soname} is needed; the config pins "
                             f"{package.requirement} for it, but Requires-Dist names {', '.join(sorted(declared))}. "
                             "Repair with the config (builder repair adds the catalog's pins)."))
        elif not _same_pin(line, package.requirement):
            out.append(error("meta.requires-dist-pin", where, f"Requires-Dist has {line!r}; the config pins "
                             f"{package.requirement} (builder/data/cuda.toml). Repair with the config, or update "
                             "the catalog."))
    return out


def _same_pin(line: str, wanted: str) -> bool:
    try:
        return Requirement(line).specifier == Requirement(wanted).specifier
    except InvalidRequirement:
        return False


def _size(ctx: Context) -> list[Finding]:
    size = ctx.scan.size
    ctx.facts["size"] = {"bytes": size, "unpacked_bytes": ctx.scan.unpacked_size, "ceiling_mb": ctx.options.max_size_mb}
    ceiling = ctx.options.max_size_mb
    if ceiling is None or size <= ceiling * MB:
        return []
    return [error("meta.size-ceiling", "", f"The artifact is {size / MB:.1f} MB, above the ceiling of {ceiling:g} MB. "
                  "Drop debug info or test binaries, link CUDA libraries from NVIDIA's wheels (cuda-mode pypi), or "
                  "raise the ceiling with --max-size.")]
