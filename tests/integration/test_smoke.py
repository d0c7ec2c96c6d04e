"""`builder smoke`: a fresh environment, the real wheel installed, the stdlib harness run there."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from builder.binary.wheelfile import rewrite_wheel
from builder.check.runner import require_matching_name
from builder.errors import ConfigError
from builder.smoke.runner import run_smoke
from tests.integration.test_check_cli import builder, one_error
from tests.integration.test_check_corpus import (  # noqa: F401  (session fixtures)
    CUDA,
    config,
    cpu_wheel,
    cuda_wheel,
    example_builds,
)

TORCH_CACHE = Path.home() / ".cache" / "builder-tests" / "torch"


def by_name(report: object) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}  # type: ignore[attr-defined]


def test_minitorch_smoke_passes_with_commands(cpu_wheel: Path) -> None:  # noqa: F811
    cfg = config()
    cfg = replace(
        cfg,
        options=replace(
            cfg.options,
            smoke_commands=(
                "import minitorch; assert minitorch.add([1.0], [2.0]) == [3.0]",
                "import minitorch; assert minitorch.cuda_available() is False",
            ),
        ),
    )
    report = run_smoke(cpu_wheel, cfg)
    statuses = by_name(report)
    assert report.ok, report.checks
    assert statuses == {
        "import minitorch": "pass",
        "version": "pass",
        "build info": "pass",
        "openmp runtime loaded once": "pass",
        "accelerator availability": "pass",
        "command 1": "pass",
        "command 2": "pass",
    }
    assert report.env_tool in ("uv", "venv") and report.env_seconds > 0


def test_failing_command_and_broken_import_fail(cpu_wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    cfg = config()
    cfg = replace(cfg, options=replace(cfg.options, smoke_commands=("raise SystemExit('boom')",)))
    assert by_name(run_smoke(cpu_wheel, cfg))["command 1"] == "fail"
    broken = tmp_path / cpu_wheel.name
    rewrite_wheel(cpu_wheel, broken, remove=["minitorch/lib/libminitorch_core.so"])
    result = builder("smoke", str(broken))
    one_error(result, 8, "import minitorch")
    assert "libminitorch_core.so" in result.stdout


def test_smoke_bad_input(cpu_wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    one_error(builder("smoke", str(tmp_path / "nothing.whl")), 2, "is not a wheel file")
    with pytest.raises(ConfigError, match="cp311"):
        require_matching_name(config("manywheel-py3_12-cpu"), cpu_wheel.name)
    one_error(builder("smoke", str(cpu_wheel), "--config", "manywheel-py3_12-cpu"), 2, "does not match")


@pytest.mark.cuda
def test_cuda_wheel_cpu_path_without_gpu(cuda_wheel: Path) -> None:  # noqa: F811
    """No GPU here: the CUDA build must import, run on CPU and report CUDA unavailable."""
    if shutil.which("nvidia-smi"):
        pytest.skip("a GPU machine runs test_cuda_wheel_on_gpu instead")
    report = run_smoke(cuda_wheel, config(CUDA))
    assert report.ok, report.checks
    assert by_name(report)["accelerator availability"] == "pass"


@pytest.mark.gpu
def test_cuda_wheel_on_gpu(cuda_wheel: Path) -> None:  # noqa: F811
    if not Path("/dev/nvidia0").exists():
        pytest.skip("no NVIDIA GPU on this machine")
    cfg = config(CUDA)
    cfg = replace(
        cfg,
        options=replace(
            cfg.options, smoke_commands=("import minitorch; assert minitorch.add_cuda([1.0], [2.0]) == [3.0]",)
        ),
    )
    report = run_smoke(cuda_wheel, cfg)
    assert report.ok, report.checks


@pytest.mark.slow
def test_torch_wheel_smoke_with_torch_profile() -> None:
    wheels = sorted(TORCH_CACHE.glob("torch-2.13.0*.whl"))
    if not wheels:
        pytest.skip("the torch 2.13.0 wheel is not cached (pip download torch==2.13.0 --no-deps -d ...)")
    report = run_smoke(wheels[0], profile="torch")
    statuses = by_name(report)
    assert report.ok, [c for c in report.checks if c.status == "fail"]
    for name in (
        "import torch",
        "version",
        "openmp runtime loaded once",
        "accelerator availability",
        "torch openmp",
        "torch version",
        "torch cxx11 abi",
        "torch conv2d",
        "torch linalg svd",
        "torch numpy",
        "torch cuda",
    ):
        assert statuses[name] == "pass", name
