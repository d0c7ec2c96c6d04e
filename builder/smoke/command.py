"""`builder smoke`: the click command (registered by builder.cli); the work is run_smoke's."""

from __future__ import annotations

import json
from pathlib import Path

import click

from builder.catalog import load_catalog
from builder.check.context import PROFILES
from builder.config import configure
from builder.errors import SmokeError
from builder.smoke.archive import run_archive_smoke
from builder.smoke.runner import SmokeReport, run_smoke


@click.command("smoke")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--config", "config_id", default=None, help="Config the wheel was built for (default: its tags; "
              "version and accelerator are then taken from the wheel itself).")
@click.option("--profile", type=click.Choice(PROFILES), default="generic", show_default=True,
              help="torch: PyTorch's smoke checks (OpenMP, conv2d, SVD, numpy, CUDA, ABI flag).")
@click.option("--python", "interpreter", default=None, help="Interpreter to make the environment from "
              "(default: the config's CPython, found like `builder build` finds it).")
@click.option("--index-url", default=None, help="Index for the artifact's dependencies.")
@click.option("--find-links", multiple=True, help="Extra wheel directories for dependencies (repeatable).")
@click.option("--with", "extras", multiple=True, metavar="REQ", help="Extra requirement to install (repeatable).")
@click.option("--consumer", type=click.Path(path_type=Path, file_okay=False), default=None, help="libtorch-style "
              "zip: the CMake project to build against it (default: a torch program for Torch archives, else a "
              "generated find_package consumer).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def smoke_command(artifact: Path, config_id: str | None, profile: str, interpreter: str | None,
                  index_url: str | None, find_links: tuple[str, ...], extras: tuple[str, ...], consumer: Path | None,
                  as_json: bool) -> None:
    """Install ARTIFACT into a fresh environment and run the runtime checks there (LD_LIBRARY_PATH unset).
    For a libtorch-style .zip: unpack it, build and run a consumer CMake project against it."""
    config = None
    if config_id is not None:
        config = configure(load_catalog(), config_id=config_id, flags={}, environ={}, tool_settings={},
                           pyproject_path="").config
    index_args = (*(["--index-url", index_url] if index_url else []), *(f"--find-links={d}" for d in find_links))
    if artifact.suffix == ".zip":  # a C++ archive: a consumer project is built against it
        report = run_archive_smoke(artifact, config, consumer=consumer)
    else:
        report = run_smoke(artifact, config, interpreter, index_args, profile, extra_requirements=extras)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else render(report), nl=not as_json)
    if report.failed:
        names = ", ".join(c.name for c in report.failed)
        raise SmokeError(f"{artifact.name}: {len(report.failed)} smoke check(s) failed: {names}.")


def render(report: SmokeReport) -> str:
    lines = [f"environment: {report.env_tool} from {report.python} in {report.env_seconds:.1f} s, "
             f"install {report.install_seconds:.1f} s"]
    if report.env_tool == "cmake":
        lines = [f"archive: unpacked in {report.env_seconds:.1f} s, consumer built in {report.install_seconds:.1f} s"]
    for c in report.checks:
        detail = c.detail.strip().splitlines()[0][:160] if c.detail.strip() else ""
        lines.append(f"{c.status:<5} {c.name:<28} {detail}")
        if c.status == "fail":
            lines += [f"      {line}" for line in c.detail.strip().splitlines()[1:12]]
    passed = sum(c.status == "pass" for c in report.checks)
    skipped = sum(c.status == "skip" for c in report.checks)
    lines.append(f"{Path(report.artifact).name}: {passed} passed, {len(report.failed)} failed, {skipped} skipped "
                 f"in {report.seconds:.1f} s")
    return "\n".join(lines)
