from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from builder.catalog import load_catalog
from builder.config import Channel, config_from_id
from builder.versions import build_version, exact_tag, local_suffix, nightly_version, version_from_tag

CATALOG = load_catalog()


def test_nightly_date_is_utc() -> None:
    # 23:30 on Nov 21 in UTC-8 is Nov 22 in UTC; 00:30 on Nov 23 in UTC+14 is still Nov 22.
    west = dt.datetime(2026, 11, 21, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    east = dt.datetime(2026, 11, 23, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=14)))
    assert nightly_version("2.15.0", west) == "2.15.0.dev20261122"
    assert nightly_version("2.15.0", east) == "2.15.0.dev20261122"


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v2.14.0-rc3", "2.14.0"),
        ("v2.14.0", "2.14.0"),
        ("v1.13.1-rc10", "1.13.1"),
        ("2.14.0", None),
        ("v2.14", None),
        ("ciflow/trunk/123", None),
    ],
)
def test_version_from_tag(tag: str, version: str | None) -> None:
    assert version_from_tag(tag) == version


@pytest.mark.parametrize(
    ("config_id", "suffix"),
    [
        ("manywheel-py3_12-cpu", "+cpu"),
        ("manywheel-py3_12-cuda12_4", "+cu124"),
        ("manywheel-py3_12-rocm6_4", "+rocm6.4"),
        ("manywheel-py3_12-xpu", "+xpu"),
        ("macos-wheel-py3_12-cpu", ""),
    ],
)
def test_local_suffix(config_id: str, suffix: str) -> None:
    assert local_suffix(config_from_id(config_id, CATALOG)) == suffix


def test_build_version_channels(tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.timezone.utc)
    config = config_from_id("manywheel-py3_12-cuda12_4", CATALOG)
    assert build_version(config, "2.15.0", now, None)[0] == "2.15.0.dev20261122+cu124"
    test = _with_channel(config, Channel.TEST)
    assert build_version(test, "2.14.0", now, "v2.14.0-rc3")[0] == "2.14.0+cu124"
    version, notes = build_version(test, "2.14.0", now, None)
    assert version == "2.14.0+cu124" and "no vX.Y.Z[-rcN] tag" in notes[0]
    release = _with_channel(config, Channel.RELEASE)
    assert build_version(release, "2.13.0", now, None)[0] == "2.13.0+cu124"


def _with_channel(config, channel):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(config, channel=channel)


def test_exact_tag_reads_a_real_git_checkout(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "f").write_text("x")
    git("add", "f")
    git("commit", "-qm", "x")
    assert exact_tag(tmp_path) is None
    git("tag", "v2.14.0-rc2")
    assert exact_tag(tmp_path) == "v2.14.0-rc2"
    assert exact_tag(tmp_path / "missing") is None
