"""The smoke harness: runs *inside* the fresh environment, with its interpreter, as a script.

Standard library only, and no import of builder: builder is not installed there, and the
point is to see the artifact exactly as a user's ``pip install`` leaves it.  builder copies
this file next to a JSON spec and runs ``python -I harness.py spec.json`` from an empty
directory with LD_LIBRARY_PATH unset.  Each check prints one line ``@@smoke {json}``;
the exit status is 1 when any check failed.

Checks that could hang or crash the interpreter (GPU calls, loading a second OpenMP
runtime, project commands) run in child processes with a timeout, so one bad check cannot
take the others down.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

MARK = "@@smoke "
RESULTS: list[dict[str, Any]] = []


class Skip(Exception):
    """A check that does not apply here (no GPU, no config, not Linux)."""


def emit(name: str, status: str, detail: str, seconds: float) -> None:
    record = {"check": name, "status": status, "detail": detail, "seconds": round(seconds, 3)}
    RESULTS.append(record)
    print(MARK + json.dumps(record), flush=True)


def check(name: str, func: Callable[[], str]) -> None:
    start = time.monotonic()
    try:
        detail = func()
        status = "pass"
    except Skip as exc:
        status, detail = "skip", str(exc)
    except Exception as exc:  # a failing check must not stop the others
        status = "fail"
        detail = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
    emit(name, status, detail, time.monotonic() - start)


def child(code: str, timeout: float, env: dict[str, str] | None = None) -> str:
    """Run code in a fresh interpreter of this environment; its stdout, or an error."""
    environ = dict(os.environ)
    environ.update(env or {})
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env=environ)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"timed out after {timeout:g} s (hang)") from None
    if done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-1500:]}")
    return done.stdout.strip()


def gpu_present() -> bool:
    if os.path.exists("/dev/nvidia0") or os.path.exists("/dev/kfd"):
        return True
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidiactl")


# --------------------------------------------------------------------------------------
# Generic checks


def check_imports(spec: dict[str, Any]) -> None:
    for name in spec["modules"]:
        check(f"import {name}", functools.partial(_import, name))


def _import(name: str) -> str:
    module = importlib.import_module(name)
    return f"{name} from {getattr(module, '__file__', '?')}"


def check_version(spec: dict[str, Any]) -> str:
    wanted = spec["version"]
    installed = importlib.metadata.version(spec["distribution"])
    assert installed == wanted, f"installed metadata says {installed}, expected {wanted}"
    for name in spec["modules"]:
        found = getattr(sys.modules.get(name), "__version__", None)
        if found is not None:
            assert str(found) == wanted, f"{name}.__version__ is {found}, expected {wanted}"
    return f"{spec['distribution']} {installed}"


def check_build_info(spec: dict[str, Any]) -> str:
    """The project's build-info module (``<pkg>._build_info``) against the config."""
    accel = spec.get("accelerator")
    for name in spec["modules"]:
        try:
            info = importlib.import_module(f"{name}._build_info")
        except ImportError:
            continue
        problems = []
        if accel and getattr(info, "accelerator", accel["kind"]) != accel["kind"]:
            problems.append(f"accelerator {info.accelerator!r} != {accel['kind']!r}")
        if accel and accel["kind"] == "cuda" and getattr(info, "cuda_version", None) != accel["version"]:
            problems.append(f"cuda_version {getattr(info, 'cuda_version', None)!r} != {accel['version']!r}")
        abi = spec.get("cxx11_abi")
        if abi is not None and getattr(info, "cxx11_abi", abi) != abi:
            problems.append(f"cxx11_abi {info.cxx11_abi!r} != {abi!r}")
        assert not problems, f"{name}._build_info: " + "; ".join(problems)
        return f"{name}._build_info matches" + ("" if accel else " (no config: nothing compared)")
    raise Skip("no <package>._build_info module")


_OPENMP_PROBE = r"""
import ctypes, ctypes.util, importlib, json, os, sys
system = ctypes.util.find_library("gomp")
handle = ctypes.CDLL(system) if system else None  # load the system runtime first (check_gomp.py)
for name in sys.argv[1:]:
    importlib.import_module(name)
runtimes = set()
with open("/proc/self/maps") as maps:
    for line in maps:
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        base = os.path.basename(path)
        if base.startswith(("libgomp", "libiomp5", "libomp")) and ".so" in base:
            runtimes.add(os.path.realpath(path))
threads = handle.omp_get_max_threads() if handle is not None else None
print(json.dumps({"runtimes": sorted(runtimes), "threads": threads, "system": system}))
"""


def check_openmp_once(spec: dict[str, Any]) -> str:
    """PyTorch's check_gomp.py idea: with GOMP_CPU_AFFINITY set, load the system libgomp and then
    the package; a second runtime shows up twice in the maps (and as omp_get_max_threads() == 1)."""
    if not sys.platform.startswith("linux"):
        raise Skip("needs /proc/self/maps (Linux)")
    cpus = len(os.sched_getaffinity(0))
    facts = json.loads(_run_probe(spec, cpus).splitlines()[-1])
    runtimes = facts["runtimes"]
    assert len(runtimes) <= 1, f"{len(runtimes)} OpenMP runtimes loaded in one process: {', '.join(runtimes)}"
    if cpus > 1 and facts["threads"] == 1:
        raise AssertionError("omp_get_max_threads() == 1 under GOMP_CPU_AFFINITY: libgomp was loaded twice")
    return f"{runtimes[0] if runtimes else 'no OpenMP runtime'} (omp_get_max_threads={facts['threads']})"


def _run_probe(spec: dict[str, Any], cpus: int) -> str:
    env = dict(os.environ)
    env["GOMP_CPU_AFFINITY"] = f"0-{max(cpus - 1, 0)}"
    try:
        done = subprocess.run([sys.executable, "-c", _OPENMP_PROBE, *spec["modules"]], capture_output=True,
                              text=True, timeout=spec["timeout"], env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError("the OpenMP probe hung") from None
    if done.returncode != 0:
        raise AssertionError(f"the OpenMP probe failed: {done.stderr.strip()[-1500:]}")
    return done.stdout


def check_accelerator_availability(spec: dict[str, Any]) -> str:
    """No GPU: asking for CUDA must answer False, not crash.  GPU and a GPU config: True."""
    probe = None
    for name in spec["modules"]:
        module = sys.modules.get(name)
        if module is not None and hasattr(getattr(module, "cuda", None), "is_available"):
            probe = f"import {name}; print(bool({name}.cuda.is_available()))"
        elif module is not None and callable(getattr(module, "cuda_available", None)):
            probe = f"import {name}; print(bool({name}.cuda_available()))"
        if probe:
            break
    if probe is None:
        raise Skip("the package exposes no cuda.is_available() / cuda_available()")
    answer = child(probe, spec["gpu_timeout"]).splitlines()[-1]
    accel = spec.get("accelerator") or {}
    want = "True" if gpu_present() and accel.get("kind") in ("cuda", "rocm") else "False"
    if not gpu_present() or accel:
        assert answer == want, f"CUDA availability is {answer}, expected {want} (GPU present: {gpu_present()})"
    return f"CUDA available: {answer} (GPU present: {gpu_present()})"


def check_commands(spec: dict[str, Any]) -> None:
    for index, command in enumerate(spec.get("commands") or [], 1):
        check(f"command {index}", functools.partial(_command, command, spec["timeout"]))


def _command(command: str, timeout: float) -> str:
    return child(command, timeout)[-500:] or "ok"


# --------------------------------------------------------------------------------------
# Torch profile: PyTorch's smoke_test.py and check_binary.sh checks


def torch_checks(spec: dict[str, Any]) -> None:
    torch = importlib.import_module("torch")
    accel = spec.get("accelerator")
    check("torch openmp", lambda: _torch_openmp(torch))
    check("torch version", lambda: _equal("torch.__version__", str(torch.__version__), spec["version"]))
    if accel:
        cuda = accel["version"] if accel["kind"] == "cuda" else None
        check("torch version.cuda", lambda: _equal("torch.version.cuda", torch.version.cuda, cuda))
    if spec.get("cxx11_abi") is not None:
        check("torch cxx11 abi", lambda: _equal("torch._C._GLIBCXX_USE_CXX11_ABI",
                                                bool(torch._C._GLIBCXX_USE_CXX11_ABI), spec["cxx11_abi"]))
    check("torch git version", lambda: _git_version(torch))
    if platform.machine() in ("x86_64", "AMD64"):
        check("torch mkl", lambda: _true("torch.backends.mkl.is_available()", torch.backends.mkl.is_available()))
    check("torch conv2d", lambda: _conv2d(torch))
    check("torch linalg svd", lambda: _svd(torch, "cpu"))
    check("torch numpy", lambda: _numpy(torch))
    check("torch cuda", lambda: _torch_cuda(spec))


def _equal(what: str, found: Any, wanted: Any) -> str:
    assert found == wanted, f"{what} is {found!r}, expected {wanted!r}"
    return f"{what} == {found!r}"


def _true(what: str, value: Any) -> str:
    assert value, f"{what} is {value!r}"
    return f"{what} is True"


def _torch_openmp(torch: Any) -> str:
    assert torch.backends.openmp.is_available(), "torch.backends.openmp.is_available() is False"
    info = torch.__config__.parallel_info()
    return " | ".join(line.strip() for line in info.splitlines() if "OpenMP" in line or "threads" in line)[:400]


def _git_version(torch: Any) -> str:
    found = getattr(torch.version, "git_version", None)
    assert found not in (None, "Unknown"), f"torch.version.git_version is {found!r}"
    return str(found)


def _conv2d(torch: Any) -> str:
    nn = torch.nn
    x = torch.randn(20, 16, 50, 100)
    shapes = []
    for conv in (nn.Conv2d(16, 33, 3, stride=2), nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2)),
                 nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1))):
        out = conv(x)
        assert torch.isfinite(out).all(), "conv2d produced non-finite values"
        shapes.append(tuple(out.shape))
    return f"conv2d outputs {shapes}"


def _svd(torch: Any, device: str) -> str:
    a = torch.randn(5, 3, device=device)
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    assert (u.shape, s.shape, vh.shape) == ((5, 3), (3,), (3, 3)), "reduced SVD shapes"
    assert torch.allclose(u @ torch.diag(s) @ vh, a, atol=1e-4), "U S Vh does not reconstruct A"
    u, s, vh = torch.linalg.svd(a, full_matrices=True)
    assert (u.shape, vh.shape) == ((5, 5), (3, 3)), "full SVD shapes"
    batch = torch.randn(4, 6, 5, 3, device=device)
    u, s, vh = torch.linalg.svd(batch, full_matrices=False)
    assert s.shape == (4, 6, 3), "batched SVD shape"
    return f"svd on {device}: reduced, full and batched"


def _numpy(torch: Any) -> str:
    np = importlib.import_module("numpy")
    t = torch.tensor(np.arange(10, dtype=np.float32))
    assert t.sum().item() == 45.0, "torch.tensor(np.arange(10)).sum() != 45"
    back = torch.arange(6).reshape(2, 3).numpy()
    assert back.shape == (2, 3) and int(back.sum()) == 15, "tensor.numpy() round trip"
    shared = np.zeros(3)
    torch.from_numpy(shared)[0] = 7
    assert shared[0] == 7, "torch.from_numpy does not share memory"
    return f"numpy {np.__version__} interop"


_TORCH_GPU = r"""
import torch
x = torch.randn([3, 5]).cuda()  # check_binary.sh runs this under `timeout 20`: a hang is a failure
assert x.is_cuda
torch.linalg.svd(torch.randn(20, 16, device="cuda"), full_matrices=False)
runtime = None
if torch.backends.cudnn.is_available():
    runtime = torch.backends.cudnn.version()  # 91200 for 9.12.0 (8.x: 8902 for 8.9.2)
    base = 10000 if runtime >= 90000 else 1000
    major, minor = runtime // base, runtime % base // 100
    compiled = tuple(torch._C._cudnn.getCompileVersion())[:2]
    assert (major, minor) == compiled, f"cuDNN runtime {major}.{minor} != compile version {compiled}"
print(torch.cuda.get_device_name(0), "cuDNN", runtime)
"""

_TORCH_NO_GPU = r"""
import torch
assert torch.cuda.is_available() is False, "torch.cuda.is_available() is True without a GPU"
assert torch.cuda.device_count() == 0
print("cuda unavailable, as expected; CPU ops work:", float(torch.ones(3).sum()))
"""


def _torch_cuda(spec: dict[str, Any]) -> str:
    accel = spec.get("accelerator") or {}
    if gpu_present():
        if accel.get("kind") != "cuda":
            raise Skip("GPU present, but the config is not a CUDA one")
        return child(_TORCH_GPU, spec["gpu_timeout"])
    return child(_TORCH_NO_GPU, spec["gpu_timeout"])


# --------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    with open(argv[1]) as handle:
        spec = json.load(handle)
    check_imports(spec)
    if any(r["status"] == "fail" for r in RESULTS):
        return 1  # nothing else can work
    check("version", lambda: check_version(spec))
    check("build info", lambda: check_build_info(spec))
    check("openmp runtime loaded once", lambda: check_openmp_once(spec))
    check("accelerator availability", lambda: check_accelerator_availability(spec))
    if spec.get("profile") == "torch":
        torch_checks(spec)
    check_commands(spec)
    return 1 if any(r["status"] == "fail" for r in RESULTS) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
