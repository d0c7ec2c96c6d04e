from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builder.catalog import Catalog, load_catalog
from builder.config import (
    ARCHES,
    DEFAULT_ARCH,
    Accelerator,
    BuildConfig,
    CxxAbi,
    LibtorchVariant,
    PackageType,
    PythonVersion,
    build_config,
    config_from_id,
    configure,
    env_layer,
    flags_layer,
    parse_config_id,
    pyproject_layer,
)
from builder.errors import ConfigError

CATALOG = load_catalog()


@pytest.mark.parametrize(
    "config_id",
    [
        "manywheel-py3_12-cuda12_4",
        "manywheel-py3_11-cpu",
        "manywheel-py3_13t-rocm6_4",
        "libtorch-cuda12_8-shared-with-deps",
        "conda-py3_11-cpu",
        "libtorch-rocm6_2_4-static-with-deps-pre-cxx11",
        "manywheel-py3_12-cuda13_0-aarch64",
        "macos-wheel-py3_13-cpu",
    ],
)
def test_canonical_ids_round_trip(config_id: str) -> None:
    assert config_from_id(config_id, CATALOG).id == config_id


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("manywheel-py3_12-cu124", "manywheel-py3_12-cuda12_4"),
        ("manywheel-py3_12-rocm6.4", "manywheel-py3_12-rocm6_4"),
        ("manywheel-py3_12-cu130", "manywheel-py3_12-cuda13_0"),
        ("manywheel-py3.12-cuda12.4", "manywheel-py3_12-cuda12_4"),
        ("libtorch-cu128-shared-with-deps-cxx11", "libtorch-cuda12_8-shared-with-deps"),
    ],
)
def test_desired_cuda_spellings(spelling: str, canonical: str) -> None:
    assert config_from_id(spelling, CATALOG).id == canonical


def _configs(catalog: Catalog) -> st.SearchStrategy[BuildConfig]:
    pythons = [PythonVersion(*map(int, v.split("."))) for v in catalog.python] + [
        PythonVersion(*map(int, v.split(".")), True) for v, r in catalog.python.items() if r.free_threaded
    ]
    accels = [Accelerator("cpu"), Accelerator("xpu")]
    accels += [Accelerator("cuda", v) for v in catalog.cuda] + [Accelerator("rocm", v) for v in catalog.rocm]

    @st.composite
    def build(draw: st.DrawFn) -> BuildConfig:
        ptype = draw(st.sampled_from(list(PackageType)))
        accel = draw(st.sampled_from(accels))
        if accel.kind in ("rocm", "xpu"):
            ptype = draw(st.sampled_from([PackageType.MANYWHEEL, PackageType.LIBTORCH]))
        libtorch = ptype is PackageType.LIBTORCH
        return BuildConfig(
            package_type=ptype,
            python=None if libtorch else draw(st.sampled_from(pythons)),
            accelerator=accel,
            libtorch_variant=draw(st.sampled_from(list(LibtorchVariant))) if libtorch else None,
            cxx_abi=draw(st.sampled_from(list(CxxAbi))),
            arch=draw(st.sampled_from(ARCHES[ptype])),
        )

    return build()


@given(_configs(CATALOG))
def test_config_to_id_to_config_is_identity(config: BuildConfig) -> None:
    parsed = config_from_id(config.id, CATALOG)
    assert parsed == config
    assert parsed.id == config.id


def test_default_arch_is_not_in_id() -> None:
    config = config_from_id("windows-wheel-py3_12-cuda12_6", CATALOG)
    assert config.arch == DEFAULT_ARCH[PackageType.WINDOWS_WHEEL]
    assert config.id == "windows-wheel-py3_12-cuda12_6"


def test_precedence_flag_over_env_over_pyproject_over_default() -> None:
    resolved = build_config(
        CATALOG,
        [
            flags_layer({"accelerator": "cuda12.4"}),
            env_layer({"DESIRED_CUDA": "cu118", "DESIRED_PYTHON": "3.11"}),
            pyproject_layer({"python": "3.10", "channel": "release"}, "pyproject.toml"),
        ],
    )
    config = resolved.config
    assert config.accelerator == Accelerator("cuda", "12.4")
    assert config.python == PythonVersion(3, 11)
    assert config.channel.value == "release"
    assert config.package_type is PackageType.MANYWHEEL  # catalog default
    assert any("--accelerator cuda12.4 wins over DESIRED_CUDA=cu118" in n for n in resolved.notices)
    assert any("DESIRED_PYTHON=3.11 wins over [tool.builder] python" in n for n in resolved.notices)


def test_pytorch_ci_variables() -> None:
    layer = env_layer({"BUILD_ENVIRONMENT": "manywheel 3.11 cu124"})
    config = build_config(CATALOG, [layer]).config
    assert config.id == "manywheel-py3_11-cuda12_4"
    config = build_config(
        CATALOG,
        [
            env_layer(
                {
                    "PACKAGE_TYPE": "libtorch",
                    "GPU_ARCH_TYPE": "cuda-aarch64",
                    "GPU_ARCH_VERSION": "12.8",
                    "LIBTORCH_VARIANT": "static-without-deps",
                }
            )
        ],
    ).config
    assert config.id == "libtorch-cuda12_8-static-without-deps-aarch64"
    # the single-purpose variable beats the triple; BUILDER_* beats both
    env = {"BUILD_ENVIRONMENT": "manywheel 3.11 cu124", "DESIRED_CUDA": "cpu", "BUILDER_PYTHON": "3.12"}
    assert build_config(CATALOG, [env_layer(env)]).config.id == "manywheel-py3_12-cpu"


def test_libtorch_ignores_python() -> None:
    config = build_config(
        CATALOG, [parse_config_id("libtorch-cpu-shared-with-deps"), env_layer({"DESIRED_PYTHON": "3.9"})]
    ).config
    assert config.python is None


def test_unknown_pyproject_key_suggests() -> None:
    with pytest.raises(ConfigError, match=r"Unknown key 'acclerator'.*Did you mean 'accelerator'"):
        pyproject_layer({"acclerator": "cpu"}, "x/pyproject.toml")
    with pytest.raises(ConfigError, match=r"Unknown key 'smoke.comands'.*Did you mean 'smoke.commands'"):
        pyproject_layer({"smoke": {"comands": []}}, "x/pyproject.toml")


@pytest.mark.parametrize(
    ("config_id", "message"),
    [
        ("wheel-py3_12-cpu", r"Unknown package type 'wheel'.*Accepted package types: manywheel"),
        ("manywheel-py3_99-cpu", r"CPython 3.99 is not in the catalog; known versions: 3.6"),
        ("manywheel-py3_12-cuda99_1", r"CUDA 99.1 is not in the catalog; known versions: .*12.4"),
        ("manywheel-py3_12-rocm1_0", r"ROCm 1.0 is not in the catalog"),
        ("manywheel-py3_12t-cpu", r"3.12 has no free-threaded build"),
        ("manywheel-cpu", r"names no Python version"),
        ("conda-py3_12-rocm6_4", r"not built for package type conda"),
        ("manywheel-py3_12-cpu-sparc", r"Architecture 'sparc' is not built"),
    ],
)
def test_bad_ids(config_id: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_id(config_id, CATALOG)


def test_loser_that_does_not_parse_is_a_notice_not_an_error() -> None:
    resolved = build_config(CATALOG, [flags_layer({"accelerator": "cpu"}), env_layer({"DESIRED_CUDA": "cu999"})])
    assert resolved.config.accelerator == Accelerator("cpu")
    assert any("ignoring DESIRED_CUDA=cu999" in n for n in resolved.notices)


def test_configure_options_from_pyproject() -> None:
    resolved = configure(
        CATALOG,
        config_id="manywheel-py3_12-cuda12_4",
        flags={"cuda-mode": None},
        environ={"BUILDER_EXCLUDE": "libfoo.so.*, libbar.so"},
        tool_settings={"cuda-mode": "bundled", "local-version": False, "smoke": {"commands": ["import demo"]}},
        pyproject_path="pyproject.toml",
    )
    options = resolved.config.options
    assert options.cuda_mode.value == "bundled"
    assert options.local_version is False
    assert options.exclude == ("libfoo.so.*", "libbar.so")
    assert options.smoke_commands == ("import demo",)
