"""Smoke test of a libtorch-style archive: a consumer CMake project must find, link and run it.

The archive is unpacked (defensively) into a temp dir; a consumer project is configured
with ``-DCMAKE_PREFIX_PATH=<archive root>``, built with ``-g0 -O0`` and run from an empty
directory with LD_LIBRARY_PATH unset, so the archive's RPATHs must do the work. As
PyTorch's old check_binary did, the consumer is built a second time with the opposite
``_GLIBCXX_USE_CXX11_ABI``, which must fail to link: a library whose C++ ABI does not show
in its symbols would let mismatched consumers link and crash at run time instead.

The consumer is, in order: the one given (``--consumer``), the project's ``consumer/``
directory when a build runs the smoke, a built-in tensor + matmul program for archives
that carry ``share/cmake/Torch``, or a generated one that only finds and links the package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.binary.elf import is_elf, read_elf
from builder.binary.wheelfile import WheelFileError, WheelReader
from builder.config import BuildConfig, CxxAbi
from builder.errors import ConfigError, SmokeError
from builder.resolver import BuildEnvironment
from builder.smoke.runner import SmokeCheck, SmokeReport
from builder.smoke.venv import clean_environ

TORCH_CMAKE = """\
cmake_minimum_required(VERSION 3.18)
project(builder_torch_consumer LANGUAGES CXX)
find_package(Torch REQUIRED CONFIG)
if(DEFINED CONSUMER_CXX11_ABI)
  # The wrong-ABI probe: TorchConfig.cmake hands its own -D_GLIBCXX_USE_CXX11_ABI to consumers.
  set_property(TARGET torch PROPERTY INTERFACE_COMPILE_OPTIONS "")
endif()
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE ${TORCH_LIBRARIES})
set_property(TARGET consumer PROPERTY CXX_STANDARD 20)
"""
TORCH_MAIN = """\
#include <torch/torch.h>
#include <iostream>

int main() {
  torch::Device device("cpu");  // std::string across the library boundary: a wrong ABI cannot link
  torch::Tensor a = torch::arange(6, torch::kFloat).reshape({2, 3}).to(device);
  torch::Tensor c = torch::matmul(a, torch::ones({3, 2}));
  std::cout << c << std::endl;
  const bool ok = c.size(0) == 2 && c.size(1) == 2 && c[0][0].item<float>() == 3.0f &&
                  c[1][1].item<float>() == 12.0f;
  std::cout << (ok ? "OK" : "FAILED") << std::endl;
  return ok ? 0 : 1;
}
"""
GENERIC_CMAKE = """\
cmake_minimum_required(VERSION 3.18)
project(builder_archive_consumer LANGUAGES CXX)
find_package({pkg} REQUIRED CONFIG)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE ${{{pkg}_LIBRARIES}})
"""
GENERIC_MAIN = "int main() { return 0; }\n"


@dataclass(frozen=True)
class Consumer:
    source: Path
    kind: str  # given | project | torch | generated
    proves_abi: bool  # it calls functions with std::string in their signature


def run_archive_smoke(
    archive: str | os.PathLike[str],
    config: BuildConfig | None = None,
    *,
    env: BuildEnvironment | None = None,
    consumer: Path | None = None,
    timeout: float = 900,
) -> SmokeReport:
    """Unpack, build the consumer, run it, check static linkage and the wrong-ABI link failure."""
    start = time.monotonic()
    path = Path(archive)
    if not path.is_file() or path.suffix != ".zip":
        raise ConfigError(f"{path} is not a .zip archive. builder smoke takes a wheel or a libtorch-style zip.")
    config = config or (env.config if env is not None else None)
    with tempfile.TemporaryDirectory(prefix="builder-smoke-archive-") as tmp:
        work = Path(tmp)
        top = _unpack(path, work / "archive")
        unpacked = time.monotonic() - start
        chosen = _consumer(top, work, consumer, env)
        runner = _Runner(work, top, env, timeout)
        checks, built = runner.consumer_checks(chosen, config)
    return SmokeReport(str(path), "torch" if chosen.kind == "torch" else "generic", config.id if config else None,
                       "", "cmake", unpacked, built, tuple(checks), time.monotonic() - start, runner.output())


def _unpack(path: Path, dest: Path) -> Path:
    try:
        with WheelReader(path) as reader:
            reader.extract(dest)
    except WheelFileError as exc:
        raise SmokeError(f"{path.name} cannot be unpacked safely: {exc}. Rebuild or re-download it.") from None
    entries = [p for p in dest.iterdir()]
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
    if not (top / "share" / "cmake").is_dir() or not (top / "lib").is_dir():
        raise SmokeError(f"{path.name} has no lib/ and share/cmake/ under {top.name}/: it is not a libtorch-style "
                         "archive (builder check says what is missing).")
    return top


def cmake_packages(top: Path) -> list[str]:
    """Package names with a config file under share/cmake (Torch, MiniTorch, ...)."""
    out = []
    for directory in sorted((top / "share" / "cmake").iterdir()):
        if (directory / f"{directory.name}Config.cmake").is_file() or (
                directory / f"{directory.name.lower()}-config.cmake").is_file():
            out.append(directory.name)
    return out


def _consumer(top: Path, work: Path, given: Path | None, env: BuildEnvironment | None) -> Consumer:
    if given is not None:
        if not (given / "CMakeLists.txt").is_file():
            raise ConfigError(f"The consumer {given} has no CMakeLists.txt. Pass a CMake project directory.")
        return Consumer(given, "given", True)
    if env is not None and (env.project.root / "consumer" / "CMakeLists.txt").is_file():
        return Consumer(env.project.root / "consumer", "project", True)
    packages = cmake_packages(top)
    source = work / "consumer"
    source.mkdir()
    if "Torch" in packages:
        (source / "CMakeLists.txt").write_text(TORCH_CMAKE)
        (source / "main.cpp").write_text(TORCH_MAIN)
        return Consumer(source, "torch", True)
    if not packages:
        raise SmokeError(f"{top.name}/share/cmake holds no <Pkg>Config.cmake: a consumer cannot find_package it.")
    (source / "CMakeLists.txt").write_text(GENERIC_CMAKE.format(pkg=_main_package(top, packages)))
    (source / "main.cpp").write_text(GENERIC_MAIN)
    return Consumer(source, "generated", False)


def _main_package(top: Path, packages: Sequence[str]) -> str:
    wanted = top.name.lower().removeprefix("lib").replace("_", "")
    return next((p for p in packages if p.lower().replace("_", "") == wanted), packages[0])


class _Runner:
    """Runs cmake and the consumer for one smoke test, collecting checks and output."""

    def __init__(self, work: Path, top: Path, env: BuildEnvironment | None, timeout: float) -> None:
        self.work, self.top, self.env, self.timeout = work, top, env, timeout
        self.lines: list[str] = []

    def output(self) -> str:
        return "\n".join(self.lines)

    def _run(self, argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, env=clean_environ(),
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise SmokeError(f"{' '.join(argv[:3])} did not finish within {self.timeout:g} s.") from None
        self.lines += [f"$ {' '.join(argv)}", done.stdout, done.stderr]
        return done

    def _configure_args(self, abi: str | None) -> list[str]:
        flags = "-g0 -O0" + (f" -D_GLIBCXX_USE_CXX11_ABI={abi}" if abi is not None else "")
        args = [f"-DCMAKE_PREFIX_PATH={self.top}", f"-DCMAKE_CXX_FLAGS={flags}"]
        if abi is not None:
            args.append(f"-DCONSUMER_CXX11_ABI={abi}")
        if self.env is not None and self.env.cuda is not None:
            args.append(f"-DCUDAToolkit_ROOT={self.env.cuda.home}")  # a static CUDA archive's find_dependency
        if self.env is not None and self.env.host_compiler is not None:
            args.append(f"-DCMAKE_CXX_COMPILER={self.env.host_compiler.cxx}")
        return args

    def build(self, consumer: Consumer, name: str, abi: str | None) -> subprocess.CompletedProcess[str]:
        build_dir = self.work / name
        generator = ["-G", "Ninja"] if _has_ninja() else []
        configure = self._run(["cmake", "-S", str(consumer.source), "-B", str(build_dir), *generator,
                               *self._configure_args(abi), "-Wno-dev"])
        if configure.returncode != 0:
            return configure
        return self._run(["cmake", "--build", str(build_dir), "--parallel", str(os.cpu_count() or 1)])

    def consumer_checks(self, consumer: Consumer, config: BuildConfig | None) -> tuple[list[SmokeCheck], float]:
        checks: list[SmokeCheck] = []
        start = time.monotonic()
        done = self.build(consumer, "build", None)
        built = time.monotonic() - start
        if done.returncode != 0:
            checks.append(SmokeCheck("consumer-build", "fail", f"the {consumer.kind} consumer {consumer.source} did "
                                     f"not configure or build against the archive:\n{_tail(done)}", built))
            return checks, built
        checks.append(SmokeCheck("consumer-build", "pass", f"{consumer.kind} consumer built in {built:.1f} s", built))
        exe = _executable(self.work / "build")
        checks.append(self._run_check(exe))
        checks.append(self._static_check(exe))
        checks.append(self._abi_check(consumer, config))
        return checks, built

    def _run_check(self, exe: Path | None) -> SmokeCheck:
        start = time.monotonic()
        if exe is None:
            return SmokeCheck("consumer-run", "fail", "the consumer build produced no executable", 0.0)
        with tempfile.TemporaryDirectory(prefix="builder-smoke-cwd-") as cwd:
            done = self._run([str(exe)], cwd=Path(cwd))
        status = "pass" if done.returncode == 0 else "fail"
        detail = (done.stdout.strip().splitlines() or [""])[-1] if status == "pass" else (
            f"exit {done.returncode} with LD_LIBRARY_PATH unset:\n{_tail(done)}")
        return SmokeCheck("consumer-run", status, detail, time.monotonic() - start)

    def _static_check(self, exe: Path | None) -> SmokeCheck:
        """A static archive's consumer must carry the project inside: no DT_NEEDED on a project .so."""
        statics = sorted(p.name for p in (self.top / "lib").rglob("*.a"))
        if exe is None or not statics:
            return SmokeCheck("static-linkage", "skip", "no static library in the archive", 0.0)
        stems = [re.sub(r"\.a$", "", s) for s in statics]
        needed = read_elf(exe).needed
        bad = [n for n in needed if any(n == f"{s}.so" or n.startswith(f"{s}.so.") for s in stems)]
        if bad:
            return SmokeCheck("static-linkage", "fail", f"the consumer needs {', '.join(bad)} at run time although "
                              f"the archive is static ({', '.join(statics)})", 0.0)
        return SmokeCheck("static-linkage", "pass", f"consumer NEEDED: {', '.join(needed)}", 0.0)

    def _abi_check(self, consumer: Consumer, config: BuildConfig | None) -> SmokeCheck:
        if not consumer.proves_abi:
            return SmokeCheck("wrong-abi-fails", "skip", "the generated consumer calls nothing ABI-sensitive", 0.0)
        start = time.monotonic()
        cxx11 = config is None or config.cxx_abi is CxxAbi.CXX11
        wrong = "0" if cxx11 else "1"
        done = self.build(consumer, "build-wrong-abi", wrong)
        seconds = time.monotonic() - start
        if done.returncode == 0:
            return SmokeCheck("wrong-abi-fails", "fail", f"the consumer also links with _GLIBCXX_USE_CXX11_ABI={wrong}"
                              ": the archive's ABI is not visible in its symbols, so mismatched code links and "
                              "crashes at run time", seconds)
        how = "link" if "undefined reference" in done.stdout + done.stderr else "compile"
        return SmokeCheck("wrong-abi-fails", "pass", f"_GLIBCXX_USE_CXX11_ABI={wrong} fails to {how}", seconds)


def _has_ninja() -> bool:
    return shutil.which("ninja") is not None


def _executable(build_dir: Path) -> Path | None:
    candidates = sorted(p for p in build_dir.iterdir() if p.is_file() and os.access(p, os.X_OK) and is_elf(p))
    preferred = [p for p in candidates if p.name == "consumer"]
    chosen = preferred or candidates
    return chosen[0] if chosen else None


def _tail(done: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    return "\n".join((done.stdout + done.stderr).strip().splitlines()[-lines:])
