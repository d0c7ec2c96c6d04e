"""builder images and `builder build --docker` against the real Docker engine.

The engine and the bootstrapped Debian bases come from `.ci/run` (or by hand: start dockerd,
`builder image bootstrap bookworm trixie`). Images are content-addressed, so a second run
reuses them: the cpu, cuda13.5 and rocm5.7 images cost ~1-2 min each the first time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from builder import images
from builder.catalog import load_catalog
from builder.errors import DockerError, ToolchainError
from tests.conftest import run_builder

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "minitorch"


def engine_up() -> bool:
    try:
        images.ensure_engine()
    except DockerError:
        return False
    return True


pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not engine_up(), reason="no Docker engine (start dockerd; .ci/run does)"),
]


@pytest.fixture(scope="module")
def bases() -> None:
    for suite in ("bookworm", "trixie"):
        if not images.image_exists(f"builder/debian:{suite}"):
            images.bootstrap(suite)


def record_of(out: Path) -> dict[str, object]:
    builds: list[dict[str, object]] = json.loads((out / "build-report.json").read_text())["builds"]
    return builds[0]


def leftover_containers() -> list[str]:
    done = images.docker(["ps", "-a", "--filter", f"label={images.LABEL}.run", "--format", "{{.Names}}"])
    return done.stdout.split()


def docker_build(out: Path, config: str, *extra: str, project: Path = EXAMPLE) -> subprocess.CompletedProcess[str]:
    return run_builder("build", str(project), config, "-o", str(out), "--docker", *extra)


# ------------------------------------------------------------------ bad input, cheap


def test_no_daemon_says_how_to_start_one(tmp_path: Path) -> None:
    result = run_builder(
        "build",
        str(EXAMPLE),
        "manywheel-py3_11-cpu",
        "-o",
        str(tmp_path),
        "--docker",
        DOCKER_HOST=f"unix://{tmp_path}/no-such.sock",
    )
    assert result.returncode == 9, result.stderr
    assert "No Docker daemon is reachable" in result.stderr and "dockerd" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.whl"))


def test_config_without_image(tmp_path: Path) -> None:
    result = docker_build(tmp_path, "macos-wheel-py3_12-cpu")
    assert result.returncode == 2, result.stderr
    assert "has no Docker image" in result.stderr and "Traceback" not in result.stderr


def test_tags_are_content_addressed() -> None:
    defs = images.load_definitions()
    first, again = images.render(defs["cuda13.5"]), images.render(defs["cuda13.5"])
    assert first.digest == again.digest
    assert first.tag("builder/manylinux-builder:cuda13.5") == f"builder/manylinux-builder:cuda13.5-{first.digest[:12]}"
    # the pins are part of the definition: another toolkit is another image
    assert "nvidia-cuda-nvcc==13.5.37" in first.dockerfile
    assert images.render(defs["cuda13.0"]).digest != first.digest
    result = run_builder("env", "manywheel-py3_11-cuda13_5", "--project", str(EXAMPLE), "--no-host", "--format", "json")
    assert json.loads(result.stdout)["docker_image"] == first.tag("builder/manylinux-builder:cuda13.5")


# ------------------------------------------------------------------ image builds that must fail


def custom_definitions(tmp_path: Path, family_toml: str) -> Path:
    """A definitions file sharing builder's bases and common packages (so apt layers are cached)."""
    shared = images.DEFINITIONS.read_text().split("\n[cpu]\n")[0] + "\n"
    path = tmp_path / "images.toml"
    path.write_text(shared + family_toml)
    return path


def test_failing_image_build_shows_log_tail_and_tags_nothing(tmp_path: Path, bases: None) -> None:
    path = custom_definitions(
        tmp_path,
        '[cuda."12.4"]\nbase = "bookworm"\ntoolchain = "script"\nscript = "echo toolkit-download-broke; exit 3"\n',
    )
    defn = images.load_definitions(path)["cuda12.4"]
    tag = images.render(defn).tag("builder/test-broken:cuda12.4")
    with pytest.raises(DockerError, match=r"(?s)failed.*no image was tagged.*toolkit-download-broke"):
        images.build_image(defn, "builder/test-broken:cuda12.4", log=tmp_path / "image.log")
    assert not images.image_exists(tag)


def test_toolchain_that_lies_about_its_version_fails_verification(tmp_path: Path, bases: None) -> None:
    fake_nvcc = (
        "mkdir -p /usr/local/cuda-12.4/bin && printf '#!/bin/sh\\\\necho Cuda compilation tools, "
        "release 11.8, V11.8.89\\\\n' > /usr/local/cuda-12.4/bin/nvcc && chmod +x /usr/local/cuda-12.4/bin/nvcc"
    )
    path = custom_definitions(
        tmp_path, f'[cuda."12.4"]\nbase = "bookworm"\ntoolchain = "script"\nscript = "{fake_nvcc}"\n'
    )
    defn = images.load_definitions(path)["cuda12.4"]
    tag = images.render(defn).tag("builder/test-liar:cuda12.4")
    with pytest.raises(ToolchainError, match=r"nvcc reports '11.8' but the image promises '12.4'"):
        images.build_image(defn, "builder/test-liar:cuda12.4", log=tmp_path / "image.log")
    assert not images.image_exists(tag)


# ------------------------------------------------------------------ builds in containers


@pytest.mark.slow
def test_cpu_in_container_matches_host_build(tmp_path: Path, bases: None) -> None:
    in_docker = docker_build(tmp_path / "docker", "manywheel-py3_11-cpu")
    assert in_docker.returncode == 0, in_docker.stdout + in_docker.stderr
    on_host = run_builder("build", str(EXAMPLE), "manywheel-py3_11-cpu", "-o", str(tmp_path / "host"))
    assert on_host.returncode == 0, on_host.stderr
    a, b = record_of(tmp_path / "docker"), record_of(tmp_path / "host")
    assert [x["name"] for x in a["artifacts"]] == [x["name"] for x in b["artifacts"]]  # type: ignore[index, union-attr]
    checks_a, checks_b = a["checks"], b["checks"]
    assert isinstance(checks_a, dict) and isinstance(checks_b, dict)
    assert checks_a["ok"] and checks_a["findings"] == checks_b["findings"]
    for fact in ("tags", "platform", "abi", "openmp", "version"):
        assert checks_a["facts"][fact] == checks_b["facts"][fact], fact
    wheel = tmp_path / "docker" / a["artifacts"][0]["name"]  # type: ignore[index]
    assert wheel.stat().st_uid == os.getuid()
    assert a["environment"]["docker"]["image"].startswith("builder/manylinux-builder:cpu-")  # type: ignore[index]
    assert not leftover_containers()


@pytest.mark.slow
@pytest.mark.cuda
def test_cuda13_in_container_clips_archs_and_smokes(tmp_path: Path, bases: None) -> None:
    catalog_archs = load_catalog().cuda["13.5"].arch_list
    result = docker_build(tmp_path, "manywheel-py3_11-cuda13_5", "--arch-list", "5.0;" + catalog_archs)
    assert result.returncode == 0, result.stdout + result.stderr
    record = record_of(tmp_path)
    log = (tmp_path / "logs" / "manywheel-py3_11-cuda13_5.docker.log").read_text()
    assert "arch list clipped" in log and "dropped 5.0" in log
    cuda = record["checks"]["facts"]["cuda"]["minitorch/lib/libminitorch_core.so"]  # type: ignore[index]
    wanted = [int(a.removesuffix("+PTX").replace(".", "")) for a in catalog_archs.split(";")]
    assert cuda["sass"] == wanted and cuda["ptx"] == [120]
    assert record["checks"]["ok"]  # type: ignore[index]
    smoke = {c["name"]: c for c in record["smoke"]["checks"]}  # type: ignore[index]
    assert "CUDA available: False" in smoke["accelerator availability"]["detail"]
    # and again in a fresh environment on the host (the wheel pulls NVIDIA's runtime from PyPI)
    wheel = tmp_path / record["artifacts"][0]["name"]  # type: ignore[index]
    if shutil.which("pyenv") or Path.home().joinpath(".pyenv").is_dir():
        host_smoke = run_builder("smoke", str(wheel))
        assert host_smoke.returncode == 0, host_smoke.stdout + host_smoke.stderr
    assert not leftover_containers()


@pytest.mark.slow
@pytest.mark.rocm
def test_rocm_in_container_offload_targets(tmp_path: Path, bases: None) -> None:
    result = docker_build(tmp_path, "manywheel-py3_13-rocm5_7", "--arch-list", "gfx90a;gfx942")
    assert result.returncode == 0, result.stdout + result.stderr
    record = record_of(tmp_path)
    assert record["checks"]["ok"], record["checks"]  # type: ignore[index]
    hip = record["checks"]["facts"]["hip"]  # type: ignore[index]
    targets = {t.rsplit("--", 1)[-1] for lib in hip.values() for t in lib}  # hipv4-amdgcn-amd-amdhsa--gfx90a
    assert targets == {"gfx90a", "gfx942"}, hip
    assert not leftover_containers()


@pytest.mark.slow
def test_failing_build_in_container_keeps_log_and_leaves_nothing(tmp_path: Path, bases: None) -> None:
    project = tmp_path / "broken"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build", "dist"))
    source = project / "csrc" / "ops.cpp"
    source.write_text(source.read_text() + "\nthis is not C++;\n")
    out = tmp_path / "out"
    result = docker_build(out, "manywheel-py3_11-cpu", project=project)
    assert result.returncode == 5, result.stderr
    assert "container removed" in result.stderr and "Traceback" not in result.stderr
    assert "this is not C++" in (out / "logs" / "manywheel-py3_11-cpu.log").read_text()
    assert not list(out.glob("*.whl")) and not list(out.glob(".builder-work-*"))
    assert not leftover_containers()
    assert record_of(out)["status"] == "failed"


def test_unchanged_image_is_not_rebuilt(bases: None) -> None:
    first = run_builder("image", "build", "cpu")
    assert first.returncode == 0, first.stderr
    again = run_builder("image", "build", "cpu")
    assert again.returncode == 0 and "up to date" in again.stdout
    listed = json.loads(run_builder("image", "list", "--format", "json").stdout)
    cpu = [row for row in listed if row["image"] == again.stdout.split()[0]]
    assert cpu and cpu[0]["current"] == "yes" and cpu[0]["family"] == "cpu"
