"""The hostile-input cases' machinery: a Case, how it runs, and how its outcome is judged.

A case sets up a fresh folder, acts (an in-process `ffbench.cli.main([...])` call, a
subprocess, or a few of them), and is judged on four things, worst first:

- ``data lost``: the folder's state afterwards is wrong (a record lost, mislabelled or
  wrong, a file removed or changed, files left behind by a command that failed);
- ``traceback``: a Python traceback was printed, or an exception escaped `main`;
- ``wrong exit``: the exit status is not the expected one (a command that ran where it
  should have refused included), the message is not one line, or it does not say what it
  should;
- ``clean``: none of these.

Only `ffbench.cli.main`, `ffbench.results`, `ffbench.run.sweep` and subprocesses are used, so
tally.py can run the same cases against an older ffbench (before/after numbers).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

GROUPS = ("flags", "files", "data", "records", "faults", "concurrency", "plugin")
VERDICTS = ("clean", "data lost", "traceback", "wrong exit")
IGNORED = ("cache", ".pytest_cache", "__pycache__")  # scratch the runner itself owns


@dataclass
class Outcome:
    code: int | None
    out: str = ""
    err: str = ""
    escaped: str | None = None  # an exception that escaped main()
    notes: list[str] = field(default_factory=list)  # what a multi-step act found wrong with the data
    complaints: list[str] = field(default_factory=list)  # ... with what it was told


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    what: str  # one line for docs/hostile-inputs.md
    act: Callable[[Path], Outcome]
    exit: int = 2
    says: str = ""  # a fragment the message must hold
    setup: Callable[[Path], None] | None = None
    state: Callable[[Path], str | None] | None = None  # None: right; else what is wrong
    issue: str = ""  # the issue's numbered case it reproduces
    one_line: bool = True  # the message (stderr) is exactly one line

    @property
    def id(self) -> str:
        return f"{self.group}-{self.name}"


# -- acting -----------------------------------------------------------------------------


def _set_environ(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def environ(**changes: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in changes}
    try:
        _set_environ(changes)
        yield
    finally:
        _set_environ(old)


@contextlib.contextmanager
def patched(obj, name: str, value) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def run_main(tmp: Path, argv: list[str], **env: str | None) -> Outcome:
    """`ffbench.cli.main(argv)` in `tmp`, its streams captured, with a private data cache."""
    from ffbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        with environ(**{"FFBENCH_CACHE": str(tmp / "cache"), **env}):
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main([str(a) for a in argv])
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 2
                except RanTooLong:
                    raise
                except BaseException as exc:  # noqa: BLE001 - what escapes main is the finding
                    return Outcome(None, out.getvalue(), err.getvalue(), f"{type(exc).__name__}: {exc}")
    finally:
        os.chdir(cwd)
    return Outcome(code, out.getvalue(), err.getvalue())


def cli(*argv, **env: str | None) -> Callable[[Path], Outcome]:
    """An act: `ffbench ARGV` in-process; `{tmp}` in an argument is the case's folder."""
    return lambda tmp: run_main(
        tmp,
        [str(a).replace("{tmp}", str(tmp)) for a in argv],
        **{k: v if v is None else v.replace("{tmp}", str(tmp)) for k, v in env.items()},
    )


def child_env(tmp: Path, **env: str | None) -> dict:
    base = {**os.environ, "FFBENCH_CACHE": str(tmp / "cache"), "PYTHONUNBUFFERED": "1"}
    for k, v in env.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return base


def run_sub(tmp: Path, cmd: list[str], limits=None, timeout: float = 300, **env) -> Outcome:
    """A subprocess in `tmp` (`limits`: resource -> soft limit, set in the child)."""
    import resource

    def preexec() -> None:
        for res, value in (limits or {}).items():
            resource.setrlimit(res, (value, resource.getrlimit(res)[1]))

    proc = subprocess.run(
        cmd,
        cwd=tmp,
        env=child_env(tmp, **env),
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        preexec_fn=preexec if limits else None,
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def ffbench_sub(*argv, limits=None, timeout: float = 300, **env) -> Callable[[Path], Outcome]:
    """An act: `python -m ffbench ARGV` in a subprocess (killed after `timeout` s: a command
    that should have refused at once and runs instead)."""
    return lambda tmp: run_sub(
        tmp,
        [sys.executable, "-m", "ffbench", *[str(a).replace("{tmp}", str(tmp)) for a in argv]],
        limits,
        timeout,
        **env,
    )


# -- judging ----------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (but the runner's own scratch) with its bytes."""
    out = {}
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part in IGNORED for part in rel.parts):
            out[str(rel)] = p.read_bytes()
    return out


def untouched(before: dict[str, bytes], tmp: Path) -> tuple[str, str] | None:
    """(what, which files) when the folder changed: 'wrote', 'removed' or 'changed'."""
    after = snapshot(tmp)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    for what, names in (("removed", removed), ("changed", changed), ("wrote", added)):
        if names:
            return what, ", ".join(names[:3])
    return None


def has_traceback(o: Outcome) -> bool:
    text = o.out + o.err
    return o.escaped is not None or "Traceback (most recent call last)" in text or "INTERNALERROR" in text


def judge(case: Case, o: Outcome, tmp: Path, before: dict[str, bytes]) -> tuple[str, str]:
    """(verdict, why) for a case's outcome. Worst first: a wrong record or a file removed or
    changed (data lost); a traceback; a wrong exit status (a command that ran where it should
    have refused included); files left behind by a command that failed (data lost); a message
    that is not one line or does not say what it should (wrong exit)."""
    wrong = case.state(tmp) if case.state else None
    if wrong or o.notes:
        return "data lost", wrong or "; ".join(o.notes)
    changes = untouched(before, tmp) if case.exit and not case.state else None
    if changes and changes[0] != "wrote":
        return "data lost", f"{changes[0]} {changes[1]}"
    if has_traceback(o):
        return "traceback", o.escaped or (o.err + o.out).strip().splitlines()[-1][:300]
    lines = [ln for ln in o.err.strip().splitlines() if ln.strip()]
    if o.code != case.exit:
        ran = f" and wrote {changes[1]}" if changes else ""
        return "wrong exit", f"exit {o.code}, expected {case.exit}{ran}: {' | '.join(lines)[:300]}"
    if changes:
        return "data lost", f"failed, and left {changes[1]}"
    if case.one_line and case.exit and len(lines) != 1:
        return "wrong exit", f"{len(lines)} lines on stderr: {' | '.join(lines)[:300]}"
    if case.says and case.says not in o.err + o.out:
        return "wrong exit", f"does not say {case.says!r}: {' | '.join(lines)[:300]}"
    if o.complaints:
        return "wrong exit", "; ".join(o.complaints)
    return "clean", ""


class RanTooLong(BaseException):
    """Raised by the alarm of `run_case(limit=...)`: a command that should refuse at once ran."""


def run_case(case: Case, tmp: Path, limit: int | None = None) -> tuple[str, str]:
    """Set up, act, judge. `limit`: seconds an in-process act may take (tally.py, for an
    older ffbench that runs what it should refuse) before it is stopped and judged."""
    import signal

    tmp.mkdir(parents=True, exist_ok=True)
    if case.setup:
        case.setup(tmp)
    before = snapshot(tmp)

    def alarm(signum, frame):
        raise RanTooLong(f"still running after {limit} s")

    old = signal.signal(signal.SIGALRM, alarm) if limit else None
    if limit:
        signal.alarm(limit)
    try:
        outcome = case.act(tmp)
    except subprocess.TimeoutExpired as exc:  # it ran instead of refusing
        outcome = Outcome(None, "", f"still running after {exc.timeout:g} s: killed")
    except RanTooLong as exc:
        outcome = Outcome(None, "", f"{exc}: stopped")
    finally:
        if limit:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    return judge(case, outcome, tmp, before)
