"""Where human output goes: rich on a terminal, plain lines in CI, annotations on GitHub."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

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


class Timer:
    seconds: float = 0.0


@contextmanager
def step(name: str) -> Iterator[Timer]:
    """A long step: a spinner on a terminal, ::group:: folding on GitHub Actions, plain lines otherwise."""
    timer = Timer()
    start = time.monotonic()
    status = None
    if on_github():
        print(f"::group::{name}", flush=True)
    elif stderr.is_terminal:
        status = stderr.status(name)
        status.start()
    else:
        print(f"==> {name}", file=sys.stderr, flush=True)
    ok = False
    try:
        yield timer
        ok = True
    finally:
        timer.seconds = time.monotonic() - start
        outcome = "done" if ok else "FAILED"
        if status is not None:
            status.stop()
        if on_github():
            print("::endgroup::", flush=True)
        print(f"    {name}: {outcome} in {timer.seconds:.1f} s", file=sys.stderr, flush=True)


def step_summary(markdown: str) -> None:
    """Append to $GITHUB_STEP_SUMMARY when running on GitHub Actions."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a") as handle:
            handle.write(markdown + "\n")
