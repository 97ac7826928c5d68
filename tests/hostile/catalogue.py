"""Every hostile case, in groups, and the table of them in docs/hostile-inputs.md."""

from __future__ import annotations

from pathlib import Path

from cases_cli import file_cases, flag_cases
from cases_data import data_cases, record_cases
from cases_outputs import issue24_cases
from cases_runs import run_cases
from hostile import GROUPS, Case

DOC = Path(__file__).resolve().parents[2] / "docs" / "hostile-inputs.md"
EXIT_MEANING = {0: "0, the right record", 1: "1, one line", 2: "2, one line", 4: "4 (pytest usage), one line",
                130: "130, one line"}  # fmt: skip


def all_cases() -> list[Case]:
    cases = flag_cases() + file_cases() + data_cases() + record_cases() + run_cases() + issue24_cases()
    return sorted(cases, key=lambda c: GROUPS.index(c.group))


def render_doc(cases: list[Case]) -> str:
    """docs/hostile-inputs.md: the cases, grouped (generated; tests/hostile checks it is current)."""
    lines = [
        "# Hostile inputs and faults",
        "",
        "Generated from `tests/hostile/` (`python tests/hostile/tally.py --doc > docs/hostile-inputs.md`);",
        "`tests/hostile/test_hostile.py` runs every case and checks this table lists them all.",
        "Each case asserts the exit status, a one-line message (no traceback) and the folder's state",
        "afterwards: nothing written by a command that refused, or the right record. Exit statuses:",
        "2 the input is wrong; 1 the machine failed (disk full, out of memory) or a bug (one line naming",
        "the file that holds the traceback); 0 with the record that says what happened. The issue",
        "column names the numbered case of the issue a row reproduces (issue 14; the rows of",
        "`cases_outputs.py` those of issue 24, marked 24 where the row is of its 'Also' list).",
        "",
        f"{len(cases)} cases.",
    ]
    for group in GROUPS:
        mine = [c for c in cases if c.group == group]
        lines += ["", f"## {group} ({len(mine)})", "", "| case | input or fault | exit | says | issue |",
                  "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for c in mine:
            what = c.what.replace("|", "\\|")
            says = f"`{c.says}`" if c.says else ""
            lines.append(
                f"| {c.name} | {what} | {EXIT_MEANING.get(c.exit, c.exit)} | {says.replace('|', '/')} | {c.issue} |"
            )
    return "\n".join(lines) + "\n"
