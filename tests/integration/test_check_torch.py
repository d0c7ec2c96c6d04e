"""builder check and builder smoke on the real torch 2.13.0 CPU wheel (slow tier).

The recorded output: errors are exactly torch/bin/test_shim's three unresolvable libraries
(RUNPATH $ORIGIN = torch/bin cannot reach torch/lib), warnings exactly the 69 test
binaries with leaked absolute RPATH entries (/lib/intel64 ...), and everything else passes;
with torch/bin and torch/test ignored the check exits 0.  Timings are not asserted here
(benchmarks/check does that).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.binary.wheelfile import WheelReader, rewrite_wheel
from builder.check import Severity, run_checks
from tests.integration.test_check_cli import builder, one_error

pytestmark = pytest.mark.slow
IGNORE = ("--ignore", "torch/bin/*", "--ignore", "torch/test/*")

# torch/bin and torch/test binaries whose RUNPATH carries /lib/intel64:/lib/intel64_win:/lib/win-x64
_LEAKY_BIN = """
    FileStoreTest HashStoreTest TCPStoreTest test_api test_comms_id test_cpp_rpc test_dist_autograd test_jit
    test_lazy test_privateuse1_profiler test_profiler_collection test_shim
"""
_LEAKY_TEST = """
    CppSignature_test Dict_test IListRef_test KernelFunction_test List_test MaybeOwned_test StorageUtils_test
    accelerator_graph_test apply_utils_test atest backend_fallback_test basic broadcast_test
    cpu_allocator_test cpu_generator_test cpu_profiling_allocator_test cpu_rng_test dlconvertor_test
    extension_backend_test half_test inline_container_test ivalue_test kernel_function_legacy_test
    kernel_function_test kernel_lambda_legacy_test kernel_lambda_test kernel_stackbased_test lazy_tensor_test
    legacy_vmap_test make_boxed_from_unboxed_functor_test math_kernel_test memory_format_test
    memory_overlapping_test mobile_memory_cleanup native_test op_allowlist_test op_registration_test
    operator_name_test operators_test packedtensoraccessor_test pow_test quantized_test reduce_ops_test
    reportMemoryUsage_test scalar_tensor_test scalar_test stride_properties_test tensor_iterator_test
    test_parallel thread_init_test type_ptr_test type_test undefined_tensor_test verify_api_visibility
    weakref_test wrapdim_test xla_tensor_test
"""
LEAKY_BIN = _LEAKY_BIN.split()
LEAKY_TEST = _LEAKY_TEST.split()


def test_recorded_findings_on_the_torch_wheel(torch_wheel: Path) -> None:
    report = run_checks(torch_wheel, profile="torch")
    found = {(f.id, f.severity.value, f.file) for f in report.findings}
    expected = {("load.unresolved", "error", "torch/bin/test_shim")}
    expected |= {("rpath.absolute", "warning", f"torch/bin/{name}") for name in LEAKY_BIN}
    expected |= {("rpath.absolute", "warning", f"torch/test/{name}") for name in LEAKY_TEST}
    assert found == expected
    unresolved = sorted(f.message.split(" needs ")[1].split(",")[0] for f in report.errors)
    assert unresolved == ["libc10.so", "libtorch.so", "libtorch_cpu.so"]
    assert all("Searched: <package>/torch/bin, /lib/intel64" in f.message for f in report.errors)
    assert all("/lib/intel64, /lib/intel64_win, /lib/win-x64" in f.message for f in report.warnings)
    facts = report.facts
    assert facts["abi"]["cxx11"] >= 100 and facts["abi"]["pre_cxx11"] == 0
    assert facts["platform"] == {"claimed": "manylinux_2_28_x86_64", "needed": "manylinux_2_28"}
    assert facts["openmp"]["inside"] == {"GNU libgomp": ["torch/lib/libgomp.so.1"]}
    assert report.files == 12248 and report.elf_files == 136


def test_cli_exit_codes_with_and_without_ignores(torch_wheel: Path) -> None:
    result = builder("check", str(torch_wheel), "--profile", "torch")
    one_error(result, 7, "load.unresolved", "torch/bin/test_shim")
    assert "FAILED: 3 error(s), 69 warning(s)" in result.stdout
    clean = builder("check", str(torch_wheel), "--profile", "torch", *IGNORE)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "passed: 0 error(s), 0 warning(s)" in clean.stdout
    one_error(builder("check", str(torch_wheel), "--config", "manywheel-py3_12-cpu"), 2, "cp311")


def test_torch_defects(torch_wheel: Path, tmp_path: Path) -> None:
    """Two cheap defects (members copied raw, nothing recompressed): the bundled libgomp
    removed, and the platform tag lowered below GLIBC_2.28."""
    no_gomp = tmp_path / "a" / torch_wheel.name
    no_gomp.parent.mkdir()
    rewrite_wheel(torch_wheel, no_gomp, remove=["torch/lib/libgomp.so.1"])
    report = run_checks(no_gomp, profile="torch", ignore=IGNORE[1::2])
    assert report.ids(Severity.ERROR) == {"load.unresolved"} and report.warnings == ()
    assert {f.file for f in report.errors} >= {"torch/lib/libtorch_cpu.so"}
    assert all("libgomp.so.1" in f.message for f in report.errors)

    with WheelReader(torch_wheel) as reader:
        info = reader.dist_info
        wheel_file = reader.read(f"{info}/WHEEL").decode()
    low = tmp_path / torch_wheel.name.replace("manylinux_2_28", "manylinux_2_17")
    rewrite_wheel(
        torch_wheel, low, replace={f"{info}/WHEEL": wheel_file.replace("manylinux_2_28", "manylinux_2_17").encode()}
    )
    report = run_checks(low, profile="torch", ignore=IGNORE[1::2])
    assert report.ids(Severity.ERROR) == {"tags.platform-too-low"}
    assert {f.file for f in report.errors} >= {"torch/lib/libtorch_cpu.so", "torch/lib/libtorch_python.so"}
    assert any("GLIBC_2.28" in f.message for f in report.errors)
