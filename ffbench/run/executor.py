"""Where worker runs happen. The sweep hands an executor `Job`s and reads back `JobResult`s.

`LocalExecutor` (the default) runs each job as a fresh local subprocess
(`python -m ffbench.run.worker SPEC OUT`), one at a time so runs never share cores or memory.
A cluster executor implements the same `run(jobs)` generator: submit the same command
line, wait, and yield a `JobResult` per job as it finishes (any order). Nothing else in
ffbench needs to change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..store import loads_strict, write_text_atomic
from .statuses import oom_kill_count

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the ffbench package


@dataclass(frozen=True)
class Job:
    key: str  # the record file name this job produces
    spec: dict  # what ffbench.run.worker reads (config, settings, budget, source)
    spec_path: Path  # where to write the spec
    out_path: Path  # where the worker writes its record
    timeout_seconds: float | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "ffbench.run.worker", str(self.spec_path), str(self.out_path)]


@dataclass(frozen=True)
class JobResult:
    job: Job
    record: dict | None  # the worker's record, None if it wrote none
    returncode: int | None  # None when killed for the timeout
    wall_seconds: float
    timed_out: bool
    stderr_tail: str
    oom_kills: tuple[int | None, int | None] = (None, None)  # cgroup oom_kill count before, after


class Executor(Protocol):
    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Run every job; yield each result as soon as it is known."""
        ...


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class LocalExecutor:
    """One fresh subprocess per job, sequentially. Ctrl-C kills the running worker."""

    def __init__(self, stderr_tail_chars: int = 4000):
        self.stderr_tail_chars = stderr_tail_chars

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        for job in jobs:
            yield self.run_one(job)

    def run_one(self, job: Job) -> JobResult:
        job.spec_path.parent.mkdir(parents=True, exist_ok=True)
        job.out_path.unlink(missing_ok=True)
        write_text_atomic(job.spec_path, json.dumps({**job.spec, "parent_pid": os.getpid()}))
        log = job.out_path.with_suffix(".log")
        started = time.perf_counter()
        timed_out = False
        kills_before = oom_kill_count()
        with open(log, "w") as err:
            proc = subprocess.Popen(
                job.command(), stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT, env=_env()
            )
            try:
                returncode: int | None = proc.wait(timeout=job.timeout_seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                returncode, timed_out = None, True
            except BaseException:  # Ctrl-C: never leave a worker behind
                proc.kill()
                proc.wait()
                raise
        wall = time.perf_counter() - started
        kills = (kills_before, oom_kill_count())
        record = None
        if not timed_out and job.out_path.exists():
            try:
                record = loads_strict(job.out_path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                record = None
        tail = log.read_text(errors="replace")[-self.stderr_tail_chars :] if log.exists() else ""
        for path in (job.out_path, job.spec_path, log):
            path.unlink(missing_ok=True)
        if not isinstance(record, dict):
            record = None
        return JobResult(job, record, returncode, wall, timed_out, tail, kills)
