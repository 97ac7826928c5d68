"""Where each threshold's value comes from: the commit that gave it its present value.

A threshold is a line `NAME = value  # why` in `thresholds.py`. `git blame` names the commit
that last touched the *line*, so moving the line into another file, or rewording its
comment, hides when the *value* was set. Here the package's history is read once
(`git log -G '^NAME =' -p` over the whole package, so a value that moved between files is
followed), and each name gets the oldest commit of the unbroken run of commits, newest
first, whose added line gives the present value: the commit that introduced or last changed
that value. Values are compared as Python expressions (`ast`), so a new comment or spacing
is no change.

`changed_after(change, revision)`: whether that commit is missing from the code a run was
measured with (`git merge-base --is-ancestor`), i.e. the threshold was set after the run's
data could have been seen.
"""

from __future__ import annotations

import ast
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

UNCOMMITTED = "uncommitted"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Change:
    """The commit that gave a threshold its present value."""

    commit: str  # full hash
    date: str  # committer date, YYYY-MM-DD

    def __str__(self) -> str:
        return f"{self.commit[:10]} ({self.date})"


def value_of(line: str, name: str) -> str | None:
    """The value assigned to `name` on `line` (`NAME = value  # comment`), normalised by
    `ast.unparse`; the text after '=' when it is not one whole expression; None when the line
    assigns something else."""
    m = re.match(rf"\s*{re.escape(name)}\s*(?::[^=]+)?=(.*)$", line)
    if not m:
        return None
    try:
        tree = ast.parse(line.strip())
    except SyntaxError:
        return m.group(1).split("#", 1)[0].strip()
    node = tree.body[0] if tree.body else None
    value = getattr(node, "value", None)
    return ast.unparse(value) if value is not None else None


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None


def _history(names: list[str], scope: Path) -> list[tuple[str, str, list[str]]]:
    """(commit, date, its added and removed lines that assign one of `names`) of every
    commit under `scope` that touches such a line, newest first ([] outside git)."""
    pattern = r"^\s*(" + "|".join(map(re.escape, names)) + r")\s*(:[^=]+)?="
    proc = _git(["log", "-p", "--unified=0", "--no-color", "--format=@@commit %H %cs", "-G", pattern, "--", "."],
                scope)  # fmt: skip
    if proc is None or proc.returncode != 0:
        return []
    out: list[tuple[str, str, list[str]]] = []
    for line in proc.stdout.splitlines():
        if line.startswith("@@commit "):
            _, commit, date = line.split()
            out.append((commit, date, []))
        elif out and line[:1] in ("+", "-") and not line.startswith(("+++", "---")):
            out[-1][2].append(line)
    return out


def last_changes(source: Path, names: list[str], scope: Path | None = None) -> dict[str, Change | str]:
    """name -> the Change that gave its value in `source` (a file inside a git checkout),
    searched over the history of the folder `scope` (default: the source's package);
    'uncommitted' where the working tree's value is not the committed one, 'unknown' where
    git cannot say (no checkout, no commit sets that value)."""
    scope = scope or source.parent.parent
    lines = source.read_text().splitlines()
    current = {n: v for n in names for line in lines if (v := value_of(line, n)) is not None}
    out: dict[str, Change | str] = dict.fromkeys(names, UNKNOWN)
    history = _history(names, scope)
    committed = _committed_lines(source) if history else []
    for name in (n for n in names if n in current):
        if history and current[name] not in (value_of(line, name) for line in committed):
            out[name] = UNCOMMITTED
            continue
        found = None
        for commit, date, changed in history:
            added = [v for x in changed if x[0] == "+" and (v := value_of(x[1:], name)) is not None]
            if current[name] in added:
                found = Change(commit, date)
            elif added:
                break  # before this commit the value was another (or there was none)
            # a commit that only removed a line (a copy elsewhere) leaves the value as it was
        if found is not None:
            out[name] = found
    return out


def _committed_lines(source: Path) -> list[str]:
    """HEAD's version of `source`, as lines ([] when git cannot show it)."""
    proc = _git(["show", f"HEAD:./{source.name}"], source.parent)
    return proc.stdout.splitlines() if proc is not None and proc.returncode == 0 else []


def changed_after(change: Change | str, revision: str | None, cwd: Path) -> bool | None:
    """True when the threshold's value was set after `revision` (a run's `git_revision`, a
    trailing '-dirty' ignored): its commit is not an ancestor of the revision, or it is
    uncommitted. None when it cannot be said (no revision, an unknown commit)."""
    if change == UNCOMMITTED:
        return True if revision else None
    if not isinstance(change, Change) or not revision:
        return None
    rev = revision.removesuffix("-dirty")
    proc = _git(["merge-base", "--is-ancestor", change.commit, rev], cwd)
    if proc is None or proc.returncode not in (0, 1):
        return None  # the run's revision is not in this checkout
    return proc.returncode == 1
