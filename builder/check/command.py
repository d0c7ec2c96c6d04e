"""`builder check`: the click command (registered by builder.cli); all logic lives in run_checks."""

from __future__ import annotations

import json
from pathlib import Path

import click

from builder.catalog import load_catalog
from builder.check.context import DEFAULT_MAX_SIZE_MB, PROFILES, CheckOptions
from builder.check.findings import CheckReport
from builder.check.runner import run_checks
from builder.config import BuildConfig, configure
from builder.errors import CheckError

MB = 1_000_000


@click.command("check")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--config", "config_id", default=None, help="Config the artifact was built for, e.g. "
              "manywheel-py3_12-cuda13_0 (default: check only what the artifact says about itself).")
@click.option("--profile", type=click.Choice(PROFILES), default="generic", show_default=True,
              help="torch: PyTorch's checks (libtorch_cpu.so, c10/at/torch/caffe2 ABI symbols).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--ignore", multiple=True, metavar="GLOB", help="Leave out files matching GLOB, e.g. 'torch/test/*' "
              "(repeatable).")
@click.option("--abi-namespace", multiple=True, metavar="NS", help="C++ namespace of the project for the ABI check "
              "(repeatable; default: the distribution name).")
@click.option("--main-library", default=None, metavar="GLOB", help="The project's main library for the ABI check "
              "(default: its largest own shared library).")
@click.option("--max-size", type=float, default=DEFAULT_MAX_SIZE_MB, show_default=True, metavar="MB",
              help="Size ceiling in MB (10^6 bytes); 0 disables it. The size is always reported.")
@click.option("--expect-version", default=None, help="Require exactly this version.")
@click.option("--arch-list", default=None, help="Override the config's CUDA arch list / ROCm offload archs.")
@click.option("--cuda-mode", type=click.Choice(["pypi", "bundled"]), default=None, help="Override the config's "
              "cuda-mode.")
@click.option("--channel", type=click.Choice(["nightly", "test", "release"]), default=None,
              help="Override the config's channel (version rules).")
def check_command(artifact: Path, config_id: str | None, profile: str, as_json: bool, ignore: tuple[str, ...],
                  abi_namespace: tuple[str, ...], main_library: str | None, max_size: float,
                  expect_version: str | None, arch_list: str | None, cuda_mode: str | None,
                  channel: str | None) -> None:
    """Static checks of a wheel, libtorch zip or installed package directory (no code is run)."""
    config = _config(config_id, {"arch-list": arch_list, "cuda-mode": cuda_mode, "channel": channel})
    options = CheckOptions(abi_namespaces=abi_namespace, main_library=main_library,
                           max_size_mb=max_size or None, expected_version=expect_version)
    report = run_checks(artifact, config, None, profile, ignore, options=options)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        click.echo(render(report), nl=False)
    if report.errors:
        first = report.errors[0]
        raise CheckError(f"{artifact.name}: {len(report.errors)} check(s) failed (first: {first.id} "
                         f"{first.file or artifact.name}). Each finding above says what to do.")


def _config(config_id: str | None, flags: dict[str, str | None]) -> BuildConfig | None:
    if config_id is None:
        return None
    # Only the id and explicit flags: the environment of the checking machine says nothing
    # about how the artifact was built.
    resolved = configure(load_catalog(), config_id=config_id, flags=flags, environ={}, tool_settings={},
                         pyproject_path="")
    return resolved.config


def render(report: CheckReport) -> str:
    """One line per finding (greppable in CI logs), then what was measured and a summary."""
    lines = [f"{f.severity.value:<8}{f.id:<28}{f.message}" for f in report.findings]
    facts = report.facts
    if facts.get("tags"):
        needed = (facts.get("platform") or {}).get("needed")
        lines.append(f"tags      {', '.join(facts['tags'])}" + (f" (binaries need {needed})" if needed else ""))
    if facts.get("abi"):
        abi = facts["abi"]
        lines.append(f"abi       {abi['library']}: {abi['cxx11']} cxx11, {abi['pre_cxx11']} pre-cxx11 symbols of "
                     f"{', '.join(n + '::' for n in abi['namespaces'])} (expected {abi['expected']})")
    for member, code in sorted((facts.get("cuda") or {}).items()):
        lines.append(f"cuda      {member}: SASS {code['sass']} PTX {code['ptx']} ({code['entries']} entries)")
    for member, targets in sorted((facts.get("hip") or {}).items()):
        lines.append(f"hip       {member}: {', '.join(targets)}")
    if facts.get("openmp", {}).get("inside") or facts.get("openmp", {}).get("needed"):
        omp = facts["openmp"]
        lines.append(f"openmp    {', '.join(omp['needed']) or '-'} needed; inside: "
                     f"{', '.join(m for ms in omp['inside'].values() for m in ms) or 'none'}")
    if facts.get("version"):
        lines.append(f"version   {facts['version']}")
    ceiling = f", ceiling {report.facts['size']['ceiling_mb']:g} MB" if (report.facts.get("size") or {}).get(
        "ceiling_mb") else ""
    lines.append(f"size      {report.size / MB:.1f} MB ({report.unpacked_size / MB:.1f} MB unpacked, "
                 f"{report.files} files, {report.elf_files} ELF){ceiling}")
    ignored = f", {report.ignored} ignored" if report.ignored else ""
    if facts.get("ignored_elf_files"):
        ignored += f", {facts['ignored_elf_files']} ELF files left out by --ignore"
    verdict = "FAILED" if report.errors else "passed"
    lines.append(f"{Path(report.artifact).name}: {verdict}: {len(report.errors)} error(s), "
                 f"{len(report.warnings)} warning(s){ignored} in {report.seconds:.1f} s")
    return "\n".join(lines) + "\n"
