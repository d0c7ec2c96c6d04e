"""The `builder` command as a user runs it: output, exit codes, errors without tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import needs_nvcc, run_builder


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr  # one paragraph
    for phrase in phrases:
        assert phrase in lines[0]


def test_env_shell_format_is_sourceable(project_dir: Path) -> None:
    result = run_builder("env", "manywheel-py3_12-cpu", "--project", str(project_dir), "--no-host")
    assert result.returncode == 0, result.stderr
    script = result.stdout + 'printf "%s|%s" "$PYTORCH_BUILD_VERSION" "$CMAKE_ARGS"\n'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    version, cmake_args = out.split("|")
    assert version.startswith("2.15.0.dev") and version.endswith("+cpu")
    assert cmake_args == "-DUSE_CUDA=OFF -DUSE_ROCM=OFF"


def test_env_json_and_github(project_dir: Path) -> None:
    result = run_builder(
        "env", "libtorch-cuda12_8-shared-with-deps", "--project", str(project_dir), "--no-host", "--format", "json"
    )
    doc = json.loads(result.stdout)
    assert doc["config"] == "libtorch-cuda12_8-shared-with-deps"
    assert doc["env"]["LIBTORCH_VARIANT"] == "shared-with-deps" and doc["env"]["BUILD_PYTHONLESS"] == "1"
    assert doc["probed"] is False
    github = run_builder(
        "env", "manywheel-py3_11-rocm6_4", "--project", str(project_dir), "--no-host", "--format", "github"
    ).stdout
    assert "DESIRED_CUDA=rocm6.4\n" in github and "PYTORCH_ROCM_ARCH=gfx900;" in github


def test_contradicting_sources_flag_wins_with_notice(project_dir: Path) -> None:
    result = run_builder(
        "env",
        "manywheel-py3_12-cpu",
        "--accelerator",
        "cuda12.4",
        "--project",
        str(project_dir),
        "--no-host",
        "--format",
        "json",
        DESIRED_CUDA="cu118",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accelerator"] == "cuda12.4"
    assert "notice: accelerator: --accelerator cuda12.4 wins over DESIRED_CUDA=cu118" in result.stderr


def test_environment_alone_picks_the_config(project_dir: Path) -> None:
    result = run_builder(
        "env", "--project", str(project_dir), "--no-host", "--format", "json", BUILD_ENVIRONMENT="manywheel 3.11 cu124"
    )
    assert json.loads(result.stdout)["config"] == "manywheel-py3_11-cuda12_4"


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (["wheel-py3_12-cpu"], ["Unknown package type 'wheel'", "Accepted package types: manywheel"]),
        (["manywheel-py2_5-cpu"], ["CPython 2.5 is not in the catalog", "known versions"]),
        (["manywheel-py3_12-cuda10_0"], ["CUDA 10.0 is not in the catalog", "12.4"]),
        (["manywheel-py3_12-rocm4_0"], ["ROCm 4.0 is not in the catalog"]),
        (["manywheel-py3_12-cpu", "--channel", "weekly"], ["Invalid channel 'weekly'", "nightly, test, release"]),
    ],
)
def test_config_errors_exit_2(project_dir: Path, args: list[str], phrases: list[str]) -> None:
    assert_clean_error(run_builder("env", *args, "--project", str(project_dir), "--no-host"), 2, *phrases)


def test_unknown_tool_builder_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1.0"\n[tool.builder]\ncuda-mdoe = "pypi"\n'
    )
    assert_clean_error(
        run_builder("env", "manywheel-py3_12-cpu", "--project", str(tmp_path), "--no-host"),
        2,
        "Unknown key 'cuda-mdoe'",
        "Did you mean 'cuda-mode'?",
    )


def test_missing_interpreter_exits_4(project_dir: Path, tmp_path: Path) -> None:
    result = run_builder(
        "env", "manywheel-py3_15-cpu", "--project", str(project_dir), PYENV_ROOT=str(tmp_path), PATH="/usr/bin:/bin"
    )
    assert_clean_error(result, 4, "No CPython 3.15 interpreter found", "pyenv install 3.15")


@pytest.mark.cuda
@needs_nvcc
def test_toolchain_that_lies_exits_4(project_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "cuda-12.8" / "bin"
    fake.mkdir(parents=True)
    (fake / "nvcc").symlink_to(Path(shutil.which("nvcc") or "").resolve())
    result = run_builder(
        "env", "manywheel-py3_12-cuda12_8", "--project", str(project_dir), CUDA_HOME=str(tmp_path / "cuda-12.8")
    )
    assert_clean_error(result, 4, "named for CUDA 12.8, but its nvcc reports CUDA 13.0")


def test_matrix_formats() -> None:
    github = json.loads(run_builder("matrix", "--release", "2.0", "--format", "github").stdout)
    assert len(github["include"]) == 12
    table = run_builder("matrix", "--release", "2.0", "--with-cuda", "disable").stdout.splitlines()
    assert table[0].split("\t") == ["config", "python", "accelerator", "image"]
    assert [row.split("\t")[0] for row in table[1:]] == [f"manywheel-py3_{m}-cpu" for m in (8, 9, 10, 11)]
    assert_clean_error(run_builder("matrix", "--date", "tomorrow"), 2, "--date 'tomorrow' is not a date")


def test_catalog_command() -> None:
    result = run_builder("catalog", "cuda", "--format", "json")
    rows = json.loads(result.stdout)["cuda"]
    assert {"cuda": "12.6", "arch list": "5.0;6.0;7.0;7.5;8.0;8.6;9.0"}.items() <= next(
        r for r in rows if r["cuda"] == "12.6"
    ).items()
    settings = run_builder("catalog", "settings").stdout
    assert "BUILDER_CUDA_MODE" in settings and "--keep-name" in settings
