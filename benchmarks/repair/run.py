"""builder repair vs auditwheel repair on the torch 2.13.0 CPU wheel, alternating, in one run.

Inputs (prepared from `pip download torch==2.13.0 --no-deps`):
  A  the wheel retagged linux_x86_64 (as a fresh build would come out of setup.py)
  B  A without torch/lib/libgomp.so.1, so repair must graft the system libgomp

auditwheel gets --exclude for torch's own libraries: without it, it fails on torch/bin/test_shim,
whose RUNPATH ($ORIGIN = torch/bin) cannot reach them. Both outputs are installed into one venv
in turn and must import torch and run an op. Prints one table; exits non-zero if a target is missed.

    python benchmarks/repair/run.py [--work DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from builder.binary.wheelfile import WheelReader, rewrite_wheel

HERE = Path(__file__).resolve().parent
TORCH_EXCLUDES = ["libtorch*.so", "libc10*.so", "libshm.so", "libtorch_python.so"]
TARGET_RATIO = 10.0
SIZE_TOLERANCE = 0.01


def torch_wheel(cache: Path) -> Path:
    found = sorted(cache.glob("torch-2.13.0*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "torch==2.13.0", "--no-deps", "-d", str(cache)], check=True
        )
        found = sorted(cache.glob("torch-2.13.0*.whl"))
    return found[0]


def prepare(wheel: Path, work: Path) -> tuple[Path, Path]:
    """A: retagged linux_x86_64; B: A minus the bundled libgomp."""
    stem = wheel.name.rsplit("-", 1)[0]
    a, b = work / "A" / f"{stem}-linux_x86_64.whl", work / "B" / f"{stem}-linux_x86_64.whl"
    a.parent.mkdir(parents=True, exist_ok=True)
    b.parent.mkdir(parents=True, exist_ok=True)
    with WheelReader(wheel) as reader:
        dist_info = reader.dist_info
        wheel_file = reader.read(f"{dist_info}/WHEEL").decode()
    tags = "\n".join(
        line.rsplit("-", 1)[0] + "-linux_x86_64" if line.startswith("Tag:") else line
        for line in wheel_file.splitlines()
    )
    if not a.exists():
        rewrite_wheel(wheel, a, replace={f"{dist_info}/WHEEL": (tags + "\n").encode()})
    if not b.exists():
        rewrite_wheel(a, b, remove=["torch/lib/libgomp.so.1"])
    return a, b


def timed(argv: list[str]) -> float:
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def repair_builder(src: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    builder = shutil.which("builder") or str(Path(sys.executable).parent / "builder")
    return timed([builder, "repair", str(src), "-o", str(out)])


def repair_auditwheel(src: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    excludes = [arg for pattern in TORCH_EXCLUDES for arg in ("--exclude", pattern)]
    return timed([sys.executable, "-m", "auditwheel", "repair", *excludes, "-w", str(out), str(src)])


def import_check(venv_python: Path, wheel: Path) -> None:
    subprocess.run(
        [str(venv_python), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(wheel)], check=True
    )
    code = (
        "import torch; x = torch.ones(3) * 2; assert float(x.sum()) == 6.0; "
        "print(torch.__version__, torch.__config__.parallel_info().splitlines()[0])"
    )
    subprocess.run([str(venv_python), "-c", code], check=True, cwd="/", env={"PATH": "/usr/bin:/bin"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "builder-bench" / "repair")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--python", default="python3.11", help="interpreter for the import check (torch 2.13.0 CPU is cp311)"
    )
    args = parser.parse_args()
    work: Path = args.work
    a, b = prepare(torch_wheel(Path.home() / ".cache" / "builder-tests" / "torch"), work)
    rows = []
    for label, src in (("A (retagged)", a), ("B (no libgomp)", b)):
        times: dict[str, list[float]] = {"builder": [], "auditwheel": []}
        for _ in range(args.rounds):  # alternate, so both see the same machine state
            times["builder"].append(repair_builder(src, work / "out-builder" / label[0]))
            times["auditwheel"].append(repair_auditwheel(src, work / "out-auditwheel" / label[0]))
        outs = {tool: next((work / f"out-{tool}" / label[0]).glob("*.whl")) for tool in times}
        rows.append((label, min(times["builder"]), min(times["auditwheel"]), outs))
    venv_dir = work / "venv"
    if not (venv_dir / "bin" / "python").exists():
        subprocess.run([args.python, "-m", "venv", str(venv_dir)], check=True)
        subprocess.run([str(venv_dir / "bin" / "python"), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
    ok = True
    print(
        f"{'input':<16} {'builder s':>10} {'auditwheel s':>13} {'ratio':>7} "
        f"{'builder MB':>11} {'auditwheel MB':>14} {'size diff':>10}  tags"
    )
    for label, ours, theirs, outs in rows:
        for wheel in outs.values():
            import_check(venv_dir / "bin" / "python", wheel)
        size_b, size_a = outs["builder"].stat().st_size, outs["auditwheel"].stat().st_size
        diff = (size_b - size_a) / size_a
        ratio = theirs / ours
        ok &= ratio >= TARGET_RATIO and abs(diff) <= SIZE_TOLERANCE
        tags = f"{outs['builder'].name.rsplit('-', 1)[1]} | {outs['auditwheel'].name.rsplit('-', 1)[1]}"
        print(
            f"{label:<16} {ours:>10.2f} {theirs:>13.2f} {ratio:>6.1f}x "
            f"{size_b / 1e6:>11.1f} {size_a / 1e6:>14.1f} {diff:>+9.2%}  {tags}"
        )
    print(f"targets: ratio >= {TARGET_RATIO:.0f}x and size within {SIZE_TOLERANCE:.0%}: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
