"""The verdicts as text: one line per claim for the terminal (details with `verbose`), and
JSON for machines."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TextIO

from .claims import GROUPS, Verdict


def print_claims(verdicts: list[Verdict], file: TextIO | None = None, verbose: bool = False) -> None:
    """The findings, then the checks of the instrument: one line per claim (its verdict and key
    number); `verbose` adds the numbers, the test, the evaluation chunk and the figure."""
    file = file or sys.stdout
    numbered = list(enumerate(verdicts, 1))
    for group, title in GROUPS.items():
        chosen = [(i, v) for i, v in numbered if v.group == group]
        if chosen:
            print(f"{title}:", file=file)
        for i, v in chosen:
            shown = v.verdict.upper() if v.verdict in ("holds", "does not hold") else v.verdict
            key = f" ({v.summary})" if v.summary and not verbose else ""
            print(f"({i}) {v.claim}: {shown}{key}", file=file)
            if verbose:
                _print_details(v, file)


def _print_details(v: Verdict, file: TextIO) -> None:
    if v.detail:
        print(f"    numbers: {v.detail}", file=file)
    print(f"    test: {v.test}", file=file)
    print(
        f"    evaluation chunk: {v.eval_chunk}; {v.batch_convention}"
        + (f"; figure: {v.figure}" if v.figure else ""),
        file=file,
    )


def verdicts_json(verdicts: list[Verdict]) -> str:
    """The verdicts as JSON (for machines)."""
    return json.dumps([asdict(v) for v in verdicts], indent=2, default=str)
