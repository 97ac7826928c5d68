"""Where worker runs happen. A sweep hands an executor `Job`s and reads back `JobResult`s.

Every job is one configuration run by an entry module's ``main([SPEC_JSON, OUT_JSON])``
(`ENTRIES`: a measurement, ``ffbench.run.worker``; an accuracy run, ``ffbench.run.fit``;
the environment of a remote worker, ``ffbench.run.executors.probe``), in a process of its
own. The executors:

- ``local`` (default, `template.TemplateExecutor`): each job a child forked from a template
  process that has already imported torch (glibc's mmap threshold lowered before the import);
  the default-malloc timing child forked from a second template that kept glibc's defaults.
  One job at a time on this machine.
- ``subprocess`` (`subprocess.SubprocessExecutor`): each job a fresh interpreter,
  ``python -m <entry> SPEC OUT``. One job at a time.
- ``ray`` (`ray.RayExecutor`, ``pip install 'ffbench[ray]'``): one Ray task per job, one GPU
  each, the worker a subprocess of the task; records come back to the driver.
- ``slurm`` (`slurm.SlurmExecutor`, ``pip install 'ffbench[slurm]'``): one SLURM array job
  per batch of jobs (submitit), each array task a wrapper that starts the worker.

Whatever the executor, the driver (the sweep) is the only writer of the results folder, and a
`JobResult` says what the executor saw: the record (or None), the exit status (negative: the
signal that killed the worker), whether it timed out or was cancelled, the wall time, the
tail of the worker's output and where it ran (`probe`). Mapping that to a record status is
the sweep's job (`ffbench.run.sweep.finalize`).

A cancelled job (Ctrl-C, a closed sweep) is never yielded: a worker killed by the cancel is
not a result.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess as _sp  # not `subprocess`: the submodule .subprocess would replace that name
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ...errors import ConfigError
from ...proc import cpu_model
from ...results.store import loads_strict, write_text_atomic
from ..statuses import oom_kill_count

PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder holding the ffbench package

# job kind -> the module whose main([SPEC_JSON, OUT_JSON]) runs it
ENTRIES = {
    "measure": "ffbench.run.worker",
    "train": "ffbench.run.fit",
    "environment": "ffbench.run.executors.probe",
    "time-group": "ffbench.run.timing",
}
EXECUTORS = ("local", "subprocess", "ray", "slurm")
STDERR_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Job:
    key: str  # the record file name this job produces
    spec: dict  # what the entry module reads (config, settings, budget, source)
    spec_path: Path  # where to write the spec (on the machine that runs the job)
    out_path: Path  # where the worker writes its record
    timeout_seconds: float | None = None
    kind: str = "measure"  # a key of ENTRIES
    stream_output: bool = False  # local executors: let the worker print to this terminal

    @property
    def entry(self) -> str:
        return ENTRIES[self.kind]

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.entry, str(self.spec_path), str(self.out_path)]

    def moved(self, folder: Path) -> Job:
        """The same job with its scratch files in `folder` (on a remote worker)."""
        folder = Path(folder)
        return Job(
            self.key,
            self.spec,
            folder / self.spec_path.name,
            folder / self.out_path.name,
            self.timeout_seconds,
            self.kind,
            False,
        )


@dataclass(frozen=True)
class JobResult:
    job: Job
    record: dict | None  # the worker's record, None if it wrote none
    returncode: int | None  # exit status; negative: killed by that signal; None: unknown / timed out
    wall_seconds: float
    timed_out: bool
    stderr_tail: str
    cancelled: bool = False  # never yielded by an executor; a guard for whoever builds results
    executor: str = "local"
    probe: dict | None = None  # where it ran: host, device model, driver (`probe()`)
    worker: dict = field(default_factory=dict)  # what else the executor saw (e.g. start RSS)
    oom_kills: tuple[int | None, int | None] = (None, None)  # cgroup oom_kill count before, after

    @property
    def signal(self) -> int | None:
        """The signal that ended the worker, if one did."""
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None

    def fields(self) -> dict:
        """Everything but the job, JSON-able (what a remote worker sends back)."""
        return {
            "record": self.record,
            "returncode": self.returncode,
            "wall_seconds": self.wall_seconds,
            "timed_out": self.timed_out,
            "stderr_tail": self.stderr_tail,
            "cancelled": self.cancelled,
            "executor": self.executor,
            "probe": self.probe,
            "worker": self.worker,
            "oom_kills": list(self.oom_kills),
        }


class Executor(Protocol):
    name: str
    slots: int  # jobs it runs at once (1: one after the other)
    remote: bool  # jobs may run on another machine: ask it for the environment
    allow_mixed_devices: bool  # accept records measured on another device model than the folder's

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        """Run every job; yield each result as soon as it is known (any order)."""
        ...

    def environment(self, device: str) -> dict | None:
        """`environment()` of `device` as a worker sees it (remote executors), else None."""
        ...

    def close(self) -> None: ...


class BaseExecutor:
    """What every executor shares: a context manager that closes it, no remote environment."""

    name = "base"
    slots = 1
    remote = False

    def __init__(self, allow_mixed_devices: bool = False) -> None:
        self.allow_mixed_devices = allow_mixed_devices
        self._environments: dict[str, dict] = {}

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:  # pragma: no cover - interface
        raise NotImplementedError

    def environment(self, device: str) -> dict | None:
        """A remote executor runs one `probe` job on a worker (once per device name)."""
        if not self.remote:
            return None
        if device not in self._environments:
            self._environments[device] = self._probe_environment(device)
        return self._environments[device]

    def _probe_environment(self, device: str) -> dict:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="ffbench-probe-") as tmp:
            paths = Path(tmp) / "env.spec", Path(tmp) / "env.json"
            job = Job("environment", {"device": device}, *paths, timeout_seconds=600, kind="environment")
            result = next(iter(self.run([job])), None)
        if result is None or result.record is None:
            tail = (result.stderr_tail.strip().splitlines() or ["no output"])[-1] if result else "cancelled"
            raise ConfigError(f"could not read the environment of a {self.name} worker: {tail[:300]}")
        return result.record

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def require(module: str, extra: str):
    """Import a cluster executor's library, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"--executor {extra} needs {module}: pip install 'ffbench[{extra}]'") from None


# -- running one job as a local process (shared by the executors) -------------------------


def worker_env(extra: dict | None = None) -> dict:
    """The environment of a worker process: ffbench importable, unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def write_spec(job: Job, parent_pid: int) -> Path:
    """Write the job's spec (with the pid the worker must die with); returns its log path."""
    job.spec_path.parent.mkdir(parents=True, exist_ok=True)
    job.out_path.unlink(missing_ok=True)
    write_text_atomic(job.spec_path, json.dumps({**job.spec, "parent_pid": parent_pid}))
    return job.out_path.with_suffix(".log")


def collect(job: Job, timed_out: bool) -> tuple[dict | None, str]:
    """The record the worker wrote (None if none, if it timed out, or if it is not a JSON
    object read by the strict rules of `store.loads_strict`) and its output's tail; the job's
    scratch files are removed."""
    record = None
    if not timed_out and job.out_path.exists():
        try:
            record = loads_strict(job.out_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            record = None
    if not isinstance(record, dict):
        record = None
    log = job.out_path.with_suffix(".log")
    tail = log.read_text(errors="replace")[-STDERR_TAIL_CHARS:] if log.exists() else ""
    for path in (job.out_path, job.spec_path, log):
        path.unlink(missing_ok=True)
    return record, tail


def run_process(
    job: Job, env: dict | None = None, executor: str = "subprocess", where: dict | None = None
) -> JobResult:
    """Run `job` as a fresh interpreter and wait (killing it at the timeout or on any
    exception, Ctrl-C and a Ray cancel included). Its exit status is what the OS says;
    `where` is this machine's `probe()` (taken now if not given)."""
    log = write_spec(job, os.getpid())
    started = time.perf_counter()
    timed_out = False
    kills_before = oom_kill_count()
    with open(log, "w") as out:
        quiet = {} if job.stream_output else {"stdout": out, "stderr": _sp.STDOUT}
        proc = _sp.Popen(job.command(), stdin=_sp.DEVNULL, env=worker_env(env), **quiet)
        try:
            returncode: int | None = proc.wait(timeout=job.timeout_seconds)
        except _sp.TimeoutExpired:
            proc.kill()
            proc.wait()
            returncode, timed_out = None, True
        except BaseException:  # never leave a worker behind
            proc.kill()
            proc.wait()
            raise
    wall = time.perf_counter() - started
    kills = (kills_before, oom_kill_count())
    record, tail = collect(job, timed_out)
    return JobResult(
        job,
        record,
        returncode,
        wall,
        timed_out,
        tail,
        executor=executor,
        probe=where or probe(),
        oom_kills=kills,
    )


def run_remote(job: Job, env: dict, executor: str) -> dict:
    """On a cluster worker (a Ray task, a SLURM array task): run `job` as a fresh interpreter
    in a scratch folder of this machine; return `JobResult.fields()` for the driver, the only
    writer of the results folder. An exception (a Ray cancel) kills the worker first."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ffbench-job-") as tmp:
        return run_process(job.moved(Path(tmp)), env, executor).fields()


def job_device(job: Job) -> str:
    return (job.spec.get("config") or {}).get("device") or job.spec.get("device") or "auto"


def thread_env(job: Job, cpus: int) -> dict:
    """Thread counts passed explicitly: the configuration's, else the CPUs the task holds
    (a cluster's own default, such as Ray's OMP_NUM_THREADS, never decides)."""
    threads = (job.spec.get("config") or {}).get("threads") or cpus
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def default_gpus(job: Job, cluster_gpus: float | None) -> int:
    """GPUs per task: none for a CPU run, else one (none for `auto` on a cluster without any)."""
    device = job_device(job)
    if device == "cpu" or (device == "auto" and cluster_gpus == 0):
        return 0
    if cluster_gpus == 0:
        raise ConfigError(f"--device {device}, but the cluster has no GPU")
    return 1


# -- where a job ran ------------------------------------------------------------------------


def _gpus() -> list[dict]:
    """The GPUs this process may use (CUDA_VISIBLE_DEVICES applied), from nvidia-smi."""
    try:
        out = _sp.run(
            ["nvidia-smi", "--query-gpu=index,uuid,name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, _sp.SubprocessError):
        return []
    rows = [[c.strip() for c in ln.split(",")] for ln in out.stdout.splitlines() if ln.count(",") == 3]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        wanted = [v.strip() for v in visible.split(",") if v.strip()]
        rows = [r for w in wanted for r in rows if w in (r[0], r[1])]
    return [{"index": r[0], "uuid": r[1], "name": r[2], "driver": r[3]} for r in rows]


def probe() -> dict:
    """Where this process runs: host, CPU, the GPUs it may use and their driver."""
    gpus = _gpus()
    return {
        "host": platform.node(),
        "cpu_model": cpu_model(),
        "gpu_models": sorted({g["name"] for g in gpus}),
        "gpus": gpus,
        "driver": gpus[0]["driver"] if gpus else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


__all__ = [
    "ENTRIES",
    "EXECUTORS",
    "PACKAGE_ROOT",
    "BaseExecutor",
    "Executor",
    "Job",
    "JobResult",
    "collect",
    "default_gpus",
    "get_executor",
    "job_device",
    "probe",
    "require",
    "run_process",
    "run_remote",
    "thread_env",
    "worker_env",
    "write_spec",
]
