"""Result records on disk, and the tidy tables made from them.

A *results folder* (what `ffbench sweep` and `ffbench maxbatch` write)::

    DIR/manifest.json      identifies the folder: format, schema version, command, grid, settings
    DIR/environment.json   where it ran: torch/CUDA, device, CPU model, cores, threads, dataset, git
    DIR/records/*.json     one record per configuration, written atomically when it finishes
    DIR/results.csv        `load(DIR)` exported (derived; regenerated at the end of every run)

Records are the source of truth; everything else can be rebuilt from them. The schema
is documented in docs/results-schema.md.

`load(paths)` -> one row per run (a pandas DataFrame with a fixed column set);
`load_phases(paths)` -> one row per phase (and layer) of the measured steady-state step.
Each record *kind* ("measure", "train", ...) is turned into rows by one function
registered with `register_kind`; a new kind (e.g. pytest-benchmark JSON) is one call.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..measure.tensors import CATEGORIES

FORMAT = "ffbench-results"
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
ENVIRONMENT = "environment.json"
RECORDS = "records"
CSV_NAME = "results.csv"
STATUSES = ("ok", "oom", "timeout", "error")
SOURCES = ("sweep", "maxbatch", "measure", "train", "benchmark")


def _clean(value: Any) -> Any:
    """JSON has no NaN: store missing numbers as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json_atomic(path: str | Path, data: Any) -> None:
    """JSON (NaN stored as null), written atomically (see _write_text_atomic)."""
    _write_text_atomic(Path(path), json.dumps(_clean(data), indent=2, sort_keys=True))


def _write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- identity of a configuration ------------------------------------------------------


def config_hash(config: Any) -> str:
    """Stable 12-hex-digit id of a configuration (a RunConfig or its dict; `extra` ignored)."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    data = {k: v for k, v in data.items() if k != "extra"}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def record_name(config: Any) -> str:
    """File name of a configuration's record: readable prefix + hash, e.g. bp-d2-w500-b64-<hash>.json."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    short = f"{data['trainer']}-d{data['depth']}-w{data['width']}-b{data['batch_size']}"
    return f"{short}-{config_hash(data)}.json"


# -- the results folder ---------------------------------------------------------------


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{what} {path} is not readable JSON ({type(exc).__name__})") from None


def read_manifest(folder: Path) -> dict:
    """The manifest of an existing results folder; ConfigError if it is not one of ours."""
    manifest = read_json(folder / MANIFEST, "manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(
            f"{folder} is not an ffbench results folder ({MANIFEST} has no 'format': '{FORMAT}')"
        )
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ConfigError(
            f"{folder} uses results schema version {version!r}; this ffbench reads up to {SCHEMA_VERSION}"
        )
    return manifest


def check_results_folder(folder: Path) -> dict | None:
    """Validate `folder` as a place to write results, without writing anything.

    Returns its manifest when it is an existing ffbench results folder, None when it does
    not exist or is empty; raises ConfigError for a file, a foreign or a corrupt folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file, not a results folder")
    if not folder.exists() or not any(folder.iterdir()):
        return None
    if not (folder / MANIFEST).exists():
        raise ConfigError(
            f"--out {folder} exists and is not an ffbench results folder "
            f"(no {MANIFEST}); choose a new or empty folder"
        )
    manifest = read_manifest(folder)
    records = folder / RECORDS
    if records.exists():
        for path in records.glob("*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                raise ConfigError(
                    f"--out {folder}: record {path.name} is corrupt; move it away "
                    f"to re-run that configuration"
                ) from None
            if not isinstance(data, dict) or "config" not in data:
                raise ConfigError(f"--out {folder}: {path.name} is not an ffbench record")
    return manifest


def existing_records(folder: Path) -> dict[str, dict]:
    """Record file name -> record, for every finished configuration in a results folder."""
    out = {}
    for path in sorted((Path(folder) / RECORDS).glob("*.json")):
        out[path.name] = json.loads(path.read_text())
    return out


def remove_stale_temporaries(folder: Path) -> None:
    """Delete half-written files a killed run left behind (never a finished record)."""
    for path in list((Path(folder) / RECORDS).glob(".*.tmp")) + list(Path(folder).glob(".*.tmp")):
        path.unlink(missing_ok=True)
    work = Path(folder) / ".work"
    if work.exists():
        for path in work.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)


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


def _kind_of(document: Any) -> RecordKind | None:
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
CONFIG_COLUMNS = (
    "trainer",
    "depth",
    "width",
    "batch_size",
    "epochs",
    "lr",
    "optimizer",
    "optimizer_impl",
    "device",
    "dtype",
    "seed",
    "threads",
    "val_size",
    "eval_chunk",
    "ff_threshold",
    "ff_goodness",
    "ff_norm",
    "ff_negatives",
    "ff_eval_layers",
    "checkpoint_segments",
    "micro_batch",
)
ID_COLUMNS = ("run_id", "config_hash", "kind", "source", "isolated", "status", "error")
DATA_COLUMNS = ("dataset", "dataset_requested", "synthetic")
SETTING_COLUMNS = ("memory_limit_bytes", "timing_steps", "timeout_seconds", "worker_seconds")
ENV_COLUMNS = ("device_name", "cpu_model", "cores", "torch", "cuda", "git_revision")
TENSOR_PREFIXES = ("tensor", "tensor_first_step", "tensor_eval")
METRIC_COLUMNS = tuple(
    [f"{p}_{s}_bytes" for p in TENSOR_PREFIXES for s in ("peak", "start", "transient")]
    + [f"{p}_peak_{c}_bytes" for p in TENSOR_PREFIXES for c in CATEGORIES]
    + [f"{p}_saved_activations_bytes" for p in TENSOR_PREFIXES]
    + [
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
        "step_seconds_min",
        "step_seconds_median_default_malloc",
        "malloc_setting_time_ratio",
        "examples_per_second",
        "eval_examples",
        "eval_seconds",
    ]
    + [
        f"analytic_{k}_bytes"
        for k in ("peak", "start", "transient", "first_step_peak", "eval_peak", "whole_run_peak")
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
_INT_COLUMNS = tuple(c for c in ROW_COLUMNS if c.endswith("_bytes")) + (
    "depth",
    "width",
    "batch_size",
    "epochs",
    "seed",
    "threads",
    "val_size",
    "eval_chunk",
    "checkpoint_segments",
    "timing_steps",
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
            "status": record.get("status", "ok"),
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
        }
    )
    for c in ENV_COLUMNS:
        row[c] = env.get(c)
    return row


def _measure_rows(record: dict, path: Path) -> list[dict]:
    """A harness record (`harness.run_one`, wrapped by the sweep worker)."""
    row = _common(record, path, "measure", "measure", isolated=False)
    row.update(record.get("metrics") or {})
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
        }
    )
    return [row]


register_kind("measure", _measure_rows, phases=_measure_phases)
register_kind("train", _train_rows)


def _benchmark_records(document: dict) -> list[dict]:
    from .benchjson import records_from_document

    return records_from_document(document)


def _benchmark_rows(document: dict, path: Path) -> list[dict]:
    """A pytest-benchmark JSON file: one measure-like row per ffbench benchmark."""
    rows = []
    for i, record in enumerate(_benchmark_records(document)):
        row = _measure_rows(record, path)[0]
        row["run_id"] = run_id("benchmark", path, f":{i}")
        rows.append(row)
    return rows


def _benchmark_phases(document: dict, path: Path) -> list[dict]:
    rows = []
    for i, record in enumerate(_benchmark_records(document)):
        for row in _measure_phases(record, path):
            row["run_id"] = run_id("benchmark", path, f":{i}")
            rows.append(row)
    return rows


def _is_benchmark_json(document: Any) -> bool:
    from .benchjson import is_benchmark_json

    return is_benchmark_json(document)


register_kind("benchmark", _benchmark_rows, phases=_benchmark_phases, detect=_is_benchmark_json)


# -- loading ----------------------------------------------------------------------------


def _documents(paths: str | Path | Iterable[str | Path]) -> list[tuple[Path, dict, RecordKind]]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            if (p / MANIFEST).exists():
                read_manifest(p)
                files.extend(sorted((p / RECORDS).glob("*.json")))
            else:  # a plain folder of record files
                files.extend(sorted(q for q in p.glob("*.json") if not q.name.startswith(".")))
        elif p.exists():
            files.append(p)
        else:
            raise ConfigError(f"{p} does not exist")
    seen: set[Path] = set()
    docs = []
    for f in files:
        key = f.resolve()
        if key in seen:
            continue
        seen.add(key)
        document = read_json(f, "record")
        kind = _kind_of(document)
        if kind is None:
            if f.name in (MANIFEST, ENVIRONMENT):
                continue
            raise ConfigError(f"{f} is not a record ffbench can read (no known 'kind')")
        docs.append((f, document, kind))
    return docs


def _frame(rows: list[dict], columns: tuple[str, ...]):
    import pandas as pd

    extra = sorted({k for r in rows for k in r} - set(columns))
    df = pd.DataFrame(rows, columns=list(columns) + extra)
    for c in df.columns:
        if c in _INT_COLUMNS or (c.endswith("_bytes") and c not in ("malloc_setting_time_ratio",)):
            df[c] = pd.to_numeric(df[c], errors="coerce").round().astype("Int64")
    for c in (
        "val_accuracy",
        "test_accuracy",
        "readout_accuracy",
        "lr",
        "ff_threshold",
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
    rows: list[dict] = []
    for path, document, kind in _documents(paths):
        rows.extend(kind.rows(document, path))
    df = _frame(rows, ROW_COLUMNS)
    return df.drop_duplicates(subset=["run_id"], keep="last").reset_index(drop=True)


def load_phases(paths: str | Path | Iterable[str | Path]):
    """Long format: one row per phase occurrence (forward/backward/optimizer, per layer for FF)
    of each run's measured steady-state step. Columns: PHASE_COLUMNS."""
    rows: list[dict] = []
    for path, document, kind in _documents(paths):
        if kind.phases is not None:
            rows.extend(kind.phases(document, path))
    import pandas as pd

    df = _frame(rows, PHASE_COLUMNS)
    for c in ("index", "layer"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    return df


def to_csv(paths: str | Path | Iterable[str | Path], out: str | Path) -> Path:
    """Write `load(paths)` to `out` as CSV (atomically). Returns the path written."""
    out = Path(out)
    _write_text_atomic(out, load(paths).to_csv(index=False))
    return out


def write_csv_next_to_records(folder: str | Path) -> Path:
    """Regenerate DIR/results.csv from DIR's records."""
    return to_csv(folder, Path(folder) / CSV_NAME)
