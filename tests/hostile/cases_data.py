"""Hostile data (IDX files, environment variables) and records read back."""

from __future__ import annotations

import copy
import gzip
import json
import struct
from collections.abc import Callable
from pathlib import Path

from hostile import Case, Outcome, cli, run_main

MNIST_HEAD = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # MNIST's first training labels (tells it from Fashion)
FASHION_HEAD = [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
TRAIN = (
    "train",
    "--quiet",
    "--trainer",
    "bp",
    "--depth",
    "1",
    "--width",
    "8",
    "--epochs",
    "1",
    "--threads",
    "1",
)


def labels(n: int, head=MNIST_HEAD, shift: int = 0) -> list[int]:
    return [(v + shift) % 10 for v in (head + [(7 * i) % 10 for i in range(n)])[:n]]


def write_idx(folder: Path, n: int = 100, *, layout: str = "MNIST/raw", gz: bool = True, shift: int = 0,
              head=MNIST_HEAD, **override: bytes) -> Path:  # fmt: skip
    """Four small valid IDX files (n training and n test images) in `folder/layout`; any file's
    bytes replaced by `override[<base with _ for ->]`."""
    raw = folder / layout
    raw.mkdir(parents=True, exist_ok=True)
    pixels = bytes((i * 37) % 256 for i in range(n * 784))
    content = {
        "train-images-idx3-ubyte": struct.pack(">IIII", 0x803, n, 28, 28) + pixels,
        "train-labels-idx1-ubyte": struct.pack(">II", 0x801, n) + bytes(labels(n, head, shift)),
        "t10k-images-idx3-ubyte": struct.pack(">IIII", 0x803, n, 28, 28) + pixels,
        "t10k-labels-idx1-ubyte": struct.pack(">II", 0x801, n) + bytes(labels(n, head, shift)),
    }
    for base, data in content.items():
        data = override.get(base.replace("-", "_"), data)
        if gz:
            with gzip.open(raw / f"{base}.gz", "wb") as f:
                f.write(data)
        else:
            (raw / base).write_bytes(data)
    return folder


def _cache_case(tmp: Path) -> Outcome:
    """Issue case 2: A (labels shifted) then B (the real labels), one cache: B must be B."""
    from ffbench.data import load_dataset

    write_idx(tmp / "A", shift=1)
    write_idx(tmp / "B")
    first = run_main(
        tmp, [*TRAIN, "--dataset", "mnist", "--data-dir", str(tmp / "A"), "--out-file", str(tmp / "a.json")]
    )
    o = run_main(
        tmp, [*TRAIN, "--dataset", "mnist", "--data-dir", str(tmp / "B"), "--out-file", str(tmp / "b.json")]
    )
    if first.code != 0:
        return first
    if o.code == 0:
        record = json.loads((tmp / "b.json").read_text())
        if not str(record["dataset"]["source"]).startswith(str(tmp / "B")):
            o.notes.append(f"B's record names {record['dataset']['source']} as its source")
        data = load_dataset("mnist", data_dir=tmp / "B", cache_dir=tmp / "cache", val_size=0)
        if sorted(data.train_y.tolist()) != sorted(labels(100)):
            o.notes.append("B trained on A's labels (the cache was keyed by the name alone)")
    return o


def _data_case(name: str, what: str, setup: Callable[[Path], object], says: str, *, dataset: str = "mnist",
               trainer: str = "bp", issue: str = "", exit: int = 2, **env: str) -> Case:  # fmt: skip
    argv = [
        *TRAIN,
        "--trainer",
        trainer,
        "--dataset",
        dataset,
        "--data-dir",
        "{tmp}/D",
        "--out-file",
        "{tmp}/run.json",
    ]
    return Case(
        "data", name, what, cli(*argv, **env), exit, says, setup=lambda tmp: setup(tmp / "D"), issue=issue
    )


def _gz_garbage(folder: Path) -> None:
    write_idx(folder)
    (folder / "MNIST/raw/train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip at all")


def data_cases() -> list[Case]:
    bad_magic = struct.pack(">IIII", 0x802, 100, 28, 28) + bytes(100 * 784)
    small = struct.pack(">IIII", 0x803, 100, 27, 27) + bytes(100 * 27 * 27)
    wide_labels = struct.pack(">II", 0x801, 100) + bytes([3] * 50 + [12] * 50)
    short = struct.pack(">IIII", 0x803, 100, 28, 28) + bytes(50 * 784)
    few = struct.pack(">II", 0x801, 90) + bytes(labels(90))
    return [
        Case("data", "cache-by-content", "--data-dir A (labels shifted) then --data-dir B: B's record and labels are B's",
             _cache_case, 0, issue="2", one_line=False, state=lambda tmp: None),
        _data_case("small-copy-trains", "a valid 100-image MNIST copy trains, its folder named as the source",
                   write_idx, "", exit=0),
        _data_case("bad-magic", "an images file with a wrong magic number", lambda d: write_idx(
            d, train_images_idx3_ubyte=bad_magic), "bad IDX header", issue="7"),
        _data_case("bad-dims", "images of 27 x 27", lambda d: write_idx(d, train_images_idx3_ubyte=small),
                   "bad IDX header", issue="7"),
        _data_case("labels-over-9", "labels >= 10 (FF trained a whole epoch first)", lambda d: write_idx(
            d, train_labels_idx1_ubyte=wide_labels), "outside 0..9", trainer="ff", issue="7"),
        _data_case("truncated", "an images file shorter than its header says", lambda d: write_idx(
            d, train_images_idx3_ubyte=short), "header says"),
        _data_case("label-count", "90 labels for 100 images", lambda d: write_idx(d, train_labels_idx1_ubyte=few),
                   "90 labels for 100 images"),
        _data_case("empty-file", "an empty images file", lambda d: write_idx(d, train_images_idx3_ubyte=b""),
                   "too short"),
        _data_case("not-gzip", "a .gz file that is not gzip", _gz_garbage, "could not prepare mnist"),
        _data_case("plain-bad-header", "uncompressed files in MNIST/raw with a bad header (read in place)",
                   lambda d: write_idx(d, gz=False, train_images_idx3_ubyte=bad_magic), "bad IDX header"),
        _data_case("fashion-as-mnist", "Fashion-MNIST files in a plain folder asked for as MNIST",
                   lambda d: write_idx(d, layout=".", head=FASHION_HEAD), "mnist not found"),
        _data_case("auto-empty-dir", "--dataset auto --data-dir an empty folder (silently became digits)",
                   lambda d: d.mkdir(), "holds neither MNIST nor Fashion-MNIST", dataset="auto", issue="5"),
        _data_case("env-data-file", "$FFBENCH_DATA naming a file", write_idx, "is not a folder", dataset="digits",
                   FFBENCH_DATA="{tmp}/D/MNIST/raw/train-images-idx3-ubyte.gz"),
        _data_case("env-cache-file", "$FFBENCH_CACHE naming a file", write_idx, "is not a folder",
                   FFBENCH_CACHE="{tmp}/D/MNIST/raw/train-images-idx3-ubyte.gz"),
    ]  # fmt: skip


# -- records read back ------------------------------------------------------------------------


def measure_record() -> dict:
    from ffbench.config import config_defaults

    return {
        "kind": "measure", "status": "ok", "error": None, "source": "measure",
        "config": {**config_defaults(), "dataset": "synthetic", "depth": 1, "width": 16, "batch_size": 4},
        "dataset": {"name": "synthetic", "source": "synthetic (random tensors)", "synthetic": True,
                    "in_features": 784, "num_classes": 10},
        "metrics": {"tensor_peak_bytes": 100000, "tensor_start_bytes": 60000, "tensor_transient_bytes": 40000,
                    "step_seconds_median": 0.001},
        "environment": {"device": "cpu", "device_name": "cpu", "torch": "x"},
        "settings": {"timing_steps": 1}, "phases": [], "timeline": [[0, 100], [1, 200]], "step_seconds": [0.001],
    }  # fmt: skip


def benchmark_document() -> dict:
    record = measure_record()
    return {
        "machine_info": {"ffbench": {"device": "cpu", "device_name": "cpu"}},
        "datetime": "2026-01-01",
        "benchmarks": [{"name": "test_step", "group": "step", "fullname": "b::test_step",
                        "extra_info": {"config": record["config"], "tensor_peak_bytes": 1000},
                        "stats": {"median": 0.01, "min": 0.01, "max": 0.01, "mean": 0.01, "rounds": 3,
                                  "outliers": "0;0", "data": [0.01, 0.01, 0.01]}}],
    }  # fmt: skip


def _set(doc: dict, path: str, value) -> dict:
    """A copy of `doc` with the dotted `path` set (value `DELETE` removes it)."""
    doc = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


DELETE = object()
RAW = object()  # the value is the file's text itself


def _record_case(name: str, what: str, value, says: str, path: str = "", *, template=measure_record,
                 issue: str = "", exit: int = 2) -> Case:  # fmt: skip
    def setup(tmp: Path) -> None:
        folder = tmp / "recs"
        folder.mkdir()
        if path == "":
            text = value if isinstance(value, (str, bytes)) else json.dumps(value)
        else:
            text = json.dumps(_set(template(), path, value))
        (folder / "r.json").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))

    state = (lambda tmp: None if (tmp / "r.html").is_file() else "no report written") if exit == 0 else None
    act = cli("report", "{tmp}/recs", "--out-file", "{tmp}/r.html", "--quiet")
    return Case("records", name, what, act, exit, says, setup=setup, state=state, issue=issue)


def _load_no_status(tmp: Path) -> Outcome:
    """Issue case 8 through the loader: a record with no status must not become 'ok'."""
    from ffbench.errors import ConfigError
    from ffbench.results import load

    folder = tmp / "recs"
    folder.mkdir()
    (folder / "r.json").write_text(json.dumps(_set(measure_record(), "status", DELETE)))
    try:
        df = load(folder)
    except ConfigError as exc:
        return Outcome(2, "", f"ffbench: error: {exc}\n")
    o = Outcome(0)
    if list(df["status"]) == ["ok"]:
        o.notes.append("a record without status loaded as 'ok'")
    return o


def record_cases() -> list[Case]:
    bench = benchmark_document
    deep = "[" * 100_000 + "]" * 100_000
    specs = [
        ("valid", "a valid measure record (control)", "ok", "", "status", {"exit": 0}),
        (
            "no-status",
            "a measure record with no status (loaded as ok)",
            DELETE,
            "has no 'status'",
            "status",
            {"issue": "8"},
        ),
        ("status-unknown", "status 'great'", "great", "unknown status", "status", {}),
        ("status-int", "status 5", 5, "field 'status' must be str", "status", {}),
        ("config-text", "config a string", "bp", "'config' must be an object", "config", {}),
        (
            "config-depth-text",
            "config.depth 'abc'",
            "abc",
            "depth must be an integer",
            "config.depth",
            {"issue": "7"},
        ),
        ("config-depth-negative", "config.depth -3", -3, "depth must be an integer >= 1", "config.depth", {}),
        ("config-lr-text", "config.lr 'fast'", "fast", "lr must be a finite number", "config.lr", {}),
        ("config-trainer-int", "config.trainer 5", 5, "trainer must be text", "config.trainer", {}),
        (
            "metric-text",
            "a metric 'big'",
            "big",
            "metric 'tensor_peak_bytes' must be a number",
            "metrics.tensor_peak_bytes",
            {"issue": "7"},
        ),
        ("metric-bool", "a metric true", True, "must be a number", "metrics.tensor_peak_bytes", {}),
        (
            "metric-2**62",
            "a metric of 2**63 - 1 bytes",
            2**63 - 1,
            "must be a number",
            "metrics.tensor_peak_bytes",
            {},
        ),
        ("metrics-list", "metrics a list", [1, 2], "field 'metrics' must be dict", "metrics", {}),
        ("epochs-int", "epochs 5", 5, "field 'epochs' must be list", "epochs", {}),
        ("epochs-item", "epochs [5]", [5], "epoch 0 must be an object", "epochs", {}),
        ("timeline-short", "timeline [[1]]", [[1]], "timeline point 0", "timeline", {}),
        ("timeline-text", "timeline 'x'", "x", "field 'timeline' must be list", "timeline", {}),
        ("phases-item", "phases [1]", [1], "phase 0 must be an object", "phases", {}),
        ("dataset-int", "dataset 5", 5, "field 'dataset' must be dict", "dataset", {}),
        ("environment-text", "environment 'x'", "x", "field 'environment' must be dict", "environment", {}),
        (
            "step-seconds-text",
            "step_seconds ['x']",
            ["x"],
            "step time '0' must be a number",
            "step_seconds",
            {},
        ),
    ]
    cases = [_record_case(n, w, v, s, p, **kw) for n, w, v, s, p, kw in specs]
    raw = [
        (
            "infinity",
            "a metric Infinity",
            '{"kind": "measure", "status": "ok", "metrics": {"a": Infinity}}',
            "Infinity is not a JSON number",
            "7",
        ),
        ("nan", "a metric NaN", '{"kind": "measure", "status": "ok", "metrics": {"a": NaN}}', "NaN", ""),
        (
            "1e30",
            "a metric 1e30",
            '{"kind": "measure", "status": "ok", "config": {}, "metrics": {"a": 1e30}}',
            "out of range",
            "7",
        ),
        ("deep", "100k-deep nesting", deep, "nested too deeply", "7"),
        ("truncated", "truncated JSON", '{"kind": "measure", "sta', "not readable JSON", ""),
        ("not-utf8", "non-UTF-8 bytes", b'{"kind": "\xff"}', "not UTF-8", ""),
        ("empty", "an empty file", "", "not readable JSON", ""),
        ("list", "a JSON list", "[1, 2, 3]", "not ffbench results", ""),
        ("unknown-kind", "kind 'mystery'", '{"kind": "mystery"}', "not ffbench results", ""),
    ]
    cases += [_record_case(f"json-{n}", w, v, s, issue=i) for n, w, v, s, i in raw]
    benches = [
        ("valid", "a valid pytest-benchmark file (control)", "step", "", "benchmarks.0.group", {"exit": 0}),
        (
            "list-int",
            "benchmarks entry 5",
            5,
            "benchmark 0 must be an object",
            "benchmarks.0",
            {"issue": "7"},
        ),
        (
            "config-depth",
            "extra_info.config.depth 'x'",
            "x",
            "depth must be an integer",
            "benchmarks.0.extra_info.config.depth",
            {"issue": "7"},
        ),
        (
            "median-text",
            "stats.median 'fast'",
            "fast",
            "stat 'median' must be a number",
            "benchmarks.0.stats.median",
            {},
        ),
        ("machine-info", "machine_info 5", 5, "'machine_info' must be an object", "machine_info", {}),
        (
            "ffbench-info",
            "machine_info.ffbench 'x'",
            "x",
            "field 'ffbench' must be dict",
            "machine_info.ffbench",
            {},
        ),
        (
            "extra-info-list",
            "extra_info a list",
            [1],
            "field 'extra_info' must be dict",
            "benchmarks.0.extra_info",
            {},
        ),
    ]
    cases += [_record_case(f"bench-{n}", f"benchmark JSON: {w}", v, s, p, template=bench, **kw)
              for n, w, v, s, p, kw in benches]  # fmt: skip
    cases.append(Case("records", "load-no-status", "results.load of a record with no status", _load_no_status, 2,
                      "has no 'status'", issue="8", state=lambda tmp: None))  # fmt: skip
    return cases + _folder_cases()


def _folder_cases() -> list[Case]:
    def results_folder(manifest: dict | str, environment: dict | str = "{}") -> Callable[[Path], None]:
        from ffbench.results.store import record_name

        def setup(tmp: Path) -> None:
            folder = tmp / "recs"
            (folder / "records").mkdir(parents=True)
            for name, doc in (("manifest.json", manifest), ("environment.json", environment)):
                (folder / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
            record = measure_record()  # named after its configuration, as a results folder's records are
            (folder / "records" / record_name(record["config"])).write_text(json.dumps(record))

        return setup

    ok = {"format": "ffbench-results", "schema_version": 2, "command": "sweep"}
    maxbatch = {"budget_bytes": 2**20, "results": [5]}
    act = cli("report", "{tmp}/recs", "--out-file", "{tmp}/r.html", "--quiet")
    return [
        Case("records", "manifest-version-text", "a results folder whose manifest says schema_version '2'", act, 2,
             "schema version '2'", setup=results_folder({**ok, "schema_version": "2"})),
        Case("records", "manifest-infinity", "a manifest holding Infinity", act, 2, "Infinity",
             setup=results_folder('{"format": "ffbench-results", "schema_version": Infinity}')),
        Case("records", "environment-corrupt", "a results folder whose environment.json is truncated", act, 2,
             "not readable JSON", setup=results_folder(ok, '{"device": ')),
        Case("records", "maxbatch-item", "maxbatch.json whose results hold 5", act, 2, "result 0 must be an object",
             setup=lambda tmp: _maxbatch(tmp, maxbatch)),
        Case("records", "maxbatch-field", "maxbatch.json with max_batch_size 'many'", act, 2,
             "field 'max_batch_size' must be number",
             setup=lambda tmp: _maxbatch(tmp, {**maxbatch, "results": [{"trainer": "bp", "max_batch_size": "many"}]})),
    ]  # fmt: skip


def _maxbatch(tmp: Path, doc: dict) -> None:
    (tmp / "recs").mkdir()
    (tmp / "recs" / "maxbatch.json").write_text(json.dumps(doc))
