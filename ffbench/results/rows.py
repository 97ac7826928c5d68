"""Tables from records: one row per run (`load`), one row per phase (`load_phases`).

`load(paths)` accepts results folders, run folders of `ffbench reproduce`, folders of record
files, record files and pytest-benchmark JSON files (the walker is `ffbench.results.store.walk`).
Each record *kind* ("measure", "train", "benchmark") becomes rows through one function
registered with `register_kind`; a new kind is one call. Documents that describe a run
rather than record one (`maxbatch.json`, `reproduce.json`) are skipped.

This module imports no torch (`python -c "import ffbench.results"` stays light).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import validate
from ..analysis.families import family_of, micro_of
from ..config import column_dtypes, config_keys
from ..errors import ConfigError
from ..record import Record
from ..schema import CATEGORIES, TENSOR_PREFIXES
from .benchjson import is_benchmark_json, records_from_document
from .store import RUN_SUMMARY, Document, config_hash, walk, write_text_atomic

# -- record kinds -> rows -------------------------------------------------------------


@dataclass(frozen=True)
class RecordKind:
    """How one kind of JSON document becomes rows.

    rows(document, path) -> list of row dicts (one per run); phases(document, path) ->
    list of phase-row dicts; detect(document) -> True when a document without a "kind"
    key is of this kind (e.g. pytest-benchmark's JSON)."""

    name: str
    rows: Callable[[dict, Path], list[dict]]
    phases: Callable[[dict, Path], list[dict]] | None = None
    detect: Callable[[dict], bool] | None = None


_KINDS: dict[str, RecordKind] = {}


def register_kind(
    name: str,
    rows: Callable[[dict, Path], list[dict]],
    *,
    phases: Callable[[dict, Path], list[dict]] | None = None,
    detect: Callable[[dict], bool] | None = None,
) -> None:
    """Teach `load` a new document kind. Rows should use the column names of ROW_COLUMNS
    (missing ones become NaN); extra keys become extra columns."""
    _KINDS[name] = RecordKind(name, rows, phases, detect)


def kind_of(document: Any) -> RecordKind | None:
    if not isinstance(document, dict):
        return None
    kind = document.get("kind")
    if isinstance(kind, str) and kind in _KINDS:
        return _KINDS[kind]
    for candidate in _KINDS.values():
        if candidate.detect is not None and candidate.detect(document):
            return candidate
    return None


# Columns every table from `load` has, in this order (tests pin this list).
# Every configuration field; `dataset` is the dataset that ran (`dataset_requested` the
# field's value) and `device` the device that ran.
CONFIG_COLUMNS = tuple(k for k in config_keys() if k != "dataset")
ID_COLUMNS = ("run_id", "config_hash", "kind", "source", "isolated", "status", "error")
DATA_COLUMNS = ("dataset", "dataset_requested", "synthetic")
SETTING_COLUMNS = ("memory_limit_bytes", "timing_steps", "timeout_seconds", "worker_seconds")
ENV_COLUMNS = ("device_name", "cpu_model", "cores", "torch", "cuda", "git_revision")
METRIC_COLUMNS = tuple(
    [f"{p}_{s}_bytes" for p in TENSOR_PREFIXES for s in ("peak", "start", "transient")]
    + [f"{p}_peak_{c}_bytes" for p in TENSOR_PREFIXES for c in CATEGORIES]
    + [f"{p}_saved_activations_bytes" for p in TENSOR_PREFIXES]
    + [
        "tensor_train_peak_bytes",
        "tensor_whole_run_peak_bytes",
        "rss_start_bytes",
        "rss_peak_bytes",
        "rss_rise_bytes",
        "rss_op_sampled_rise_bytes",
        "cuda_start_allocated_bytes",
        "cuda_peak_allocated_bytes",
        "cuda_rise_allocated_bytes",
        "cuda_peak_reserved_bytes",
        "cuda_first_step_peak_allocated_bytes",
        "cuda_eval_peak_allocated_bytes",
        "cuda_whole_run_peak_allocated_bytes",
        "step_seconds_median",
        "step_seconds_q1",
        "step_seconds_q3",
        "step_seconds_iqr",
        "timed_steps",
        "step_seconds_min",
        "step_seconds_median_default_malloc",
        "malloc_setting_time_ratio",
        "timing_load_before",
        "timing_load_after",
        "timing_cores",
        "timing_threads",
        "timing_trainers",
        "timing_protocol",
        "timing_job",
        "timing_allocator",
        "examples_per_second",
        "eval_examples",
        "eval_seconds",
    ]
    + [
        f"analytic_{k}_bytes"
        for k in (
            "peak",
            "start",
            "transient",
            "first_step_peak",
            "eval_peak",
            "train_peak",
            "whole_run_peak",
        )
    ]
)
TRAIN_COLUMNS = (
    "val_accuracy",
    "test_accuracy",
    "train_loss",
    "train_seconds",
    "wall_seconds",
    "parameters",
    "readout_accuracy",
)
LOCATION_COLUMNS = ("path",)
ROW_COLUMNS = (
    ID_COLUMNS
    + CONFIG_COLUMNS
    + DATA_COLUMNS
    + SETTING_COLUMNS
    + METRIC_COLUMNS
    + TRAIN_COLUMNS
    + ENV_COLUMNS
    + LOCATION_COLUMNS
)
PHASE_COLUMNS = (
    "run_id",
    "config_hash",
    "source",
    "status",
    "trainer",
    "depth",
    "width",
    "batch_size",
    "dataset",
    "device",
    "step",
    "index",
    "phase",
    "layer",
    "start_bytes",
    "peak_bytes",
    "rise_bytes",
    "path",
)
_DTYPES = column_dtypes()  # configuration fields: their RunConfig metadata
_INT_COLUMNS = tuple(c for c in ROW_COLUMNS if c.endswith("_bytes")) + (
    *(c for c, dtype in _DTYPES.items() if dtype == "Int64"),
    "timing_steps",
    "timed_steps",
    "eval_examples",
    "cores",
    "parameters",
)


def run_id(source: str, path: Path, suffix: str = "") -> str:
    """Unique per record file (and per row within it, via suffix): source, file stem, and a
    hash of the absolute path, so equal configurations from two folders stay two rows."""
    where = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:8]
    return f"{source}:{Path(path).stem}:{where}{suffix}"


def _common(record: dict, path: Path, kind: str, default_source: str, isolated: bool) -> dict:
    config = record.get("config") or {}
    dataset = record.get("dataset") or {}
    env = record.get("environment") or {}
    settings = record.get("settings") or {}
    row: dict[str, Any] = {c: config.get(c) for c in CONFIG_COLUMNS}
    chash = record.get("config_hash") or (config_hash(config) if config else None)
    source = record.get("source") or default_source
    row.update(
        {
            "run_id": run_id(source, path),
            "config_hash": chash,
            "kind": kind,
            "source": source,
            "isolated": bool(record.get("isolated", isolated)),
            "status": run_status(record, kind),
            "error": record.get("error"),
            "dataset": dataset.get("name") if isinstance(dataset, dict) else dataset,
            "dataset_requested": config.get("dataset"),
            "synthetic": dataset.get("synthetic") if isinstance(dataset, dict) else None,
            "memory_limit_bytes": settings.get("memory_limit_bytes"),
            "timing_steps": settings.get("timing_steps"),
            "timeout_seconds": settings.get("timeout_seconds"),
            "worker_seconds": (record.get("worker") or {}).get("wall_seconds"),
            "device": env.get("device", config.get("device")),
            "path": str(path),
            # the update's family: recorded since the harness wrote it, else from the name
            "family": record.get("family")
            or family_of(config.get("trainer"), config.get("arch"), config.get("bptt_window")),
            "micro": micro_of(config.get("batch_size"), config.get("micro_batch"), config.get("trainer")),
        }
    )
    for c in ENV_COLUMNS:
        row[c] = env.get(c)
    if record.get("peak_holders"):  # measured with allocation sites: kept with the row (one read)
        row["peak_holders"] = record["peak_holders"]
    return row


def run_status(record: dict, kind: str) -> str | None:
    """A record's status; a copy written before its run ended (`"partial": true`, also from
    versions that stamped it `ok`) is `partial`, never a finished run. (A train record from
    before `status` has it filled on read: `ffbench.record.upgrade_status`.)"""
    if record.get("partial") is True:
        return "partial"
    return record.get("status")


def _measure_rows(record: dict, path: Path) -> list[dict]:
    """A harness record (`harness.run_one`, wrapped by the sweep worker)."""
    row = _common(record, path, "measure", "measure", isolated=False)
    row.update(record.get("metrics") or {})
    timing = record.get("timing") or {}  # how the step times were taken (measure.protocol)
    row.update(
        timing_protocol=timing.get("protocol"),
        timing_job=timing.get("job"),
        timing_allocator=timing.get("allocator_setting"),
    )
    return [row]


def _measure_phases(record: dict, path: Path) -> list[dict]:
    base = _common(record, path, "measure", "measure", isolated=False)
    rows = []
    for i, p in enumerate(record.get("phases") or []):
        rows.append(
            {
                **{c: base.get(c) for c in PHASE_COLUMNS},
                "step": "steady",
                "index": i,
                "phase": p.get("name"),
                "layer": p.get("layer"),
                "start_bytes": p.get("start_bytes"),
                "peak_bytes": p.get("peak_bytes"),
                "rise_bytes": (p["peak_bytes"] - p["start_bytes"])
                if p.get("peak_bytes") is not None and p.get("start_bytes") is not None
                else None,
            }
        )
    return rows


def _train_rows(record: dict, path: Path) -> list[dict]:
    """An `ffbench train --out` record: accuracy, no memory figures. One process per run."""
    row = _common(record, path, "train", "train", isolated=True)
    epochs = record.get("epochs") or []
    last = epochs[-1] if epochs else {}
    readout = record.get("readout") or {}
    row.update(
        {
            "val_accuracy": record.get("val_accuracy"),
            "test_accuracy": record.get("test_accuracy"),
            "train_loss": last.get("train_loss"),
            "train_seconds": sum(e.get("train_seconds") or 0.0 for e in epochs) if epochs else None,
            "wall_seconds": record.get("wall_seconds"),
            "parameters": record.get("parameters"),
            "readout_accuracy": readout.get("trained") if isinstance(readout, dict) else None,
            # --black-box: the parameters no update ever reached (plain backprop below the box)
            "black_box_frozen": ", ".join((record.get("black_box") or {}).get("frozen_parameters") or []),
            # reproduce's tuned runs: the tuning record that chose the recipe, and its budget
            "tuning_record": (record.get("tuning") or {}).get("record"),
            "tuning_trials": ((record.get("tuning") or {}).get("plan") or {}).get("trials_per_family"),
            **(record.get("memory") or {}),
        }
    )
    return [row]


def _track_rows(record: dict, path: Path) -> list[dict]:
    """An `ffbench.track` record: a step ffbench did not build (no configuration), its
    tensor-level figures and `name`; kind "track", so claims and figures never take it for
    a configuration."""
    row = _common(record, path, "track", "track", isolated=False)
    row["name"] = record.get("name")
    row.update(record.get("metrics") or {})
    return [row]


register_kind("measure", _measure_rows, phases=_measure_phases)
register_kind("train", _train_rows)
register_kind("track", _track_rows)


def _benchmark_records(document: dict, path: Path) -> list[dict]:
    return [Record.wrap(r).upgrade().to_dict() for r in records_from_document(document, path)]


def _benchmark_rows(document: dict, path: Path) -> list[dict]:
    """A pytest-benchmark JSON file: one measure-like row per ffbench benchmark."""
    rows = []
    for i, record in enumerate(_benchmark_records(document, path)):
        row = _measure_rows(record, path)[0]
        row["run_id"] = run_id("benchmark", path, f":{i}")
        rows.append(row)
    return rows


def _benchmark_phases(document: dict, path: Path) -> list[dict]:
    rows = []
    for i, record in enumerate(_benchmark_records(document, path)):
        for row in _measure_phases(record, path):
            row["run_id"] = run_id("benchmark", path, f":{i}")
            rows.append(row)
    return rows


register_kind("benchmark", _benchmark_rows, phases=_benchmark_phases, detect=is_benchmark_json)


# -- loading ----------------------------------------------------------------------------


def is_maxbatch(document: Any) -> bool:
    """`maxbatch.json` of a results folder: the searches' answers, not a record."""
    return (
        isinstance(document, dict)
        and isinstance(document.get("results"), list)
        and "budget_bytes" in document
    )


def is_run_summary(document: Any, path: Path) -> bool:
    """`reproduce.json` of a run folder: timings and verdicts, not a record."""
    return path.name == RUN_SUMMARY and isinstance(document, dict) and "invocations" in document


def records(paths: str | Path | Iterable[str | Path]) -> list[tuple[Document, RecordKind]]:
    """(Document, its kind) for every record under `paths`, each read once (`store.walk`),
    checked and upgraded (`checked`); the documents that describe a run (maxbatch.json,
    reproduce.json) are skipped; anything else is an error."""
    out = []
    for doc in walk(paths):
        kind = kind_of(doc.data)
        if kind is not None:
            out.append((checked(doc, kind), kind))
        elif not (is_maxbatch(doc.data) or is_run_summary(doc.data, doc.path)):
            raise ConfigError(f"{doc.path} is not a record ffbench can read (no known 'kind')")
    return out


def checked(doc: Document, kind: RecordKind) -> Document:
    """A record as the tables read it: a measure or train record checked and upgraded (the one
    read path, `Record.from_dict`), a benchmark file checked (`validate.benchmark_document`);
    ConfigError, one line naming the file and the field."""
    if kind.name in ("measure", "train"):
        return replace(doc, data=Record.from_dict(doc.data, doc.path, kind.name).upgrade().to_dict())
    if kind.name == "benchmark":
        validate.benchmark_document(doc.data, doc.path)
    return doc


def frame(rows: list[dict], columns: tuple[str, ...]):
    import pandas as pd

    extra = sorted({k for r in rows for k in r} - set(columns))
    df = pd.DataFrame(rows, columns=list(columns) + extra)
    for c in (c for c, dtype in _DTYPES.items() if dtype == "object" and c in df.columns):
        df[c] = pd.Series([r.get(c) for r in rows], index=df.index, dtype=object)  # values as given
    for c in df.columns:
        if c in _INT_COLUMNS or c.endswith("_bytes"):
            df[c] = pd.to_numeric(df[c], errors="coerce").round().astype("Int64")
    for c in (
        "val_accuracy",
        "test_accuracy",
        "readout_accuracy",
        *(c for c, dtype in _DTYPES.items() if dtype == "float64"),
        "worker_seconds",
        "timeout_seconds",
        "train_loss",
        "train_seconds",
        "wall_seconds",
    ):
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in df.columns:
        if "seconds" in c or c in ("examples_per_second", "malloc_setting_time_ratio"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    if "isolated" in df.columns:
        df["isolated"] = df["isolated"].astype("boolean")
    return df


def load(paths: str | Path | Iterable[str | Path]):
    """One row per run from a results folder, a record file, or several of either.

    Columns: ROW_COLUMNS (always, in that order; NaN where a record has no such figure)
    followed by any extra metric a record carries. Byte counts are nullable integers."""
    return table(records(paths))


def table(found: Iterable[tuple[Document, RecordKind]]):
    """`load`'s table of records already read (`records`, or `checked` documents of a walk)."""
    rows: list[dict] = []
    for doc, kind in found:
        rows.extend(kind.rows(doc.data, doc.path))
    df = frame(rows, ROW_COLUMNS)
    return df.drop_duplicates(subset=["run_id"], keep="last").reset_index(drop=True)


def load_phases(paths: str | Path | Iterable[str | Path]):
    """Long format: one row per phase occurrence (forward/backward/optimizer, per layer for FF)
    of each run's measured steady-state step. Columns: PHASE_COLUMNS."""
    rows: list[dict] = []
    for doc, kind in records(paths):
        if kind.phases is not None:
            rows.extend(kind.phases(doc.data, doc.path))
    import pandas as pd

    df = frame(rows, PHASE_COLUMNS)
    for c in ("index", "layer"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    return df


def to_csv(paths: str | Path | Iterable[str | Path], out: str | Path) -> Path:
    """Write `load(paths)` to `out` as CSV (atomically). Returns the path written."""
    out = Path(out)
    write_text_atomic(out, load(paths).to_csv(index=False))
    return out
