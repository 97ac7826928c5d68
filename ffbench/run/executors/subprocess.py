"""`--executor subprocess`: each job a fresh interpreter (``python -m <entry> SPEC OUT``),
one at a time, so runs never share cores or memory. Slower than the default (every job
imports torch again) but nothing is inherited: the reference the default is checked against.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from . import BaseExecutor, Job, JobResult, probe, run_process


class SubprocessExecutor(BaseExecutor):
    """One fresh subprocess per job, sequentially. Ctrl-C kills the running worker."""

    name = "subprocess"

    def __init__(self, allow_mixed_devices: bool = False) -> None:
        super().__init__(allow_mixed_devices)
        self._where: dict | None = None

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        for job in jobs:
            yield self.run_one(job)

    def run_one(self, job: Job) -> JobResult:
        if self._where is None:
            self._where = probe()
        return run_process(job, executor="local subprocess", where=self._where)
