"""Where human output goes: rich on a terminal, plain lines in CI, annotations on GitHub."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

stderr = Console(stderr=True, highlight=False, soft_wrap=True)
stdout = Console(highlight=False, soft_wrap=True)


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def notice(message: str) -> None:
    if on_github():
        print(f"::notice::{message}", file=sys.stderr)
    else:
        stderr.print(f"[cyan]notice:[/cyan] {message}", markup=True) if stderr.is_terminal else print(
            f"notice: {message}", file=sys.stderr
        )


def error(message: str) -> None:
    if on_github():
        print(f"::error::{message}", file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A rich table on a terminal; tab-separated plain lines otherwise (greppable in CI logs)."""
    if not stdout.is_terminal:
        print("\t".join(headers))
        for row in rows:
            print("\t".join(row))
        return
    t = Table(title=title)
    for header in headers:
        t.add_column(header)
    for row in rows:
        t.add_row(*row)
    stdout.print(t)
