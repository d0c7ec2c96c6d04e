"""Version strings per channel: nightly X.Y.Z.devYYYYMMDD (UTC), test from an RC tag, release."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

from builder.config import BuildConfig, Channel, PackageType

_TAG_RE = re.compile(r"^v(\d+\.\d+\.\d+)(?:-rc\d+)?$")


def utc_day(now: dt.datetime) -> str:
    """YYYYMMDD in UTC, whatever the machine's time zone (naive times are taken as UTC)."""
    day = now.astimezone(dt.timezone.utc) if now.tzinfo else now
    return f"{day:%Y%m%d}"


def nightly_version(base: str, now: dt.datetime) -> str:
    return f"{base}.dev{utc_day(now)}"


def version_from_tag(tag: str) -> str | None:
    """v2.14.0-rc3 -> 2.14.0 (RC builds carry the final version); None if not a release tag."""
    match = _TAG_RE.match(tag.strip())
    return match[1] if match else None


def exact_tag(root: Path) -> str | None:
    """The release tag pointing at HEAD of the project's git checkout, if any."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--tags", "--exact-match", "--match", "v[0-9]*.[0-9]*.[0-9]*"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def local_suffix(config: BuildConfig) -> str:
    """'+cu124' etc., or '' when the config asks for none (macOS wheels have none by default)."""
    wanted = config.options.local_version
    if wanted is None:
        wanted = config.package_type is not PackageType.MACOS_WHEEL
    return f"+{config.accelerator.desired_cuda}" if wanted else ""


def build_version(config: BuildConfig, base: str, now: dt.datetime, tag: str | None) -> tuple[str, list[str]]:
    """The full version and notices about how it was chosen."""
    notices: list[str] = []
    if config.channel is Channel.NIGHTLY:
        public = nightly_version(base, now)
    elif config.channel is Channel.TEST:
        from_tag = version_from_tag(tag) if tag else None
        if from_tag is None:
            notices.append(f"channel test: HEAD has no vX.Y.Z[-rcN] tag; using the project's version {base}")
        elif from_tag != base:
            notices.append(f"channel test: tag {tag} gives {from_tag}, the project says {base}; using the tag")
        public = from_tag or base
    else:
        public = base
    return public + local_suffix(config), notices
