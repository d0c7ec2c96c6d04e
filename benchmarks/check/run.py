"""builder check vs auditwheel show on the torch 2.13.0 CPU wheel, alternating, in one run.

builder runs every check family with the torch profile (tags vs symbol versions, RECORD
hashes of all 12,248 members, loadability of every DT_NEEDED, RPATH hygiene, the C++ ABI
of libtorch_cpu.so, device code, OpenMP, metadata, size); auditwheel show only rates the
platform tag.  The runs alternate (builder, auditwheel, builder, ...) so that a busy
machine slows both alike.  Prints one table; exits non-zero when builder is not at least
10x faster or its findings are not the expected ones.

    python benchmarks/check/run.py [--rounds N] [--wheel PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 10.0
CACHE = Path.home() / ".cache" / "builder-tests" / "torch"
EXPECTED = {("load.unresolved", "error", "torch/bin/test_shim")}


def torch_wheel(cache: Path) -> Path:
    found = sorted(cache.glob("torch-2.13.0*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "torch==2.13.0", "--no-deps", "-d",
                        str(cache)], check=True)
        found = sorted(cache.glob("torch-2.13.0*.whl"))
    return found[0]


def run_builder(wheel: Path) -> tuple[float, dict[str, object]]:
    code = ("import json, sys; from builder.check import run_checks; "
            "print(json.dumps(run_checks(sys.argv[1], profile='torch').as_dict()))")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code, str(wheel)], capture_output=True, text=True, check=True)
    return time.monotonic() - start, json.loads(done.stdout)


def run_auditwheel(wheel: Path) -> tuple[float, str]:
    auditwheel = shutil.which("auditwheel", path=str(Path(sys.executable).parent)) or "auditwheel"
    start = time.monotonic()
    done = subprocess.run([auditwheel, "show", str(wheel)], capture_output=True, text=True, check=False)
    verdict = next((line.strip() for line in done.stdout.splitlines() if "platform tag" in line), "?")
    return time.monotonic() - start, verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--wheel", type=Path, default=None)
    args = parser.parse_args()
    wheel = args.wheel or torch_wheel(CACHE)
    ours: list[float] = []
    theirs: list[float] = []
    report: dict[str, object] = {}
    verdict = ""
    for round_no in range(1, args.rounds + 1):
        seconds, report = run_builder(wheel)
        ours.append(seconds)
        print(f"round {round_no}: builder check {seconds:.2f} s", flush=True)
        seconds, verdict = run_auditwheel(wheel)
        theirs.append(seconds)
        print(f"round {round_no}: auditwheel show {seconds:.2f} s", flush=True)
    findings = report.get("findings", [])
    assert isinstance(findings, list)
    errors = {(f["id"], f["severity"], f["file"]) for f in findings if f["severity"] == "error"}
    n_errors = sum(f["severity"] == "error" for f in findings)
    warnings = sum(f["severity"] == "warning" for f in findings)
    ratio = statistics.median(theirs) / statistics.median(ours)
    print(f"\n{wheel.name} ({wheel.stat().st_size / 1e6:.1f} MB), {args.rounds} alternating rounds, median seconds")
    print(f"{'tool':<18}{'seconds':>10}  result")
    kinds = ", ".join(sorted(f"{i} {p}" for i, _, p in errors))
    print(f"{'builder check':<18}{statistics.median(ours):>10.2f}  {n_errors} errors ({kinds}), {warnings} warnings; "
          "all check families")
    print(f"{'auditwheel show':<18}{statistics.median(theirs):>10.2f}  {verdict}")
    print(f"ratio: builder is {ratio:.1f}x faster (target {TARGET_RATIO:g}x)")
    ok = ratio >= TARGET_RATIO and errors == EXPECTED
    if errors != EXPECTED:
        print(f"unexpected errors: {sorted(errors)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
