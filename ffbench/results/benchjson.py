"""The benchmark record: built here when a benchmark ends, read back from a pytest-benchmark
``--benchmark-json`` file (from ``benchmarks/``).

Each benchmark of the ffbench suite carries its RunConfig, dataset and every memory figure in
``extra_info`` (see ``ffbench/pytest_plugin.py``); when it ends, the plugin makes its record
with ``benchmark_record`` (from those figures, pytest-benchmark's statistics and the machine)
and stores the whole record in ``extra_info["record"]``. ``load_benchmark_json(path)`` unwraps
it (``Record.from_dict``: the read-back check); files written before the plugin stored it are
read by one named fallback that builds it from the flat ``extra_info``. The record is shaped
like the harness's (``ffbench.run.harness.run_one``)::

    {"kind": "measure", "source": "benchmark", "isolated": False, "status": "ok",
     "config": {...every RunConfig field...}, "metrics": {...flat numbers...},
     "dataset": {...}, "threads": 1, "allocator_setting": "...", "methods": {...},
     "environment": {...}, "benchmark": {...name, group, kind, stats...}}

``isolated`` is False: benchmarks share one pytest process (the harness can run each
configuration in a fresh one). ``kind`` is "measure" for every benchmark, so
``ffbench.results`` turns ``metrics`` into columns; ``benchmark["kind"]`` says which
benchmark it was ("step", "accuracy" or "tracker_overhead"). Accuracy benchmarks carry
``val_accuracy``, ``test_accuracy``, ``train_loss``, ``train_seconds``, ``wall_seconds``,
``parameters`` (and ``readout_accuracy`` for FF) in ``metrics``, under the column names
``ffbench.results`` uses for fit() records.

Metrics are in bytes, seconds or fractions (accuracies), with the harness's names where the
quantity is the same: ``tensor_peak_bytes`` (steady-state step), ``tensor_first_step_*``,
``tensor_eval_*``, ``tensor_whole_run_peak_bytes``, ``rss_*``, ``cuda_*``,
``step_seconds_median``/``_min``, ``examples_per_second``. Timing statistics come from
pytest-benchmark's ``stats`` (timed rounds only). Benchmarks without an ffbench config in
``extra_info`` (foreign benchmarks) are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..config import config_defaults
from ..record import Record

SOURCE = "benchmark"
ACCURACY_FIELDS = ("val_accuracy", "test_accuracy", "wall_seconds", "parameters")  # also top-level
_STAT_NAMES = ("median", "min", "max", "mean", "stddev", "iqr")
# extra_info entries that are descriptions or nested data, not metrics
_NOT_METRICS = {
    "config",
    "dataset",
    "threads",
    "timed_rounds",
    "warmup_rounds",
    "epochs",
    "memory_limit_bytes",
    "memory_limit_exceeded",
    "process_supported",
    "timed_rounds_tensor_tracker",
    "environment",
    "compared_with",
}


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _config(raw: dict) -> dict:
    """Every RunConfig field, defaults filled in (not validated: reading never needs torch)."""
    return {**config_defaults(), **raw}


def _timing(kind: str, stats: dict, config: dict) -> dict[str, float]:
    if not stats or not stats.get("rounds"):
        return {}
    if kind == "accuracy":
        return {"wall_seconds": stats["median"]}
    prefix = "tracked_step_seconds" if kind == "tracker_overhead" else "step_seconds"
    out = {f"{prefix}_{name}": stats[name] for name in _STAT_NAMES if _number(stats.get(name))}
    if kind == "step" and stats.get("median") and config.get("batch_size"):
        out["examples_per_second"] = config["batch_size"] / stats["median"]
    return out


def benchmark_record(info: dict, stats: dict, about: dict, machine_info: dict | None = None) -> Record:
    """The record of one ffbench benchmark: its `extra_info` (`info`), pytest-benchmark's
    `stats` of the timed rounds, `about` it (name, fullname, group, datetime) and the
    machine (`machine_info`, as the plugin writes it)."""
    kind = info.get("ffbench_kind", "step")
    config = _config(info["config"])
    metrics: dict[str, float] = {k: v for k, v in info.items() if k not in _NOT_METRICS and _number(v)}
    metrics.update(_timing(kind, stats, config))
    machine_info = machine_info or {}
    # the machine (machine_info) and, since machine_info holds only that, the run's environment
    env = {**(machine_info.get("ffbench") or {}), **(info.get("environment") or {})}
    for key in ("torch", "cuda", "device", "device_name"):
        if key not in env and key in machine_info:
            env[key] = machine_info[key]
    times = list(stats["data"]) if isinstance(stats.get("data"), list) else None
    return Record.build(
        kind="measure",
        source=SOURCE,
        isolated=False,
        status="ok",
        config=config,
        dataset=info.get("dataset"),
        threads=info.get("threads"),
        allocator_setting=info.get("allocator_setting"),
        metrics=metrics,
        methods={
            "memory": info.get("memory_method"),
            "tensor": info.get("tensor_method"),
            "process": info.get("process_method"),
            "cuda": info.get("cuda_method"),
            "timer": "pytest-benchmark pedantic (iterations=1), statistics over timed rounds",
        },
        environment=env,
        settings={"timing_steps": stats.get("rounds")},
        phases=list(info.get("phases") or []),
        benchmark={
            "name": about.get("name"),
            "fullname": about.get("fullname"),
            "group": about.get("group"),
            "kind": kind,
            "rounds": stats.get("rounds"),
            "warmup_rounds": info.get("warmup_rounds"),
            "timed_rounds_tensor_tracker": info.get("timed_rounds_tensor_tracker"),
            "dataset_choice": info.get("dataset_choice"),
            "memory_limit_bytes": info.get("memory_limit_bytes"),
            "memory_limit_exceeded": info.get("memory_limit_exceeded"),
            "datetime": about.get("datetime"),
        },
        **(
            {}
            if times is None
            else {"tracked_step_seconds" if kind == "tracker_overhead" else "step_seconds": times}
        ),
        **(
            {"untracked_step_seconds": list(info.get("untracked_step_seconds") or [])}
            if kind == "tracker_overhead"
            else {}
        ),
        **({k: metrics[k] for k in ACCURACY_FIELDS if k in metrics} if kind == "accuracy" else {}),
    )


def is_benchmark_json(document: Any) -> bool:
    """True for a pytest-benchmark JSON document (a dict with 'benchmarks' and 'machine_info')."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("benchmarks"), list)
        and "machine_info" in document
    )


def load_benchmark_json(path: str | Path) -> list[dict]:
    """Records (see the module docstring) for every ffbench benchmark in the file."""
    from .store import read_json

    data = read_json(path, "benchmark file")
    if not is_benchmark_json(data):
        raise ValueError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    return records_from_document(data, path)


def records_from_document(data: dict, path: str | Path = "?") -> list[dict]:
    """The records of every ffbench benchmark in an already parsed pytest-benchmark document:
    each is whole in its `extra_info["record"]` (checked by `Record.from_dict`)."""
    records = []
    for i, bench in enumerate(data["benchmarks"]):
        info = bench.get("extra_info") or {}
        if isinstance(info.get("record"), dict):
            records.append(Record.from_dict(info["record"], f"{path} benchmark {i}").to_dict())
        elif isinstance(info.get("config"), dict):
            records.append(_fallback_from_flat_extra_info(bench, data).to_dict())
    return records


def _fallback_from_flat_extra_info(bench: dict, data: dict) -> Record:
    """Fallback for files written before the plugin stored the whole record: the record
    built from the flat `extra_info` and the document's stats, date and machine."""
    about = {k: bench.get(k) for k in ("name", "fullname", "group")} | {"datetime": data.get("datetime")}
    return benchmark_record(bench["extra_info"], bench.get("stats") or {}, about, data.get("machine_info"))
