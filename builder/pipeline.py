"""One build, end to end: resolve -> build -> repair -> smoke -> artifact + report.

Work happens in a hidden directory inside the output directory, so the final move is an
atomic rename; a failed build leaves its log and no artifact.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from builder import output
from builder.catalog import load_catalog
from builder.check import run_checks
from builder.config import PackageType, configure
from builder.errors import BuilderError, CheckError, ConfigError, SmokeError
from builder.executors.docker import DockerOptions, run_in_container
from builder.executors.host import HostExecutor
from builder.fsutil import exclusive
from builder.host import Host
from builder.libtorch.build import COMPANIONS, build_libtorch
from builder.manywheel.build import build_wheel
from builder.manywheel.repair import RepairOptions, repair_wheel
from builder.project import Project
from builder.report import Artifact, BuildRecord
from builder.resolver import BuildEnvironment, resolve
from builder.smoke.runner import run_smoke


@dataclass(frozen=True)
class BuildRequest:
    project: Project
    config_ids: tuple[str, ...]
    flags: dict[str, Any]
    out_dir: Path
    index_args: tuple[str, ...] = ()  # pip options for the smoke install (--index-url, --find-links)
    clean: bool = False  # start from an empty build directory
    docker: DockerOptions | None = None  # build each config inside its builder image (--docker)


def build_all(request: BuildRequest, host: Host) -> list[BuildRecord]:
    """Build each config in turn; one failure does not stop the others."""
    records = []
    for config_id in request.config_ids or (None,):
        record = BuildRecord(config=config_id or "(from environment)")
        records.append(record)
        try:
            # --docker: the image's toolchains are verified inside it, so resolve here without probing.
            where = replace(host, probe=False) if request.docker else host
            env = resolve_environment(request.project, config_id, request.flags, where)
            record.config = env.config.id
            record.environment = env.summary()
            if request.docker:
                run_in_container(
                    env,
                    request.docker,
                    request.out_dir,
                    record,
                    flags=request.flags,
                    index_args=request.index_args,
                    clean=request.clean,
                )
            else:
                _build_one(env, request, record, host)
            record.status = "ok"
        except BuilderError as exc:
            record.status = "failed"
            record.error = str(exc)
            record.exit_code = exc.exit_code
            output.error(str(exc))
    return records


def resolve_environment(project: Project, config_id: str | None, flags: dict[str, Any], host: Host) -> BuildEnvironment:
    """Config from all four sources, then the resolver; notices go to stderr."""
    catalog = load_catalog()
    resolved = configure(
        catalog,
        config_id=config_id,
        flags=flags,
        environ=host.environ,
        tool_settings=project.tool_settings,
        pyproject_path=str(project.pyproject),
    )
    env = resolve(resolved.config, project, host, catalog)
    for message in (*resolved.notices, *env.notices):
        output.notice(message)
    return env


def build_dir(env: BuildEnvironment, host: Host) -> Path:
    """A stable per-project, per-config build directory in builder's cache: the same path every
    time (so the same inputs give the same bytes, and rebuilds are incremental) and never
    inside the user's source tree."""
    digest = hashlib.sha256(str(env.project.root).encode()).hexdigest()[:12]
    return host.cache_dir / "build" / f"{env.project.name or env.project.root.name}-{digest}" / env.config.id


@dataclass(frozen=True)
class Workspace:
    """Where one package-type builder works: everything a backend needs besides the environment."""

    work: Path  # temporary, inside the output directory (same file system as the artifact's home)
    build_dir: Path  # stable CMake build directory (see build_dir)
    log: Path
    executor: HostExecutor
    record: BuildRecord

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A timed step, recorded in the report and shown as progress."""
        with output.step(f"{self.record.config}: {name}") as timer:
            yield
        self.record.steps[name] = timer.seconds


def build_manywheel(env: BuildEnvironment, space: Workspace) -> Path:
    with space.step("build"), exclusive(space.build_dir.with_name(space.build_dir.name + ".lock")):
        raw = build_wheel(env, space.executor, space.work, space.build_dir, space.log)
    with space.step("repair"):
        options = RepairOptions(
            plan=env.repair,
            arch=env.config.arch,
            source_date_epoch=env.source_date_epoch,
            search_dirs=(env.cuda.lib_dir,) if env.cuda else (),
        )
        return repair_wheel(raw, space.work / "repaired", options).wheel


# One entry per package type: build(env, workspace) -> the finished (not yet checked) artifact.
BUILDERS: dict[PackageType, Callable[[BuildEnvironment, Workspace], Path]] = {
    PackageType.MANYWHEEL: build_manywheel,
    PackageType.LIBTORCH: build_libtorch,
}


def _build_one(env: BuildEnvironment, request: BuildRequest, record: BuildRecord, host: Host) -> None:
    builder = BUILDERS.get(env.config.package_type)
    if builder is None:
        known = ", ".join(p.value for p in BUILDERS)
        raise ConfigError(
            f"Building {env.config.package_type.value} packages is not supported yet; supported: {known}."
        )
    out_dir = request.out_dir
    log = out_dir / "logs" / f"{env.config.id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    record.log = str(log)
    cmake_dir = build_dir(env, host)
    if request.clean:
        shutil.rmtree(cmake_dir, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".builder-work-", dir=out_dir) as tmp:
        space = Workspace(Path(tmp), cmake_dir, log, HostExecutor(), record)
        artifact = builder(env, space)
        with space.step("check"):
            check_artifact(env, artifact, record)
        with space.step("smoke"):
            smoke_artifact(env, artifact, request.index_args, log, record)
        final = out_dir / artifact.name
        artifact.replace(final)  # same file system: atomic
        # Side artifacts (a libtorch debug- archive) follow once the main one passed.
        companions = sorted((space.work / COMPANIONS).glob("*")) if (space.work / COMPANIONS).is_dir() else []
        for companion in companions:
            companion.replace(out_dir / companion.name)
    record.artifacts.append(Artifact.of(final))
    record.artifacts.extend(Artifact.of(out_dir / c.name) for c in companions)


def check_artifact(env: BuildEnvironment, artifact: Path, record: BuildRecord) -> None:
    """Static checks against the resolved environment; warnings are printed, errors fail the build."""
    report = run_checks(artifact, env=env)
    record.checks = report.as_dict()
    for finding in report.warnings:
        output.notice(f"{finding.id} {finding.file}: {finding.message}")
    if not report.ok:
        lines = "\n".join(f"  {f.id} {f.file}: {f.message}" for f in report.errors)
        raise CheckError(f"{artifact.name} failed {len(report.errors)} check(s); no artifact was written:\n{lines}")


def smoke_artifact(
    env: BuildEnvironment, artifact: Path, index_args: Sequence[str], log: Path, record: BuildRecord
) -> None:
    """Install into a fresh environment and run the smoke harness (LD_LIBRARY_PATH unset, temp cwd)."""
    report = run_smoke(artifact, env=env, index_args=index_args)
    record.smoke = report.as_dict()
    with log.open("a") as handle:
        handle.write(report.output)
    if not report.ok:
        lines = "\n".join(f"  {c.name}: {c.detail}" for c in report.failed)
        raise SmokeError(f"{artifact.name} failed its smoke test in a fresh {report.env_tool} environment:\n{lines}")
