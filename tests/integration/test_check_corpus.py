"""The defect corpus: broken copies of the example's real wheel, each caught by exactly one finding id.

The example (examples/minitorch) is built once per session through builder's own pipeline,
in a copy of the project (the example's build/ directory is shared with other runs). Each
defect is derived from the good wheel with the tools a broken build or a careless edit would
use: rewrite_wheel (which regenerates RECORD), zipfile (which does not), patchelf.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from builder.binary.wheelfile import WheelReader, rewrite_wheel
from builder.catalog import load_catalog
from builder.check import CheckOptions, CheckReport, Severity, run_checks
from builder.config import BuildConfig, configure
from builder.host import Host
from builder.pipeline import BuildRequest, build_all
from builder.project import load_project
from builder.resolver import resolve
from tests.conftest import needs_nvcc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minitorch"
CPU = "manywheel-py3_11-cpu"
PATCHELF = shutil.which("patchelf") or str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "patchelf")


def build_example(root: Path, config_id: str) -> Path:
    """Build examples/minitorch for config_id with builder's pipeline (cached per session)."""
    out = root / config_id
    found = sorted(out.glob("*.whl"))
    if found:
        return found[0]
    project = root / "src"
    if not project.exists():
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("build", "__pycache__"))
    request = BuildRequest(load_project(project), (config_id,), {}, out)
    records = build_all(request, Host.current())
    assert records[0].status == "ok", records[0].error
    return sorted(out.glob("*.whl"))[0]


@pytest.fixture(scope="session")
def example_builds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "minitorch-builds"


@pytest.fixture(scope="session")
def cpu_wheel(example_builds: Path) -> Path:
    return build_example(example_builds, CPU)


def config(config_id: str = CPU, **flags: str) -> BuildConfig:
    return configure(
        load_catalog(), config_id=config_id, flags=flags, environ={}, tool_settings={}, pyproject_path=""
    ).config


def errors(report: CheckReport) -> set[str]:
    return report.ids(Severity.ERROR)


def warnings(report: CheckReport) -> set[str]:
    return report.ids(Severity.WARNING)


# --------------------------------------------------------------------------------------
# Deriving defects


def dist_info(wheel: Path) -> str:
    with WheelReader(wheel) as reader:
        assert reader.dist_info
        return reader.dist_info


def retag(wheel: Path, dest_dir: Path, old: str, new: str) -> Path:
    """Rename a tag in the file name and in WHEEL (RECORD regenerated), as a wrong build would."""
    info = dist_info(wheel)
    with WheelReader(wheel) as reader:
        text = reader.read(f"{info}/WHEEL").decode()
    dest = dest_dir / wheel.name.replace(old, new)
    rewrite_wheel(wheel, dest, replace={f"{info}/WHEEL": text.replace(old, new).encode()})
    return dest


def edit_elf(wheel: Path, dest: Path, member: str, work: Path, *patchelf_args: str) -> Path:
    with WheelReader(wheel) as reader:
        reader.extract(work, [member])
    subprocess.run([PATCHELF, *patchelf_args, str(work / member)], check=True)
    rewrite_wheel(wheel, dest, replace={member: str(work / member)})
    return dest


def with_version(wheel: Path, dest_dir: Path, version: str) -> Path:
    """The same wheel claiming another version: METADATA, the .dist-info name and the file name."""
    old_info = dist_info(wheel)
    old_version = old_info.removesuffix(".dist-info").split("-", 1)[1]
    new_info = old_info.replace(old_version, version)
    with WheelReader(wheel) as reader:
        moved = {
            n.replace(old_info, new_info, 1): reader.read(n)
            for n in reader.names()
            if n.startswith(old_info + "/") and not n.endswith("/RECORD")
        }
    key = f"{new_info}/METADATA"
    moved[key] = moved[key].replace(f"Version: {old_version}".encode(), f"Version: {version}".encode())
    dest = dest_dir / wheel.name.replace(old_version, version)
    with WheelReader(wheel) as reader:
        old = [n for n in reader.names() if n.startswith(old_info + "/") and not n.endswith("/RECORD")]
    rewrite_wheel(wheel, dest, replace=moved, remove=old)
    return dest


def tamper_record(wheel: Path, dest: Path, member: str) -> Path:
    """Change one RECORD hash without touching the member: what a hand edit leaves behind."""
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = [
                    line
                    if not line.startswith(member + ",")
                    else f"{member},sha256={'A' * 43},{line.rsplit(',', 1)[1]}"
                    for line in data.decode().splitlines()
                ]
                data = ("\n".join(lines) + "\n").encode()
            out.writestr(item, data)
    return dest


# --------------------------------------------------------------------------------------
# The good wheel and its defects


def test_good_wheel_passes_with_and_without_config(cpu_wheel: Path) -> None:
    for cfg in (None, config()):
        report = run_checks(cpu_wheel, cfg)
        assert report.findings == (), report.findings
        assert report.facts["abi"]["cxx11"] >= 1 and report.facts["abi"]["pre_cxx11"] == 0
        assert report.facts["abi"]["library"] == "minitorch/lib/libminitorch_core.so"
        assert report.facts["size"]["bytes"] == cpu_wheel.stat().st_size


def test_good_wheel_passes_against_its_resolved_environment(cpu_wheel: Path, example_builds: Path) -> None:
    env = resolve(config(), load_project(example_builds / "src"), Host.current(probe=False))
    assert run_checks(cpu_wheel, env=env).findings == ()


def test_removed_graft_is_unresolved(cpu_wheel: Path, tmp_path: Path) -> None:
    broken = tmp_path / cpu_wheel.name
    rewrite_wheel(cpu_wheel, broken, remove=["minitorch/lib/libgomp.so.1"])
    report = run_checks(broken, config())
    assert errors(report) == {"load.unresolved"} and warnings(report) == set()
    (finding,) = report.errors
    assert finding.file == "minitorch/lib/libminitorch_core.so"
    assert "libgomp.so.1" in finding.message and "Searched: <package>/minitorch/lib" in finding.message


def test_changed_record_hash(cpu_wheel: Path, tmp_path: Path) -> None:
    report = run_checks(tamper_record(cpu_wheel, tmp_path / cpu_wheel.name, "minitorch/__init__.py"), config())
    assert errors(report) == {"record.hash-mismatch"} and warnings(report) == set()
    assert [f.file for f in report.errors] == ["minitorch/__init__.py"]


def test_platform_tag_below_the_symbol_versions(cpu_wheel: Path, tmp_path: Path) -> None:
    report = run_checks(retag(cpu_wheel, tmp_path, "manylinux_2_34", "manylinux_2_17"), config())
    assert errors(report) == {"tags.platform-too-low"} and warnings(report) == set()
    assert all("GLIBC" in f.message and "manylinux_2_34" in f.message for f in report.errors)


def test_platform_tag_raised_above_the_symbol_versions(cpu_wheel: Path, tmp_path: Path) -> None:
    report = run_checks(retag(cpu_wheel, tmp_path, "manylinux_2_34", "manylinux_2_39"), config())
    assert errors(report) == set() and warnings(report) == {"tags.platform-too-high"}


def test_absolute_rpath_added(cpu_wheel: Path, tmp_path: Path) -> None:
    broken = edit_elf(
        cpu_wheel,
        tmp_path / cpu_wheel.name,
        "minitorch/lib/libminitorch_core.so",
        tmp_path / "x",
        "--set-rpath",
        "$ORIGIN:/builds/minitorch/build/lib",
    )
    report = run_checks(broken, config())
    assert errors(report) == set() and warnings(report) == {"rpath.absolute"}
    assert "build-tree leak" in report.warnings[0].message


def test_wrong_python_tag(cpu_wheel: Path, tmp_path: Path) -> None:
    report = run_checks(retag(cpu_wheel, tmp_path, "cp311-cp311", "cp312-cp312"))
    assert errors(report) == {"tags.python-mismatch"} and warnings(report) == set()
    assert report.errors[0].file == "minitorch/_C.cpython-311-x86_64-linux-gnu.so"


def test_free_threaded_abi_tag(cpu_wheel: Path, tmp_path: Path) -> None:
    report = run_checks(retag(cpu_wheel, tmp_path, "cp311-cp311", "cp311-cp311t"))
    assert errors(report) == {"tags.free-threaded-mismatch"}


def test_libcuda_grafted(cpu_wheel: Path, tmp_path: Path) -> None:
    """A repair that grafted the driver: auditwheel-style hashed name, libcuda's soname."""
    work = tmp_path / "x"
    with WheelReader(cpu_wheel) as reader:
        reader.extract(work, ["minitorch/lib/libgomp.so.1"])
    fake = work / "libcuda-0123abcd.so.1"
    shutil.copyfile(work / "minitorch/lib/libgomp.so.1", fake)
    subprocess.run([PATCHELF, "--set-soname", "libcuda.so.1", str(fake)], check=True)
    broken = tmp_path / cpu_wheel.name
    rewrite_wheel(cpu_wheel, broken, replace={"minitorch.libs/libcuda-0123abcd.so.1": str(fake)})
    report = run_checks(broken, config())
    assert errors(report) == {"cuda.driver-bundled"} and warnings(report) == set()


def test_hash_renamed_libgomp(cpu_wheel: Path, tmp_path: Path) -> None:
    """auditwheel's default: libgomp grafted as libgomp-<hash>.so.1 (pytorch#149422)."""
    work = tmp_path / "x"
    core, gomp = "minitorch/lib/libminitorch_core.so", "minitorch/lib/libgomp.so.1"
    with WheelReader(cpu_wheel) as reader:
        reader.extract(work, [core, gomp])
    renamed = work / "minitorch/lib/libgomp-a34b3233.so.1"
    (work / gomp).rename(renamed)
    subprocess.run([PATCHELF, "--set-soname", renamed.name, str(renamed)], check=True)
    subprocess.run([PATCHELF, "--replace-needed", "libgomp.so.1", renamed.name, str(work / core)], check=True)
    broken = tmp_path / cpu_wheel.name
    rewrite_wheel(
        cpu_wheel,
        broken,
        remove=[gomp],
        replace={core: str(work / core), f"minitorch/lib/{renamed.name}": str(renamed)},
    )
    report = run_checks(broken, config())
    assert errors(report) == {"openmp.renamed-libgomp"} and warnings(report) == set()


def test_version_differs_from_the_resolved_config(cpu_wheel: Path, example_builds: Path, tmp_path: Path) -> None:
    env = resolve(config(), load_project(example_builds / "src"), Host.current(probe=False))
    good = cpu_wheel.name.split("-")[1]
    broken = with_version(cpu_wheel, tmp_path, good.replace("0.3.0", "0.3.1"))
    report = run_checks(broken, env=env)
    assert errors(report) == {"meta.version-mismatch"} and warnings(report) == set()
    assert env.version in report.errors[0].message


def test_stale_nightly_date_against_the_config(cpu_wheel: Path, tmp_path: Path) -> None:
    broken = with_version(cpu_wheel, tmp_path, "0.3.0.dev20250101+cpu")
    report = run_checks(broken, config(), options=CheckOptions(today=dt.date(2026, 11, 22)))
    assert errors(report) == {"meta.version-mismatch"}
    assert "2025-01-01" in report.errors[0].message
    assert run_checks(broken, config(channel="release")).ids(Severity.ERROR) == {"meta.version-mismatch"}


def test_size_ceiling_is_configurable_and_size_always_reported(cpu_wheel: Path) -> None:
    report = run_checks(cpu_wheel, options=CheckOptions(max_size_mb=0.1))
    assert errors(report) == {"meta.size-ceiling"}
    assert run_checks(cpu_wheel, options=CheckOptions(max_size_mb=None)).facts["size"]["bytes"] > 0


def test_ignore_drops_findings_of_matching_files(cpu_wheel: Path, tmp_path: Path) -> None:
    broken = tmp_path / cpu_wheel.name
    rewrite_wheel(cpu_wheel, broken, remove=["minitorch/lib/libgomp.so.1"])
    report = run_checks(broken, config(), ignore=["minitorch/lib/*"])
    assert report.findings == ()


def test_pre_cxx11_build(example_builds: Path) -> None:
    wheel = build_example(example_builds, "manywheel-py3_11-cpu-pre-cxx11")
    report = run_checks(wheel, config())
    assert errors(report) == {"abi.pre-cxx11-symbols"} and warnings(report) == set()
    assert report.facts["abi"]["pre_cxx11"] > 0 and report.facts["abi"]["cxx11"] == 0
    assert run_checks(wheel, config("manywheel-py3_11-cpu-pre-cxx11")).findings == ()


# --------------------------------------------------------------------------------------
# CUDA (needs nvcc; no GPU)


@pytest.fixture(scope="session")
def cuda_wheel(example_builds: Path) -> Path:
    return build_example(example_builds, "manywheel-py3_12-cuda13_0")


CUDA = "manywheel-py3_12-cuda13_0"


@pytest.mark.cuda
@needs_nvcc
def test_cuda_wheel_passes_and_reports_kernels(cuda_wheel: Path) -> None:
    report = run_checks(cuda_wheel, config(CUDA))
    assert report.findings == (), report.findings
    code = report.facts["cuda"]["minitorch/lib/libminitorch_core.so"]
    assert code["sass"] == [75, 80, 86, 90, 100, 120] and code["ptx"] == [120]


@pytest.mark.cuda
@needs_nvcc
def test_cuda_arch_missing_from_the_build(cuda_wheel: Path) -> None:
    wanted = load_catalog().cuda["13.0"].arch_list.replace("9.0;", "9.0;10.3;")
    report = run_checks(cuda_wheel, config(CUDA, **{"arch-list": wanted}))
    assert errors(report) == {"cuda.arch-mismatch"} and warnings(report) == set()
    assert "missing SASS sm_103" in report.errors[0].message


@pytest.mark.cuda
@needs_nvcc
def test_cudart_bundled_in_pypi_mode(cuda_wheel: Path, tmp_path: Path) -> None:
    cudart = next(Path("/usr/local/cuda/lib64").glob("libcudart.so.13*"), None)
    if cudart is None:
        pytest.skip("no libcudart.so.13 in /usr/local/cuda")
    broken = tmp_path / cuda_wheel.name
    rewrite_wheel(cuda_wheel, broken, replace={"minitorch/lib/libcudart.so.13": str(cudart.resolve())})
    report = run_checks(broken, config(CUDA))
    assert errors(report) == {"cuda.linkage-mode"}
    assert run_checks(broken, config(CUDA, **{"cuda-mode": "bundled"})).ids(Severity.ERROR) == set()


@pytest.mark.cuda
@needs_nvcc
def test_cuda_wheel_without_its_requirement(cuda_wheel: Path, tmp_path: Path) -> None:
    info = dist_info(cuda_wheel)
    with WheelReader(cuda_wheel) as reader:
        meta = reader.read(f"{info}/METADATA").decode()
    stripped = "\n".join(line for line in meta.splitlines() if "nvidia-cuda-runtime" not in line) + "\n"
    broken = tmp_path / cuda_wheel.name
    rewrite_wheel(cuda_wheel, broken, replace={f"{info}/METADATA": stripped.encode()})
    assert errors(run_checks(broken, config(CUDA))) == {"load.undeclared-external"}
    pinned = meta.replace("nvidia-cuda-runtime==13.0.48", "nvidia-cuda-runtime==13.0.1")
    rewrite_wheel(cuda_wheel, broken, replace={f"{info}/METADATA": pinned.encode()})
    assert errors(run_checks(broken, config(CUDA))) == {"meta.requires-dist-pin"}


# --------------------------------------------------------------------------------------
# Directories and libtorch-style archives


def test_unpacked_and_installed_trees(cpu_wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    with WheelReader(cpu_wheel) as reader:
        reader.extract(unpacked)
    assert run_checks(unpacked, config()).findings == ()
    target = tmp_path / "site-packages"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target),
            str(cpu_wheel),
        ],
        check=True,
    )
    installed = run_checks(target / "minitorch", config())
    assert installed.findings == (), installed.findings
    assert installed.kind == "dir" and installed.facts["abi"]["library"] == "minitorch/lib/libminitorch_core.so"
    init = target / "minitorch" / "__init__.py"
    init.write_bytes(init.read_bytes().replace(b"minitorch", b"MINITORCH", 1))  # same size, other bytes
    assert errors(run_checks(target / "minitorch")) == {"record.hash-mismatch"}


def libtorch_zip(wheel: Path, dest: Path, leave_out: str = "") -> Path:
    """A libtorch-style archive (libtorch/lib, include, share/cmake, build-version, build-hash)
    laid out from the example's real binaries."""
    with WheelReader(wheel) as reader, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for name in reader.names():
            if name.startswith(("minitorch/lib/", "minitorch/include/", "minitorch/share/")):
                info = zipfile.ZipInfo("libtorch/" + name.removeprefix("minitorch/"))
                info.external_attr = 0o644 << 16
                out.writestr(info, reader.read(name))
        for name, text in (("build-version", "0.3.0+cpu\n"), ("build-hash", "0123456789abcdef\n")):
            if name != leave_out:
                out.writestr(f"libtorch/{name}", text)
    return dest


NS = CheckOptions(abi_namespaces=("minitorch",))


def test_libtorch_archive_layout(cpu_wheel: Path, tmp_path: Path) -> None:
    good = libtorch_zip(cpu_wheel, tmp_path / "libtorch-shared-with-deps-0.3.0+cpu.zip")
    report = run_checks(good, config("libtorch-cpu-shared-with-deps", channel="release"), options=NS)
    assert report.findings == (), report.findings
    assert report.kind == "zip" and report.facts["version"] == "0.3.0+cpu"
    broken = (
        libtorch_zip(cpu_wheel, tmp_path / "broken" / good.name, leave_out="build-hash")
        if (tmp_path / "broken").mkdir() is None
        else good
    )
    report = run_checks(broken, config("libtorch-cpu-shared-with-deps", channel="release"), options=NS)
    assert errors(report) == {"layout.missing"} and report.errors[0].file == "libtorch/build-hash"
