"""`--executor ray` (``pip install 'ffbench[ray]'``): one Ray task per job.

Each task holds one GPU (Ray pins it through ``CUDA_VISIBLE_DEVICES``; none for a CPU run)
and starts the worker as a fresh interpreter in a scratch folder of its node
(`executors.run_remote`), so measurements are as isolated as with ``--executor subprocess``;
the record comes back to the driver, the only writer of the results folder. Every record
carries where it ran (`executors.probe`: host, GPU model, driver, CUDA_VISIBLE_DEVICES).

Ray defaults that would corrupt measurements, and what is done instead:

- ``max_retries=3``: a failed or killed worker would be measured again, silently. Here
  ``max_retries=0`` and ``retry_exceptions=False``: a failure is a result.
- ``OMP_NUM_THREADS`` set to the task's CPU count: the thread count is passed explicitly
  (`executors.thread_env`: ``--threads``, else the task's CPUs).
- a cancelled task's worker, killed, would look like a worker killed by the kernel (status
  ``oom``): results of cancelled tasks are dropped, and the task re-raises the cancel.
- the memory monitor kills workers when the node runs low: turned off for a cluster this
  driver starts (``RAY_memory_monitor_refresh_ms=0``); start your own cluster the same way
  (README). A worker killed by Ray is recorded as an ``error`` naming Ray's exception.

Ctrl-C (or an error in the driver) cancels every task in flight; a resumed sweep runs what
has no record.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator

from . import STDERR_TAIL_CHARS, BaseExecutor, Job, JobResult, default_gpus, require, run_remote, thread_env

CANCEL_GRACE_SECONDS = 30.0  # how long close() waits for cancelled tasks to stop their workers


class RayExecutor(BaseExecutor):
    """One Ray task per job (see the module's docstring)."""

    name = "ray"
    remote = True

    def __init__(
        self,
        address: str | None = None,
        gpus_per_task: int | None = None,
        cpus_per_task: int | None = None,
        accelerator_type: str | None = None,
        allow_mixed_devices: bool = False,
        init_options: dict | None = None,
    ) -> None:
        super().__init__(allow_mixed_devices)
        self.ray = require("ray", "ray")
        self.address, self.accelerator_type = address, accelerator_type
        self.gpus_per_task, self.cpus_per_task = gpus_per_task, cpus_per_task
        self.init_options = dict(init_options or {})
        self._task = None
        self._lock = threading.Lock()
        self._inflight: set = set()
        self._cancelled: set = set()
        self._closed = False
        self._started = False  # this driver started the cluster (and shuts it down)

    def connect(self) -> None:
        if self._task is not None:
            return
        if not self.ray.is_initialized():
            if self.address is None:  # a local cluster: its memory monitor must not kill workers
                os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
                self._started = True
            options = {"include_dashboard": False, "log_to_driver": False, **self.init_options}
            self.ray.init(address=self.address, **options)
        self._task = self.ray.remote(run_remote)

    @property
    def slots(self) -> int:
        """Tasks the cluster can run at once (GPUs, else CPUs)."""
        self.connect()
        resources = self.ray.cluster_resources()
        return max(1, int(resources.get("GPU", 0)) or int(resources.get("CPU", 1)))

    def _options(self, job: Job) -> dict:
        cpus = self.cpus_per_task or (job.spec.get("config") or {}).get("threads") or 1
        gpus = self.gpus_per_task
        if gpus is None:
            gpus = default_gpus(job, self.ray.cluster_resources().get("GPU", 0))
        options = dict(num_gpus=gpus, num_cpus=cpus, max_retries=0, retry_exceptions=False)
        if self.accelerator_type:
            options["accelerator_type"] = self.accelerator_type
        return options

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        self.connect()
        mine: dict = {}  # ref -> (job, started)
        try:
            for job in jobs:
                options = self._options(job)
                ref = self._task.options(name=f"ffbench {job.key}", **options).remote(
                    job, thread_env(job, options["num_cpus"]), "ray"
                )
                mine[ref] = (job, time.perf_counter())
                with self._lock:
                    self._inflight.add(ref)
            while mine and not self._closed:
                done, _ = self.ray.wait(list(mine), num_returns=1, timeout=1.0)
                for ref in done:
                    job, started = mine.pop(ref)
                    with self._lock:
                        self._inflight.discard(ref)
                    result = self._result(ref, job, started)
                    if result is not None:
                        yield result
        finally:
            self._cancel(list(mine))

    def _result(self, ref, job: Job, started: float) -> JobResult | None:
        exceptions = self.ray.exceptions
        try:
            fields = self.ray.get(ref)
        except exceptions.TaskCancelledError:
            return None
        except exceptions.RayError as exc:  # the task's process or node died, Ray killed it, ...
            text = f"ray: {type(exc).__name__}: {exc}"
            fields = {
                "record": None,
                "returncode": None,
                "wall_seconds": time.perf_counter() - started,
                "timed_out": False,
                "stderr_tail": text[-STDERR_TAIL_CHARS:],
                "executor": "ray",
            }
        if ref in self._cancelled:
            return None
        return JobResult(job, **fields)

    def _cancel(self, refs: list) -> None:
        """Cancel tasks (a running one kills its worker and re-raises) and wait for them."""
        if not refs:
            return
        with self._lock:
            self._cancelled.update(refs)
            self._inflight.difference_update(refs)
        for ref in refs:
            try:
                self.ray.cancel(ref, force=False)
            except Exception:  # noqa: BLE001 - already finished, or the cluster is gone
                pass
        try:
            self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_SECONDS)
        except Exception:  # noqa: BLE001 - the cluster is gone: nothing left to wait for
            pass

    def close(self) -> None:
        self._closed = True
        with self._lock:
            refs = list(self._inflight)
        self._cancel(refs)
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
            self._started = False
        self._task = None
