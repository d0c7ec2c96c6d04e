"""The `builder` command: parses arguments, calls the library, prints. No logic of its own."""

from __future__ import annotations

import datetime as dt
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from builder import __version__, images, output
from builder.catalog import Catalog, load_catalog
from builder.check.command import check_command
from builder.config import SETTINGS, Channel, PackageType, configure, parse_accelerator
from builder.errors import BuilderError, ConfigError, ToolchainError
from builder.executors.docker import DockerOptions
from builder.host import Host
from builder.libtorch.command import libtorch_group
from builder.manywheel.repair import RepairOptions, repair_wheel
from builder.matrix import MatrixRequest, generate, table_rows, to_github, to_json
from builder.pipeline import BuildRequest, build_all, resolve_environment
from builder.project import load_project
from builder.report import print_summary, write_report
from builder.resolver import BuildEnvironment, docker_image, repair_plan, source_date_epoch
from builder.smoke.command import smoke_command
from builder.toolchains.cuda import install_pip_toolkit

F = TypeVar("F", bound=Callable[..., Any])


def setting_options(func: F) -> F:
    """One --flag per setting in config.SETTINGS (help text from the same table)."""
    for setting in reversed(SETTINGS):
        func = click.option(
            setting.flag,
            setting.key.replace("-", "_").replace(".", "_"),
            default=None,
            metavar="VALUE",
            help=f"{setting.doc} [env {setting.env}]",
        )(func)
    return func


def _flags(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {s.key: kwargs.pop(s.key.replace("-", "_").replace(".", "_"), None) for s in SETTINGS}


def load_environment(
    config_id: str | None, project_dir: str, flags: dict[str, Any], *, probe: bool
) -> BuildEnvironment:
    return resolve_environment(load_project(Path(project_dir)), config_id, flags, Host.current(probe=probe))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="builder")
def cli() -> None:
    """Build, repair, check and smoke-test native Python/C++ binaries (CPU, CUDA, ROCm)."""


@cli.command("env")
@click.argument("config_id", required=False)
@click.option(
    "--project",
    "project_dir",
    default=".",
    show_default=True,
    help="Project directory (its pyproject.toml / version.txt).",
)
@click.option("--format", "fmt", type=click.Choice(["shell", "json", "github"]), default="shell", show_default=True)
@click.option(
    "--no-host", is_flag=True, help="Resolve without probing this machine (for CI matrix jobs that run elsewhere)."
)
@setting_options
def env_command(config_id: str | None, project_dir: str, fmt: str, no_host: bool, **kwargs: Any) -> None:
    """Print the resolved build environment of CONFIG_ID (e.g. manywheel-py3_12-cuda12_4)."""
    env = load_environment(config_id, project_dir, _flags(kwargs), probe=not no_host)
    if fmt == "json":
        click.echo(json.dumps(env.summary(), indent=2, default=str))
    elif fmt == "github":
        click.echo(github_env_lines(env.env), nl=False)
    else:
        click.echo("".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.env.items()), nl=False)


def github_env_lines(variables: dict[str, str] | Any) -> str:
    """$GITHUB_ENV syntax; multi-line values use the heredoc form with a delimiter they lack."""
    lines = []
    for key, value in variables.items():
        if "\n" in value:
            delimiter = "BUILDER_EOF"
            while delimiter in value:
                delimiter += "_"
            lines.append(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            lines.append(f"{key}={value}\n")
    return "".join(lines)


@cli.command("build")
@click.argument("args", nargs=-1, metavar="[PROJECT] [CONFIG]...")
@click.option(
    "-o",
    "--out",
    "out_dir",
    default="dist",
    show_default=True,
    help="Output directory for artifacts and build-report.json.",
)
@click.option("--index-url", default=None, help="Index for the smoke test's dependencies.")
@click.option("--find-links", multiple=True, help="Extra wheel directories for the smoke test (repeatable).")
@click.option("--clean", is_flag=True, help="Start from an empty build directory (default: incremental).")
@click.option("--docker", is_flag=True, help="Build inside each config's builder image (built first if missing).")
@click.option("--keep-container", is_flag=True, help="--docker: keep the stopped container for debugging.")
@click.option("--gpus", default=None, metavar="VALUE", help="--docker: pass `--gpus VALUE` (e.g. all) to docker run.")
@click.option(
    "--env", "extra_env", multiple=True, metavar="KEY[=VALUE]", help="--docker: pass a variable in (repeatable)."
)
@setting_options
def build_command(
    args: tuple[str, ...],
    out_dir: str,
    index_url: str | None,
    find_links: tuple[str, ...],
    clean: bool,
    docker: bool,
    keep_container: bool,
    gpus: str | None,
    extra_env: tuple[str, ...],
    **kwargs: Any,
) -> None:
    """Build, repair and smoke-test PROJECT (default .) for each CONFIG, one after another."""
    project_dir, configs = (args[0], args[1:]) if args and Path(args[0]).is_dir() else (".", args)
    index_args = (*(["--index-url", index_url] if index_url else []), *(f"--find-links={d}" for d in find_links))
    if not docker and (keep_container or gpus or extra_env):
        raise ConfigError("--keep-container, --gpus and --env only apply to containerised builds: add --docker.")
    in_docker = DockerOptions(keep_container=keep_container, gpus=gpus, env=extra_env) if docker else None
    request = BuildRequest(
        load_project(Path(project_dir)),
        tuple(configs),
        _flags(kwargs),
        Path(out_dir),
        tuple(index_args),
        clean,
        docker=in_docker,
    )
    records = build_all(request, Host.current())
    write_report(records, Path(out_dir))
    print_summary(records)
    failed = [r for r in records if r.status != "ok"]
    if failed:
        raise click.exceptions.Exit(failed[0].exit_code or 1)


@cli.command("repair")
@click.argument("wheels", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", "out_dir", default="wheelhouse", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_id",
    default=None,
    help="Config whose repair plan to use (default: from the wheel's +local version).",
)
@click.option(
    "--plat", default=None, help="Platform tag to require (e.g. manylinux_2_28); default: the most compatible one."
)
@click.option("--exclude", multiple=True, help="Soname glob never grafted (repeatable).")
@click.option("--keep-name", multiple=True, help="Soname glob grafted without a hash suffix (repeatable).")
@click.option("--cuda-mode", type=click.Choice(["pypi", "bundled"]), default=None)
@click.option("--libs-dir", default=None, help="Where grafts go inside the wheel (default <dist>.libs).")
def repair_command(
    wheels: tuple[Path, ...],
    out_dir: Path,
    config_id: str | None,
    plat: str | None,
    exclude: tuple[str, ...],
    keep_name: tuple[str, ...],
    cuda_mode: str | None,
    libs_dir: str | None,
) -> None:
    """Graft non-system libraries, fix RPATHs, link CUDA to NVIDIA's wheels, retag, repack."""
    catalog = load_catalog()
    host = Host.current(probe=False)
    for wheel in wheels:
        flags = {"exclude": ",".join(exclude) or None, "keep-name": ",".join(keep_name) or None, "cuda-mode": cuda_mode}
        if config_id is None:
            flags["accelerator"] = accelerator_of(wheel)
        resolved = configure(
            catalog, config_id=config_id, flags=flags, environ=host.environ, tool_settings={}, pyproject_path=""
        )
        config = resolved.config
        options = RepairOptions(
            plan=repair_plan(config, catalog),
            arch=config.arch,
            plat=plat,
            libs_dir=libs_dir,
            source_date_epoch=source_date_epoch(host),
        )
        with output.step(f"repair {wheel.name}") as timer:
            result = repair_wheel(wheel, out_dir, options)
        grafted = ", ".join(f"{k} -> {v}" for k, v in result.grafted.items()) or "nothing"
        click.echo(f"{result.wheel}  ({timer.seconds:.1f} s; grafted {grafted}; edited {len(result.edited)} ELF files)")


def accelerator_of(wheel: Path) -> str:
    """The accelerator a wheel was built for, from its +local version (+cu130, +rocm6.4, +cpu)."""
    version = wheel.name.split("-")[1] if wheel.name.count("-") >= 4 else ""
    local = version.partition("+")[2]
    return local if local.startswith(("cu", "rocm", "xpu")) else "cpu"


@cli.command("matrix")
@click.option("--release", default=None, help="Release row of releases.toml (e.g. 2.0); default: the policies.")
@click.option("--channel", type=click.Choice([c.value for c in Channel]), default="nightly", show_default=True)
@click.option(
    "--package-type",
    "package_types",
    multiple=True,
    type=click.Choice([p.value for p in PackageType]),
    help="Repeatable; default manywheel.",
)
@click.option("--with-cpu", type=click.Choice(["enable", "disable"]), default="enable", show_default=True)
@click.option("--with-cuda", type=click.Choice(["enable", "disable"]), default="enable", show_default=True)
@click.option("--with-rocm", type=click.Choice(["enable", "disable"]), default="enable", show_default=True)
@click.option("--with-xpu", type=click.Choice(["enable", "disable"]), default="disable", show_default=True)
@click.option("--python", "pythons", multiple=True, help="Repeatable: keep only these Pythons (3.12, 3.13t).")
@click.option("--date", "on", default=None, help="Policy date YYYY-MM-DD (default today).")
@click.option("--format", "fmt", type=click.Choice(["json", "github", "table"]), default="table", show_default=True)
def matrix_command(
    release: str | None,
    channel: str,
    package_types: Sequence[str],
    with_cpu: str,
    with_cuda: str,
    with_rocm: str,
    with_xpu: str,
    pythons: Sequence[str],
    on: str | None,
    fmt: str,
) -> None:
    """Print the build matrix from the release table and support policies."""
    catalog = load_catalog()
    request = MatrixRequest(
        release=release,
        channel=Channel(channel),
        package_types=tuple(PackageType(p) for p in package_types) or (PackageType.MANYWHEEL,),
        with_cpu=with_cpu == "enable",
        with_cuda=with_cuda == "enable",
        with_rocm=with_rocm == "enable",
        with_xpu=with_xpu == "enable",
        pythons=tuple(pythons) or None,
        on=_date(on),
    )
    configs = generate(catalog, request)
    if fmt == "github":
        click.echo(to_github(configs, catalog))
    elif fmt == "json":
        click.echo(to_json(configs, catalog))
    else:
        output.table(
            f"{len(configs)} build configs", ["config", "python", "accelerator", "image"], table_rows(configs, catalog)
        )


def _date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--date {text!r} is not a date. Use YYYY-MM-DD, e.g. --date 2026-11-22.") from None


CATALOG_SECTIONS = ("cuda", "rocm", "python", "releases", "images", "settings")


@cli.command("catalog")
@click.argument("section", required=False, type=click.Choice(CATALOG_SECTIONS))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def catalog_command(section: str | None, fmt: str) -> None:
    """Show the catalog (builder/data/*.toml): toolchains, Pythons, releases, images, settings."""
    catalog = load_catalog()
    for name in [section] if section else CATALOG_SECTIONS:
        headers, rows = catalog_rows(catalog, name)
        if fmt == "json":
            click.echo(json.dumps({name: [dict(zip(headers, row, strict=True)) for row in rows]}, indent=2))
        else:
            output.table(name, headers, rows)


def catalog_rows(catalog: Catalog, section: str) -> tuple[list[str], list[list[str]]]:
    if section == "cuda":
        return ["cuda", "arch list", "gcc", "layout", "cudnn", "runtime wheels", "PyPI toolkit"], [
            [
                v,
                c.arch_list,
                f"{c.gcc_min}..{c.gcc_max}",
                c.layout,
                c.cudnn,
                str(len(c.packages)),
                "yes" if c.toolkit else "no",
            ]
            for v, c in catalog.cuda.items()
        ]
    if section == "rocm":
        return ["rocm", "released", "offload archs"], [
            [v, str(r.released), r.offload_archs] for v, r in catalog.rocm.items()
        ]
    if section == "python":
        return ["python", "released", "end of life", "free-threaded"], [
            [v, str(p.released), str(p.end_of_life), "yes" if p.free_threaded else "no"]
            for v, p in catalog.python.items()
        ]
    if section == "releases":
        return ["release", "date", "python", "cuda", "rocm"], [
            [
                v,
                str(r.date),
                str(r.python),
                ", ".join(f"{c.version} ({c.role}, cuDNN {c.cudnn})" for c in r.cuda),
                ", ".join(r.rocm),
            ]
            for v, r in catalog.releases.items()
        ]
    if section == "images":
        return ["package type", "accelerator", "image", "upstream"], [
            [ptype, kind, image, catalog.upstream_images.get(ptype, {}).get(kind, "")]
            for ptype, kinds in catalog.images.items()
            for kind, image in kinds.items()
        ]
    return ["key", "flag", "environment", "meaning"], [[s.key, s.flag, s.env, s.doc] for s in SETTINGS]


@cli.group("image")
def image_group() -> None:
    """Builder images per accelerator (definitions in builder/dockerfiles)."""


@image_group.command("bootstrap")
@click.argument("suites", nargs=-1)
@click.option("--mirror", default=None, help="Debian mirror URL (default: the one this machine's apt sources name).")
def image_bootstrap(suites: tuple[str, ...], mirror: str | None) -> None:
    """Make the Debian base images (builder/debian:SUITE) with debootstrap + docker import."""
    for suite in suites or ("bookworm",):
        click.echo(images.bootstrap(suite, mirror=mirror))


@image_group.command("build")
@click.argument("targets", nargs=-1, required=True, metavar="FAMILY|CONFIG...")
@click.option("--base", default=None, help="Base image instead of the bootstrapped Debian (must have apt).")
@click.option("--log-dir", default="dist/logs", show_default=True, type=click.Path(path_type=Path))
def image_build(targets: tuple[str, ...], base: str | None, log_dir: Path) -> None:
    """Build the image of each FAMILY (cpu, cuda13.5, rocm5.7) or CONFIG; unchanged images are reused."""
    for target in targets:
        name, family = image_target(target)
        built = images.build_image(images.definition(family), name, log=log_dir / f"image-{family}.log", base=base)
        state = f"built in {built.seconds:.0f} s" if built.built else "up to date"
        found = ", ".join(f"{k} {v}" for k, v in built.versions.items())
        click.echo(f"{built.tag}  {state}  ({found})")


def image_target(target: str) -> tuple[str, str]:
    """(image name without its content tag, family) for a family name or a config id."""
    is_family = target in images.load_definitions()
    config_id = "manywheel-py3_12-" + target.replace(".", "_") if is_family else target
    catalog = load_catalog()
    config = configure(
        catalog, config_id=config_id, flags={}, environ={}, tool_settings={}, pyproject_path="pyproject.toml"
    ).config
    tag = docker_image(config, catalog)
    if tag is None:
        raise ConfigError(f"{target}: {config.id} has no Docker image (it does not build in a Linux container).")
    return tag.rsplit("-", 1)[0], images.family_of(config.accelerator)


@image_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def image_list(fmt: str) -> None:
    """builder's images on this Docker engine, and whether each matches the current definition."""
    rows = images.list_images()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    headers = ["image", "family", "size", "created", "current"]
    output.table("images", headers, [[r[h] for h in headers] for r in rows])


@cli.group("toolchain")
def toolchain_group() -> None:
    """Install toolchains builder can fetch itself."""


@toolchain_group.command("install")
@click.argument("accelerator")
def toolchain_install(accelerator: str) -> None:
    """Install a relocatable CUDA toolkit from PyPI into builder's cache (e.g. cuda13.0)."""
    catalog = load_catalog()
    try:
        accel = parse_accelerator(accelerator, catalog)
    except ValueError as exc:
        raise ConfigError(f"Invalid accelerator {accelerator!r}: {exc}") from None
    if accel.kind != "cuda" or accel.version is None:
        raise ToolchainError(f"builder can only install CUDA toolkits from PyPI; {accelerator!r} is not one.")
    host = Host.current()
    output.notice(f"installing CUDA {accel.version} from PyPI into {host.cache_dir / 'toolkits'}")
    home = install_pip_toolkit(catalog.cuda[accel.version], sys.executable, host.cache_dir)
    click.echo(str(home))


cli.add_command(check_command)
cli.add_command(smoke_command)
cli.add_command(libtorch_group)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        # standalone_mode=False: click returns ctx.exit()'s code instead of calling sys.exit
        code = cli.main(args=list(argv) if argv is not None else None, prog_name="builder", standalone_mode=False)
    except BuilderError as exc:
        output.error(str(exc))
        return exc.exit_code
    except click.exceptions.Abort:
        output.error("interrupted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
