"""Progress for long commands: a tqdm bar on a terminal, plain lines in a log.

    with progress.bar(total=56, desc="sweep", unit="config", enabled=True) as bar:
        bar.set_postfix_str("running bp-d2-w500-b64")   # a log gets one line per change
        bar.update(1)
    progress.echo("a message")                         # printed above the bar, never onto it

On a terminal (stderr is a tty) the bar is tqdm's, and `logging` output is routed through
`tqdm.write` (`tqdm.contrib.logging.logging_redirect_tqdm`) while it is open; elsewhere (CI,
`2> log`) no bar is drawn: each change of the postfix (what is running now) is one plain
line on stderr, so logs stay readable.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


def interactive() -> bool:
    """Whether a bar can be drawn: stderr is a terminal."""
    return sys.stderr.isatty()


def echo(message: str) -> None:
    """Print a line on stdout without breaking an open bar (tqdm.write)."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stdout)


class PlainProgress:
    """The part of tqdm's interface the commands use, as plain lines on stderr: one line
    each time the postfix (what is running now) changes, counted against the total."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "", initial: int = 0) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        if text and text != self.postfix:
            count = f"{self.n + 1}/{self.total}" if self.total else f"{self.n + 1}"
            print(f"{self.desc} [{count} {self.unit}] {text}".strip(), file=sys.stderr, flush=True)
        self.postfix = text

    def close(self) -> None:
        pass


class NoProgress(PlainProgress):
    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass


@contextlib.contextmanager
def bar(*, total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0,
        enabled: bool = True, leave: bool = True) -> Iterator[Any]:  # fmt: skip
    """A progress bar for the duration of the block (see the module docstring)."""
    if not enabled:
        yield NoProgress(total, desc, unit, initial)
        return
    if not interactive():
        yield PlainProgress(total, desc, unit, initial)
        return
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    shown = tqdm(total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True, leave=leave)
    try:
        with logging_redirect_tqdm():
            yield shown
    finally:
        shown.close()
