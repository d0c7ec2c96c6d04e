"""Builder images: definitions (builder/dockerfiles), content-addressed tags, bootstrap, build,
verification and listing, all through the `docker` CLI.

Why the CLI and not the docker SDK: the CLI is what an engineer reproducing CI has anyway,
it streams build logs and handles `docker import` from a pipe, and it keeps builder's
dependency list short. Every call gets an argument list, never a shell string.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from string import Template
from typing import Any

from builder.catalog import load_catalog
from builder.config import Accelerator
from builder.errors import DockerError, ToolchainError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOCKERFILES = Path(__file__).parent / "dockerfiles"
DEFINITIONS = DOCKERFILES / "images.toml"
LABEL = "org.builder"  # label prefix: .family, .digest, .contents
START_DOCKERD = (
    "Start one as root with `dockerd >/var/log/dockerd.log 2>&1 &` (or `systemctl start docker`), "
    "install it with `apt-get install -y docker.io` if `dockerd` is missing, or point DOCKER_HOST at a running engine."
)
# Build arguments Docker predefines for proxies: they reach RUN steps without being stored in the image.
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
CA_VARS = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
TOOLCHAINS = ("none", "cuda-apt", "cuda-pypi", "rocm-apt", "script")


@dataclass(frozen=True, kw_only=True)
class BaseImage:
    key: str
    suite: str
    components: tuple[str, ...]
    python: str  # the suite's python3, X.Y

    @property
    def name(self) -> str:
        return f"builder/debian:{self.suite}"


@dataclass(frozen=True, kw_only=True)
class ImageDefinition:
    family: str  # cpu, cuda13.5, rocm5.7
    kind: str  # cpu, cuda, rocm
    version: str | None
    base: BaseImage
    packages: tuple[str, ...]
    toolchain: str  # one of TOOLCHAINS: which scripts/<toolchain>.sh installs it
    gcc: int | None = None
    wheels: tuple[str, ...] = ()
    script: str | None = None  # toolchain = "script": inline shell (custom toolchains, tests)


@dataclass(frozen=True)
class RenderedImage:
    definition: ImageDefinition
    dockerfile: str
    files: Mapping[str, str]  # context-relative path -> text (scripts)
    digest: str  # sha256 of the Dockerfile and every file copied in

    def tag(self, name: str) -> str:
        """builder/manylinux-builder:cuda13.5 -> builder/manylinux-builder:cuda13.5-<hash12>."""
        return f"{name}-{self.digest[:12]}"

    def contents(self) -> dict[str, Any]:
        """What the image holds, recorded in its label (and checked after the build)."""
        data = asdict(self.definition)
        data["base"] = self.definition.base.name
        data["python"] = self.definition.base.python
        data["digest"] = self.digest
        return data


# ---------------------------------------------------------------- definitions


def family_of(accelerator: Accelerator) -> str:
    return "cpu" if accelerator.kind == "cpu" else f"{accelerator.kind}{accelerator.version or ''}"


@cache
def load_definitions(path: Path = DEFINITIONS) -> dict[str, ImageDefinition]:
    """Every family in a definitions file (builder's own, or a custom one with the same schema)."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DockerError(f"Cannot read the image definitions {path}: {exc}. Fix the file.") from exc
    common = tuple(data.get("common_packages", ()))
    bases = {
        key: BaseImage(key=key, suite=b["suite"], components=tuple(b["components"]), python=b["python"])
        for key, b in data.get("base", {}).items()
    }
    found = {}
    entries = [("cpu", None, data["cpu"])] if "cpu" in data else []
    entries += [(kind, version, e) for kind in ("cuda", "rocm") for version, e in data.get(kind, {}).items()]
    for kind, version, entry in entries:
        family = kind if version is None else f"{kind}{version}"
        found[family] = _definition(family, kind, version, entry, bases, common, path)
    return found


def _definition(
    family: str,
    kind: str,
    version: str | None,
    entry: dict[str, Any],
    bases: dict[str, BaseImage],
    common: tuple[str, ...],
    path: Path,
) -> ImageDefinition:
    base, toolchain = entry.get("base"), entry.get("toolchain", "none")
    if base not in bases or toolchain not in TOOLCHAINS:
        raise DockerError(
            f"{path}: image {family} has base {base!r} and toolchain {toolchain!r}; "
            f"bases are {', '.join(bases)} and toolchains {', '.join(TOOLCHAINS)}."
        )
    wheels = tuple(entry.get("wheels", ()))
    if toolchain == "cuda-pypi" and not wheels:
        wheels = load_catalog().cuda[version or ""].toolkit  # the same pins the host install uses
    return ImageDefinition(
        family=family,
        kind=kind,
        version=version,
        base=bases[base],
        packages=(*common, *entry.get("packages", ())),
        toolchain=toolchain,
        gcc=entry.get("gcc"),
        wheels=wheels,
        script=entry.get("script"),
    )


def definition(family: str, path: Path = DEFINITIONS) -> ImageDefinition:
    definitions = load_definitions(path)
    if family not in definitions:
        raise DockerError(
            f"There is no image definition for {family}; {path} defines {', '.join(sorted(definitions))}. "
            "Add one there, or build this config on the host."
        )
    return definitions[family]


def builder_requirements() -> tuple[str, ...]:
    """builder's own runtime requirements (from its installed metadata), for the image's venv."""
    try:
        requires = metadata.requires("builder") or []
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an unpacked tree
        requires = []
    return tuple(sorted(r for r in requires if "extra ==" not in r))


def render(defn: ImageDefinition) -> RenderedImage:
    """The Dockerfile and build context of an image; its digest names the tag."""
    cc = {"CC": f"gcc-{defn.gcc}", "CXX": f"g++-{defn.gcc}", "CUDAHOSTCXX": f"g++-{defn.gcc}"} if defn.gcc else {}
    args = (defn.version or "", *defn.wheels) if defn.kind != "cpu" else ()
    dockerfile = Template((DOCKERFILES / "Dockerfile.in").read_text()).substitute(
        family=defn.family,
        base=defn.base.name,
        env="".join(f" {k}={v}" for k, v in cc.items()),
        packages=_words(defn.packages),
        requirements=_words(builder_requirements()),
        toolchain=defn.toolchain,
        toolchain_args=_words(args),
    )
    # Only the scripts this image runs: editing another family's script leaves this tag alone.
    scripts = DOCKERFILES / "scripts"
    files = {f"scripts/{n}.sh": (scripts / f"{n}.sh").read_text() for n in ("apt", "builder-venv")}
    toolchain = defn.script if defn.toolchain == "script" else (scripts / f"{defn.toolchain}.sh").read_text()
    files[f"scripts/{defn.toolchain}.sh"] = toolchain or ""
    digest = hashlib.sha256()
    for name, text in [("Dockerfile", dockerfile), *sorted(files.items())]:
        digest.update(f"{name}\0{len(text)}\0{text}".encode())
    return RenderedImage(defn, dockerfile, files, digest.hexdigest())


def _words(items: Sequence[str]) -> str:
    """Arguments for a RUN line: quoted for sh, because pins carry '<' and '>'."""
    return " ".join("'" + item.replace("'", "'\\''") + "'" for item in items)


def image_tag(name: str, accelerator: Accelerator, path: Path = DEFINITIONS) -> str:
    """The content-addressed tag of the image a config builds in (the resolver's docker_image);
    an accelerator without a definition keeps the bare name (nothing builds it here)."""
    family = family_of(accelerator)
    definitions = load_definitions(path)
    return render(definitions[family]).tag(name) if family in definitions else name


# ---------------------------------------------------------------- engine


def docker(args: Sequence[str], *, stdin: Any = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], stdin=stdin, capture_output=True, text=True, timeout=timeout, check=False)


def ensure_engine() -> str:
    """The engine's version, or a DockerError saying how to get one running."""
    if shutil.which("docker") is None:
        raise DockerError(f"The `docker` command is not installed. {START_DOCKERD}")
    try:
        done = docker(["info", "--format", "{{.ServerVersion}}"], timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise DockerError(f"The Docker daemon did not answer `docker info` within 60 s. {START_DOCKERD}") from exc
    version = done.stdout.strip()
    if done.returncode != 0 or not version or version == "<no value>":
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no answer"
        raise DockerError(f"No Docker daemon is reachable ({detail}). {START_DOCKERD}")
    return version


def image_exists(ref: str) -> bool:
    return docker(["image", "inspect", "--format", "{{.Id}}", ref]).returncode == 0


def image_labels(ref: str) -> dict[str, str]:
    done = docker(["image", "inspect", "--format", "{{json .Config.Labels}}", ref])
    if done.returncode != 0:
        return {}
    return dict(json.loads(done.stdout or "null") or {})


# ---------------------------------------------------------------- bootstrap


def apt_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt sources name (deb822 or one-line format)."""
    texts = [
        p.read_text(errors="replace")
        for p in [sources / "sources.list", *sorted(sources.glob("sources.list.d/*"))]
        if p.is_file() and p.suffix in (".list", ".sources")
    ]
    for text in texts:
        for match in re.finditer(r"^(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.MULTILINE):
            uri = match[1].rstrip("/")
            if uri.endswith("/debian"):  # not debian-security, not third-party repositories
                return uri
    raise DockerError(
        f"No Debian mirror found in {sources}/sources.list(.d). Pass --mirror URL (e.g. your Debian mirror's /debian)."
    )


def bootstrap(suite: str, *, mirror: str | None = None, log: Path | None = None) -> str:
    """A minimal Debian root file system imported as builder/debian:<suite>, with the contrib and
    non-free components enabled (CUDA's Debian packages live there)."""
    base = next((b for b in load_definitions().values() if b.base.suite == suite), None)
    if base is None:
        raise DockerError(f"No image definition uses the suite {suite!r}; known: bookworm, trixie.")
    ensure_engine()
    if shutil.which("debootstrap") is None:
        raise DockerError("debootstrap is not installed: run `apt-get install -y debootstrap` (as root).")
    mirror = mirror or apt_mirror()
    with tempfile.TemporaryDirectory(prefix="builder-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        log = log or Path(tmp) / "debootstrap.log"
        with log.open("w") as handle:
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", suite, str(root), mirror],
                stdout=handle,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            raise DockerError(f"debootstrap {suite} from {mirror} failed:\n{_tail(log)}")
        components = " ".join(base.base.components)
        (root / "etc/apt/sources.list").write_text(f"deb {mirror} {suite} {components}\n")
        _import(root, base.base.name)
    return base.base.name


def _import(root: Path, name: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    done = docker(["import", "--change", 'CMD ["/bin/bash"]', "-", name], stdin=tar.stdout)
    tar.wait()
    if done.returncode != 0 or tar.returncode != 0:
        raise DockerError(f"docker import of {root} as {name} failed: {done.stderr.strip()}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- build + verify


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    family: str
    built: bool  # False: an image with this digest already existed
    seconds: float
    versions: Mapping[str, str]  # what the verification saw: python, gcc, cuda/rocm


def build_image(
    defn: ImageDefinition, name: str, *, log: Path, base: str | None = None, environ: Mapping[str, str] | None = None
) -> BuiltImage:
    """Build (unless the content-addressed tag exists), verify by running the toolchain, then tag.
    A failed build or verification leaves no tag and removes the untagged image."""
    rendered = render(defn)
    tag = rendered.tag(name)
    ensure_engine()
    if image_exists(tag):
        return BuiltImage(tag, defn.family, False, 0.0, verify(tag, defn))
    base = base or defn.base.name
    if not image_exists(base):
        raise DockerError(
            f"The base image {base} does not exist. Make it with `builder image bootstrap {defn.base.suite}` "
            "(debootstrap + docker import), or pass --base with a pullable image that has apt."
        )
    start = time.monotonic()
    image_id = _docker_build(rendered, base, log, environ if environ is not None else os.environ)
    try:
        versions = verify(image_id, defn)
    except BaseException:
        docker(["rmi", "-f", image_id])
        raise
    done = docker(["tag", image_id, tag])
    if done.returncode != 0:
        raise DockerError(f"docker tag {image_id} {tag} failed: {done.stderr.strip()}")
    return BuiltImage(tag, defn.family, True, time.monotonic() - start, versions)


def _docker_build(rendered: RenderedImage, base: str, log: Path, environ: Mapping[str, str]) -> str:
    labels = {
        f"{LABEL}.family": rendered.definition.family,
        f"{LABEL}.digest": rendered.digest,
        f"{LABEL}.contents": json.dumps(rendered.contents(), sort_keys=True),
    }
    with tempfile.TemporaryDirectory(prefix="builder-image-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(rendered.dockerfile)
        for rel, text in rendered.files.items():
            (context / rel).parent.mkdir(parents=True, exist_ok=True)
            (context / rel).write_text(text)
        (context / "ca.pem").write_bytes(_ca_bundle(environ))
        iid = context / "iid"
        argv = ["build", "--force-rm", "--iidfile", str(iid), "--build-arg", f"BASE={base}"]
        argv += [a for k in PROXY_VARS if environ.get(k) for a in ("--build-arg", f"{k}={environ[k]}")]
        argv += [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        rc = stream(["docker", *argv, str(context)], log, {**os.environ, "DOCKER_BUILDKIT": "0"})
        if rc != 0 or not iid.is_file():
            raise DockerError(
                f"Building image {rendered.definition.family} failed (docker build exit {rc}); no image was tagged. "
                f"Full log: {log}. Last lines:\n{_tail(log)}"
            )
        return iid.read_text().strip()


def _ca_bundle(environ: Mapping[str, str]) -> bytes:
    """The host's CA bundle (a TLS-intercepting proxy's CA lives there), or nothing."""
    for var in CA_VARS:
        path = environ.get(var)
        if path and Path(path).is_file():
            return Path(path).read_bytes()
    return b""


def stream(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> int:
    """Run a command, copying its output live to stderr and to a log; the exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with (
        log.open("a") as handle,
        subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, errors="replace"
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            handle.write(line)
            sys.stderr.write(line)
        return proc.wait()


def verify(ref: str, defn: ImageDefinition) -> dict[str, str]:
    """Run the image's toolchain and compare what it reports with what the definition promises."""
    found = {"python": _probe(ref, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])}
    _probe(ref, ["/opt/builder/venv/bin/python", "-c", "import click, rich, auditwheel"])
    checks = [("python", found["python"], defn.base.python)]
    if defn.gcc:
        found["gcc"] = _probe(ref, [f"gcc-{defn.gcc}", "-dumpversion"]).split(".")[0]
        checks.append(("gcc", found["gcc"], str(defn.gcc)))
    if defn.kind == "cuda":
        text = _probe(ref, [f"/usr/local/cuda-{defn.version}/bin/nvcc", "--version"])
        match = re.search(r"release (\d+\.\d+)", text)
        found["cuda"] = match[1] if match else text[-200:]
        checks.append(("nvcc", found["cuda"], defn.version or ""))
    if defn.kind == "rocm":
        text = _probe(ref, [f"/opt/rocm-{defn.version}/bin/hipcc", "--version"])
        match = re.search(r"HIP version: (\d+\.\d+)", text)
        found["rocm"] = match[1] if match else text[-200:]
        checks.append(("hipcc", found["rocm"], defn.version or ""))
    wrong = [f"{tool} reports {got!r} but the image promises {want!r}" for tool, got, want in checks if got != want]
    if wrong:
        raise ToolchainError(
            f"Image {defn.family} ({ref[:19]}) failed verification: {'; '.join(wrong)}. The image was not tagged; "
            "fix the definition in builder/dockerfiles so the toolchain it installs is the version it names."
        )
    return found


def _probe(ref: str, argv: Sequence[str]) -> str:
    done = docker(["run", "--rm", "--network", "none", "--entrypoint", argv[0], ref, *argv[1:]], timeout=300)
    if done.returncode != 0:
        raise ToolchainError(
            f"Verifying image {ref[:19]}: `{' '.join(argv)}` failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-500:]}"
        )
    return done.stdout.strip()


# ---------------------------------------------------------------- list


def list_images() -> list[dict[str, str]]:
    """builder's images on this engine: tag, family, size, creation time, whether current."""
    ensure_engine()
    done = docker(["images", "--filter", f"label={LABEL}.family", "--format", "{{json .}}"])
    rows = []
    for line in done.stdout.splitlines():
        item = json.loads(line)
        ref = f"{item['Repository']}:{item['Tag']}"
        labels = image_labels(ref)
        family = labels.get(f"{LABEL}.family", "?")
        defs = load_definitions()
        current = family in defs and labels.get(f"{LABEL}.digest") == render(defs[family]).digest
        rows.append(
            {
                "image": ref,
                "family": family,
                "size": item.get("Size", ""),
                "created": item.get("CreatedSince", ""),
                "current": "yes" if current else "no",
            }
        )
    return sorted(rows, key=lambda r: r["image"])
