from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from builder.catalog import Catalog
from builder.config import Channel, PackageType
from builder.errors import ConfigError
from builder.matrix import MatrixRequest, generate, latest_two, nep29_pythons, to_github


def test_release_2_0_manywheel_is_exactly_the_seed_table(catalog: Catalog) -> None:
    configs = generate(catalog, MatrixRequest(release="2.0", package_types=(PackageType.MANYWHEEL,)))
    got = {(str(c.python), c.accelerator.desired_cuda) for c in configs}
    want = {(py, acc) for py in ("3.8", "3.9", "3.10", "3.11") for acc in ("cpu", "cu117", "cu118")}
    assert got == want and len(configs) == 12


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 42 months before 2024-01-01 is 2020-07: 3.9 (2020-10) and newer
        (dt.date(2024, 1, 1), ["3.9", "3.10", "3.11", "3.12"]),
        (dt.date(2026, 11, 22), ["3.12", "3.13", "3.14", "3.15"]),
        # at least the two latest even when nothing is recent enough
        (dt.date(2019, 1, 1), ["3.6", "3.7"]),
    ],
)
def test_nep29(catalog: Catalog, day: dt.date, expected: list[str]) -> None:
    assert nep29_pythons(catalog, day) == expected


def test_latest_two_counts_minor_versions() -> None:
    versions = {
        "6.2": dt.date(2024, 8, 2),
        "6.2.4": dt.date(2024, 11, 6),
        "6.3": dt.date(2024, 12, 20),
        "6.4": dt.date(2025, 4, 11),
    }
    assert latest_two(versions, dt.date(2025, 1, 1)) == ["6.2.4", "6.3"]
    assert latest_two(versions, dt.date(2026, 1, 1)) == ["6.3", "6.4"]


def test_policy_matrix_on_a_fixed_date(catalog: Catalog) -> None:
    configs = generate(catalog, MatrixRequest(on=dt.date(2025, 6, 1), with_rocm=False))
    accels = sorted({c.accelerator.desired_cuda for c in configs})
    assert accels == ["cpu", "cu128", "cu129"]
    pythons = [str(c.python) for c in configs if c.accelerator.kind == "cpu"]
    assert pythons == ["3.11", "3.12", "3.13", "3.13t"]  # 3.10 (2021-10) is older than 2021-12


def test_filters_and_order_are_deterministic(catalog: Catalog) -> None:
    request = MatrixRequest(
        release="2.8",
        package_types=(PackageType.LIBTORCH, PackageType.MANYWHEEL),
        with_cuda=False,
        pythons=("3.12", "3.13t"),
    )
    first = generate(catalog, request)
    assert [c.id for c in first] == [c.id for c in generate(catalog, request)]
    libtorch = [c for c in first if c.package_type is PackageType.LIBTORCH]
    assert all("without" not in c.id for c in libtorch if c.accelerator.kind == "rocm")
    assert {str(c.python) for c in first if c.python} == {"3.12", "3.13t"}
    assert first[0].package_type is PackageType.LIBTORCH


def test_github_shape(catalog: Catalog) -> None:
    configs = generate(catalog, MatrixRequest(release="2.6", channel=Channel.RELEASE, with_rocm=False))
    doc = json.loads(to_github(configs, catalog))
    assert set(doc) == {"include"}
    keys = {
        "build_name",
        "package_type",
        "python_version",
        "gpu_arch_type",
        "gpu_arch_version",
        "desired_cuda",
        "container_image",
        "extra_install_requirements",
        "channel",
    }
    for row in doc["include"]:
        assert keys <= set(row)
        assert all(isinstance(v, str) for v in row.values())
    cuda = next(r for r in doc["include"] if r["desired_cuda"] == "cu124")
    assert cuda["build_name"] == "manywheel-py3_9-cuda12_4"
    assert "nvidia-cublas-cu12==12.4.5.8; platform_system == 'Linux'" in cuda["extra_install_requirements"]
    assert re.fullmatch(r"builder/manylinux-builder:cuda12\.4-[0-9a-f]{12}", cuda["container_image"])
    cpu = next(r for r in doc["include"] if r["desired_cuda"] == "cpu")
    assert cpu["extra_install_requirements"] == "" and cpu["gpu_arch_version"] == ""
    assert any(r["python_version"] == "3.13t" for r in doc["include"])


def test_unknown_release(catalog: Catalog) -> None:
    with pytest.raises(ConfigError, match=r"Unknown release '2\.99'"):
        generate(catalog, MatrixRequest(release="2.99"))
