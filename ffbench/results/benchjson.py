"""Load a pytest-benchmark ``--benchmark-json`` file (from ``benchmarks/``) as ffbench records.

Each benchmark written by the ffbench suite carries its RunConfig, dataset and every memory
figure in ``extra_info`` (see ``ffbench/pytest_plugin.py``). ``load_benchmark_json(path)``
turns each into a record shaped like the harness's (``ffbench.run.harness.run_one``)::

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

SOURCE = "benchmark"
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


def benchmark_record(bench: dict, machine_info: dict | None = None) -> dict | None:
    """One pytest-benchmark entry -> one ffbench record (None if not an ffbench benchmark)."""
    info = bench.get("extra_info") or {}
    if not isinstance(info.get("config"), dict):
        return None
    kind = info.get("ffbench_kind", "step")
    config = _config(info["config"])
    stats = bench.get("stats") or {}
    metrics: dict[str, float] = {k: v for k, v in info.items() if k not in _NOT_METRICS and _number(v)}
    metrics.update(_timing(kind, stats, config))
    machine_info = machine_info or {}
    # the machine (machine_info) and, since machine_info holds only that, the run's environment
    env = {**(machine_info.get("ffbench") or {}), **(info.get("environment") or {})}
    for key in ("torch", "cuda", "device", "device_name"):
        if key not in env and key in machine_info:
            env[key] = machine_info[key]
    record: dict[str, Any] = {
        "kind": "measure",
        "source": SOURCE,
        "isolated": False,
        "status": "ok",
        "config": config,
        "dataset": info.get("dataset"),
        "threads": info.get("threads"),
        "allocator_setting": info.get("allocator_setting"),
        "metrics": metrics,
        "methods": {
            "memory": info.get("memory_method"),
            "tensor": info.get("tensor_method"),
            "process": info.get("process_method"),
            "cuda": info.get("cuda_method"),
            "timer": "pytest-benchmark pedantic (iterations=1), statistics over timed rounds",
        },
        "environment": env,
        "settings": {"timing_steps": stats.get("rounds")},
        "phases": list(info.get("phases") or []),
        "benchmark": {
            "name": bench.get("name"),
            "fullname": bench.get("fullname"),
            "group": bench.get("group"),
            "kind": kind,
            "rounds": stats.get("rounds"),
            "warmup_rounds": info.get("warmup_rounds"),
            "timed_rounds_tensor_tracker": info.get("timed_rounds_tensor_tracker"),
            "dataset_choice": info.get("dataset_choice"),
            "memory_limit_bytes": info.get("memory_limit_bytes"),
            "memory_limit_exceeded": info.get("memory_limit_exceeded"),
            "datetime": None,
        },
    }
    if isinstance(stats.get("data"), list):
        key = "tracked_step_seconds" if kind == "tracker_overhead" else "step_seconds"
        record[key] = list(stats["data"])
    if kind == "tracker_overhead":
        record["untracked_step_seconds"] = list(info.get("untracked_step_seconds") or [])
    if kind == "accuracy":
        for key in ("val_accuracy", "test_accuracy", "wall_seconds", "parameters"):
            if key in metrics:
                record[key] = metrics[key]
    return record


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
    return records_from_document(data)


def records_from_document(data: dict) -> list[dict]:
    """Records for every ffbench benchmark in an already parsed pytest-benchmark document."""
    machine = data.get("machine_info") or {}
    records = []
    for bench in data["benchmarks"]:
        rec = benchmark_record(bench, machine)
        if rec is not None:
            rec["benchmark"]["datetime"] = data.get("datetime")
            records.append(rec)
    return records
