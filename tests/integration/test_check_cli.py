"""`builder check` as a user runs it: output, --json, exit codes, bad input, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builder.binary.wheelfile import rewrite_wheel
from tests.integration.test_check_corpus import cpu_wheel, example_builds  # noqa: F401  (session fixtures)

# Until builder.cli registers the commands, register them the way the lead will.
RUN = (
    "import sys\n"
    "from builder.cli import cli, main\n"
    "from builder.check.command import check_command\n"
    "from builder.smoke.command import smoke_command\n"
    "for command in (check_command, smoke_command):\n"
    "    if command.name not in cli.commands:\n"
    "        cli.add_command(command)\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def builder(*args: str, tmpdir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUILDER_", "GITHUB_ACTIONS"))}
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env, check=False)


def one_error(result: subprocess.CompletedProcess[str], code: int, *phrases: str) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def test_good_wheel_exits_zero_and_reports_size(cpu_wheel: Path) -> None:  # noqa: F811
    result = builder("check", str(cpu_wheel), "--config", "manywheel-py3_11-cpu")
    assert result.returncode == 0, result.stderr
    assert "passed: 0 error(s), 0 warning(s)" in result.stdout
    assert "size      0.2 MB" in result.stdout and "abi       minitorch/lib/libminitorch_core.so" in result.stdout


def test_findings_exit_7_and_json(cpu_wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    broken = tmp_path / cpu_wheel.name
    rewrite_wheel(cpu_wheel, broken, remove=["minitorch/lib/libgomp.so.1"])
    result = builder("check", str(broken), "--json")
    one_error(result, 7, "load.unresolved", "minitorch/lib/libminitorch_core.so")
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["errors"] == 1
    assert doc["findings"][0]["id"] == "load.unresolved" and doc["findings"][0]["severity"] == "error"
    assert builder("check", str(broken), "--ignore", "minitorch/lib/*").returncode == 0


def test_config_not_matching_the_name_exits_2_before_reading(cpu_wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    result = builder("check", str(cpu_wheel), "--config", "manywheel-py3_12-cpu", tmpdir=tmp_path)
    one_error(result, 2, "manywheel-py3_12-cpu does not match", "cp311", "looks like manywheel-py3_11-cpu")
    one_error(builder("check", str(cpu_wheel), "--config", "manywheel-py3_11-cuda13_0"), 2, "+cu130", "+cpu")
    one_error(builder("check", str(cpu_wheel), "--config", "libtorch-cpu-shared-with-deps"), 2, "libtorch")
    assert list(tmp_path.iterdir()) == []


def test_path_that_is_not_an_artifact(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    one_error(builder("check", str(text)), 2, "neither a wheel (.whl), a zip archive (.zip) nor a directory")
    one_error(builder("check", str(tmp_path / "missing.whl")), 2, "does not exist")


@pytest.mark.parametrize("damage", ["truncated", "not-a-zip", "escaping", "corrupt-member"])
def test_broken_archives_exit_7_and_write_nothing(damage: str, cpu_wheel: Path, tmp_path: Path) -> None:  # noqa: F811
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    target = tmp_path / cpu_wheel.name
    data = cpu_wheel.read_bytes()
    if damage == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "not-a-zip":
        target.write_bytes(b"this is not a zip archive at all" * 10)
    elif damage == "escaping":
        import zipfile

        with zipfile.ZipFile(target, "w") as out:
            out.writestr("minitorch/__init__.py", "")
            out.writestr("../../etc/evil.so", "x")
    else:  # flip bytes inside the biggest member's compressed data: its CRC fails
        middle = data.find(b"\x7fELF") if data.find(b"\x7fELF") > 0 else len(data) // 3
        middle = len(data) // 3 if middle < 0 else middle
        target.write_bytes(data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 64]) + data[middle + 64 :])
    before = sorted(p.name for p in tmp_path.iterdir())
    result = builder("check", str(target), tmpdir=scratch)
    one_error(result, 7)
    assert "archive." in result.stdout or "record." in result.stdout, result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert list(scratch.iterdir()) == []
    if damage == "escaping":
        assert "'..' component" in result.stdout
