"""`--executor ray` on a local Ray cluster with two fake GPUs (CPU only): one GPU pinned per
task, failures as results, cancel drops results and leaves no worker, a resume completes."""

import json
import os
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray", reason="the Ray executor needs the extra: pip install 'ffbench[ray]'")

from processes import matching  # noqa: E402

from ffbench.cli import main  # noqa: E402
from ffbench.config import RunConfig  # noqa: E402
from ffbench.results import rows as results  # noqa: E402
from ffbench.results.store import ResultsFolder  # noqa: E402
from ffbench.run.executors import Job  # noqa: E402
from ffbench.run.executors.ray import RayExecutor  # noqa: E402
from ffbench.run.sweep import measure, plan_sweep, run_plan  # noqa: E402

TINY = ["--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--steps", "1"]
RAY = ["--executor", "ray", "--ray-gpus-per-task", "1", "--quiet"]


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("RAY_memory_monitor_refresh_ms", "0")
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def ray_workers() -> list[int]:
    """Worker interpreters started by a Ray task (their scratch folder says so)."""
    return matching("ffbench.run.worker", "ffbench-job-")


def test_one_fake_gpu_per_task_and_where_each_record_ran(tmp_path, cluster):
    out = tmp_path / "sweep"
    grid = ["--trainers", "bp,ff", "--depths", "1", "--widths", "16", "--batch-sizes", "4,8"]
    assert main(["sweep", *TINY, *grid, "--out", str(out), *RAY]) == 0
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    for record in records:
        worker = record["worker"]
        assert worker["executor"] == "ray" and worker["returncode"] == 0
        assert worker["probe"]["cuda_visible_devices"] in ("0", "1")  # exactly one GPU, pinned
        assert worker["probe"]["host"] and record["threads"] == 1
    environment = json.loads((out / "environment.json").read_text())
    assert "Ray task" in environment["isolation"] and environment["probe"]["host"]


def test_failures_are_results_never_retried(tmp_path, cluster):
    out = tmp_path / "timeout"
    grid = ["--trainers", "bp", "--depths", "1", "--widths", "16", "--batch-sizes", "4"]
    assert main(["sweep", *TINY, *grid, "--timeout", "0.01", "--out", str(out), *RAY]) == 0
    assert list(results.load(out).status) == ["timeout"]
    out = tmp_path / "oom"
    grid = ["--trainers", "bp", "--depths", "2", "--widths", "256", "--batch-sizes", "16,20000"]
    assert main(["sweep", *TINY, *grid, "--memory-limit", "96MiB", "--out", str(out), *RAY]) == 0
    df = results.load(out).set_index("batch_size")
    assert df.loc[16, "status"] == "ok" and df.loc[20000, "status"] == "oom"
    # a worker killed by a signal: its exit status comes back (and it is not run again)
    config = RunConfig(trainer="ff", depth=4, width=1024, batch_size=512, dataset="synthetic", device="cpu")
    spec = {"config": config.replace(threads=1).to_dict(), "settings": {"timing_steps": 30}, "source": "t"}
    job = Job("killed", spec, tmp_path / "killed.spec", tmp_path / "killed.json")
    box = []
    with RayExecutor(gpus_per_task=1) as executor:
        thread = threading.Thread(target=lambda: box.extend(executor.run([job])))
        thread.start()
        deadline = time.time() + 180
        while time.time() < deadline and not ray_workers():
            time.sleep(0.05)
        os.kill(ray_workers()[0], signal.SIGKILL)
        thread.join(180)
    [result] = box
    assert result.returncode == -signal.SIGKILL and result.signal == signal.SIGKILL
    assert (
        result.record is None and not result.cancelled and result.probe["cuda_visible_devices"] in ("0", "1")
    )


def test_cancel_drops_results_and_a_resume_completes(tmp_path, cluster):
    out = tmp_path / "sweep"
    grid = {"trainers": "bp,ff", "depths": "1,2", "widths": "16", "batch_sizes": "4"}
    flags = {"dataset": "synthetic", "device": "cpu", "threads": 1}
    with RayExecutor(gpus_per_task=1) as executor:
        plan = plan_sweep(
            grid_flags=grid, config_flags=flags, setting_flags={"steps": 1}, out=str(out), executor=executor
        )
        folder = ResultsFolder.open(
            plan.out,
            command="sweep",
            grid=plan.grid,
            base_config=plan.base.to_dict(),
            settings=plan.settings.to_dict(),
            environment=plan.environment,
        )
        records = measure(folder, plan.configs, plan.settings, executor=executor)
        next(records)
        records.close()  # what Ctrl-C does: every task in flight cancelled, its result dropped
        assert len(list((out / "records").glob("*.json"))) == 1
        assert not ray_workers(), "a cancelled task kills its worker"
        run_plan(plan, executor=executor, progress=False, echo=lambda s: None)
    df = results.load(out)
    assert len(df) == 4 and df["config_hash"].is_unique and set(df.status) == {"ok"}
