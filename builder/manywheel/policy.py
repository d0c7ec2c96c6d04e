"""manylinux platform policies, read from auditwheel's own policy data (the reference list of
allowed system libraries and symbol versions per manylinux_2_X tag)."""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from builder.errors import RepairError


@dataclass(frozen=True)
class Policy:
    name: str  # manylinux_2_28
    aliases: tuple[str, ...]  # manylinux2014 for manylinux_2_17
    priority: int  # higher = more compatible (older glibc)
    symbol_versions: Mapping[str, frozenset[str]]  # GLIBC -> {"2.17", ...}
    lib_whitelist: frozenset[str]

    @property
    def glibc(self) -> tuple[int, int]:
        major, minor = self.name.removeprefix("manylinux_").split("_")
        return int(major), int(minor)

    @property
    def tags(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@cache
def policies(arch: str) -> tuple[Policy, ...]:
    """manylinux policies for arch, most compatible first (manylinux_2_5 ... newest)."""
    text = (importlib.resources.files("auditwheel") / "policy" / "manylinux-policy.json").read_text()
    out = []
    for entry in json.loads(text):
        if entry["name"] == "linux" or arch not in entry["symbol_versions"]:
            continue
        versions = {prefix: frozenset(v) for prefix, v in entry["symbol_versions"][arch].items()}
        out.append(
            Policy(
                entry["name"], tuple(entry["aliases"]), entry["priority"], versions, frozenset(entry["lib_whitelist"])
            )
        )
    return tuple(sorted(out, key=lambda p: -p.priority))


def policy_named(tag: str, arch: str) -> Policy:
    for policy in policies(arch):
        if tag.removesuffix(f"_{arch}") in policy.tags:
            return policy
    known = ", ".join(p.name for p in policies(arch))
    raise RepairError(f"Unknown platform tag {tag!r} for {arch}. Known manylinux tags: {known}.")


def blockers(policy: Policy, needs: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """(file, symbol version) pairs the policy does not allow; needs maps file -> {"GLIBC_2.29", ...}."""
    out = []
    for path, versions in sorted(needs.items()):
        for version in sorted(versions):
            prefix, _, number = version.partition("_")
            allowed = policy.symbol_versions.get(prefix)
            if allowed is not None and number not in allowed:
                out.append((path, version))
    return out


def best_policy(arch: str, needs: Mapping[str, Iterable[str]]) -> Policy | None:
    """The most compatible manylinux policy whose symbol versions cover every need."""
    for policy in policies(arch):
        if not blockers(policy, needs):
            return policy
    return None
