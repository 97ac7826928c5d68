"""`--executor slurm` through fake `sbatch`/`srun`/`sacct`/`scancel` on PATH (tests/fake_slurm.py):
one array job per sweep with the partition/time/GPU flags asked for, a wrapper that sees the
worker's exit status, timeouts and kills as results, a cancelled task dropped and resumed."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit", reason="the SLURM executor needs the extra: pip install 'ffbench[slurm]'")

import fake_slurm  # noqa: E402
from processes import command_lines  # noqa: E402

from ffbench.cli import main  # noqa: E402
from ffbench.config import RunConfig  # noqa: E402
from ffbench.results import rows as results  # noqa: E402
from ffbench.run.executors import Job  # noqa: E402
from ffbench.run.executors import slurm as slurm_executor  # noqa: E402

TINY = ["--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--steps", "1"]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake SLURM on PATH; returns its state folder (job counter, tasks, submitted scripts)."""
    state = tmp_path / "slurm-state"
    for key, value in fake_slurm.install(tmp_path / "bin", state).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(slurm_executor, "POLL_SECONDS", 0.2)
    return state


def slurm_flags(tmp_path, *more):
    return ["--executor", "slurm", "--slurm-folder", str(tmp_path / "jobs"), "--quiet", *more]


def submitted(state: Path) -> dict[str, str]:
    return {p.stem: p.read_text() for p in state.glob("*.sh")}


def test_a_sweep_is_one_array_job_with_the_flags_asked_for(tmp_path, fake):
    out = tmp_path / "sweep"
    grid = ["--trainers", "bp,ff", "--depths", "1", "--widths", "16", "--batch-sizes", "4,8"]
    flags = ["--slurm-partition", "gpu", "--slurm-time", "30", "--slurm-gpus-per-task", "1"]
    flags += [
        "--slurm-array-parallelism",
        "2",
        "--slurm-option",
        "account=proj",
        "--slurm-setup",
        "echo ready",
    ]
    assert main(["sweep", *TINY, *grid, "--out", str(out), *slurm_flags(tmp_path, *flags)]) == 0
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    assert {r["worker"]["executor"] for r in records} == {"slurm"}
    scripts = submitted(fake)
    arrays = sorted(
        (text for text in scripts.values() if "--array=" in text), key=lambda t: "--array=0-3" not in t
    )
    # the environment probe, one array job of memory workers (4), one of timing jobs (2 configurations)
    assert len(scripts) == 3 and len(arrays) == 2
    for line in ("--array=0-3%2", "--partition=gpu", "--time=30", "--gpus-per-node=1", "--account=proj"):
        assert line in arrays[0]
    assert "--array=0-1%2" in arrays[1]
    assert "echo ready" in arrays[0] and "--cpus-per-task=1" in arrays[0]
    assert {r["timing"]["job"] for r in records} and all(r["metrics"]["timed_steps"] >= 1 for r in records)
    environment = json.loads((out / "environment.json").read_text())
    assert "SLURM array task" in environment["isolation"]


def test_timeout_kill_and_cancel(tmp_path, fake):
    out = tmp_path / "timeout"
    grid = ["--trainers", "bp", "--depths", "1", "--widths", "16", "--batch-sizes", "4"]
    assert main(["sweep", *TINY, *grid, "--timeout", "0.01", "--out", str(out), *slurm_flags(tmp_path)]) == 0
    assert list(results.load(out).status) == ["timeout"]

    # a worker killed by a signal: the wrapper sees it; a cancelled task is dropped
    config = RunConfig(trainer="ff", depth=4, width=1024, batch_size=512, dataset="synthetic", device="cpu")
    spec = {"config": config.replace(threads=1).to_dict(), "settings": {"timing_steps": 30}, "source": "t"}
    jobs = [Job(f"job{i}", spec, tmp_path / f"job{i}.spec", tmp_path / f"job{i}.json") for i in range(2)]
    box = []
    executor = slurm_executor.SlurmExecutor(folder=tmp_path / "jobs", array_parallelism=2)
    thread = threading.Thread(target=lambda: box.extend(executor.run(jobs)))
    thread.start()
    workers = wait_for_workers(2)
    os.kill(workers["job0.spec"], signal.SIGKILL)
    while not box and thread.is_alive():
        time.sleep(0.1)
    subprocess_call(["scancel", next(p.name for p in fake.glob("*_1"))])
    thread.join(300)
    [result] = box  # the cancelled one is not a result
    assert result.job.key == "job0" and result.returncode == -signal.SIGKILL and result.record is None
    assert result.executor == "slurm" and result.probe["host"]
    deadline = time.time() + 20
    while worker_pids() and time.time() < deadline:
        time.sleep(0.1)
    assert not worker_pids(), "scancel kills the task's worker"


def subprocess_call(command):
    import subprocess

    assert subprocess.call(command) == 0


def worker_pids() -> dict[str, int]:
    """Worker interpreters of array tasks, by spec file name."""
    found = {}
    for pid, argv in command_lines().items():
        if "ffbench.run.worker" in argv and any("ffbench-job-" in a for a in argv):
            found[Path(argv[-2]).name] = pid
    return found


def wait_for_workers(n: int) -> dict[str, int]:
    deadline = time.time() + 180
    while time.time() < deadline and len(worker_pids()) < n:
        time.sleep(0.05)
    found = worker_pids()
    assert len(found) == n, found
    return found
