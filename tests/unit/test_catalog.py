from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.catalog import DATA_DIR, Catalog, load_catalog
from builder.errors import CatalogError


def test_catalog_has_the_required_facts(catalog: Catalog) -> None:
    for version in ("11.8", "12.4", "12.6", "12.8", "12.9", "13.0", "13.5"):
        assert version in catalog.cuda
    assert catalog.cuda["12.6"].arch_list == "5.0;6.0;7.0;7.5;8.0;8.6;9.0"
    assert catalog.cuda["12.8"].arch_list == "7.0;7.5;8.0;8.6;9.0;10.0;12.0"
    assert catalog.cuda["12.9"].arch_list.endswith("12.0+PTX")
    assert catalog.cuda["13.0"].arch_list == "7.5;8.0;8.6;9.0;10.0;12.0+PTX"
    runtime12 = catalog.cuda["12.4"].package_for("libcudart.so.12")
    assert runtime12 is not None and runtime12.lib_dir == "nvidia/cuda_runtime/lib"
    runtime13 = catalog.cuda["13.0"].package_for("libcudart.so.13")
    assert runtime13 is not None and runtime13.lib_dir == "nvidia/cu13/lib"
    cudnn13 = catalog.cuda["13.0"].package_for("libcudnn.so.9")
    assert cudnn13 is not None and cudnn13.lib_dir == "nvidia/cudnn/lib"
    assert "libcuda.so*" in catalog.driver_sonames and "libnvidia-ml.so*" in catalog.driver_sonames
    seed = catalog.releases["2.0"]
    assert [(c.version, c.role, c.cudnn) for c in seed.cuda] == [
        ("11.7", "stable", "8.5.0.96"),
        ("11.8", "experimental", "8.7.0.84"),
    ]
    assert str(catalog.releases["1.13"].python) in ("<=3.10,>=3.7", ">=3.7,<=3.10")
    assert catalog.python["3.13"].free_threaded and not catalog.python["3.12"].free_threaded
    assert catalog.images["manywheel"]["cuda"].format(version="12.4").endswith("cuda12.4")


def _broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    text = (data / file).read_text()
    assert old in text
    (data / file).write_text(text.replace(old, new, 1))
    return data


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "cuda.toml",
            'arch_list = "5.0;6.0;7.0;7.5;8.0;8.6;9.0+PTX"',
            'arch_list = "sm_50"',
            r"cuda.toml, key cuda.\"12.4\".arch_list: 'sm_50' is not",
        ),
        ("cuda.toml", "gcc_max = 13\n", 'gcc_max = "13"\n', r"cuda.toml, key cuda.\"12.4\".gcc_max: must be int"),
        ("cuda.toml", 'layout = "cu12"', 'layout = "cu99"', r"layout: 'cu99' is not one of"),
        (
            "cuda.toml",
            '"nvidia-cuda-runtime-cu12==12.4.127",',
            '"nvidia-warp-drive==1.0",',
            r"'nvidia-warp-drive' maps to library 'warp-drive'",
        ),
        (
            "cuda.toml",
            "released = 2024-03-05\n",
            "released = 2024-03-05\nreleasd = 1\n",
            r"cuda.\"12.4\".releasd: unknown key",
        ),
        (
            "python.toml",
            "end_of_life = 2028-10-31",
            "end_of_life = 2020-10-31",
            r"python.toml, key python.\"3.12\".end_of_life: must be after",
        ),
        (
            "releases.toml",
            '{ version = "11.7", role = "stable"',
            '{ version = "11.5", role = "stable"',
            r"CUDA 11.5 is not in cuda.toml",
        ),
        (
            "releases.toml",
            'python = ">=3.8,<=3.11"',
            'python = ">=three"',
            r"release.\"2.0\".python: not a version specifier",
        ),
        ("rocm.toml", '[rocm."6.4"]', '[rocm."six"]', r"version 'six' must look like X.Y"),
        ("images.toml", 'xpu = "builder/manylinux-builder:xpu"', 'tpu = "x"', r"images.manywheel.tpu: unknown key"),
        ("cuda.toml", "[driver]", "[drivers]", r"key driver: missing table"),
        (
            "cuda.toml",
            "toolkit = true\n\n[libraries.cuda-nvrtc]",
            "toolkit = true\n\n[libraries.cuda-nvrtc",
            r"cannot be read",
        ),
    ],
)
def test_malformed_catalog_fails_loudly(tmp_path: Path, file: str, old: str, new: str, message: str) -> None:
    data = _broken(tmp_path, file, old, new)
    with pytest.raises(CatalogError, match=message):
        load_catalog(data)
