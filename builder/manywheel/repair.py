"""Repair a wheel: graft what must be bundled, point RPATHs at NVIDIA's wheels, retag, repack.

Only ELF members are unpacked; every member that repair does not change is copied into the
new wheel as its compressed bytes. Grafted libraries that keep their soname go next to the
library that needs them when that directory is already on its search path, so the big
libraries of a wheel like torch are usually not edited at all.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import parse_wheel_filename

from builder.binary.elf import ElfError, ElfInfo, read_elf
from builder.binary.patcher import ElfPatcher
from builder.binary.wheelfile import RecordReport, WheelFileError, WheelReader, rewrite_wheel
from builder.errors import RepairError
from builder.manywheel.analysis import Need, classify, read_all, symbol_needs
from builder.manywheel.policy import Policy, best_policy, blockers, policies, policy_named
from builder.resolver import RepairPlan

NVIDIA_RPATH = "/nvidia/"  # RPATH entries into NVIDIA's wheels are kept (auditwheel #404 drops them)


@dataclass(frozen=True, kw_only=True)
class RepairOptions:
    plan: RepairPlan
    arch: str = "x86_64"
    plat: str | None = None  # requested manylinux tag; None: the most compatible one the binaries allow
    libs_dir: str | None = None  # where grafts go; default "<dist>.libs"
    source_date_epoch: int | None = None
    search_dirs: tuple[str, ...] = ()  # where grafts may come from besides the system (e.g. CUDA lib64)


@dataclass(frozen=True)
class RepairResult:
    wheel: Path
    platform_tags: tuple[str, ...]
    grafted: Mapping[str, str]  # soname -> member it became
    external: tuple[str, ...]  # sonames left to driver / runtime wheels
    requires_added: tuple[str, ...]
    edited: tuple[str, ...]  # members whose ELF headers changed
    dropped_rpaths: Mapping[str, tuple[str, ...]]
    seconds: float


@dataclass
class _Edit:
    """What repair wants changed in one ELF; turned into one patchelf call at the end."""

    replace_needed: dict[str, str] = field(default_factory=dict)
    soname: str | None = None
    add: list[str] = field(default_factory=list)  # RPATH entries to append
    drop: set[str] = field(default_factory=set)  # RPATH entries to remove

    def add_rpath(self, entry: str) -> None:
        if entry not in self.add:
            self.add.append(entry)


@dataclass
class _State:
    tree: Path
    infos: dict[str, ElfInfo]
    edits: dict[str, _Edit] = field(default_factory=dict)
    grafted: dict[str, str] = field(default_factory=dict)  # soname -> member
    new_files: dict[str, Path] = field(default_factory=dict)  # member -> file to add
    requires: list[str] = field(default_factory=list)
    dropped: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def edit(self, member: str) -> _Edit:
        return self.edits.setdefault(member, _Edit())

    def path(self, member: str) -> Path:
        return self.new_files.get(member, self.tree / member)

    def apply(self) -> list[str]:
        """Queue every edit into one patchelf call per file; returns the members changed."""
        patcher = ElfPatcher()
        changed = []
        for member, edit in sorted(self.edits.items()):
            info, path = self.infos[member], self.path(member)
            current = list(info.runpath or info.rpath)
            rpath = [e for e in current if e not in edit.drop] + [e for e in edit.add if e not in current]
            if rpath != current and not rpath:
                patcher.remove_rpath(path)
            elif rpath != current:
                # keep the file's kind: DT_RPATH also covers the libraries it loads, DT_RUNPATH does not
                patcher.set_rpath(path, rpath, force_rpath=bool(info.rpath and not info.runpath))
            for old, new in edit.replace_needed.items():
                patcher.replace_needed(path, old, new)
            if edit.soname:
                patcher.set_soname(path, edit.soname)
            if rpath != current or edit.replace_needed or edit.soname:
                changed.append(member)
        patcher.apply()
        return changed


def repair_wheel(src: Path, out_dir: Path, options: RepairOptions) -> RepairResult:
    start = time.monotonic()
    try:
        name = parse_wheel_filename(src.name)[0]
    except Exception as exc:  # packaging raises several types for bad names
        raise RepairError(
            f"{src.name} is not a wheel file name ({exc}). Wheels are named <dist>-<version>-<py>-<abi>-<plat>.whl."
        ) from None
    with tempfile.TemporaryDirectory(prefix="builder-repair-") as tmp:
        tree = Path(tmp) / "tree"
        try:
            with WheelReader(src) as reader:
                # one pass: verify RECORD and unpack the ELF members (by magic) while hashing
                report = reader.verify_record(extract_to=tree, extract_if=_is_elf_head)
                _check_record(report, src)
                dist_info = reader.dist_info or ""
                metadata = {n: reader.read(f"{dist_info}/{n}").decode() for n in ("WHEEL", "METADATA")}
        except WheelFileError as exc:
            raise RepairError(f"{src} cannot be repaired: {exc}") from None
        members = list(report.extracted)  # ELF by magic, unpacked during the RECORD pass
        try:
            state = _State(tree, read_all(tree, members))
        except ElfError as exc:
            raise RepairError(f"{src}: a member is not a readable ELF file: {exc}") from None
        libs_dir = options.libs_dir or f"{name.replace('-', '_')}.libs"
        system_libs = policies(options.arch)[-1].lib_whitelist
        needs = classify(tree, state.infos, options.plan, system_libs)
        _graft_all(state, needs, options, libs_dir, system_libs, Path(tmp) / "grafts")
        _link_accelerators(state, needs, options.plan)
        _link_unreachable(state, needs)
        _drop_foreign_rpaths(state)
        edited = state.apply()
        policy = _choose_policy(state, options)
        plat_tags = tuple(f"{t}_{options.arch}" for t in policy.tags)
        replace: dict[str, bytes | str] = {m: str(tree / m) for m in edited if m not in state.new_files}
        replace.update({m: str(p) for m, p in state.new_files.items()})
        replace[f"{dist_info}/WHEEL"] = _retag_wheel_file(metadata["WHEEL"], plat_tags).encode()
        if state.requires:
            replace[f"{dist_info}/METADATA"] = _add_requires(metadata["METADATA"], state.requires).encode()
        # the platform tag is the file name's last field; python and abi tags stay as built
        out_name = f"{src.name.removesuffix('.whl').rsplit('-', 1)[0]}-{'.'.join(plat_tags)}.whl"
        out_dir.mkdir(parents=True, exist_ok=True)
        try:
            rewrite_wheel(src, out_dir / out_name, replace=replace, source_date_epoch=options.source_date_epoch)
        except WheelFileError as exc:
            raise RepairError(f"Writing the repaired wheel {out_name} failed: {exc}") from None
    external = sorted({n.soname for n in needs if n.kind in ("driver", "accelerator")})
    return RepairResult(
        wheel=out_dir / out_name,
        platform_tags=plat_tags,
        grafted=dict(state.grafted),
        external=tuple(external),
        requires_added=tuple(state.requires),
        edited=tuple(sorted(edited)),
        dropped_rpaths=dict(state.dropped),
        seconds=time.monotonic() - start,
    )


def _is_elf_head(name: str, head: bytes) -> bool:
    return head[:4] == b"\x7fELF"


def _check_record(report: RecordReport, src: Path) -> None:
    if not report.ok:
        first = report.problems[0]
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise RepairError(
            f"{src.name}: RECORD does not match the archive: {first.name}: {first.problem} ({first.detail}){more}. "
            "The wheel was modified after it was built; rebuild it instead of repairing it."
        )


def _graft_all(
    state: _State, needs: list[Need], options: RepairOptions, libs_dir: str, system_libs: frozenset[str], staging: Path
) -> None:
    """Copy every 'graft' dependency in, then the grafts' own dependencies, until none is left."""
    pending = [n for n in needs if n.kind == "graft"]
    while pending:
        need = pending.pop(0)
        if need.soname not in state.grafted:
            source = _graft_source(need, options)
            member = _place(state, need, needs, options.plan.keep_names, libs_dir, source)
            state.grafted[need.soname] = member
            info = read_elf(source)
            state.infos[member] = info
            staged = staging / member
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, staged)
            state.new_files[member] = staged
            sub = classify(state.tree, {member: info}, options.plan, system_libs)
            # all of them, grafted already or not: each dependent must be pointed at its graft
            pending += [n for n in sub if n.kind == "graft"]
            needs.extend(n for n in sub if n.kind != "graft")
        _point_at_graft(state, need, state.grafted[need.soname], libs_dir)


def _graft_source(need: Need, options: RepairOptions) -> Path:
    if need.lookup.path is not None:
        return need.lookup.path
    for directory in options.search_dirs:
        if (Path(directory) / need.soname).exists():
            return Path(directory) / need.soname
    searched = ", ".join(dict.fromkeys([*need.lookup.searched, *options.search_dirs]))
    raise RepairError(
        f"{need.member} needs {need.soname}, which builder cannot find to bundle. Looked in: {searched}. "
        f"Install the library that provides {need.soname} on the build machine, or pass --exclude '{need.soname}' "
        "if users are expected to provide it."
    )


def _place(state: _State, need: Need, needs: list[Need], keep: tuple[str, ...], libs_dir: str, source: Path) -> str:
    """Where a graft goes: next to its dependents when its name is kept and they already look
    there (no edit of the dependents), otherwise into libs_dir with a hash-suffixed name."""
    keep_name = any(fnmatch.fnmatchcase(need.soname, p) for p in keep)
    if keep_name:
        dependents = {n.member for n in needs if n.soname == need.soname and n.kind == "graft"}
        shared = set.intersection(*(set(_wheel_search_dirs(state, m)) for m in dependents)) if dependents else set()
        if shared:
            return f"{sorted(shared)[0]}/{need.soname}".lstrip("/")
        return f"{libs_dir}/{need.soname}"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:8]
    stem, dot, rest = need.soname.partition(".so")
    return f"{libs_dir}/{stem}-{digest}{dot}{rest}"


def _wheel_search_dirs(state: _State, member: str) -> list[str]:
    """Wheel-relative directories on member's own search path."""
    info = state.infos[member]
    root = state.tree.resolve()
    out = []
    for entry in info.runpath or info.rpath:
        if "$ORIGIN" in entry or "${ORIGIN}" in entry:
            path = Path(
                os.path.normpath(
                    str(state.tree / Path(member).parent / entry.replace("${ORIGIN}", ".").replace("$ORIGIN", "."))
                )
            )
            if path.resolve().is_relative_to(root):
                out.append(path.resolve().relative_to(root).as_posix())
    return out


def _point_at_graft(state: _State, need: Need, member: str, libs_dir: str) -> None:
    new_name = Path(member).name
    edit = state.edit(need.member)
    if new_name != need.soname:
        edit.replace_needed[need.soname] = new_name
        state.edit(member).soname = new_name
    if str(Path(member).parent.as_posix()) not in _wheel_search_dirs(state, need.member):
        edit.add_rpath(_origin_rel(need.member, str(Path(member).parent.as_posix())))


def _origin_rel(member: str, target_dir: str) -> str:
    rel = os.path.relpath(target_dir, str(Path(member).parent.as_posix()) or ".")
    return "$ORIGIN" if rel == "." else f"$ORIGIN/{rel}"


def _link_accelerators(state: _State, needs: list[Need], plan: RepairPlan) -> None:
    """pypi mode: RPATH entries to the runtime wheels' lib dirs, and their pins in Requires-Dist."""
    for need in needs:
        if need.kind != "accelerator":
            continue
        package = next(
            (p for p in plan.runtime_packages if any(fnmatch.fnmatchcase(need.soname, s) for s in p.sonames)), None
        )
        if package is None:
            names = ", ".join(p.name for p in plan.runtime_packages) or "none"
            raise RepairError(
                f"{need.member} needs {need.soname}, an accelerator library, but none of the runtime wheels "
                "pinned in the "
                f"catalog for this CUDA version provides it (pinned: {names}). Use --cuda-mode bundled, or add the "
                "package to builder/data/cuda.toml."
            )
        state.edit(need.member).add_rpath(_origin_rel(need.member, package.lib_dir))
        requirement = next(r for r in plan.requires_dist if r.startswith(package.requirement + ";"))
        if requirement not in state.requires:
            state.requires.append(requirement)


def _link_unreachable(state: _State, needs: list[Need]) -> None:
    """An in-wheel library its dependent cannot find: add the directory that holds it."""
    for need in needs:
        if need.kind != "unreachable":
            continue
        holder = next(
            m for m, i in sorted(state.infos.items()) if Path(m).name == need.soname or i.soname == need.soname
        )
        state.edit(need.member).add_rpath(_origin_rel(need.member, str(Path(holder).parent.as_posix())))


def _drop_foreign_rpaths(state: _State) -> None:
    """Absolute RPATH entries outside the wheel (build trees, /usr/local/cuda) do not exist on
    users' machines; in files repair edits anyway, keep in-wheel and NVIDIA-wheel entries and
    drop the rest. Files repair has no other reason to touch are left as built (rewriting a
    wheel's test binaries only for hygiene costs seconds); `builder check` warns about them."""
    for member in list(state.edits):
        if member in state.new_files:
            continue
        info = state.infos[member]
        foreign = tuple(
            e
            for e in info.runpath or info.rpath
            if not e.startswith(("$ORIGIN", "${ORIGIN}")) and NVIDIA_RPATH not in e
        )
        if foreign:
            state.dropped[member] = foreign
            state.edits[member].drop.update(foreign)


def _choose_policy(state: _State, options: RepairOptions) -> Policy:
    needs = symbol_needs(state.infos)
    if options.plat:
        policy = policy_named(options.plat, options.arch)
        blocking = blockers(policy, needs)
        if blocking:
            member, symbol = blocking[0]
            raise RepairError(
                f"Cannot tag {options.plat}: {member} needs {symbol}, newer than {policy.name} allows "
                f"({len(blocking)} such symbol version(s) in all). Build on an older glibc/toolchain (the "
                "config's Docker image) or drop --plat to get the tag the binaries support."
            )
        return policy
    best = best_policy(options.arch, needs)
    if best is None:
        newest = policies(options.arch)[-1]
        member, symbol = blockers(newest, needs)[0]
        raise RepairError(
            f"No manylinux tag fits: {member} needs {symbol}, newer than {newest.name}. Build with an older toolchain."
        )
    return best


def _retag_wheel_file(text: str, plat_tags: tuple[str, ...]) -> str:
    lines = text.splitlines()
    tags = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")]
    py_abi = list(dict.fromkeys(t.rsplit("-", 1)[0] for t in tags))
    kept = [line for line in lines if not line.startswith("Tag:")]
    return "\n".join(kept + [f"Tag: {pa}-{plat}" for pa in py_abi for plat in plat_tags]) + "\n"


def _add_requires(text: str, requires: list[str]) -> str:
    headers = HeaderParser().parsestr(text)
    existing = set(headers.get_all("Requires-Dist") or [])
    added = [r for r in requires if r not in existing]
    head, sep, body = text.partition("\n\n")
    return head + "".join(f"\nRequires-Dist: {r}" for r in added) + (sep + body if sep else "\n")
