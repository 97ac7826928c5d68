"""The local executors: the template (forked) one measures what a fresh interpreter measures,
and a worker's end (exit, kill, timeout, the driver's death) is seen the same way."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from processes import matching

from ffbench.config import RunConfig
from ffbench.errors import ConfigError
from ffbench.results.store import ResultsFolder
from ffbench.run.executors import Job, JobResult
from ffbench.run.executors.choice import get_executor
from ffbench.run.executors.template import TemplateExecutor
from ffbench.run.sweep import SweepSettings, finalize, measure

ROOT = Path(__file__).resolve().parents[1]
MiB = 2**20


def config(**kw) -> RunConfig:
    base = dict(trainer="bp", depth=2, width=256, batch_size=64, dataset="synthetic", device="cpu", threads=1)
    return RunConfig(**{**base, **kw})


def job(tmp: Path, cfg: RunConfig, timeout: float | None = None, steps: int = 3) -> Job:
    spec = {
        "config": cfg.to_dict(),
        "settings": {"timing_steps": steps, "warmup_steps": 1, "timeline": False},
        "memory_limit_bytes": None,
        "source": "test",
    }
    key = cfg.short_name()
    return Job(key, spec, tmp / f"{key}.spec", tmp / f"{key}.json", timeout)


@pytest.fixture(scope="module")
def template():
    with TemplateExecutor() as executor:
        yield executor


@pytest.fixture(scope="module")
def fresh():
    with get_executor("subprocess") as executor:
        yield executor


def test_template_measures_what_a_fresh_interpreter_measures(tmp_path, template, fresh):
    """The isolation proof: identical tensor-level bytes, RSS rises within 1 MiB, the worker's
    start recorded, and the default-malloc timing child served by the second template."""
    for cfg in (config(), config(trainer="ff", depth=1), config(trainer="bp-inbackward", batch_size=256)):
        forked = template.run_one(job(tmp_path, cfg))
        reference = fresh.run_one(job(tmp_path, cfg))
        for result in (forked, reference):
            assert result.returncode == 0 and result.record["status"] == "ok", result.stderr_tail
        a, b = forked.record["metrics"], reference.record["metrics"]
        tensor = sorted(k for k in b if k.startswith("tensor_") or k.startswith("analytic_"))
        assert tensor and {k: a[k] for k in tensor} == {k: b[k] for k in tensor}
        assert abs(a["rss_rise_bytes"] - b["rss_rise_bytes"]) <= MiB, (
            cfg,
            a["rss_rise_bytes"],
            b["rss_rise_bytes"],
        )
        assert forked.record["allocator_setting"] == reference.record["allocator_setting"]
        assert "M_MMAP_THRESHOLD=65536" in forked.record["allocator_setting"]
        # step times: the timing protocol in a child forked from the default-malloc template
        assert "timing_error" not in forked.record and a["timed_steps"] >= 5
        assert "M_MMAP_THRESHOLD" not in forked.record["timing"]["allocator_setting"]
        for result in (forked, reference):  # the worker's baseline: after data and warm-up, before the run
            assert (
                result.record["baseline"]["vm_data_bytes"] > 0 and result.record["baseline"]["rss_bytes"] > 0
            )
        assert forked.worker["start_rss_bytes"] > 100 * MiB  # torch was imported before the fork
        assert forked.worker["start_vm_data_bytes"] > 0
        assert forked.worker["pid"] != reference.record["worker"]["pid"]
        assert forked.probe["host"] and forked.executor.startswith("local template")


def test_forked_child_gets_its_own_thread_pool(tmp_path, template):
    """torch's OpenMP pool is created by the first parallel op: a template that never ran one
    can fork children that each get the threads they ask for."""
    code = (
        "import os, torch\n"
        "from ffbench.run.executors.template import preload\n"
        "preload()\n"
        "for n in (1, 2):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        torch.set_num_threads(n)\n"
        "        before = len(os.listdir('/proc/self/task'))\n"
        "        a = torch.randn(512, 512); [a @ a for _ in range(5)]\n"
        "        after = len(os.listdir('/proc/self/task'))\n"
        "        print(n, torch.get_num_threads(), after - before, flush=True)\n"
        "        os._exit(0)\n"
        "    assert os.waitpid(pid, 0)[1] == 0\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [list(map(int, line.split())) for line in out.stdout.split("\n") if line.strip()]
    assert rows[0][:2] == [1, 1] and rows[0][2] == 0  # one thread: no pool
    assert rows[1][:2] == [2, 2] and rows[1][2] >= 1  # two: the child started its own worker thread
    # and a measurement through the template records the threads it asked for
    result = template.run_one(job(tmp_path, config(threads=2), steps=1))
    assert result.record["threads"] == 2 and result.record["environment"]["threads"] == 2


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _kill_when_running(find_pid, result_box: list) -> int:
    deadline = time.time() + 120
    while time.time() < deadline and not result_box:
        pids = find_pid()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            return pids[0]
        time.sleep(0.01)
    raise AssertionError("no worker to kill")


@pytest.mark.parametrize("name", ["local", "subprocess"])
def test_a_killed_worker_and_a_timeout_are_observed(tmp_path, name, template, fresh):
    executor = template if name == "local" else fresh
    heavy = job(tmp_path, config(width=1024, depth=4, batch_size=512, trainer="ff"), steps=20)
    box: list[JobResult] = []
    thread = threading.Thread(target=lambda: box.append(executor.run_one(heavy)))
    thread.start()
    if name == "local":
        measure_template = executor.templates()["measure"]
        _kill_when_running(lambda: _children(measure_template.pid), box)
    else:
        _kill_when_running(lambda: matching(str(heavy.spec_path)), box)
    thread.join(300)
    result = box[0]
    assert result.returncode == -signal.SIGKILL and result.signal == signal.SIGKILL
    assert result.record is None and not result.timed_out and not result.cancelled
    settings = SweepSettings()
    folder = ResultsFolder(tmp_path, {}, "test")
    record = finalize(folder, result, settings)
    # someone else's kill -9 (the cgroup counted no OOM kill): killed, re-measured on resume
    assert record["status"] == "killed" and record["worker"]["signal"] == signal.SIGKILL
    assert "re-measured on resume" in record["error"]
    assert len(result.oom_kills) == 2  # the cgroup's OOM-kill count, before and after
    # a timeout: killed by the executor, said so
    timed = executor.run_one(job(tmp_path, config(), timeout=0.01))
    assert timed.timed_out and timed.record is None
    assert finalize(folder, timed, settings)["status"] == "timeout"
    assert not list(tmp_path.glob("*.spec")) and not list(tmp_path.glob("*.log"))


def _processes_of(driver_pid: int) -> list[int]:
    """Templates started by `driver_pid` and the children forked from them (same cmdline)."""
    return matching("ffbench.run.executors.template", f"--parent {driver_pid} ")


def _interruptible() -> None:
    """In the child before exec: Ctrl-C delivered as from a terminal. A test run started in
    the background ignores SIGINT, and a library may leave it blocked in the calling thread;
    a child inherits both."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_the_driver_going_away_leaves_no_template_or_child(tmp_path, how):
    out = tmp_path / "sweep"
    # 40 configurations of several timed steps: far more than can end between the first record
    # and the signal, however fast the machine (a finished sweep would exit 0)
    grid = ["--trainers", "bp,ff", "--depths", "1,2,3,4", "--widths", "64", "--batch-sizes", "8,16,32,64,128"]
    command = [sys.executable, "-m", "ffbench", "sweep", "--dataset", "synthetic", "--device", "cpu"]
    command += ["--threads", "1", "--steps", "5", *grid, "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_interruptible)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not any((out / "records").glob("*.json")):
        time.sleep(0.05)
    assert _processes_of(proc.pid), "the templates run while the sweep does"
    os.kill(proc.pid, how)
    _, err = proc.communicate(timeout=120)
    if how == signal.SIGINT:
        assert proc.returncode == 130, err
    deadline = time.time() + 20
    while _processes_of(proc.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _processes_of(proc.pid)
    assert 1 <= len(list((out / "records").glob("*.json"))) < 40


def test_measure_refuses_a_record_from_another_device_model(tmp_path):
    class Canned:
        """An executor handing back a record measured elsewhere (a mixed cluster)."""

        allow_mixed_devices = False

        def run(self, jobs):
            for j in jobs:
                record = {"kind": "measure", "status": "ok", "config": j.spec["config"], "metrics": {}}
                record["environment"] = {"device_name": "Other GPU"}
                yield JobResult(j, record, 0, 0.1, False, "", executor="canned", probe={"host": "far"})

    settings = SweepSettings()
    cfg = config()
    folder = ResultsFolder.open(
        tmp_path,
        command="sweep",
        grid={},
        base_config=cfg.to_dict(),
        settings=settings.to_dict(),
        environment={"device_name": "This GPU", "torch": "x", "cuda": None},
    )
    with pytest.raises(ConfigError, match="'Other GPU'.*'This GPU'.*--allow-mixed-devices"):
        list(measure(folder, [cfg], settings, executor=Canned()))
    assert folder.get(cfg) is None
    mixed = Canned()
    mixed.allow_mixed_devices = True
    [record] = measure(folder, [cfg], settings, executor=mixed)
    assert folder.get(cfg)["worker"]["probe"] == {"host": "far"} == record["worker"]["probe"]


def test_get_executor_checks_names_and_options():
    with pytest.raises(ConfigError, match="unknown executor 'dask'"):
        get_executor("dask")
    with pytest.raises(ConfigError, match="--ray-address goes with --executor ray"):
        get_executor("local", ray_address="auto")
    with pytest.raises(ConfigError, match="--slurm-partition goes with --executor slurm"):
        get_executor("ray", slurm_partition="gpu")
    assert get_executor("subprocess", ray_address=None, allow_mixed_devices=True).allow_mixed_devices
