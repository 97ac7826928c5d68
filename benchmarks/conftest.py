"""pytest-benchmark suite for ffbench: step time, memory and short-budget accuracy.

Run (from the repository root)::

    python -m pytest benchmarks --benchmark-only --benchmark-json=bench.json
    FFBENCH_GRID=full python -m pytest benchmarks --benchmark-only      # or --ffbench-grid full
    python -m pytest benchmarks --benchmark-only --ffbench-memory-limit 200MiB

Plain ``pytest`` runs only ``tests/`` (``testpaths``); if ``benchmarks`` is ever added to
``testpaths``, ``pytest_ignore_collect`` below keeps a plain ``pytest`` from running the
benchmarks unless ``--benchmark-only`` is given.

What each benchmark measures
----------------------------
* ``test_train_step`` (grid "step"): one optimizer step, timed with
  ``benchmark.pedantic(rounds=N, warmup_rounds=1, iterations=1)``. The tensor-level
  memory (TensorTracker) is measured on *separate, untimed* steps before the timed
  rounds -- the first step (optimizer state is created lazily there), a steady-state
  step after one untracked step, and one evaluation chunk -- because the dispatch-mode
  tracker slows small steps several-fold. The timed rounds carry no tensor tracker: the
  process high-water mark (VmHWM reset in the untimed ``setup``, read in the untimed
  ``teardown``) and, on CUDA, the caching-allocator peaks bracket each timed round.
* ``test_accuracy`` (grid "accuracy"): one epoch of ``ffbench.run.fit.fit`` on MNIST (the
  bundled digits when MNIST is not found; ``extra_info["dataset"]`` says which), timed as
  a whole (rounds=1), with validation/test accuracy, the whole-run process (and CUDA)
  peak, and the tensor-level peak of the same configuration measured beforehand.
* ``test_tracker_overhead`` (grid "overhead"): the tracked step is timed by pedantic; the
  untimed setup times an untracked step on the same trainer, so the two alternate.

Every figure is in bytes or seconds and goes into ``benchmark.extra_info`` (mutated, never
rebound); ``ffbench.analysis.benchjson.load_benchmark_json`` turns the ``--benchmark-json`` file
into ffbench records.

Memory gate
-----------
``@pytest.mark.limit_memory("200MiB")`` or ``--ffbench-memory-limit 200MiB`` fails a
benchmark whose tensor-level peak (``extra_info["tensor_whole_run_peak_bytes"]``: the
largest tensor-level peak it measured) exceeds the budget. The marker wins over the
option. A benchmark with the marker but no tensor-level peak fails; the option skips
benchmarks that record none. Sizes: bytes, KiB/MiB/GiB (1024) or kB/MB/GB (1000).
"""

from __future__ import annotations

import gc
import os
import statistics
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from ffbench.config import RunConfig
from ffbench.data import Dataset, load_dataset
from ffbench.device import resolve_device, synchronize
from ffbench.environment import describe_device, environment
from ffbench.errors import ConfigError, DataUnavailableError
from ffbench.measure import (
    CudaPeakTracker,
    ProcessPeakTracker,
    StepTimer,
    allocator_setting,
    set_malloc_mmap_threshold,
)
from ffbench.measure.tensors import CATEGORIES
from ffbench.run.fit import fit
from ffbench.run.harness import Prepared, prepare
from ffbench.schema import TRAINER_ORDER as TRAINERS
from ffbench.units import MiB, parse_size

BENCH_DIR = Path(__file__).resolve().parent
SHARED_DATA = BENCH_DIR.parent.parent / "shared" / "data"  # the project's read-only MNIST

# -- grids ---------------------------------------------------------------------------------
# Axes: trainer x depth x batch x width. "default" fits a shared 2-core CPU in a few
# minutes; "full" is the study grid (tens of minutes to hours on a CPU; meant for a GPU).
GRIDS: dict[str, dict[str, dict[str, list]]] = {
    "default": {
        "step": dict(trainer=list(TRAINERS), depth=[2, 4], batch=[128, 1024], width=[500]),
        "accuracy": dict(trainer=list(TRAINERS), depth=[2], batch=[100], width=[500]),
        "overhead": dict(trainer=["bp", "ff"], depth=[2], batch=[128], width=[2000]),
    },
    "full": {
        "step": dict(trainer=list(TRAINERS), depth=[2, 4, 8], batch=[128, 1024, 4096], width=[500, 2000]),
        "accuracy": dict(trainer=list(TRAINERS), depth=[2, 4], batch=[100], width=[500]),
        "overhead": dict(trainer=list(TRAINERS), depth=[2], batch=[128], width=[64, 500, 2000]),
    },
}
AXES = ("trainer", "depth", "batch", "width")
ACCURACY_EPOCHS = 1
OVERHEAD_ROUNDS = 10  # even: as many untracked steps before as after their tracked one
LIMIT_KEY = "tensor_whole_run_peak_bytes"

MEMORY_METHOD_STEP = (
    "tensor-level: TensorTracker on separate untimed steps before the timed rounds (first "
    "step, then a steady-state step after one untracked step, then one evaluation chunk); "
    "timed rounds run without the tensor tracker. process: VmHWM reset in pedantic's untimed "
    "setup and read in its untimed teardown around every timed round (max over rounds). "
    "cuda: caching-allocator peaks around every timed round, same way."
)
MEMORY_METHOD_ACCURACY = (
    "tensor-level: TensorTracker on separate untimed steps of the same configuration before "
    "the timed run (first step, steady-state step, one evaluation chunk; the FF linear "
    "read-out is not included); process/cuda: peaks over the whole timed fit() run "
    "(reset in untimed setup, read in untimed teardown)."
)


# -- options, markers, machine info ----------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ffbench", "ffbench benchmarks")
    group.addoption(
        "--ffbench-grid",
        choices=sorted(GRIDS),
        default=None,
        help="benchmark grid (default: $FFBENCH_GRID, else 'default')",
    )
    group.addoption(
        "--ffbench-memory-limit",
        default=None,
        metavar="SIZE",
        help="fail every benchmark whose tensor-level peak exceeds SIZE "
        "(e.g. 200MiB); a limit_memory marker takes precedence",
    )
    group.addoption(
        "--ffbench-device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="device for the benchmarks (default auto: CUDA if available)",
    )
    group.addoption(
        "--ffbench-threads",
        type=int,
        default=1,
        help="torch intra-op threads on CPU (default 1: timings stay comparable "
        "on shared machines); recorded",
    )
    group.addoption(
        "--ffbench-rounds", type=int, default=5, help="timed rounds per step benchmark (default 5)"
    )
    group.addoption(
        "--ffbench-data-dir",
        default=None,
        help="folder holding MNIST (default: $FFBENCH_DATA, ../shared/data, ...)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "limit_memory(size): fail the benchmark if its tensor-level peak exceeds "
        "size, e.g. limit_memory('200MiB')",
    )
    config.addinivalue_line("markers", "ffbench_grid(name): parametrise from the grid section name")
    text = config.getoption("ffbench_memory_limit", None)
    if text:
        try:
            parse_size(text)
        except ConfigError as exc:
            raise pytest.UsageError(f"--ffbench-memory-limit: {exc}") from None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    """Keep plain `pytest` (arguments taken from testpaths) off the benchmarks."""
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return None
    if config.getoption("benchmark_only", False):
        return None
    try:
        collection_path.resolve().relative_to(BENCH_DIR)
    except ValueError:
        return None
    return True if collection_path.resolve() != BENCH_DIR else None


def grid_name(config: pytest.Config) -> str:
    name = config.getoption("ffbench_grid", None) or os.environ.get("FFBENCH_GRID") or "default"
    if name not in GRIDS:
        raise pytest.UsageError(f"FFBENCH_GRID={name!r}: choose from {', '.join(sorted(GRIDS))}")
    return name


def grid_points(config: pytest.Config, section: str) -> list[tuple]:
    axes = GRIDS[grid_name(config)][section]
    points = [()]
    for axis in AXES:
        points = [p + (v,) for p in points for v in axes[axis]]
    return points


def point_id(trainer: str, depth: int, batch: int, width: int) -> str:
    return f"{trainer}-d{depth}-w{width}-b{batch}"  # = RunConfig.short_name()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("ffbench_grid")
    if marker is None:
        return
    points = grid_points(metafunc.config, marker.args[0])
    metafunc.parametrize(",".join(AXES), points, ids=[point_id(*p) for p in points])


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"ffbench grid: {grid_name(config)} (--ffbench-grid / FFBENCH_GRID), "
        f"device {config.getoption('ffbench_device', 'auto')}, "
        f"threads {config.getoption('ffbench_threads', 1)}"
    ]


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    device = resolve_device(config.getoption("ffbench_device", "auto") or "auto")
    env = environment(device)
    env["cuda_available"] = torch.cuda.is_available()
    env["allocator_setting"] = allocator_setting()
    env["ffbench_grid"] = grid_name(config)
    machine_info["ffbench"] = env
    machine_info["torch"] = torch.__version__
    machine_info["cuda"] = torch.version.cuda
    machine_info["device"] = env["device"]
    machine_info["device_name"] = env["device_name"]


# -- memory gate -----------------------------------------------------------------------------
def pytest_runtest_setup(item: pytest.Item) -> None:
    memory_limit(item)  # a malformed size fails before the benchmark runs


def memory_limit(item: pytest.Item) -> tuple[int | None, str]:
    marker = item.get_closest_marker("limit_memory")
    if marker is not None:
        if len(marker.args) != 1:
            raise pytest.UsageError(f"{item.nodeid}: use limit_memory('200MiB') (one size)")
        try:
            return parse_size(marker.args[0]), f"limit_memory({marker.args[0]!r}) marker"
        except ConfigError as exc:
            raise pytest.UsageError(f"{item.nodeid}: limit_memory: {exc}") from None
    text = item.config.getoption("ffbench_memory_limit", None)
    if text:
        return parse_size(text), f"--ffbench-memory-limit {text}"
    return None, ""


def _mib(n: int) -> str:
    return f"{n / MiB:.2f} MiB ({n:,} B)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield  # the test body ran without raising
    limit, source = memory_limit(item)
    if limit is None:
        return result
    bench = getattr(item, "funcargs", {}).get("benchmark")
    info = bench.extra_info if bench is not None else {}
    peak = info.get(LIMIT_KEY, info.get("tensor_peak_bytes"))
    if peak is None:
        if item.get_closest_marker("limit_memory") is not None:
            pytest.fail(
                f"{item.nodeid}: has a memory budget ({source}) but recorded no "
                f"tensor-level peak (extra_info[{LIMIT_KEY!r}])",
                pytrace=False,
            )
        return result
    info["memory_limit_bytes"] = limit
    info["memory_limit_source"] = source
    info["memory_limit_exceeded"] = peak > limit
    if peak > limit:
        pytest.fail(
            f"benchmark {item.nodeid}: tensor-level peak {_mib(peak)} exceeds "
            f"the memory budget {_mib(limit)} ({source})",
            pytrace=False,
        )
    return result


# -- shared set-up ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ffbench_device(pytestconfig: pytest.Config) -> torch.device:
    device = resolve_device(pytestconfig.getoption("ffbench_device", "auto") or "auto")
    if device.type == "cpu":
        # RSS then follows live memory (see ffbench/measure/process.py); recorded per benchmark.
        set_malloc_mmap_threshold(65536)
    # Building the first optimizer imports torch._dynamo (~900 modules), after which one
    # gc.collect() takes ~0.4 s; the benchmarks collect before every measured step. Import
    # it now and move everything alive into the permanent generation: later collections
    # only scan objects the benchmarks create.
    tiny = prepare(
        RunConfig(
            trainer="bp",
            depth=1,
            width=4,
            batch_size=2,
            dataset="synthetic",
            device=device.type,
            threads=1,
            val_size=0,
        )
    )
    tiny.trainer.train_step(*next(tiny.batches))
    del tiny
    gc.collect()
    gc.freeze()
    return device


@pytest.fixture(scope="session")
def mnist(pytestconfig: pytest.Config) -> tuple[Dataset | None, str]:
    """MNIST if found locally (never downloads), else (None, why not)."""
    data_dir = pytestconfig.getoption("ffbench_data_dir", None)
    if data_dir is None and SHARED_DATA.is_dir() and not os.environ.get("FFBENCH_DATA"):
        data_dir = str(SHARED_DATA)
    try:
        return load_dataset("mnist", data_dir=data_dir, download=False), ""
    except DataUnavailableError as exc:
        return None, str(exc)


@pytest.fixture(scope="session")
def step_data(mnist) -> tuple[Dataset, str]:
    """Step benchmarks: MNIST, else synthetic data of MNIST's shape (784 features)."""
    data, why = mnist
    if data is not None:
        return data, "mnist found locally"
    return load_dataset("synthetic"), f"synthetic (784 features) because MNIST is absent: {why}"


@pytest.fixture(scope="session")
def accuracy_data(mnist) -> tuple[Dataset, str]:
    """Accuracy benchmarks: MNIST, else scikit-learn's bundled digits (real data)."""
    data, why = mnist
    if data is not None:
        return data, "mnist found locally"
    return load_dataset("digits"), f"digits because MNIST is absent: {why}"


def _data(
    request: pytest.FixtureRequest, fixture: str, config: RunConfig | None, dataset: Dataset | None
) -> tuple[Dataset, str]:
    """The given dataset; config.dataset when only a config is given; else the session's."""
    if dataset is not None:
        return dataset, "given by the benchmark"
    if config is not None:
        return (
            load_dataset(config.dataset, data_dir=config.data_dir, val_size=config.val_size),
            f"config.dataset={config.dataset!r}",
        )
    return request.getfixturevalue(fixture)


def _run_config(
    request: pytest.FixtureRequest, device: torch.device, dataset: Dataset, **fields: Any
) -> RunConfig:
    threads = request.config.getoption("ffbench_threads", 1) if device.type == "cpu" else None
    return RunConfig(device=device.type, dataset=dataset.name, threads=threads, **fields)


def _tensor_fields(prefix: str, mem) -> dict[str, int]:
    out = {
        f"{prefix}_peak_bytes": mem.peak_bytes,
        f"{prefix}_start_bytes": mem.start_bytes,
        f"{prefix}_transient_bytes": mem.transient_bytes,
    }
    for cat in CATEGORIES:
        out[f"{prefix}_peak_{cat}_bytes"] = mem.peak_breakdown.get(cat, 0)
    return out


def tensor_memory(run: Prepared) -> dict[str, Any]:
    """Tensor-level peaks on separate, untimed steps (names as in harness records)."""
    trainer = run.trainer

    def tracked(fn, *inputs):
        gc.collect()
        with run.tensor_tracker(inputs=inputs) as tracker:
            fn(*inputs)
        synchronize(run.device)
        return tracker.result()

    first = tracked(trainer.train_step, *next(run.batches))
    trainer.train_step(*next(run.batches))
    steady = tracked(trainer.train_step, *next(run.batches))
    n_eval = min(len(run.data.test_x), run.config.chunk)
    ex = run.data.test_x[:n_eval].to(run.device, trainer.dtype, copy=True)
    ev = tracked(trainer.predict, ex)
    del ex
    out: dict[str, Any] = {
        **_tensor_fields("tensor", steady),
        **_tensor_fields("tensor_first_step", first),
        **_tensor_fields("tensor_eval", ev),
        "tensor_whole_run_peak_bytes": max(first.peak_bytes, steady.peak_bytes, ev.peak_bytes),
        "eval_examples": n_eval,
        "tensor_op_count": steady.op_count,
        "tensor_method": steady.method,
        "phases": [asdict(p) for p in steady.phases],  # steady-state step, as in harness records
    }
    return out


class RoundTrackers:
    """Process high-water (and CUDA allocator) peaks around pedantic rounds: entered in the
    untimed setup, exited in the untimed teardown; warm-up rounds are dropped."""

    def __init__(self, device: torch.device, warmup_rounds: int) -> None:
        self.device = device
        self.skip = warmup_rounds
        self.process: list = []
        self.cuda: list = []
        self._open: list = []

    def enter(self) -> None:
        gc.collect()
        proc = ProcessPeakTracker()
        cuda = CudaPeakTracker(self.device) if self.device.type == "cuda" else None
        proc.__enter__()
        if cuda is not None:
            cuda.__enter__()
        self._open = [proc, cuda]

    def exit(self) -> None:
        if not self._open:
            return
        proc, cuda = self._open
        self._open = []
        if cuda is not None:
            cuda.__exit__(None, None, None)
        proc.__exit__(None, None, None)
        if self.skip > 0:
            self.skip -= 1
            return
        self.process.append(proc.result())
        if cuda is not None:
            self.cuda.append(cuda.result())

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.process:
            worst = max(self.process, key=lambda r: r.rise_bytes)
            out.update(
                {
                    "rss_start_bytes": worst.start_rss_bytes,
                    "rss_peak_bytes": max(r.peak_rss_bytes for r in self.process),
                    "rss_rise_bytes": worst.rise_bytes,
                    "rss_rise_bytes_per_round": [r.rise_bytes for r in self.process],
                    "process_method": worst.method,
                    "process_supported": worst.supported,
                }
            )
        if self.cuda:
            worst = max(self.cuda, key=lambda r: r.rise_allocated_bytes)
            out.update(
                {
                    "cuda_start_allocated_bytes": worst.start_allocated_bytes,
                    "cuda_peak_allocated_bytes": max(r.peak_allocated_bytes for r in self.cuda),
                    "cuda_rise_allocated_bytes": worst.rise_allocated_bytes,
                    "cuda_peak_reserved_bytes": max(r.peak_reserved_bytes for r in self.cuda),
                    "cuda_method": worst.method,
                }
            )
        return out


def _common_info(
    config: RunConfig, run_device: torch.device, data: Dataset, note: str, threads: int
) -> dict[str, Any]:
    return {
        "config": config.to_dict(),
        "dataset": data.describe(),
        "dataset_choice": note,
        "device": str(run_device),
        "device_name": describe_device(run_device),
        "threads": threads,
        "allocator_setting": allocator_setting(),
        "torch": torch.__version__,
        "gc": "gc.freeze() at session start; gc.collect() before every measured step",
    }


@pytest.fixture
def step_bench(benchmark, request, ffbench_device) -> Callable[..., dict]:
    """``step_bench(config=None, *, rounds=None, warmup_rounds=1, dataset=None)``: one
    step benchmark; without ``config`` the test's grid point is used (on the session's
    MNIST / synthetic data); with a config and no dataset, ``config.dataset`` is loaded."""

    def run_it(
        config: RunConfig | None = None,
        *,
        rounds: int | None = None,
        warmup_rounds: int = 1,
        dataset: Dataset | None = None,
    ) -> dict:
        data, note = _data(request, "step_data", config, dataset)
        if config is None:
            p = request.node.callspec.params
            config = _run_config(
                request,
                ffbench_device,
                data,
                trainer=p["trainer"],
                depth=p["depth"],
                width=p["width"],
                batch_size=p["batch"],
            )
        rounds = rounds or request.config.getoption("ffbench_rounds", 5)
        run = prepare(config, data)
        info = benchmark.extra_info
        info.update(_common_info(config, run.device, run.data, note, run.threads))
        info["ffbench_kind"] = "step"
        info["memory_method"] = MEMORY_METHOD_STEP
        info["timed_rounds_tensor_tracker"] = False
        info.update(tensor_memory(run))

        trackers = RoundTrackers(run.device, warmup_rounds)
        trainer, device = run.trainer, run.device

        def setup():
            holder = list(next(run.batches))  # the batch dies in teardown, not mid-round
            trackers.enter()
            return (holder,), {}

        def step(holder):
            trainer.train_step(holder[0], holder[1])
            synchronize(device)

        def teardown(holder):
            trackers.exit()
            holder.clear()

        benchmark.group = f"step d{config.depth} w{config.width} b{config.batch_size}"
        benchmark.pedantic(
            step, setup=setup, teardown=teardown, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1
        )
        info.update(trackers.fields())
        info["timed_rounds"] = rounds
        info["warmup_rounds"] = warmup_rounds
        return info

    return run_it


@pytest.fixture
def accuracy_bench(benchmark, request, ffbench_device) -> Callable[..., dict]:
    """``accuracy_bench(config=None, *, dataset=None)``: one timed fit() run."""

    def run_it(config: RunConfig | None = None, *, dataset: Dataset | None = None) -> dict:
        data, note = _data(request, "accuracy_data", config, dataset)
        if config is None:
            p = request.node.callspec.params
            config = _run_config(
                request,
                ffbench_device,
                data,
                trainer=p["trainer"],
                depth=p["depth"],
                width=p["width"],
                batch_size=p["batch"],
                epochs=ACCURACY_EPOCHS,
            )
        info = benchmark.extra_info
        run = prepare(config, data)
        info.update(_common_info(config, run.device, run.data, note, run.threads))
        info["ffbench_kind"] = "accuracy"
        info["memory_method"] = MEMORY_METHOD_ACCURACY
        info["timed_rounds_tensor_tracker"] = False
        info.update(tensor_memory(run))
        del run
        gc.collect()

        trackers = RoundTrackers(resolve_device(config.device), warmup_rounds=0)
        records: list[dict] = []

        def setup():
            trackers.enter()

        def train():
            records.append(fit(config, data, progress=False, echo=lambda _line: None))

        def teardown():
            trackers.exit()

        benchmark.group = "accuracy (fixed budget)"
        benchmark.pedantic(train, setup=setup, teardown=teardown, rounds=1, warmup_rounds=0, iterations=1)
        rec = records[-1]
        info.update(trackers.fields())
        info.update(
            {
                "val_accuracy": rec["val_accuracy"],
                "test_accuracy": rec["test_accuracy"],
                "train_loss": rec["epochs"][-1]["train_loss"],
                "train_seconds": sum(e["train_seconds"] for e in rec["epochs"]),
                "eval_seconds": sum(e["eval_seconds"] for e in rec["epochs"]),
                "fit_wall_seconds": rec["wall_seconds"],
                "epochs": config.epochs,
                "parameters": rec["parameters"],
                "whole_run_peak": "rss_peak_bytes/rss_rise_bytes (and cuda_*) cover the whole "
                "fit() run; tensor_whole_run_peak_bytes is the tensor-level "
                "maximum over first step, steady step and one eval chunk",
            }
        )
        if "readout" in rec:
            info["readout_accuracy"] = rec["readout"]["trained"]
            info["readout_untrained_control_accuracy"] = rec["readout"]["untrained_control"]
        if "ff_evaluation" in rec:
            info["ff_evaluation"] = rec["ff_evaluation"]
        return info

    return run_it


@pytest.fixture
def overhead_bench(benchmark, request, ffbench_device) -> Callable[..., dict]:
    """``overhead_bench(config=None, *, rounds=None)``: the timed round is a step under the
    TensorTracker; the untimed setup before it times an untracked step (interleaved)."""

    def run_it(
        config: RunConfig | None = None,
        *,
        rounds: int | None = None,
        warmup_rounds: int = 1,
        dataset: Dataset | None = None,
    ) -> dict:
        data, note = _data(request, "step_data", config, dataset)
        if config is None:
            p = request.node.callspec.params
            config = _run_config(
                request,
                ffbench_device,
                data,
                trainer=p["trainer"],
                depth=p["depth"],
                width=p["width"],
                batch_size=p["batch"],
            )
        rounds = rounds or OVERHEAD_ROUNDS
        run = prepare(config, data)
        info = benchmark.extra_info
        info.update(_common_info(config, run.device, run.data, note, run.threads))
        info["ffbench_kind"] = "tracker_overhead"
        info["memory_method"] = "tensor-level: TensorTracker on the timed (tracked) rounds"
        info["timed_rounds_tensor_tracker"] = True
        trainer, device = run.trainer, run.device
        trainer.train_step(*next(run.batches))  # first step: lazy optimizer state
        untracked: list[float] = []
        tracked_results: list = []
        calls = {"setup": 0}

        def untracked_step():
            x, y = next(run.batches)
            gc.collect()
            with StepTimer(device) as timer:
                trainer.train_step(x, y)
            untracked.append(timer.result().elapsed_ns / 1e9)

        # Round i (warm-up included) times an untracked step in its untimed setup when i is
        # even and in its untimed teardown when i is odd: U T | T U | U T ... so neither
        # kind of step always runs first.
        def setup():
            i = calls["setup"]
            calls["setup"] += 1
            if i % 2 == 0:
                untracked_step()
            holder = list(next(run.batches))
            gc.collect()
            return (holder,), {}

        def tracked_step(holder):
            synchronize(device)
            with run.tensor_tracker(inputs=holder) as tracker:
                trainer.train_step(holder[0], holder[1])
            synchronize(device)
            tracked_results.append(tracker)

        def teardown(holder):
            holder.clear()
            if (calls["setup"] - 1) % 2 == 1:
                untracked_step()

        benchmark.group = "tracker overhead"
        benchmark.pedantic(
            tracked_step,
            setup=setup,
            teardown=teardown,
            rounds=rounds,
            warmup_rounds=warmup_rounds,
            iterations=1,
        )
        mem = tracked_results[-1].result()
        info.update(_tensor_fields("tensor", mem))
        info["tensor_whole_run_peak_bytes"] = max(t.result().peak_bytes for t in tracked_results)
        info["tensor_op_count"] = mem.op_count
        untracked_timed = untracked[warmup_rounds:]
        info["untracked_step_seconds"] = untracked_timed
        stats = getattr(benchmark, "stats", None)
        tracked = list(stats.stats.data) if stats is not None else []
        info["tracked_step_seconds"] = tracked
        info["interleaving"] = (
            "untracked step in the untimed setup (even rounds) or teardown "
            "(odd rounds) of each tracked, timed round"
        )
        if tracked and len(untracked_timed) == len(tracked):
            info["untracked_step_seconds_median"] = statistics.median(untracked_timed)
            info["tracked_step_seconds_median"] = statistics.median(tracked)
            info["tracker_overhead_factor"] = statistics.median(tracked) / statistics.median(untracked_timed)
            info["tracker_overhead_factor_pairwise_median"] = statistics.median(
                t / u for t, u in zip(tracked, untracked_timed)
            )
        info["timed_rounds"] = rounds
        info["warmup_rounds"] = warmup_rounds
        return info

    return run_it
