"""Run one config's build inside its builder image (`builder build ... --docker`).

The container runs the very same `builder build` as the host would, from builder's own source
mounted read-only and the image's venv of builder's requirements (installed at image build
time, so a build needs no PyPI round trip for builder itself). The project is mounted read-only
and copied inside (a build may write next to its sources); the output directory is mounted and
written as the calling user, so artifacts come out owned by them. Only an explicit allowlist of
environment variables crosses over. The container is removed on success, failure and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import builder
from builder import images, output
from builder.config import SETTINGS
from builder.errors import BuilderError, ConfigError, DockerError
from builder.report import Artifact, BuildRecord
from builder.resolver import BuildEnvironment
from builder.toolchains.python import find_interpreter

# Host variables a containerised build may see: builder's own settings and PyTorch CI's
# variables (minus those naming host paths), CI markers for log folding, and proxies.
PASSED = (
    "BUILD_ENVIRONMENT",
    "PACKAGE_TYPE",
    "DESIRED_PYTHON",
    "DESIRED_CUDA",
    "GPU_ARCH_TYPE",
    "GPU_ARCH_VERSION",
    "LIBTORCH_VARIANT",
    "DESIRED_DEVTOOLSET",
    "MAX_JOBS",
    "CI",
    "GITHUB_ACTIONS",
    *images.PROXY_VARS,
)
HOST_PATH_SETTINGS = ("cuda-home", "rocm-path", "python-executable")  # meaningless inside the image
CA_IN_CONTAINER = "/etc/builder/ca-bundle.pem"
SRC, PROJECT, OUT, HOME = "/opt/builder/src", "/opt/builder/project", "/opt/builder/out", "/tmp/builder-home"


@dataclass(frozen=True, kw_only=True)
class DockerOptions:
    keep_container: bool = False  # leave the stopped container for `docker start -ai` / `docker cp`
    gpus: str | None = None  # docker run --gpus VALUE ("all")
    env: tuple[str, ...] = ()  # KEY=VALUE, or KEY to take the host's value


def run_in_container(
    env: BuildEnvironment,
    options: DockerOptions,
    out_dir: Path,
    record: BuildRecord,
    *,
    flags: Mapping[str, Any],
    index_args: Sequence[str] = (),
    clean: bool = False,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Build env.config in its image; fill record from the container's build-report.json."""
    environ = os.environ if environ is None else environ
    image = _image_for(env, out_dir / "logs" / f"image-{env.config.id}.log")
    out_dir = out_dir.resolve()
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    (out_dir / "build-report.json").unlink(missing_ok=True)  # never read back a stale one
    name = f"builder-{env.config.id}-{uuid.uuid4().hex[:8]}"
    argv = _docker_run_argv(env, options, image, name, out_dir, environ, index_args)
    argv += _inner_command(env, flags, index_args, clean)
    log = out_dir / "logs" / f"{env.config.id}.docker.log"
    log.write_text("")
    output.notice(f"{env.config.id}: building in {image} (container {name}, log {log})")
    start = time.monotonic()
    try:
        rc = images.stream(argv, log)
    finally:
        _cleanup(name, options.keep_container)
    failure = _read_back(out_dir, record, image, name, rc, log)
    # The container's own cost (start, copy, teardown): the inner steps are already in record.steps.
    record.steps["container"] = round(max(0.0, time.monotonic() - start - sum(record.steps.values())), 3)
    if failure is not None:
        raise failure


def _image_for(env: BuildEnvironment, log: Path) -> str:
    """The config's image, built first when this engine lacks it (a no-op when it exists)."""
    if env.docker_image is None:
        raise ConfigError(
            f"{env.config.id} has no Docker image: {env.config.package_type.value} builds run on their own "
            "platform's hosts, not in a Linux container. Drop --docker for this config."
        )
    images.ensure_engine()
    if images.image_exists(env.docker_image):
        return env.docker_image
    family = images.family_of(env.config.accelerator)
    defn = images.definition(family)
    name = env.docker_image.rsplit("-", 1)[0]
    output.notice(f"{env.config.id}: image {env.docker_image} is not built here; building it (log {log})")
    built = images.build_image(defn, name, log=log)
    if built.tag != env.docker_image:  # the resolver and the image module disagree: a bug
        raise DockerError(f"Built {built.tag} but the resolver expects {env.docker_image}.")
    return built.tag


def _docker_run_argv(
    env: BuildEnvironment,
    options: DockerOptions,
    image: str,
    name: str,
    out_dir: Path,
    environ: Mapping[str, str],
    index_args: Sequence[str],
) -> list[str]:
    src = Path(builder.__file__).resolve().parent
    argv = ["docker", "run", "--name", name, "--init", "--user", f"{os.getuid()}:{os.getgid()}"]
    argv += ["--label", f"{images.LABEL}.run={env.config.id}", "--workdir", HOME]
    argv += _mount(src, f"{SRC}/builder", ro=True) + _mount(env.project.root, f"{PROJECT}.src", ro=True)
    argv += _mount(out_dir, OUT, ro=False)
    for arg in index_args:  # --find-links=DIR: the same path inside
        if arg.startswith("--find-links=") and Path(arg.split("=", 1)[1]).is_dir():
            argv += _mount(Path(arg.split("=", 1)[1]), arg.split("=", 1)[1], ro=True)
    argv += _interpreter_mount(env, image)
    if options.gpus:
        argv += ["--gpus", options.gpus]
    for key, value in sorted(container_env(env, options, environ).items()):
        argv += ["--env", f"{key}={value}"]
    ca = next((environ[v] for v in images.CA_VARS if environ.get(v) and Path(environ[v]).is_file()), None)
    if ca:
        argv += _mount(Path(ca).resolve(), CA_IN_CONTAINER, ro=True)
    return [*argv, image]


def _mount(source: Path, target: str, *, ro: bool) -> list[str]:
    spec = f"type=bind,source={source},target={target}" + (",readonly" if ro else "")
    return ["--mount", spec]


def container_env(env: BuildEnvironment, options: DockerOptions, environ: Mapping[str, str]) -> dict[str, str]:
    """The allowlist: builder settings, CI variables and proxies from the host, the CA bundle's
    new path, the host-computed SOURCE_DATE_EPOCH (the container's copy has no git history),
    then [tool.builder] docker.env and --env, each KEY or KEY=VALUE."""
    settings = {s.env for s in SETTINGS if s.key not in HOST_PATH_SETTINGS}
    out = {k: v for k, v in environ.items() if k in PASSED or k in settings}
    out.update({"HOME": HOME, "PYTHONPATH": SRC, "PYTHONDONTWRITEBYTECODE": "1"})
    out["SOURCE_DATE_EPOCH"] = str(env.source_date_epoch)
    if any(environ.get(v) and Path(environ[v]).is_file() for v in images.CA_VARS):
        out.update(
            dict.fromkeys(("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"), CA_IN_CONTAINER)
        )
    for item in (*(env.config.options.docker_env or ()), *options.env):
        key, sep, value = item.partition("=")
        if not key or not key.replace("_", "a").isalnum():
            raise ConfigError(f"--env / docker.env entry {item!r} is not KEY or KEY=VALUE.")
        if sep:
            out[key] = value
        elif key in environ:
            out[key] = environ[key]
    return out


def _interpreter_mount(env: BuildEnvironment, image: str) -> list[str]:
    """When the image's python3 is not the config's Python, lend the host's interpreter, mounted
    read-only at its own path (pyenv builds carry absolute RUNPATHs) and put on PATH first."""
    wanted = env.config.python
    if wanted is None or (not wanted.free_threaded and _image_python(image) == wanted.minor_version):
        return []
    host = find_interpreter(wanted, os.environ, Path.home(), None)
    prefix = Path(host.path).resolve().parent.parent
    path = f"{prefix}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    output.notice(f"{env.config.id}: the image has no Python {wanted}; using the host's {prefix} (read-only)")
    return [*_mount(prefix, str(prefix), ro=True), "--env", f"PATH={path}"]


def _image_python(image: str) -> str | None:
    contents = images.image_labels(image).get(f"{images.LABEL}.contents")
    return json.loads(contents).get("python") if contents else None


def _inner_command(
    env: BuildEnvironment, flags: Mapping[str, Any], index_args: Sequence[str], clean: bool
) -> list[str]:
    """Copy the project in, then run builder build with the canonical config id and the same flags."""
    inner = ["/opt/builder/venv/bin/python", "-m", "builder", "build", PROJECT, env.config.id, "-o", OUT]
    for setting in SETTINGS:
        value = flags.get(setting.key)
        if value is not None and value is not False and setting.key not in HOST_PATH_SETTINGS:
            inner += [setting.flag, str(value)]
    inner += [*index_args, *(["--clean"] if clean else [])]
    script = f'mkdir -p "$HOME" && cp -a {PROJECT}.src/. {PROJECT} && exec "$@"'
    return ["sh", "-c", script, "sh", *inner]


def _cleanup(name: str, keep: bool) -> None:
    if keep:
        output.notice(f"kept container {name}: `docker start -ai {name}` to rerun, `docker rm {name}` when done")
        return
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


class ContainerBuildError(BuilderError):
    """The build inside the container failed; carries the inner build's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _read_back(
    out_dir: Path, record: BuildRecord, image: str, name: str, rc: int, log: Path
) -> ContainerBuildError | None:
    """Take the container's record for this config (steps, artifacts, checks, smoke, environment);
    the error to raise when the build inside failed."""
    report = out_dir / "build-report.json"
    builds = json.loads(report.read_text())["builds"] if report.is_file() else []
    inner = builds[0] if builds else {}
    record.steps.update(inner.get("steps", {}))
    record.artifacts = [Artifact(**a) for a in inner.get("artifacts", [])]
    record.checks, record.smoke = inner.get("checks", {}), inner.get("smoke", {})
    record.environment = {**inner.get("environment", record.environment), "docker": {"image": image, "container": name}}
    record.log = str(out_dir / Path(inner["log"]).relative_to(OUT)) if inner.get("log") else str(log)
    if rc == 0 and inner.get("status") == "ok":
        return None
    detail = inner.get("error") or f"the container exited {rc}; last lines of {log}:\n{_tail(log)}"
    code = int(inner.get("exit_code") or (rc if rc not in (0, 125, 126, 127) else DockerError.exit_code))
    return ContainerBuildError(f"{detail}\n(built in {image}; container removed; docker log: {log})", code)


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
