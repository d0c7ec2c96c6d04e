"""builder.binary.elf and builder.binary.cxxabi against real binaries and real binutils."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.binary.cxxabi import (
    TORCH_NAMESPACES,
    abi_markers,
    count_abi_symbols,
    namespace_matcher,
)
from builder.binary.elf import (
    ElfError,
    ElfInfo,
    dynamic_symbols,
    is_elf,
    max_symbol_versions,
    parse_symbol_version,
    read_elf,
    section_bytes,
)
from tests.conftest import TEST_CACHE

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None or shutil.which("readelf") is None, reason="needs gcc and binutils"
)

DEP_C = "int dep_old(void) { return 1; }\nint dep_new(void) { return 2; }\n"
DEP_MAP = "DEP_1.0 { global: dep_old; local: *; };\nDEP_2.0 { global: dep_new; } DEP_1.0;\n"
USER_C = "int dep_old(void); int dep_new(void);\nint user(void) { return dep_old() + dep_new(); }\n"
OMP_C = (
    "int omp_sum(int n) { int s = 0;\n#pragma omp parallel for reduction(+:s)\n"
    "for (int i = 0; i < n; i++) s += i;\nreturn s; }\n"
)
EXE_C = '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'

ABI_CPP = r"""
#include <list>
#include <map>
#include <sstream>
#include <string>
#include <vector>
namespace minitorch {
struct ClassSs { std::string name; virtual ~ClassSs() = default;
                 virtual std::string get() const { return name; } };
struct TypeS { int x; };
enum class Kind { A = 3, B = 35 };
std::string greet(const std::string& who) { return "hi " + who; }
int count(const std::list<int>& xs) { return (int)xs.size(); }
int useTypeS(TypeS t, short s, bool b) { return t.x + s + b; }
std::string ClassSsName(ClassSs& c) { return c.get(); }
template <typename T> T twice(T v) { return v + v; }
template std::string twice<std::string>(std::string);
template int twice<int>(int);
template <Kind K> std::string kindName(const std::string& p) {
  static std::string cache = p; return cache + (K == Kind::A ? "A" : "B"); }
template std::string kindName<Kind::A>(const std::string&);
template std::string kindName<Kind::B>(const std::string&);
template <int N> int arr(const int (&a)[N], std::list<std::string>* l) { return N + (int)l->size(); }
template int arr<4>(const int (&)[4], std::list<std::string>*);
std::map<std::string, std::list<int>> table() { return {}; }
std::vector<TypeS> vec(std::vector<std::string> v) { return {}; }
int localStatic(const std::string& s) { static std::string keep = s; return (int)keep.size(); }
std::string streamIt(double d) { std::ostringstream o; o << d; return o.str(); }
template <typename T> auto decl(T t) -> decltype(t.size()) { return t.size(); }
template auto decl<std::string>(std::string) -> decltype(std::string().size());
namespace detail { struct Sb { int v; }; int takeSb(Sb s, int t) { return s.v + t; } }
int plainInt(int a) { return a; }
}  // namespace minitorch
namespace other { std::string greet(const std::string& s) { return s; } }
std::string global_greet(const std::string& s) { return s; }
"""


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    return subprocess.run([str(c) for c in cmd], check=True, capture_output=True, text=True, cwd=cwd).stdout


@pytest.fixture(scope="module")
def libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real shared objects covering RUNPATH, RPATH, versioned needs and OpenMP."""
    d = tmp_path_factory.mktemp("elf")
    (d / "dep.c").write_text(DEP_C)
    (d / "dep.map").write_text(DEP_MAP)
    (d / "user.c").write_text(USER_C)
    (d / "omp.c").write_text(OMP_C)
    (d / "exe.c").write_text(EXE_C)
    cc = ["gcc", "-O1", "-fPIC"]
    _run(*cc, "-shared", "-o", "libdep.so.1", "dep.c", "-Wl,-soname,libdep.so.1", "-Wl,--version-script,dep.map", cwd=d)
    (d / "libdep.so").symlink_to("libdep.so.1")
    _run(
        *cc,
        "-shared",
        "-o",
        "librunpath.so",
        "user.c",
        "-Wl,-soname,librunpath.so",
        "-Wl,--enable-new-dtags",
        "-Wl,-rpath,$ORIGIN/../lib:/opt/x",
        "-L.",
        "-ldep",
        cwd=d,
    )
    _run(
        *cc,
        "-shared",
        "-o",
        "librpath.so",
        "user.c",
        "-Wl,--disable-new-dtags",
        "-Wl,-rpath,$ORIGIN",
        "-L.",
        "-ldep",
        cwd=d,
    )
    _run(*cc, "-shared", "-fopenmp", "-o", "libomp_user.so", "omp.c", "-Wl,-soname,libomp_user.so", cwd=d)
    _run("gcc", "-o", "hello", "exe.c", cwd=d)
    return {
        "dep": d / "libdep.so.1",
        "runpath": d / "librunpath.so",
        "rpath": d / "librpath.so",
        "omp": d / "libomp_user.so",
        "exe": d / "hello",
    }


@pytest.fixture(scope="module")
def libs32(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """32-bit x86 objects.  No 32-bit libc here, so -nostdlib: the ELF structures are real."""
    d = tmp_path_factory.mktemp("elf32")
    (d / "dep.c").write_text(DEP_C)
    (d / "dep.map").write_text(DEP_MAP)
    (d / "user.c").write_text(USER_C)
    cc = ["gcc", "-m32", "-nostdlib", "-fPIC", "-shared"]
    try:
        _run(*cc, "-o", "libdep32.so", "dep.c", "-Wl,-soname,libdep32.so", "-Wl,--version-script,dep.map", cwd=d)
        _run(
            *cc,
            "-o",
            "libuser32.so",
            "user.c",
            "-Wl,-soname,libuser32.so",
            "-Wl,--enable-new-dtags",
            "-Wl,-rpath,$ORIGIN",
            "libdep32.so",
            cwd=d,
        )
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"gcc -m32 cannot link here: {exc.stderr[-300:]}")
    return {"dep": d / "libdep32.so", "user": d / "libuser32.so"}


S390_DEP = "\t.text\n\t.globl dep_old\n\t.type dep_old,@function\ndep_old:\n\tbr %r14\n"
S390_USER = "\t.text\n\t.globl user\n\t.type user,@function\nuser:\n\tbrasl %r14, dep_old@PLT\n\tbr %r14\n"


@pytest.fixture(scope="module", params=["64", "31"])
def big_endian(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Big-endian s390x (64-bit) and s390 (31-bit) objects from cross binutils."""
    if shutil.which("s390x-linux-gnu-as") is None:
        pytest.skip("no s390x cross binutils (apt-get install binutils-s390x-linux-gnu)")
    bits = request.param
    d = tmp_path_factory.mktemp(f"s390-{bits}")
    (d / "dep.s").write_text(S390_DEP)
    (d / "user.s").write_text(S390_USER)
    (d / "dep.map").write_text("DEP_1.0 { global: dep_old; local: *; };\n")
    as_flags = ["-m64"] if bits == "64" else ["-m31"]
    ld_flags = ["-m", "elf64_s390"] if bits == "64" else ["-m", "elf_s390"]
    _run("s390x-linux-gnu-as", *as_flags, "-o", "dep.o", "dep.s", cwd=d)
    _run(
        "s390x-linux-gnu-ld",
        *ld_flags,
        "-shared",
        "-soname",
        "libdep.so.1",
        "--version-script",
        "dep.map",
        "-o",
        "libdep.so.1",
        "dep.o",
        cwd=d,
    )
    _run("s390x-linux-gnu-as", *as_flags, "-o", "user.o", "user.s", cwd=d)
    _run(
        "s390x-linux-gnu-ld",
        *ld_flags,
        "-shared",
        "-soname",
        "libuser.so",
        "-rpath",
        "$ORIGIN:/x",
        "-o",
        "libuser.so",
        "user.o",
        "libdep.so.1",
        cwd=d,
    )
    return d / "libuser.so", 64 if bits == "64" else 32


# ---------------------------------------------------------------------------------------
# readelf as the reference
# ---------------------------------------------------------------------------------------
def readelf_facts(path: Path, readelf: str = "readelf") -> dict[str, object]:
    """needed/soname/rpath/runpath/version_needs as binutils' readelf prints them."""
    dyn = _run(readelf, "-dW", path)
    facts: dict[str, object] = {
        "needed": tuple(re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", dyn)),
        "soname": next(iter(re.findall(r"\(SONAME\)\s+Library soname: \[(.*)\]", dyn)), None),
        "rpath": tuple(":".join(re.findall(r"\(RPATH\)\s+Library rpath: \[(.*)\]", dyn)).split(":"))
        if "(RPATH)" in dyn
        else (),
        "runpath": tuple(":".join(re.findall(r"\(RUNPATH\)\s+Library runpath: \[(.*)\]", dyn)).split(":"))
        if "(RUNPATH)" in dyn
        else (),
    }
    needs: dict[str, set[str]] = {}
    current = None
    in_verneed = False
    for line in _run(readelf, "-VW", path).splitlines():
        if line.startswith("Version needs section"):
            in_verneed = True
        elif line.startswith("Version") and "section" in line:
            in_verneed = False
        elif in_verneed and (m := re.search(r"File: (\S+)", line)):
            current = needs.setdefault(m.group(1), set())
        elif in_verneed and current is not None and (m := re.search(r"Name: (\S+)", line)):
            current.add(m.group(1))
    facts["version_needs"] = {k: frozenset(v) for k, v in needs.items()}
    return facts


def our_facts(info: ElfInfo) -> dict[str, object]:
    return {
        "needed": info.needed,
        "soname": info.soname,
        "rpath": info.rpath,
        "runpath": info.runpath,
        "version_needs": dict(info.version_needs),
    }


@pytest.mark.parametrize("name", ["dep", "runpath", "rpath", "omp", "exe"])
def test_matches_readelf(libs: dict[str, Path], name: str) -> None:
    info = read_elf(libs[name])
    assert our_facts(info) == readelf_facts(libs[name])
    assert (info.machine, info.elf_class, info.byteorder) == ("x86_64", 64, "little")
    assert info.path == str(libs[name])


def test_runpath_and_rpath_are_told_apart(libs: dict[str, Path]) -> None:
    runpath = read_elf(libs["runpath"])
    assert runpath.runpath == ("$ORIGIN/../lib", "/opt/x") and runpath.rpath == ()
    rpath = read_elf(libs["rpath"])
    assert rpath.rpath == ("$ORIGIN",) and rpath.runpath == ()
    assert rpath.soname is None
    assert runpath.version_needs["libdep.so.1"] == {"DEP_1.0", "DEP_2.0"}


def test_openmp_library_needs_gomp(libs: dict[str, Path]) -> None:
    info = read_elf(libs["omp"])
    assert "libgomp.so.1" in info.needed
    assert any(v.startswith("GOMP_") for v in info.version_needs["libgomp.so.1"])


def test_executable_and_library_types(libs: dict[str, Path]) -> None:
    exe, lib = read_elf(libs["exe"]), read_elf(libs["dep"])
    assert exe.interpreter is not None and exe.interpreter.startswith("/lib")
    assert exe.is_executable and not lib.is_executable
    assert lib.elf_type == "DYN" and lib.interpreter is None
    assert {".dynsym", ".gnu.version_r", ".text"} <= exe.sections


def test_32bit(libs32: dict[str, Path]) -> None:
    for path in libs32.values():
        info = read_elf(path)
        assert (info.elf_class, info.machine) == (32, "i686")
        assert our_facts(info) == readelf_facts(path)
    user = read_elf(libs32["user"])
    assert user.needed == ("libdep32.so",) and user.runpath == ("$ORIGIN",)
    assert user.version_needs == {"libdep32.so": frozenset({"DEP_1.0", "DEP_2.0"})}
    assert set(dynamic_symbols(libs32["dep"])) >= {"dep_old", "dep_new"}


def test_big_endian(big_endian: tuple[Path, int]) -> None:
    path, bits = big_endian
    info = read_elf(path)
    assert (info.byteorder, info.elf_class) == ("big", bits)
    assert info.machine == ("s390x" if bits == 64 else "s390")
    assert our_facts(info) == readelf_facts(path, "s390x-linux-gnu-readelf")
    assert info.version_needs == {"libdep.so.1": frozenset({"DEP_1.0"})}
    assert list(dynamic_symbols(path)) == ["user"]


def test_dynamic_symbols_match_nm(libs: dict[str, Path]) -> None:
    for path in libs.values():
        defined = [ln.split()[-1].split("@")[0] for ln in _run("nm", "-D", "--defined-only", path).splitlines()]
        everything = [ln.split()[-1].split("@")[0] for ln in _run("nm", "-D", path).splitlines()]
        assert sorted(dynamic_symbols(path)) == sorted(defined)
        assert sorted(dynamic_symbols(path, defined_only=False)) == sorted(everything)


def test_section_bytes_match_objcopy(libs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "comment.bin"
    _run("objcopy", "-O", "binary", f"--dump-section=.comment={out}", libs["dep"], tmp_path / "ignored")
    assert section_bytes(libs["dep"], ".comment") == out.read_bytes()
    assert section_bytes(libs["dep"], ".nv_fatbin") is None
    assert section_bytes(libs["dep"], ".bss") in (b"", None)


def test_is_elf(libs: dict[str, Path], tmp_path: Path) -> None:
    assert is_elf(libs["dep"]) and is_elf(str(libs["exe"]))
    assert is_elf(libs["dep"].read_bytes()[:64])
    (tmp_path / "script.sh").write_text("#!/bin/sh\n")
    assert not is_elf(tmp_path / "script.sh")
    assert not is_elf(tmp_path) and not is_elf(b"\x7fEL") and not is_elf(b"")


def test_section_headers_stripped_falls_back_to_segments(libs: dict[str, Path], tmp_path: Path) -> None:
    """As after sstrip: no section table; the loader's PT_DYNAMIC view must still be read."""
    data = bytearray(libs["runpath"].read_bytes())
    struct.pack_into("<Q", data, 0x28, 0)  # e_shoff
    struct.pack_into("<HH", data, 0x3C, 0, 0)  # e_shnum, e_shstrndx
    stripped = tmp_path / "stripped.so"
    stripped.write_bytes(bytes(data))
    info = read_elf(stripped)
    assert our_facts(info) == our_facts(read_elf(libs["runpath"]))
    assert info.sections == frozenset()


@pytest.mark.parametrize("cut", [0, 3, 15, 40, 63, 1000, -200, -1])
def test_truncated_file_raises_elf_error(libs: dict[str, Path], tmp_path: Path, cut: int) -> None:
    data = libs["runpath"].read_bytes()
    bad = tmp_path / "truncated.so"
    bad.write_bytes(data[:cut] if cut >= 0 else data[: len(data) + cut])
    with pytest.raises(ElfError, match=r"truncated.so"):
        read_elf(bad)


def test_not_elf_raises(tmp_path: Path) -> None:
    (tmp_path / "x.so").write_text("INPUT(-lfoo)\n")  # a linker script named like a library
    with pytest.raises(ElfError, match=r"not an ELF file"):
        read_elf(tmp_path / "x.so")
    bad_class = bytearray(b"\x7fELF" + bytes(60))
    bad_class[4] = 7
    (tmp_path / "y.so").write_bytes(bytes(bad_class))
    with pytest.raises(ElfError, match=r"unknown ELF class"):
        read_elf(tmp_path / "y.so")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=8191), st.integers(0, 255)), min_size=1, max_size=8))
def test_corruption_never_escapes_as_another_exception(
    libs: dict[str, Path], tmp_path: Path, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(libs["runpath"].read_bytes())
    for offset, value in edits:
        data[offset % len(data)] = value
    path = tmp_path / "fuzz.so"
    path.write_bytes(bytes(data))
    try:
        read_elf(path)
        list(dynamic_symbols(path))
    except ElfError:
        pass


# ---------------------------------------------------------------------------------------
# symbol versions
# ---------------------------------------------------------------------------------------
def test_parse_symbol_version() -> None:
    assert parse_symbol_version("GLIBC_2.17") == ("GLIBC", (2, 17))
    assert parse_symbol_version("GLIBCXX_3.4.21") == ("GLIBCXX", (3, 4, 21))
    assert parse_symbol_version("CXXABI_TM_1") == ("CXXABI_TM", (1,))
    assert parse_symbol_version("GLIBC_PRIVATE") is None


def test_max_symbol_versions(libs: dict[str, Path]) -> None:
    infos = [read_elf(p) for p in libs.values()]
    best = max_symbol_versions(infos)
    assert best["DEP"] == (2, 0)
    assert best["GLIBC"] >= (2, 2, 5)
    assert "GOMP" in best or "OMP" in best


# ---------------------------------------------------------------------------------------
# C++ ABI counting
# ---------------------------------------------------------------------------------------
_DEMANGLED_CXX11 = re.compile(r"std::__cxx11::|\[abi:cxx11\]")
_DEMANGLED_OLD = re.compile(r"std::(?:string\b|wstring\b|basic_string<|list<)")


def nm_reference(path: Path, namespaces: tuple[str, ...]) -> tuple[int, int, list[str]]:
    """(cxx11, pre_cxx11, disagreements) from ``nm -D`` + ``nm -DC``: c++filt classifies
    the ABI; namespace membership comes from our (exact, prefix) matcher."""
    mangled = [ln.split(" ", 2)[2] for ln in _run("nm", "-D", "--defined-only", path).splitlines()]
    demangled = [ln.split(" ", 2)[2] for ln in _run("nm", "-DC", "--defined-only", path).splitlines()]
    assert len(mangled) == len(demangled)
    in_ns = namespace_matcher(namespaces)
    cxx11 = old = 0
    disagreements: list[str] = []
    for m, d in zip(mangled, demangled, strict=True):
        ref = (bool(_DEMANGLED_CXX11.search(d)), bool(_DEMANGLED_OLD.search(d)))
        if abi_markers(m) != ref:
            disagreements.append(f"{m} -> {d}: ours {abi_markers(m)}, c++filt {ref}")
        if in_ns(m):
            assert any(f"{ns}::" in d for ns in namespaces), (m, d)
            cxx11 += ref[0]
            old += ref[1]
    return cxx11, old, disagreements


@pytest.fixture(scope="module")
def abi_libs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    if shutil.which("g++") is None:
        pytest.skip("needs g++")
    d = tmp_path_factory.mktemp("abi")
    (d / "abi.cpp").write_text(ABI_CPP)
    out = {}
    for abi in (0, 1):
        out[abi] = d / f"libabi{abi}.so"
        _run("g++", "-O1", "-fPIC", "-shared", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", "-o", out[abi], "abi.cpp", cwd=d)
    return out


def test_abi_counts_agree_with_cxxfilt(abi_libs: dict[int, Path]) -> None:
    new = count_abi_symbols(abi_libs[1], ["minitorch"])
    old = count_abi_symbols(abi_libs[0], ["minitorch"])
    assert new.pre_cxx11 == 0 and new.cxx11 >= 10 and new.unparsed == 0
    assert old.cxx11 == 0 and old.pre_cxx11 >= 10 and old.unparsed == 0
    for abi, counts in ((1, new), (0, old)):
        cxx11, pre, disagreements = nm_reference(abi_libs[abi], ("minitorch",))
        assert disagreements == []
        assert (counts.cxx11, counts.pre_cxx11) == (cxx11, pre)


def test_identifiers_that_look_like_old_abi_are_not_counted(abi_libs: dict[int, Path]) -> None:
    names = list(dynamic_symbols(abi_libs[1]))
    lookalikes = [n for n in names if "Ss" in n or "Sb" in n]
    assert lookalikes, "fixture should export ClassSs / detail::Sb names"
    assert all(abi_markers(n)[1] is False for n in lookalikes)


@pytest.mark.parametrize(
    ("mangled", "expected"),
    [
        ("_ZN3c106detail3fooERKSs", (False, True)),
        ("_ZN3c107ClassSs3getEv", (False, False)),
        ("_ZN3c105ClassSs", (False, True)),  # here "Ss" follows the 5-letter "Class"
        ("_Z3fooP6ThingSs", (False, False)),  # identifier ending in S, then short
        ("_ZN3c104listERKSt4listIiSaIiEE", (False, True)),
        ("_ZN3c104listERKNSt7__cxx114listIiSaIiEEE", (True, False)),
        ("_ZN3c103strB5cxx11Ev", (True, False)),
        ("_ZN3c103fooILNS_4KindE35EEEvSs", (False, True)),  # enum literal value, then old string
        ("_ZZN3c103fooERKSsE5cache", (False, True)),
        ("_ZN3c101fIJiEEEvDpT_", (False, False)),
    ],
)
def test_abi_markers(mangled: str, expected: tuple[bool, bool]) -> None:
    assert abi_markers(mangled) == expected


@pytest.mark.parametrize(
    ("mangled", "inside"),
    [
        ("_ZN3c106TensorC1Ev", True),
        ("_ZNK3c106Tensor3dimEv", True),
        ("_ZNKR3c106Tensor3dimEv", True),
        ("_ZTVN3c1010TensorImplE", True),
        ("_ZThn16_N3c103FooD1Ev", True),
        ("_ZTv0_n24_N3c103FooD0Ev", True),
        ("_ZGVZN3c103fooEvE1x", True),
        ("_ZN3c104implIiEEvv", True),
        ("_ZN3c1010TensorImpl4sizeEv", True),
        ("_ZN4c10x3fooEv", False),
        ("_ZN16PackedConvWeightILi2EE10apply_implILb0EEEN2at6TensorERKS3_dl", False),
        ("_ZNSt6vectorIN3c106IValueESaIS1_EED1Ev", False),
        ("_Z3foov", False),
        ("c10_plain_c_symbol", False),
    ],
)
def test_namespace_matcher(mangled: str, inside: bool) -> None:
    assert namespace_matcher(["c10", "at"])(mangled) is inside


def test_namespace_matcher_nested_and_std() -> None:
    assert namespace_matcher(["torch::jit"])("_ZN5torch3jit5Graph4lintEv")
    assert not namespace_matcher(["torch::jit"])("_ZN5torch8autograd4NodeD1Ev")
    assert namespace_matcher(["std"])("_ZSt4cout")
    with pytest.raises(ValueError):
        namespace_matcher(["not a namespace"])


# ---------------------------------------------------------------------------------------
# The real torch 2.13.0 wheel
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_tree(torch_wheel: Path) -> Path:
    """The torch wheel's ELF files, unpacked once into the test cache."""
    from builder.binary.wheelfile import WheelReader

    wheel = torch_wheel
    tree = TEST_CACHE / f"{wheel.stem}-elfs"
    if not (tree / ".complete").exists():
        shutil.rmtree(tree, ignore_errors=True)
        with WheelReader(wheel) as reader:
            names = [
                m.name
                for m in reader.members
                if not m.is_dir
                and (
                    m.name.endswith(".so") or ".so." in m.name or "/bin/" in m.name or m.name.startswith("torch/test/")
                )
            ]
            reader.extract(tree, names)
        (tree / ".complete").touch()
    return tree


def _elf_files(tree: Path) -> Iterator[Path]:
    for root, _, files in os.walk(tree):
        for f in files:
            p = Path(root, f)
            if not p.is_symlink() and is_elf(p):
                yield p


@pytest.mark.slow
def test_torch_read_all_elfs_fast(torch_tree: Path) -> None:
    paths = list(_elf_files(torch_tree))
    assert len(paths) > 100
    start = time.perf_counter()
    infos = [read_elf(p) for p in paths]
    elapsed = time.perf_counter() - start
    print(f"read_elf on {len(paths)} torch ELF files: {elapsed:.3f} s")
    assert elapsed < 1.0
    assert max_symbol_versions(infos)["GLIBC"] <= (2, 28)  # it is tagged manylinux_2_28


@pytest.mark.slow
@pytest.mark.parametrize(
    "rel",
    [
        "torch/lib/libtorch_cpu.so",
        "torch/lib/libc10.so",
        "torch/lib/libgomp.so.1",
        "torch/lib/libtorch_python.so",
        "torch/lib/libshm.so",
        "torch/bin/test_jit",
    ],
)
def test_torch_libs_match_readelf(torch_tree: Path, rel: str) -> None:
    path = torch_tree / rel
    assert our_facts(read_elf(path)) == readelf_facts(path)


@pytest.mark.slow
def test_torch_abi_count(torch_tree: Path) -> None:
    lib = torch_tree / "torch/lib/libtorch_cpu.so"
    start = time.perf_counter()
    counts = count_abi_symbols(lib, TORCH_NAMESPACES)
    elapsed = time.perf_counter() - start
    cxx11, pre, disagreements = nm_reference(lib, TORCH_NAMESPACES)
    print(f"libtorch_cpu.so: {counts} in {elapsed:.3f} s; nm -DC reference {cxx11}/{pre}")
    assert disagreements == []
    assert (counts.cxx11, counts.pre_cxx11) == (cxx11, pre)
    assert counts.pre_cxx11 == 0 and counts.cxx11 >= 100  # torch 2.13 is pure cxx11 ABI
    assert elapsed < 5.0
