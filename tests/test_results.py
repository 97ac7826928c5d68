"""Results store: record files -> tidy DataFrames, with a stable schema. Real records only:
one real sweep worker run and one real `fit` on the bundled digits."""

import json
import shutil

import pytest

from ffbench.config import RunConfig
from ffbench.data import load_dataset
from ffbench.errors import ConfigError
from ffbench.proc import cpu_model
from ffbench.results import rows as results
from ffbench.results import store as results_store
from ffbench.results.store import ResultsFolder
from ffbench.run.fit import fit
from ffbench.run.sweep import SweepSettings, measure, write_csv

# The columns a caller may rely on. Adding a column is fine; removing or renaming one
# breaks reports and notebooks: change this list, SCHEMA_VERSION and docs/results-schema.md together.
REQUIRED = [
    "run_id",
    "config_hash",
    "kind",
    "source",
    "isolated",
    "status",
    "error",
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
    "dataset",
    "dataset_requested",
    "synthetic",
    "memory_limit_bytes",
    "timing_steps",
    "timeout_seconds",
    "worker_seconds",
    "tensor_peak_bytes",
    "tensor_start_bytes",
    "tensor_transient_bytes",
    "tensor_peak_parameters_bytes",
    "tensor_peak_gradients_bytes",
    "tensor_peak_optimizer_state_bytes",
    "tensor_peak_activations_bytes",
    "tensor_peak_inputs_bytes",
    "tensor_peak_other_bytes",
    "tensor_first_step_peak_bytes",
    "tensor_eval_peak_bytes",
    "tensor_whole_run_peak_bytes",
    "rss_start_bytes",
    "rss_peak_bytes",
    "rss_rise_bytes",
    "cuda_start_allocated_bytes",
    "cuda_peak_allocated_bytes",
    "cuda_rise_allocated_bytes",
    "cuda_peak_reserved_bytes",
    "step_seconds_median",
    "step_seconds_min",
    "examples_per_second",
    "eval_seconds",
    "val_accuracy",
    "test_accuracy",
    "train_seconds",
    "wall_seconds",
    "device_name",
    "cpu_model",
    "cores",
    "torch",
    "cuda",
    "git_revision",
    "path",
]
PHASE_REQUIRED = [
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
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A results folder with one real sweep record (ff, 2 layers) and a real train record."""
    root = tmp_path_factory.mktemp("store")
    base = RunConfig(
        trainer="ff", depth=2, width=32, batch_size=16, dataset="synthetic", device="cpu", threads=1
    )
    settings = SweepSettings(timing_steps=1)
    folder = ResultsFolder.open(
        root / "sweep",
        command="sweep",
        grid={"trainers": ["ff"]},
        base_config=base.to_dict(),
        settings=settings.to_dict(),
        # the real device name: a folder refuses records measured on another device model
        environment={"device_name": cpu_model(), "torch": "x", "cuda": None},
    )
    records = list(measure(folder, [base], settings))
    assert records[0]["status"] == "ok", records[0].get("error")
    write_csv(folder)
    train_cfg = RunConfig(
        trainer="bp",
        depth=1,
        width=32,
        batch_size=64,
        dataset="digits",
        device="cpu",
        threads=1,
        val_size=100,
    )
    record = fit(train_cfg, load_dataset("digits", val_size=100), progress=False, echo=lambda s: None)
    results_store.write_json_atomic(root / "train.json", record.to_dict())
    return root


def test_required_columns_are_present_in_order(store):
    df = results.load(store / "sweep")
    assert list(df.columns[: len(results.ROW_COLUMNS)]) == list(results.ROW_COLUMNS)
    assert set(REQUIRED) <= set(df.columns)
    empty = results.load([])
    assert set(REQUIRED) <= set(empty.columns) and len(empty) == 0


def test_sweep_row_carries_identity_metrics_and_environment(store):
    df = results.load(store / "sweep")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.source, row.isolated, row.status, row.kind) == ("sweep", True, "ok", "measure")
    assert (row.trainer, row.depth, row.width, row.batch_size) == ("ff", 2, 32, 16)
    assert row.dataset == "synthetic" and row.synthetic
    assert row.tensor_peak_bytes > row.tensor_start_bytes > 0
    assert str(df.tensor_peak_bytes.dtype) == "Int64"
    assert row.step_seconds_median > 0 and row.timing_steps == 1
    assert row.run_id.startswith("sweep:ff-d2-w32-b16-") and row.config_hash in row.run_id


def test_train_record_supplies_accuracy_and_several_paths_load_together(store):
    record_file = next((store / "sweep" / "records").glob("*.json"))
    df = results.load([store / "sweep", store / "train.json", record_file])
    assert len(df) == 2  # the record named twice is one row
    train = df[df.source == "train"].iloc[0]
    assert train.kind == "train" and 0 <= train.test_accuracy <= 1 and train.val_accuracy >= 0
    assert train.dataset == "digits" and train.status == "ok"
    sweep = df[df.source == "sweep"].iloc[0]
    assert sweep.test_accuracy != sweep.test_accuracy  # NaN: memory runs have no accuracy


def test_load_phases_is_long_format_per_layer(store):
    ph = results.load_phases(store / "sweep")
    assert list(ph.columns[: len(PHASE_REQUIRED)]) == PHASE_REQUIRED
    assert set(ph.phase) >= {"forward", "backward", "optimizer"}
    assert sorted(ph.layer.dropna().unique()) == [0, 1]  # FF: per layer
    assert (ph.rise_bytes == ph.peak_bytes - ph.start_bytes).all()
    assert len(results.load_phases(store / "train.json")) == 0


def test_csv_export_round_trips(store, tmp_path):
    import pandas as pd

    out = results.to_csv([store / "sweep", store / "train.json"], tmp_path / "all.csv")
    back = pd.read_csv(out)
    assert list(back.columns) == list(results.load([store / "sweep", store / "train.json"]).columns)
    assert len(back) == 2
    assert (store / "sweep" / "results.csv").exists()


def test_a_new_record_kind_is_one_function(store, tmp_path):
    doc = tmp_path / "toy.json"
    doc.write_text(
        json.dumps({"toy_runs": [{"name": "a", "trainer": "bp", "peak": 5}, {"name": "b", "trainer": "ff"}]})
    )

    def rows(document, path):
        return [
            {
                "run_id": f"toy:{b['name']}",
                "source": "toy",
                "isolated": False,
                "trainer": b["trainer"],
                "status": "ok",
                "tensor_peak_bytes": b.get("peak"),
            }
            for b in document["toy_runs"]
        ]

    results.register_kind("toy", rows, detect=lambda d: "toy_runs" in d)
    try:
        df = results.load([doc, store / "sweep"])
        assert sorted(df.source) == ["sweep", "toy", "toy"]
        assert set(REQUIRED) <= set(df.columns)
    finally:
        results._KINDS.pop("toy")


def test_unknown_or_missing_files_are_clear_errors(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ConfigError, match="not a record"):
        results.load(tmp_path / "x.json")
    with pytest.raises(ConfigError, match="does not exist"):
        results.load(tmp_path / "nope")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="not an ffbench results folder"):
        results.load(tmp_path / "f")


def test_record_names_are_stable_and_distinct():
    a = RunConfig(trainer="bp", depth=2, width=8, batch_size=4)
    assert results_store.record_name(a) == results_store.record_name(
        RunConfig(trainer="bp", depth=2, width=8, batch_size=4)
    )
    assert results_store.record_name(a) != results_store.record_name(a.replace(batch_size=5))
    assert results_store.record_name(a).startswith("bp-d2-w8-b4-")
    assert results_store.config_hash(a) == results_store.config_hash(a.to_dict())


def test_write_json_atomic_leaves_no_temporaries(tmp_path):
    results_store.write_json_atomic(tmp_path / "a" / "r.json", {"x": float("nan")})
    assert json.loads((tmp_path / "a" / "r.json").read_text()) == {"x": None}
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["r.json"]
    shutil.rmtree(tmp_path / "a")


def test_the_documented_record_kind_example_runs(tmp_path, monkeypatch):
    """docs/results-schema.md's "Adding a record kind" snippet, run as written."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "results-schema.md").read_text()
    (snippet,) = re.findall(r"## Adding a record kind\n\n```python\n(.*?)```", doc, re.S)
    monkeypatch.setattr(results, "_KINDS", dict(results._KINDS))  # the new kind goes with the test
    exec(snippet, {})
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"my_profiler_version": 1, "step": "mine", "peak": 1234}))
    df = results.load(path)
    assert df["trainer"].tolist() == ["mine"] and df["tensor_peak_bytes"].tolist() == [1234]
