"""ffbench's pytest plugin: the machinery of the pytest-benchmark suite in ``benchmarks/``.

Registered through the ``pytest11`` entry point (``pyproject.toml``), so it is loaded by every
pytest run where ffbench is installed. Loading it costs nothing (no torch import): it only
registers the ``--ffbench-*`` options, the ``ffbench_memory`` and ``ffbench_grid`` markers, the
memory gate and the fixtures below; none of them runs unless a test asks for it. The suite's
``benchmarks/conftest.py`` holds only its grid (``GRIDS`` and the parametrisation by the
``ffbench_grid`` marker).

Run (from the repository root)::

    python -m pytest --benchmark-only --benchmark-json=results/bench.json
    FFBENCH_GRID=full python -m pytest --benchmark-only      # or --ffbench-grid full
    python -m pytest --benchmark-only --ffbench-memory-limit 200MiB

Plain ``pytest`` does not run the benchmarks: with arguments taken from ``testpaths``, the
folders named by the ``ffbench_benchmark_paths`` ini option are not collected unless
``--benchmark-only`` is given, which then collects them alone (``pytest benchmarks`` runs them,
naming them explicitly).

Fixtures
--------
* ``step_bench(config=None, *, rounds=None, warmup_rounds=1, dataset=None)``: one optimizer
  step, timed with ``benchmark.pedantic(rounds=N, warmup_rounds=1, iterations=1)``. The
  memory is measured before the timed rounds by the harness's own
  ``ffbench.run.harness.measure_memory`` (first step, a steady-state step after one untracked
  step, one full evaluation chunk; on a GPU the CUDA allocator too), so every ``tensor_*``
  and ``analytic_*`` figure equals the sweep record's of the same configuration to the byte.
  The timed rounds carry no tensor tracker: the process high-water mark (VmHWM reset in the
  untimed ``setup``, read in the untimed ``teardown``) and, on CUDA, the caching-allocator
  peaks bracket each timed round (``RoundTrackers``).
* ``accuracy_bench(config=None, *, dataset=None)``: one epoch of ``ffbench.run.fit.fit`` on
  MNIST (the bundled digits when MNIST is not found; ``extra_info["dataset"]`` says which),
  timed as a whole (rounds=1), with validation/test accuracy, the whole-run process (and
  CUDA) peak, and the memory of the same configuration measured beforehand as above.
* ``overhead_bench(config=None, *, rounds=None, warmup_rounds=1, dataset=None)``: the tracked
  step is timed by pedantic; the untimed setup (or teardown) times an untracked step on the
  same trainer, so the two alternate.

Without ``config`` a fixture uses the test's grid point (parameters ``trainer``, ``depth``,
``width``, ``batch``) on the session's data (MNIST found locally, else synthetic data for
steps and digits for accuracy); with a config and no dataset, ``config.dataset`` is loaded.
Every figure is in bytes or seconds and goes into ``benchmark.extra_info`` (mutated, never
rebound); when the benchmark ends, its whole record goes into ``extra_info["record"]``, which
``ffbench.results.load`` unwraps from the ``--benchmark-json`` file
(``ffbench.results.benchjson``).

Memory gate
-----------
``@pytest.mark.ffbench_memory("200MiB")`` or ``--ffbench-memory-limit 200MiB`` fails a
benchmark whose tensor-level peak (``extra_info["tensor_whole_run_peak_bytes"]``: the largest
tensor-level peak it measured) exceeds the budget. The marker wins over the option. A
benchmark with the marker but no tensor-level peak fails; the option skips benchmarks that
record none. Sizes as ffbench reads them everywhere (``ffbench.units.parse_size``): bytes,
KiB/MiB/GiB (powers of 1024) or kB/MB/GB (powers of 1000). (``limit_memory`` is
pytest-memray's marker; ffbench leaves it alone.)

Any test, no ffbench trainer
----------------------------
``ffbench_step(model=None, optimizers=(), inputs=(), **options)`` gives an ``ffbench.track``
for a block of any test; the largest peak of the test's blocks is its tensor-level peak. A test
with the ``ffbench_memory`` marker and neither a benchmark nor ``ffbench_step`` has its whole
body measured (nothing told to the tracker: every tensor counts as "other"). Both are gated,
listed in the summary and written to the history like benchmarks
(docs/track-your-own-loop.md).

Memory history for CI
---------------------
``--ffbench-history FILE`` appends this run's entries (github-action-benchmark's
``customSmallerIsBetter`` objects: name, unit, value, range, extra with commit and machine;
``ffbench.analysis.export``) to a JSON-lines history; ``--ffbench-benchmark-action FILE``
writes them as the list that tool reads. ``--ffbench-compare-group GROUP`` (repeatable)
applies the ``--ffbench-compare`` gate to those benchmark groups only.

Comparison with a saved run
---------------------------
``--ffbench-compare PATH`` (a ``--benchmark-json``/``--benchmark-autosave`` file, or a folder:
its newest) fails a benchmark whose tensor-level peak grew over the same benchmark's there by
more than ``--ffbench-compare-threshold`` (bytes, a size or a percentage; default 0: the bytes
are deterministic). The terminal summary lists every benchmark's memory columns (and the
delta). ``machine_info`` holds only what identifies the machine, so pytest-benchmark's own
``--benchmark-compare`` does not warn between runs on one machine; the thread count,
allocator setting, grid and code revision are in each benchmark's
``extra_info["environment"]``.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import statistics
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigError
from .units import MiB, parse_size

if TYPE_CHECKING:  # the plugin imports torch only when a fixture runs
    import torch

    from .config import RunConfig
    from .data import Dataset
    from .measure import CudaMemory
    from .record import Record
    from .run.harness import MemoryMeasurement, Prepared

MARKER = "ffbench_memory"
LIMIT_KEY = "tensor_whole_run_peak_bytes"
FIXTURES = ("step_bench", "accuracy_bench", "overhead_bench")
ACCURACY_EPOCHS = 1
OVERHEAD_ROUNDS = 10  # even: as many untracked steps before as after their tracked one

MEMORY_METHOD_STEP = (
    "tensor-level: ffbench.run.harness.measure_memory on separate untimed steps before the timed "
    "rounds (first step, a steady-state step after one untracked step, one full evaluation "
    "chunk), as in harness records; timed rounds run without the tensor tracker. process: VmHWM "
    "reset in pedantic's untimed setup and read in its untimed teardown around every timed round "
    "(max over rounds). cuda: caching-allocator peaks around every timed round, same way (the "
    "round with the largest peak)."
)
MEMORY_METHOD_ACCURACY = (
    "tensor-level: ffbench.run.harness.measure_memory on separate untimed steps of the same "
    "configuration before the timed run (first step, steady-state step, one full evaluation "
    "chunk; the FF linear read-out is not included); process/cuda: peaks over the whole timed "
    "fit() run (reset in untimed setup, read in untimed teardown)."
)


# -- options, markers, collection, machine info ----------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ffbench", "ffbench benchmarks")
    group.addoption(
        "--ffbench-grid",
        default=None,
        metavar="NAME",
        help="benchmark grid, a name from the suite's GRIDS (default: $FFBENCH_GRID, else 'default')",
    )
    group.addoption(
        "--ffbench-memory-limit",
        default=None,
        metavar="SIZE",
        help="fail every benchmark whose tensor-level peak exceeds SIZE "
        f"(e.g. 200MiB); a {MARKER} marker takes precedence",
    )
    group.addoption(
        "--ffbench-compare",
        default=None,
        metavar="PATH",
        help="fail a benchmark whose tensor-level peak grew over the same benchmark in a saved run "
        "(a --benchmark-json / --benchmark-autosave file, or a folder: its newest .json)",
    )
    group.addoption(
        "--ffbench-compare-threshold",
        default="0",
        metavar="LIMIT",
        help="growth allowed by --ffbench-compare: bytes or a size (1MiB) or a percentage (5%%); "
        "default 0: tensor-level bytes are deterministic, so any growth is real",
    )
    group.addoption(
        "--ffbench-compare-group",
        action="append",
        default=None,
        metavar="GROUP",
        help="apply the --ffbench-compare gate only to benchmarks of this group (pytest-benchmark's "
        "group, e.g. 'tracker overhead'; repeatable); the others are compared and listed, never failed",
    )
    group.addoption(
        "--ffbench-history",
        default=None,
        metavar="FILE",
        help="append this run's tensor-level bytes per benchmark (github-action-benchmark entries "
        "with commit and machine) to this JSON-lines history",
    )
    group.addoption(
        "--ffbench-benchmark-action",
        default=None,
        metavar="FILE",
        help="write this run's entries as github-action-benchmark's customSmallerIsBetter list (JSON)",
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
        help="torch intra-op threads on CPU (default 1, the timing protocol's: timings stay comparable on "
        "shared machines); recorded",
    )
    group.addoption(
        "--ffbench-rounds",
        type=int,
        default=5,
        help="timed rounds per step benchmark (default 5, the timing protocol's minimum; load recorded)",
    )
    group.addoption(
        "--ffbench-data-dir",
        default=None,
        help="folder holding MNIST (default: $FFBENCH_DATA, ../shared/data, ...)",
    )
    parser.addini(
        "ffbench_benchmark_paths",
        "folders that plain pytest (arguments from testpaths) leaves alone unless --benchmark-only",
        type="paths",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(size): fail the benchmark if its tensor-level peak exceeds size, e.g. {MARKER}('200MiB')",
    )
    config.addinivalue_line("markers", "ffbench_grid(name): parametrise from the grid section name")
    try:
        check_options(config)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    check_ci_files(config)
    config.stash[SAVED] = load_saved(config)
    config.stash[SEEN] = []


def check_options(config: pytest.Config) -> None:
    """Every ffbench option (and $FFBENCH_GRID, $FFBENCH_DATA) by the rule of what it sets
    (ffbench.validate); ConfigError naming the option. No torch unless CUDA is asked for."""
    from . import validate

    text = config.getoption("ffbench_memory_limit", None)
    if text:
        validate.sourced("--ffbench-memory-limit", parse_size, text)
    validate.field("threads", config.getoption("ffbench_threads", 1), "--ffbench-threads")
    validate.setting("rounds", config.getoption("ffbench_rounds", 5), "--ffbench-rounds")
    validate.env_folders("FFBENCH_DATA", must_exist=False)
    grid = os.environ.get("FFBENCH_GRID")
    if grid is not None and not grid.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"$FFBENCH_GRID={grid!r} is not a grid name")
    allowed(config, 1)  # a malformed --ffbench-compare-threshold: a usage error, compared or not
    data_dir = config.getoption("ffbench_data_dir", None)
    if data_dir is not None:
        validate.data_dir(data_dir, "--ffbench-data-dir")
    if config.getoption("ffbench_device", "auto") == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--ffbench-device cuda: no CUDA GPU is available here; use cpu or auto")


def check_ci_files(config: pytest.Config) -> None:
    """--ffbench-history and --ffbench-benchmark-action name files that can be written."""
    for flag in ("history", "benchmark_action"):
        text = config.getoption(f"ffbench_{flag}", None)
        if text is None:
            continue
        path = Path(text)
        if (
            path.is_dir()
            or not path.parent.resolve().is_dir()
            or not os.access(path.parent.resolve(), os.W_OK)
        ):
            raise pytest.UsageError(
                f"--ffbench-{flag.replace('_', '-')} {text}: not a file that can be written here"
            )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With arguments taken from testpaths: plain `pytest` stays off the benchmark folders, and
    `--benchmark-only` collects them alone (not the tests, which it would only skip)."""
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return None
    path = collection_path.resolve()
    benches = [Path(p).resolve() for p in config.getini("ffbench_benchmark_paths")]
    inside = any(path.is_relative_to(b) for b in benches)
    if not config.getoption("benchmark_only", False):
        return True if inside else None
    on_the_way = any(b.is_relative_to(path) for b in benches)  # a folder holding a benchmark folder
    return None if not benches or inside or on_the_way else True


def selected_grid(config: pytest.Config) -> str:
    """The grid's name: --ffbench-grid, else $FFBENCH_GRID, else 'default'."""
    return config.getoption("ffbench_grid", None) or os.environ.get("FFBENCH_GRID") or "default"


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    if not any(set(FIXTURES) & set(getattr(item, "fixturenames", ())) for item in items):
        return []  # no ffbench benchmark collected: nothing to say
    return [
        f"ffbench grid: {selected_grid(config)} (--ffbench-grid / FFBENCH_GRID), "
        f"device {config.getoption('ffbench_device', 'auto')}, "
        f"threads {config.getoption('ffbench_threads', 1)}"
    ]


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Only what identifies the machine (and torch build): `--benchmark-compare` warns when
    machine_info differs, so the thread count, allocator setting, grid and code revision go
    into each benchmark's extra_info["environment"] instead (see `_begin`)."""
    machine_info.update(machine(config))


MACHINE = pytest.StashKey[dict]()  # the session's machine description, made once (`machine`)


def machine(config: pytest.Config) -> dict:
    """What ffbench adds to pytest-benchmark's machine_info (and each record's environment):
    made once per session (it probes the device and reads the CPU model)."""
    if MACHINE not in config.stash:
        config.stash[MACHINE] = _describe_machine(config)
    return config.stash[MACHINE]


def _describe_machine(config: pytest.Config) -> dict:
    import torch

    from .device import resolve_device
    from .environment import describe_device
    from .measure.timer import available_cores
    from .proc import cpu_model

    device = resolve_device(config.getoption("ffbench_device", "auto") or "auto")
    name = describe_device(device)
    return {
        "ffbench": {
            "device": str(device),
            "device_name": name,
            "cpu_model": cpu_model(),
            "cores": available_cores(),
            "cuda_available": torch.cuda.is_available(),
        },
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": name,
    }


# -- memory gate -----------------------------------------------------------------------------
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        memory_limit(item)  # a malformed marker size is a usage error before anything runs


def pytest_runtest_setup(item: pytest.Item) -> None:
    memory_limit(item)  # a malformed size fails before the benchmark runs


def memory_limit(item: pytest.Item) -> tuple[int | None, str]:
    """(budget in bytes, where it comes from): the ffbench_memory marker, else the option."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None:
        if len(marker.args) != 1:
            raise pytest.UsageError(f"{item.nodeid}: use {MARKER}('200MiB') (one size)")
        try:
            return parse_size(marker.args[0]), f"{MARKER}({marker.args[0]!r}) marker"
        except ConfigError as exc:
            raise pytest.UsageError(f"{item.nodeid}: {MARKER}: {exc}") from None
    text = item.config.getoption("ffbench_memory_limit", None)
    if text:
        return parse_size(text), f"--ffbench-memory-limit {text}"
    return None, ""


def _mib(n: int) -> str:
    return f"{n / MiB:.2f} MiB ({n:,} B)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    body = _body_tracker(item)  # a plain test with the marker: its whole body is measured
    try:
        result = yield  # the test body ran without raising
    finally:
        if body is not None:
            body.__exit__(None, None, None)
    bench = getattr(item, "funcargs", {}).get("benchmark")
    info = bench.extra_info if bench is not None else _tracked_info(item, body)
    peak = info.get(LIMIT_KEY, info.get("tensor_peak_bytes"))
    if peak is not None:
        item.config.stash.setdefault(SEEN, []).append((item.nodeid, info))
    try:
        _gate(item, info, peak)
        _compare(item, info, peak)
    finally:  # a benchmark over its budget keeps its record too (it says so)
        if bench is not None:
            _store_record(item, bench)
    return result


def _store_record(item: pytest.Item, bench) -> None:
    """The whole record of an ffbench fixture's benchmark, in its `extra_info["record"]`
    (`ffbench.results.benchjson`: built from the figures, the timed rounds' statistics and
    the machine)."""
    import datetime

    from .results.benchjson import benchmark_record

    info = bench.extra_info
    if not isinstance(info.get("config"), dict):
        return  # not one of ffbench's fixtures
    meta = getattr(bench, "stats", None)  # pytest-benchmark's Metadata (None when disabled)
    stats = {**meta.stats.as_dict(), "data": list(meta.stats.data)} if meta is not None and meta.stats else {}
    about = {
        "name": item.name,
        "fullname": item.nodeid,
        "group": bench.group,
        "datetime": datetime.datetime.now(datetime.UTC).isoformat(),
    }
    info["record"] = benchmark_record(info, stats, about, machine(item.config)).to_dict()


# -- any test: the ffbench_step fixture and the marker without a benchmark -------------------------
TRACKS = pytest.StashKey[list]()  # the ffbench.track blocks a test made through ffbench_step


@pytest.fixture
def ffbench_step(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``ffbench_step(model=None, optimizers=(), inputs=(), **track_options)``: an
    ``ffbench.track`` for a step of any test (``with ffbench_step(model=net, optimizers=[opt],
    inputs=(x, y)) as t: step()``). The largest peak of the test's blocks is its tensor-level
    peak: the ``ffbench_memory`` marker and ``--ffbench-memory-limit`` gate it, the summary
    and ``--ffbench-history`` list it."""
    from .tracking import track

    made = request.node.stash.setdefault(TRACKS, [])

    def make(*args: Any, **kwargs: Any) -> track:
        made.append(track(*args, **kwargs))
        return made[-1]

    return make


def _body_tracker(item: pytest.Item):
    """A tracker entered around the body of a test that has the marker but neither a
    benchmark nor ffbench_step (nothing is told to it: every tensor counts as 'other')."""
    names = getattr(item, "fixturenames", ())
    if item.get_closest_marker(MARKER) is None or "benchmark" in names or "ffbench_step" in names:
        return None
    from .tracking import track

    return track(timeline=False, name=item.nodeid).__enter__()


def _tracked_info(item: pytest.Item, body) -> dict:
    """The figures of the test's ffbench.track blocks (or of its measured body): the block
    with the largest peak, `tensor_whole_run_peak_bytes` its peak."""
    from .run.harness import tensor_fields

    blocks = [t for t in [*item.stash.get(TRACKS, []), body] if t is not None and t._tracker is not None]
    results = [t.result() for t in blocks if t._tracker._result is not None]
    if not results:
        return {}
    import torch

    from .environment import environment

    mem = max(results, key=lambda r: r.peak_bytes)
    return {
        "environment": environment(torch.device("cpu")),
        **tensor_fields("tensor", mem),
        LIMIT_KEY: mem.peak_bytes,
        "ffbench_kind": "track",
        "blocks": len(results),
    }


def _gate(item: pytest.Item, info: dict, peak: int | None) -> None:
    """Fail the benchmark when its tensor-level peak exceeds its memory budget."""
    limit, source = memory_limit(item)
    if limit is None:
        return
    if peak is None:
        if item.get_closest_marker(MARKER) is not None:
            pytest.fail(
                f"{item.nodeid}: has a memory budget ({source}) but recorded no "
                f"tensor-level peak (extra_info[{LIMIT_KEY!r}])",
                pytrace=False,
            )
        return
    info["memory_limit_bytes"] = limit
    info["memory_limit_source"] = source
    info["memory_limit_exceeded"] = peak > limit
    if peak > limit:
        pytest.fail(
            f"benchmark {item.nodeid}: tensor-level peak {_mib(peak)} exceeds "
            f"the memory budget {_mib(limit)} ({source})",
            pytrace=False,
        )


# -- comparison with a saved run ---------------------------------------------------------------
SAVED = pytest.StashKey[dict]()  # nodeid -> saved extra_info, from --ffbench-compare
SEEN = pytest.StashKey[list]()  # (nodeid, extra_info) of every benchmark with a peak, for the summary


def load_saved(config: pytest.Config) -> dict:
    """--ffbench-compare's saved benchmarks by their full name; UsageError for a bad path."""
    from .results.store import loads_strict

    text = config.getoption("ffbench_compare", None)
    if not text:
        return {}
    allowed(config, 1)  # a malformed threshold fails before anything runs
    path = Path(text)
    if path.is_dir():
        found = sorted(path.rglob("*.json"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise pytest.UsageError(f"--ffbench-compare {path}: no saved benchmark JSON in this folder")
        path = found[-1]
    try:
        doc = loads_strict(path.read_text(encoding="utf-8"))
        benches = {b["fullname"]: b.get("extra_info") or {} for b in doc["benchmarks"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise pytest.UsageError(f"--ffbench-compare {path}: not a pytest-benchmark JSON file") from None
    return {"path": str(path), "benchmarks": benches}


def allowed(config: pytest.Config, saved: int) -> int:
    """The growth over `saved` bytes that --ffbench-compare-threshold allows (bytes)."""
    text = str(config.getoption("ffbench_compare_threshold", "0")).strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not math.isfinite(percent) or percent < 0:
                raise ValueError(text)
            return int(saved * percent / 100)
        return 0 if text in ("0", "0B") else parse_size(text)
    except (ConfigError, ValueError, OverflowError):
        raise pytest.UsageError(
            f"--ffbench-compare-threshold {text!r}: give bytes, a size such as 1MiB, or a percentage such as 5%"
        ) from None


def _compare(item: pytest.Item, info: dict, peak: int | None) -> None:
    """Fail the benchmark when its tensor-level peak grew over the saved run's."""
    saved = item.config.stash.get(SAVED, {})
    before = (saved.get("benchmarks", {}).get(item.nodeid) or {}) if saved else {}
    old = before.get(LIMIT_KEY, before.get("tensor_peak_bytes"))
    if peak is None or old is None:
        return
    limit = allowed(item.config, old)
    info["compared_with"] = {"path": saved["path"], "saved_peak_bytes": old, "delta_bytes": peak - old}
    groups = item.config.getoption("ffbench_compare_group", None)
    group = getattr(getattr(item, "funcargs", {}).get("benchmark"), "group", None)
    if groups and group not in groups:
        info["compared_with"]["gated"] = False  # --ffbench-compare-group names other groups
        return
    if peak - old > limit:
        pytest.fail(
            f"benchmark {item.nodeid}: tensor-level peak {_mib(peak)} grew by {peak - old:+,} B over "
            f"{_mib(old)} in {saved['path']} (allowed {limit:,} B; --ffbench-compare-threshold)",
            pytrace=False,
        )


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The memory columns beside pytest-benchmark's time table: one line per benchmark, its
    full name, and the tracker-overhead factor where measured; under --benchmark-only, the
    skips in one line (instead of one line per skipped test)."""
    if config.getoption("benchmark_only", False):
        _skips_in_one_line(terminalreporter)
    seen = config.stash.get(SEEN, [])
    if not seen:
        return
    saved = bool(config.stash.get(SAVED, {}))
    names = [nodeid.split("::")[-1] for nodeid, _ in seen]
    wide = max(len("benchmark"), *map(len, names)) + 1
    overhead = any(info.get("tracker_overhead_factor") is not None for _, info in seen)
    terminalreporter.write_sep("-", "ffbench memory (MiB; tensor-level bytes are exact)")
    head = f"{'benchmark':<{wide}}{'peak':>10}{'transient':>11}{'whole run':>11}{'RSS rise':>10}{'CUDA peak':>11}"
    head += f"{'tracker x':>11}" if overhead else ""
    terminalreporter.write_line(head + (f"{'vs saved':>14}" if saved else ""))
    for name, (_, info) in zip(names, seen):
        cells = [info.get(k) for k in ("tensor_peak_bytes", "tensor_transient_bytes", LIMIT_KEY,
                                       "rss_rise_bytes", "cuda_peak_allocated_bytes")]  # fmt: skip
        text = "".join(
            f"{'-' if v is None else f'{v / MiB:,.2f}':>{w}}" for v, w in zip(cells, (10, 11, 11, 10, 11))
        )
        if overhead:
            factor = info.get("tracker_overhead_factor")
            text += f"{'-' if factor is None else f'{factor:.2f}x':>11}"
        delta = (info.get("compared_with") or {}).get("delta_bytes")
        extra = f"{'-' if delta is None else f'{delta:+,} B':>14}" if saved else ""
        terminalreporter.write_line(f"{name:<{wide}}{text}{extra}")
    if overhead:
        terminalreporter.write_line(
            "tracker x: median tracked / median untracked step time (the tensor tracker's cost)"
        )


def _skips_in_one_line(terminalreporter) -> None:
    """Count the skips by reason on one line and leave them out of the short summary."""
    skipped = terminalreporter.stats.get("skipped", [])
    terminalreporter.reportchars = terminalreporter.reportchars.replace("s", "")
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    listed = "; ".join(f"{reason} ({n})" for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
    terminalreporter.write_line(f"ffbench: {len(skipped)} skipped: {listed}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """--ffbench-history / --ffbench-benchmark-action: this run's figures for CI."""
    config = session.config
    history, listing = (
        config.getoption("ffbench_history", None),
        config.getoption("ffbench_benchmark_action", None),
    )
    seen = config.stash.get(SEEN, [])
    if not (history or listing) or not seen:
        return
    from .analysis import export
    from .results.store import now, write_json_atomic

    commit = export.current_commit(config.rootpath)
    run = []
    for nodeid, info in seen:
        run += export.entries(nodeid, info, commit, export.machine_of(info.get("environment") or {}))
    if listing:
        write_json_atomic(listing, run)
    if history:
        export.append_history(history, run, f"{commit} {now()}")


# -- session set-up --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ffbench_device(pytestconfig: pytest.Config) -> torch.device:
    from .device import resolve_device
    from .proc import MMAP_THRESHOLD, set_malloc_mmap_threshold

    device = resolve_device(pytestconfig.getoption("ffbench_device", "auto") or "auto")
    if device.type == "cpu":
        # RSS then follows live memory (see ffbench/proc.py); recorded per benchmark.
        set_malloc_mmap_threshold(MMAP_THRESHOLD)
    # Later gc.collect()s (the benchmarks collect before every measured step) only scan
    # objects the benchmarks create: everything alive now moves to the permanent generation.
    import_lazy_modules(device.type)
    gc.collect()
    gc.freeze()
    return device


def import_lazy_modules(device: str = "cpu") -> None:
    """One step of a tiny trainer under the tensor tracker: building the first optimizer
    imports torch._dynamo (~900 modules, after which one gc.collect() takes ~0.4 s), and
    pytester's in-process runs cannot import those a second time (duplicate TORCH_LIBRARY
    registration), so a session imports them once, up front."""
    from .config import RunConfig
    from .run.harness import prepare

    tiny = dict(trainer="bp", depth=1, width=4, batch_size=2, threads=1, val_size=0)
    run = prepare(RunConfig(dataset="synthetic", device=device, **tiny))
    x, y = next(run.batches)
    with run.tensor_tracker(inputs=(x, y)):
        run.trainer.train_step(x, y)


@pytest.fixture(scope="session")
def ffbench_mnist(pytestconfig: pytest.Config) -> tuple[Dataset | None, str]:
    """MNIST if found locally (never downloads; ../shared/data beside the rootdir counts),
    else (None, why not)."""
    from .data import load_dataset
    from .errors import DataUnavailableError

    data_dir = pytestconfig.getoption("ffbench_data_dir", None)
    shared = pytestconfig.rootpath.parent / "shared" / "data"  # the project's read-only MNIST
    if data_dir is None and shared.is_dir() and not os.environ.get("FFBENCH_DATA"):
        data_dir = str(shared)
    try:
        return load_dataset("mnist", data_dir=data_dir, download=False), ""
    except DataUnavailableError as exc:
        return None, str(exc)


def _mnist_or(mnist: tuple[Dataset | None, str], fallback: str, what: str) -> tuple[Dataset, str]:
    from .data import load_dataset

    data, why = mnist
    if data is not None:
        return data, "mnist found locally"
    return load_dataset(fallback), f"{what} because MNIST is absent: {why}"


@pytest.fixture(scope="session")
def ffbench_step_data(ffbench_mnist) -> tuple[Dataset, str]:
    """Step benchmarks: MNIST, else synthetic data of MNIST's shape (784 features)."""
    return _mnist_or(ffbench_mnist, "synthetic", "synthetic (784 features)")


@pytest.fixture(scope="session")
def ffbench_accuracy_data(ffbench_mnist) -> tuple[Dataset, str]:
    """Accuracy benchmarks: MNIST, else scikit-learn's bundled digits (real data)."""
    return _mnist_or(ffbench_mnist, "digits", "digits")


# -- one benchmark's set-up --------------------------------------------------------------------
def _data(
    request: pytest.FixtureRequest, fixture: str, config: RunConfig | None, dataset: Dataset | None
) -> tuple[Dataset, str]:
    """The given dataset; config.dataset when only a config is given; else the session's."""
    from .data import load_config_dataset

    if dataset is not None:
        return dataset, "given by the benchmark"
    if config is not None:
        return (
            load_config_dataset(config),
            f"config.dataset={config.dataset!r}",
        )
    return request.getfixturevalue(fixture)


def _grid_config(request: pytest.FixtureRequest, device: torch.device, data: Dataset, **extra) -> RunConfig:
    """The test's grid point (parameters trainer, depth, width, batch) as a RunConfig."""
    from .config import RunConfig

    p = request.node.callspec.params
    threads = request.config.getoption("ffbench_threads", 1) if device.type == "cpu" else None
    return RunConfig(
        trainer=p["trainer"],
        depth=p["depth"],
        width=p["width"],
        batch_size=p["batch"],
        device=device.type,
        dataset=data.name,
        threads=threads,
        **extra,
    )


_DATA_FIXTURE = {"accuracy": "ffbench_accuracy_data"}  # every other kind: ffbench_step_data


def _begin(benchmark, request, device, kind: str, method: str, config, dataset, **extra) -> Prepared:
    """Data, config (the grid point's unless given), a prepared run, and the benchmark's
    descriptive extra_info."""
    import torch

    from .environment import describe_device, environment
    from .proc import allocator_setting
    from .run.harness import prepare

    data, note = _data(request, _DATA_FIXTURE.get(kind, "ffbench_step_data"), config, dataset)
    config = config or _grid_config(request, device, data, **extra)
    run = prepare(config, data)
    benchmark.extra_info.update(
        {
            "config": config.to_dict(),
            "dataset": run.data.describe(),
            "dataset_choice": note,
            "device": str(run.device),
            "device_name": describe_device(run.device),
            "threads": run.threads,
            "allocator_setting": allocator_setting(),
            "torch": torch.__version__,
            "gc": "gc.freeze() at session start; gc.collect() before every measured step",
            "ffbench_kind": kind,
            "memory_method": method,
            "timed_rounds_tensor_tracker": kind == "tracker_overhead",
            # what is not the machine: the run's environment (machine_info holds only the machine)
            "environment": {
                **environment(run.device),
                "allocator_setting": allocator_setting(),
                "ffbench_grid": selected_grid(request.config),
            },  # fmt: skip
        }
    )
    return run


def _measure(run: Prepared, info: dict) -> MemoryMeasurement:
    """The harness's memory measurement of `run`, its figures written into `info`."""
    from .run.harness import HarnessSettings, measure_memory

    mem = measure_memory(run, HarnessSettings(warmup_steps=1, timeline=False))
    info.update(mem.fields())
    info["tensor_op_count"] = mem.steady.op_count
    info["tensor_method"] = mem.steady.method
    info["phases"] = [asdict(p) for p in mem.steady.phases]  # steady-state step, as in harness records
    return mem


class RoundTrackers:
    """Process high-water (and CUDA allocator) peaks around pedantic rounds: entered in the
    untimed setup, exited in the untimed teardown (composed with an ExitStack); warm-up rounds
    are dropped."""

    def __init__(self, device: torch.device, warmup_rounds: int) -> None:
        self.device = device
        self.skip = warmup_rounds
        self.process: list = []
        self.cuda: list = []
        self._stack: contextlib.ExitStack | None = None
        self._open: tuple = ()

    def enter(self) -> None:
        from .measure import ProcessPeakTracker
        from .run.harness import cuda_tracker

        self.close()
        gc.collect()
        stack = contextlib.ExitStack()
        proc = stack.enter_context(ProcessPeakTracker())
        self._open = (proc, cuda_tracker(stack, self.device))
        self._stack = stack

    def exit(self) -> None:
        if self._stack is None:
            return
        proc, cuda = self._open
        self.close()
        if self.skip > 0:
            self.skip -= 1
            return
        self.process.append(proc.result())
        if cuda is not None:
            self.cuda.append(cuda.result())

    def close(self) -> None:
        """Exit open trackers without recording them (a round whose teardown never ran:
        pytest-benchmark skips teardown under --benchmark-disable)."""
        stack, self._stack, self._open = self._stack, None, ()
        if stack is not None:
            stack.close()

    def steady_cuda(self) -> CudaMemory | None:
        """The allocator figures of the round with the largest peak (None off CUDA)."""
        return max(self.cuda, key=lambda r: r.peak_allocated_bytes, default=None)

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
            out["cuda_rise_allocated_bytes_per_round"] = [r.rise_allocated_bytes for r in self.cuda]
            out["cuda_method"] = self.cuda[0].method
        return out


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def step_bench(benchmark, request, ffbench_device) -> Callable[..., dict]:
    """``step_bench(config=None, *, rounds=None, warmup_rounds=1, dataset=None)``: one
    step benchmark (see the module docstring)."""
    from .device import synchronize
    from .measure import available_cores
    from .measure.protocol import load_average

    def run_it(config=None, *, rounds: int | None = None, warmup_rounds: int = 1, dataset=None) -> dict:
        info = benchmark.extra_info
        run = _begin(benchmark, request, ffbench_device, "step", MEMORY_METHOD_STEP, config, dataset)
        mem = _measure(run, info)
        rounds = rounds or request.config.getoption("ffbench_rounds", 5)
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

        config = run.config
        benchmark.group = f"step d{config.depth} w{config.width} b{config.batch_size}"
        info.update(timing_cores=available_cores(), timing_load_before=load_average())  # measure.protocol
        benchmark.pedantic(
            step, setup=setup, teardown=teardown, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1
        )
        info["timing_load_after"] = load_average()
        trackers.close()
        info.update(trackers.fields())
        info.update(mem.cuda_fields(trackers.steady_cuda() or mem.cuda_steady))
        info["timed_rounds"] = rounds
        info["warmup_rounds"] = warmup_rounds
        return info

    return run_it


@pytest.fixture
def accuracy_bench(benchmark, request, ffbench_device) -> Callable[..., dict]:
    """``accuracy_bench(config=None, *, dataset=None)``: one timed fit() run."""
    from .run.fit import fit

    def run_it(config=None, *, dataset=None) -> dict:
        info = benchmark.extra_info
        run = _begin(
            benchmark,
            request,
            ffbench_device,
            "accuracy",
            MEMORY_METHOD_ACCURACY,
            config,
            dataset,
            epochs=ACCURACY_EPOCHS,
        )
        mem = _measure(run, info)
        config, data, device = run.config, run.data, run.device
        del run
        gc.collect()

        trackers = RoundTrackers(device, warmup_rounds=0)
        records: list[Record] = []

        def train():
            records.append(fit(config, data, progress=False, echo=lambda _line: None))

        benchmark.group = "accuracy (fixed budget)"
        benchmark.pedantic(
            train, setup=trackers.enter, teardown=trackers.exit, rounds=1, warmup_rounds=0, iterations=1
        )
        trackers.close()
        info.update(trackers.fields())
        info.update(mem.cuda_fields(trackers.steady_cuda() or mem.cuda_steady))
        info.update(_accuracy_fields(records[-1], config))
        return info

    return run_it


def _accuracy_fields(rec: Record, config: RunConfig) -> dict[str, Any]:
    out = {
        "val_accuracy": rec.val_accuracy,
        "test_accuracy": rec.test_accuracy,
        "train_loss": rec.epochs[-1]["train_loss"],
        "train_seconds": sum(e["train_seconds"] for e in rec.epochs),
        "eval_seconds": sum(e["eval_seconds"] for e in rec.epochs),
        "fit_wall_seconds": rec.wall_seconds,
        "epochs": config.epochs,
        "parameters": rec.parameters,
        "whole_run_peak": "rss_peak_bytes/rss_rise_bytes (and cuda_peak_*) cover the whole fit() run; "
        "tensor_whole_run_peak_bytes is the tensor-level maximum over first step, steady step "
        "and one eval chunk",
    }
    if rec.readout is not None:
        out["readout_accuracy"] = rec.readout["trained"]
        out["readout_untrained_control_accuracy"] = rec.readout["untrained_control"]
    if rec.ff_evaluation is not None:
        out["ff_evaluation"] = rec.ff_evaluation
    return out


class _Interleaved:
    """Tracked, timed rounds with an untracked step timed in the untimed setup of even rounds
    and the untimed teardown of odd ones (warm-up rounds included): U T | T U | U T ... so
    neither kind of step always runs first."""

    def __init__(self, run: Prepared) -> None:
        self.run = run
        self.untracked: list[float] = []
        self.tracked: list = []
        self.calls = 0

    def untracked_step(self) -> None:
        from .measure import StepTimer

        x, y = next(self.run.batches)
        gc.collect()
        with StepTimer(self.run.device) as timer:
            self.run.trainer.train_step(x, y)
        self.untracked.append(timer.result().elapsed_ns / 1e9)

    def setup(self):
        self.calls += 1
        if self.calls % 2 == 1:
            self.untracked_step()
        holder = list(next(self.run.batches))
        gc.collect()
        return (holder,), {}

    def tracked_step(self, holder: list) -> None:
        from .device import synchronize

        synchronize(self.run.device)
        with self.run.tensor_tracker(inputs=holder) as tracker:
            self.run.trainer.train_step(holder[0], holder[1])
        synchronize(self.run.device)
        self.tracked.append(tracker)

    def teardown(self, holder: list) -> None:
        holder.clear()
        if self.calls % 2 == 0:
            self.untracked_step()


@pytest.fixture
def overhead_bench(benchmark, request, ffbench_device) -> Callable[..., dict]:
    """``overhead_bench(config=None, *, rounds=None, warmup_rounds=1, dataset=None)``: the
    timed round is a step under the TensorTracker; an untracked step is timed beside it."""
    from .run.harness import tensor_fields

    def run_it(config=None, *, rounds: int | None = None, warmup_rounds: int = 1, dataset=None) -> dict:
        method = "tensor-level: TensorTracker on the timed (tracked) rounds"
        run = _begin(benchmark, request, ffbench_device, "tracker_overhead", method, config, dataset)
        rounds = rounds or OVERHEAD_ROUNDS
        run.trainer.train_step(*next(run.batches))  # first step: lazy optimizer state
        steps = _Interleaved(run)
        benchmark.group = "tracker overhead"
        benchmark.pedantic(
            steps.tracked_step,
            setup=steps.setup,
            teardown=steps.teardown,
            rounds=rounds,
            warmup_rounds=warmup_rounds,
            iterations=1,
        )
        info = benchmark.extra_info
        mem = steps.tracked[-1].result()
        info.update(tensor_fields("tensor", mem))
        info["tensor_whole_run_peak_bytes"] = max(t.result().peak_bytes for t in steps.tracked)
        info["tensor_op_count"] = mem.op_count
        stats = getattr(benchmark, "stats", None)
        info.update(
            _overhead_fields(steps.untracked[warmup_rounds:], list(stats.stats.data) if stats else [])
        )
        info["timed_rounds"] = rounds
        info["warmup_rounds"] = warmup_rounds
        return info

    return run_it


def _overhead_fields(untracked: list[float], tracked: list[float]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "untracked_step_seconds": untracked,
        "tracked_step_seconds": tracked,
        "interleaving": "untracked step in the untimed setup (even rounds) or teardown "
        "(odd rounds) of each tracked, timed round",
    }
    if tracked and len(untracked) == len(tracked):
        out["untracked_step_seconds_median"] = statistics.median(untracked)
        out["tracked_step_seconds_median"] = statistics.median(tracked)
        out["tracker_overhead_factor"] = statistics.median(tracked) / statistics.median(untracked)
        out["tracker_overhead_factor_pairwise_median"] = statistics.median(
            t / u for t, u in zip(tracked, untracked)
        )
    return out
