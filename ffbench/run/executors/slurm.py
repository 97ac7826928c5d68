"""`--executor slurm` (``pip install 'ffbench[slurm]'``): one SLURM array job per sweep.

submitit submits the jobs a sweep hands over as one array job (``sbatch --array=0-N%P``);
each array task runs a wrapper (`executors.run_remote`) that starts the worker as a fresh
interpreter, so its exit status, or the signal that killed it, is seen and returned with the
record to the driver, the only writer of the results folder. Each task gets the GPUs asked
for (``--gres``-style ``--gpus-per-node``, SLURM pins them through CUDA_VISIBLE_DEVICES), the
CPUs (``--cpus-per-task``; the thread count is passed explicitly, `executors.thread_env`),
the partition and the time limit.

What SLURM itself reports for a task that wrote no result: ``TIMEOUT`` is a timeout,
``OUT_OF_MEMORY`` (the job's cgroup limit) a worker killed by SIGKILL, ``CANCELLED`` (scancel,
Ctrl-C here) is dropped, anything else an error naming the state. submitit's requeue on
timeout is off (``max_num_timeout=0``): nothing is measured twice behind the sweep's back.

The submitit folder (``--slurm-folder``, default ``./slurm-jobs/``) holds the pickled jobs
and results and must be on a file system the nodes share; the results folder need not be.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import STDERR_TAIL_CHARS, BaseExecutor, Job, JobResult, default_gpus, require, run_remote, thread_env

DEFAULT_TIME_MINUTES = 60
DEFAULT_PARALLELISM = 64
POLL_SECONDS = 5.0  # how often the driver looks for finished array tasks
SACCT_EVERY_SECONDS = 60.0  # a task that died without a result is seen by sacct, asked this often


class SlurmExecutor(BaseExecutor):
    """One SLURM array job per `run` call (see the module's docstring)."""

    name = "slurm"
    remote = True

    def __init__(
        self,
        folder: str | Path | None = None,
        partition: str | None = None,
        time: int | None = None,  # noqa: A002 - sbatch's name (minutes)
        gpus_per_task: int | None = None,
        cpus_per_task: int | None = None,
        array_parallelism: int | None = None,
        option: dict | None = None,
        setup: list[str] | None = None,
        allow_mixed_devices: bool = False,
        poll_seconds: float | None = None,
    ) -> None:
        super().__init__(allow_mixed_devices)
        self.submitit = require("submitit", "slurm")
        self.folder = Path(folder or "slurm-jobs").resolve() / "%j"
        self.partition, self.time = partition, time or DEFAULT_TIME_MINUTES
        self.gpus_per_task, self.cpus_per_task = gpus_per_task, cpus_per_task
        self.slots = array_parallelism or DEFAULT_PARALLELISM
        self.option, self.setup = dict(option or {}), list(setup or [])
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._inflight: dict[str, object] = {}  # job id -> submitit job
        self._closed = False

    def _executor(self, first: Job):
        """A submitit executor with this sweep's sbatch parameters (the first job's device
        and threads decide the GPUs and CPUs of every array task)."""
        cpus = self.cpus_per_task or (first.spec.get("config") or {}).get("threads") or 1
        gpus = self.gpus_per_task if self.gpus_per_task is not None else default_gpus(first, None)
        params = dict(
            job_name="ffbench",
            time=self.time,
            nodes=1,
            ntasks_per_node=1,
            cpus_per_task=cpus,
            array_parallelism=self.slots,
        )
        if gpus:
            params["gpus_per_node"] = gpus
        if self.partition:
            params["partition"] = self.partition
        if self.setup:
            params["setup"] = self.setup
        if self.option:
            params["additional_parameters"] = self.option
        executor = self.submitit.SlurmExecutor(folder=self.folder, max_num_timeout=0)
        executor.update_parameters(**params)
        return executor, cpus

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        jobs = list(jobs)
        if not jobs or self._closed:
            return
        executor, cpus = self._executor(jobs[0])
        envs = [thread_env(job, cpus) for job in jobs]
        submitted = executor.map_array(run_remote, jobs, envs, ["slurm"] * len(jobs))
        started = time.perf_counter()
        mine = {task.job_id: (task, job) for task, job in zip(submitted, jobs)}
        with self._lock:
            self._inflight.update({key: task for key, (task, _) in mine.items()})
        last_sacct = time.monotonic()
        try:
            while mine and not self._closed:
                if time.monotonic() - last_sacct > SACCT_EVERY_SECONDS:
                    submitted[0].watcher.update()
                    last_sacct = time.monotonic()
                for key, (task, job) in list(mine.items()):
                    if task.done():
                        del mine[key]
                        with self._lock:
                            self._inflight.pop(key, None)
                        result = self._result(task, job, time.perf_counter() - started)
                        if result is not None:
                            yield result
                if mine:
                    time.sleep(self.poll_seconds or POLL_SECONDS)
        finally:
            self._cancel(list(mine))

    def _result(self, task, job: Job, wall: float) -> JobResult | None:
        utils = self.submitit.core.utils
        try:
            return JobResult(job, **task.result())
        except utils.UncompletedJobError as exc:  # SLURM ended the task before it wrote a result
            state = task.state.split()[0].upper()
            text = f"slurm: {state}: {exc}"[-STDERR_TAIL_CHARS:]
        except utils.FailedJobError as exc:  # the wrapper itself raised
            state, text = "FAILED", f"slurm: {exc}"[-STDERR_TAIL_CHARS:]
        if state.startswith("CANCELLED"):
            return None
        return JobResult(
            job,
            None,
            -9 if state == "OUT_OF_MEMORY" else None,
            wall,
            state == "TIMEOUT",
            text,
            executor="slurm",
            worker={"slurm_state": state, "slurm_job_id": task.job_id},
        )

    def _cancel(self, keys: list[str]) -> None:
        if not keys:
            return
        with self._lock:
            for key in keys:
                self._inflight.pop(key, None)
        subprocess.call(["scancel", *keys], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            keys = list(self._inflight)
        self._cancel(keys)
