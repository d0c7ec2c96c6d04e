"""Check family 2: RECORD lists every file exactly once, with the right hash and size."""

from __future__ import annotations

import posixpath
from collections import Counter

from builder.check.artifact import HASHES, Scan
from builder.check.context import Context
from builder.check.findings import Finding, error

_REBUILD = "The artifact was changed after it was built: rebuild it (or repair it with builder, which rewrites RECORD)."


def check_record(ctx: Context) -> list[Finding]:
    scan = ctx.scan
    if scan.dist_info is None:
        return []  # a libtorch archive or a plain tree: nothing claims a file list
    record_name = f"{scan.dist_info}/RECORD"
    if scan.record is None:
        return [error("record.absent", record_name, f"{record_name} is missing, so nothing vouches for the files. "
                      "Every wheel needs one; rebuild the wheel.")]
    out: list[Finding] = []
    counts = Counter(row.path for row in scan.record)
    for path, n in sorted(counts.items()):
        if n > 1:
            out.append(error("record.duplicate", path, f"{path} is listed {n} times in {record_name}; "
                             f"each file must be listed once. {_REBUILD}"))
    rows = {row.path: row for row in scan.record}
    for path, row in sorted(rows.items()):
        if path == record_name or _signature(path, record_name) or _outside(path):
            continue
        out += _row_findings(scan, path, row.hash, row.size, record_name)
    present = set(scan.files) | set(scan.symlinks)
    for path in sorted(present - set(rows)):
        if path != record_name and not _signature(path, record_name):
            out.append(error("record.unlisted", path, f"{path} is in the artifact but not in {record_name}. "
                             f"Installers will not remove it on uninstall. {_REBUILD}"))
    return out


def _row_findings(scan: Scan, path: str, spelled: str, size: int | None, record_name: str) -> list[Finding]:
    digest = scan.digests.get(path)
    if digest is None:
        if scan.kind == "dir" and path.endswith(".pyc"):
            return []  # byte code: created (and removed) by installers and Python itself
        return [error("record.missing", path, f"{record_name} lists {path}, but the artifact does not contain it. "
                      f"{_REBUILD}")]
    algorithm = spelled.split("=", 1)[0] if "=" in spelled else ""
    if algorithm not in HASHES:
        return [error("record.unhashed", path, f"{record_name} gives no usable hash for {path} "
                      f"({spelled or 'empty'}); only RECORD itself may be unhashed. {_REBUILD}")]
    if size is not None and size != digest.size:
        return [error("record.size-mismatch", path, f"{path} holds {digest.size} bytes, {record_name} says {size}. "
                      f"{_REBUILD}")]
    if digest.hash is not None and digest.hash != spelled:
        return [error("record.hash-mismatch", path, f"{path} does not match its hash in {record_name} "
                      f"(RECORD {spelled}, content {digest.hash}). {_REBUILD}")]
    return []


def _signature(path: str, record_name: str) -> bool:
    return path in (record_name + ".jws", record_name + ".p7s")


def _outside(path: str) -> bool:
    """Installed RECORDs list scripts as ../../bin/x: outside what is being checked."""
    return path.startswith("/") or posixpath.normpath(path).startswith("..")
