"""The record: one typed shape for the measure, train, sweep and benchmark records.

`Record.build(**fields)` makes every record ffbench writes (the harness's, the sweep worker's,
fit's, `ffbench.track`'s, the benchmark plugin's) and `updated(**fields)` adds to one;
`Record.from_dict(d, path, kind)` is the read-back check (one-line ConfigError naming the file
and the field), `to_dict()` gives back exactly the dict it was made from (key order included;
keys the type does not know are kept in `rest`, so fields other versions add round-trip), and
`upgrade()` is the one compatibility path: it fills what an older record lacks with what
applied when it was written (`UPGRADES`): configuration fields added since, a train record's
`status`, the timing spread, the training-step peak.

Every change of the record's fields bumps `SCHEMA_VERSION` (and adds its step to `UPGRADES`
and docs/results-schema.md, whose field table is checked against `Record` by a test). Until
that rule, fields were added under version 2: a version-2 record's `environment.git_revision`
names the commit that wrote it, and what it lacks is what that commit did not write yet
(`CONFIG_HISTORY` names the commit that added each configuration field; `git log -S`).

No torch is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .config import config_defaults, config_keys
from .errors import ConfigError
from .schema import STATUSES
from .validate import NUMBER, _short, byte_counts, config, numbers, shape

# bumped on every change of the record's fields (see the docstring). 3: the timing protocol's
# `timing`, `timing_pending`, `earlier_timings`, `passes_seconds`; a train record's
# `time_to_target` and `tuning` (older records lack them: their times decide no verdict)
SCHEMA_VERSION = 3
KINDS = ("measure", "train", "track")


def _json(kind: str, meaning: str):
    """A record field: its JSON type (null allowed) and one line for the schema document."""
    return field(default=None, metadata={"json": kind, "meaning": meaning})


@dataclass
class Record:
    """A record as written (`to_dict`) and read back (`from_dict`). Each typed field may be
    absent (None and not in `keys`); `rest` holds the keys the type does not name."""

    kind: str | None = _json("str", "`measure`, `train` or `track`")
    status: str | None = _json("str", "what happened: one of `ffbench.schema.STATUSES`")
    config: dict | None = _json("dict", "the configuration (`RunConfig` fields)")
    schema_version: int | None = _json(NUMBER, "the schema the record was written in")
    config_hash: str | None = _json("str", "hash of the non-default configuration fields")
    error: str | None = _json("str", "null, or one line saying why the run did not end well")
    fault: str | None = _json("str", "`environment` when the machine caused the error")
    partial: bool | None = _json("bool", "true on a copy written before the run ended")
    source: str | None = _json("str", "the command that wrote it (`sweep`, `maxbatch`, `train` ...)")
    isolated: bool | None = _json("bool", "true: the configuration ran alone in a fresh process")
    dataset: dict | None = _json("dict", "the dataset that ran (`name`, `synthetic`, `source` ...)")
    environment: dict | None = _json("dict", "where it ran (torch, device, CPU, `git_revision`)")
    settings: dict | None = _json("dict", "the results folder's settings")
    worker: dict | None = _json("dict", "the worker process (executor, wall seconds, pid ...)")
    budget: dict | None = _json("dict", "the memory budget a maxbatch probe ran under")
    baseline: dict | None = _json("dict", "the worker's VmData and RSS after warming up")
    memory: dict | None = _json("dict", "train: the process's memory figures (`*_bytes`)")
    readout: dict | None = _json("dict", "train, FF: the readout's accuracies")
    methods: dict | None = _json("dict", "how each figure was measured")
    metrics: dict | None = _json("dict", "measure: the figures, finite numbers (`*_note`: text)")
    epochs: list | None = _json("list", "train: one object of figures per epoch")
    timeline: list | None = _json("list", "measure: `[op_index, live_bytes]` points")
    phases: list | None = _json("list", "measure: the steady step's phases (`start_bytes` ...)")
    step_seconds: list | None = _json("list", "measure: the timed steps' seconds")
    timing: dict | None = _json(
        "dict", "measure: how the step times were taken (`measure.protocol`: job, order, load)"
    )
    timing_pending: bool | None = _json("bool", "measure: true while its pair group's timing job has not run")
    earlier_timings: list | None = _json("list", "measure: times replaced by a later timing job, kept")
    passes_seconds: dict | None = _json("dict", "measure: seconds of each measurement pass in the worker")
    time_to_target: dict | None = _json(
        "dict", "train: epoch, wall and CPU seconds to the target (or the cap)"
    )
    tuning: dict | None = _json("dict", "train: the tuning record that chose the recipe, and its budget")
    val_accuracy: float | None = _json(NUMBER, "train: the last epoch's validation accuracy")
    test_accuracy: float | None = _json(NUMBER, "train: the test accuracy")
    wall_seconds: float | None = _json(NUMBER, "train: the run's wall-clock seconds")
    parameters: int | None = _json(NUMBER, "train: the number of parameters")
    threads: int | None = _json(NUMBER, "the torch threads it ran with")
    eval_chunk: int | None = _json(NUMBER, "the evaluation chunk that ran")
    name: str | None = _json("str", "track: the measured block's name")
    family: str | None = _json(
        "str", "measure: the update the trainer makes: `ff`, `bp` or `other` (`Trainer.family`)"
    )
    batch_convention: str | None = _json(
        "str", "what `batch_size` counts (`ffbench.config.BATCH_CONVENTION`)"
    )
    allocator_setting: str | None = _json(
        "str", "measure: the host allocator's setting the memory was measured under"
    )
    timing_error: str | None = _json("str", "measure: why no step times came back")
    peak_holders: list | None = _json(
        "list", "measure, track: the storages alive at the peak (with sites asked for)"
    )
    peak_sites: dict | None = _json("dict", "measure, track: the peak's bytes per allocation site")
    fault_reason: str | None = _json("str", "why the error is the machine's fault (with `fault`)")
    traceback: str | None = _json("str", "status `error`: the end of the worker's traceback")
    worker_output: str | None = _json("str", "a worker that wrote no record: the end of its stderr")
    ff_evaluation: dict | None = _json(
        "dict", "train, FF: how the accuracy was evaluated (method, layers, chunk)"
    )
    black_box: dict | None = _json("dict", "train: what the black box froze and its estimator")
    benchmark: dict | None = _json("dict", "benchmark: pytest-benchmark's name, group, kind and rounds")
    tracked_step_seconds: list | None = _json(
        "list", "benchmark, tracker overhead: the tracked steps' seconds"
    )
    untracked_step_seconds: list | None = _json(
        "list", "benchmark, tracker overhead: the untracked steps' seconds"
    )
    memory_limit: dict | None = _json("dict", "older maxbatch records: the budget (now `budget`)")
    step_seconds_default_malloc: list | None = _json(
        "list", "older measure records: step seconds under glibc's default allocator (now `timing`)"
    )
    rest: dict = field(default_factory=dict, metadata={"json": None})
    keys: tuple = field(default=(), metadata={"json": None})

    @classmethod
    def from_dict(cls, doc: Any, path: str | Path = "?", kind: str | None = None) -> Record:
        """The record `doc` read from `path`, checked (see `check`); ConfigError, one line."""
        if not isinstance(doc, dict):
            raise ConfigError(f"record {path} must be an object, got {_short(doc)}")
        check(doc, path, kind or doc.get("kind"))
        return cls.wrap(doc)

    @classmethod
    def build(cls, **fields: Any) -> Record:
        """The one place a record is made: its fields in the order they are to be written
        (the JSON keeps that order). A name the type does not know is a TypeError, never a new
        key by a typo; `rest` carries the keys another version of ffbench wrote."""
        unknown = [k for k in fields if k not in TYPED]
        if unknown:
            raise TypeError(f"Record has no field {', '.join(map(repr, unknown))}")
        return cls.wrap(fields)

    def updated(self, **fields: Any) -> Record:
        """This record with `fields` set: replaced where it has them, else added after its
        own (None is written as null); a name the type does not know is a TypeError."""
        self.build(**fields)  # the names checked
        return self.wrap({**self.to_dict(), **fields})

    def without(self, *names: str) -> Record:
        """This record without the fields `names` (those it lacks are no error)."""
        return self.wrap({k: v for k, v in self.to_dict().items() if k not in names})

    @classmethod
    def wrap(cls, doc: dict) -> Record:
        """`doc` as a Record, unchecked (a record ffbench has just built, e.g. from a
        benchmark file)."""
        typed = {k: v for k, v in doc.items() if k in TYPED}
        return cls(**typed, rest={k: v for k, v in doc.items() if k not in TYPED}, keys=tuple(doc))

    def to_dict(self) -> dict:
        """The record as a dict: its keys in the order read, then typed fields set since."""
        out = {k: self.rest[k] if k in self.rest else getattr(self, k) for k in self.keys}
        for name in TYPED:
            if name not in out and getattr(self, name) is not None:
                out[name] = getattr(self, name)
        for k, v in self.rest.items():
            out.setdefault(k, v)
        return out

    def upgrade(self) -> Record:
        """This record in today's terms: each step of `UPGRADES` fills what it lacks."""
        rec = replace(self, config=dict(self.config or {}), rest=dict(self.rest))
        for step in UPGRADES:
            step(rec)
        return rec

    @property
    def git_revision(self) -> str | None:
        return (self.environment or {}).get("git_revision")


TYPED = tuple(f.name for f in fields(Record) if f.metadata.get("json"))
RECORD_FIELDS = {f.name: f.metadata["json"] for f in fields(Record) if f.metadata.get("json")}


def check(doc: dict, path: str | Path, kind: str | None) -> None:
    """A measure or train record read back (see docs/results-schema.md)."""
    where = f"record {path}"
    config(doc.get("config"), where)  # first: its own words ("'config' must be an object")
    shape(doc, RECORD_FIELDS, where)
    version = doc.get("schema_version")
    if isinstance(version, (int, float)) and version > SCHEMA_VERSION:
        raise ConfigError(
            f"{where} uses record schema version {version:g}; this ffbench reads up to {SCHEMA_VERSION} "
            f"(upgrade ffbench to read it)"
        )
    status = doc.get("status")
    if status is None and not (kind == "train" and isinstance(doc.get("test_accuracy"), (int, float))):
        raise ConfigError(f"{where} has no 'status': not a finished ffbench record")
    if status is not None and status not in STATUSES:
        raise ConfigError(f"{where}: unknown status {_short(status)}; expected one of {', '.join(STATUSES)}")
    metrics = doc.get("metrics") or {}
    if status == "ok" and kind == "measure" and not metrics:
        raise ConfigError(f"{where} is status 'ok' but holds no metrics: not a finished measurement")
    if status == "ok" and kind == "train" and not isinstance(doc.get("test_accuracy"), (int, float)):
        raise ConfigError(f"{where} is status 'ok' but holds no test_accuracy: not a finished run")
    notes = {k: v for k, v in metrics.items() if k.endswith("_note")}  # e.g. why no analytic model
    shape(notes, dict.fromkeys(notes, "str"), where)
    numbers({k: v for k, v in metrics.items() if k not in notes}, where, "metric")
    byte_counts(metrics, where, "metric")
    byte_counts(doc.get("memory") or {}, where, "memory figure")
    _check_lists(doc, where)


def _check_lists(doc: dict, where: str) -> None:
    for i, epoch in enumerate(doc.get("epochs") or []):
        if not isinstance(epoch, dict):
            raise ConfigError(f"{where}: epoch {i} must be an object, got {_short(epoch)}")
        numbers(epoch, where, f"epoch {i} field")
    for i, point in enumerate(doc.get("timeline") or []):
        if not isinstance(point, list) or len(point) != 2:
            raise ConfigError(f"{where}: timeline point {i} must be [op_index, live_bytes]")
        numbers(point, where, f"timeline point {i} entry")
    for i, phase in enumerate(doc.get("phases") or []):
        if not isinstance(phase, dict):
            raise ConfigError(f"{where}: phase {i} must be an object, got {_short(phase)}")
        numbers({k: phase.get(k) for k in ("start_bytes", "peak_bytes", "layer")}, where, f"phase {i} field")
        byte_counts(phase, where, f"phase {i} field")
    numbers(doc.get("step_seconds") or [], where, "step time")


# -- upgrade: what older records lack --------------------------------------------------------

# The commit that added each configuration field a committed record lacks (`git log -S` on
# ffbench/config.py). A record whose git_revision predates it was written without the field;
# what ran then is the field's default, except where BEFORE says otherwise.
CONFIG_HISTORY = {
    "ff_pass": "bd6f5e7",
    "ff_eval": "bd6f5e7",
    "arch": "47f04a1",
    "black_box": "2857995",
    "lr_schedule": "2857995",
    "eval_steps": "2857995",
    "time_steps": "2857995",
    "bptt_window": "2857995",
    "ff_loss": "fcb0765",
    "memory_format": "fcb0765",
    "ff_goodness_scope": "fcb0765",
    "image_shape": "fcb0765",
    "channels": "fcb0765",
    "stride": "fcb0765",
    "ff_alpha": "fcb0765",
    "kernel": "fcb0765",
    "lr_final": "fcb0765",
    "ff_micro_schedule": "791ba9c",
    "target_accuracy": "904e12a",
}
REMOVED_CONFIG = ("extra",)  # dropped in schema version 2


def _before_ff_eval(config: dict) -> dict:
    """What ran before bd6f5e7: an evaluation chunk of None was the batch size; FF
    evaluated every label at once (`replicated`)."""
    if config.get("eval_chunk") is None and "batch_size" in config:
        config["eval_chunk"] = config["batch_size"]
    if str(config.get("trainer", "")).startswith("ff"):
        config.setdefault("ff_eval", "replicated")
    return config


def upgrade_config(rec: Record) -> None:
    """Configuration fields the record predates: what ran when it was written."""
    config = rec.config
    if not config:
        return  # a track record has no configuration
    for key in REMOVED_CONFIG:
        config.pop(key, None)
    if "ff_eval" not in config:
        _before_ff_eval(config)
    defaults = config_defaults()
    for key in config_keys():
        config.setdefault(key, defaults[key])


def upgrade_status(rec: Record) -> None:
    """A train record from before `status` was written only when training finished: ok."""
    if rec.kind == "train" and rec.status is None and "status" not in rec.keys:
        rec.status = "ok"


def upgrade_spread(rec: Record) -> None:
    """Records from before the timing spread was recorded: quartiles from `step_seconds`."""
    times = rec.step_seconds
    if rec.metrics is not None and "step_seconds_iqr" not in rec.metrics and times:
        from .stats import timing_spread

        rec.metrics = {**timing_spread([float(t) for t in times]), **rec.metrics}


def upgrade_train_peak(rec: Record) -> None:
    """Records from before `tensor_train_peak_bytes`: the training step's peak was the larger
    of the first and the steady step's (evaluation never included)."""
    metrics = rec.metrics
    if metrics is None or "tensor_train_peak_bytes" in metrics:
        return
    steps = [metrics.get(k) for k in ("tensor_peak_bytes", "tensor_first_step_peak_bytes")]
    if any(v is not None for v in steps):
        rec.metrics = {**metrics, "tensor_train_peak_bytes": max(v for v in steps if v is not None)}


UPGRADES = (upgrade_config, upgrade_status, upgrade_spread, upgrade_train_peak)


def read(doc: Any, path: str | Path = "?", kind: str | None = None) -> dict:
    """The one read path: `doc` checked, upgraded, as a dict."""
    return Record.from_dict(doc, path, kind).upgrade().to_dict()


def schema_table() -> str:
    """The record's fields as the Markdown table of docs/results-schema.md."""
    lines = ["| key | JSON type | meaning |", "|---|---|---|"]
    for f in fields(Record):
        if f.metadata.get("json"):
            lines.append(f"| `{f.name}` | {f.metadata['json']} | {f.metadata['meaning']} |")
    return "\n".join(lines)
