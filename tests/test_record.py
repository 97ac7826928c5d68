"""The typed record (ffbench.record): every committed record round-trips byte for byte, a
malformed one is one line, upgrade() fills what older records lack, the schema document
lists the type's fields."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ffbench.config import config_defaults, config_keys
from ffbench.errors import ConfigError
from ffbench.record import CONFIG_HISTORY, KINDS, Record, schema_table
from ffbench.results.store import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted(
    p
    for p in (ROOT / "results").rglob("*.json")
    if isinstance(d := json.loads(p.read_text()), dict) and d.get("kind") in KINDS
)


def test_committed_records_are_found():
    kinds = {json.loads(p.read_text())["kind"] for p in COMMITTED}
    assert len(COMMITTED) > 800 and kinds == {"measure", "train"}
    assert any(p.parent.name == "train" for p in COMMITTED)
    assert any("maxbatch" in p.parts for p in COMMITTED)


def test_every_committed_record_round_trips_byte_for_byte(tmp_path):
    out = tmp_path / "r.json"
    for path in COMMITTED:
        data = json.loads(path.read_text())
        back = Record.from_dict(data, path).to_dict()
        assert list(back) == list(data), path
        write_json_atomic(out, back)  # the writer's serialisation
        assert out.read_bytes() == path.read_bytes(), path


def test_unknown_keys_round_trip():
    doc = {
        "zeta": {"a": 1},
        "config": {},
        "kind": "measure",
        "status": "ok",
        "metrics": {"x_bytes": 1},
        "new_field": [1],
    }
    rec = Record.from_dict(doc, "r.json")
    assert rec.rest == {"zeta": {"a": 1}, "new_field": [1]}
    assert list(rec.to_dict().items()) == list(doc.items())


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {"config": {}, "kind": "measure", "metrics": {"a": 1}},
            "record r.json has no 'status': not a finished ffbench record",
        ),
        ({"config": {}, "kind": "measure", "status": 3}, "record r.json: field 'status' must be str, got 3"),
        (
            {"config": {}, "kind": "measure", "status": "fine"},
            "record r.json: unknown status 'fine'; expected one of",
        ),
        (
            {"config": {}, "kind": "measure", "status": "ok"},
            "record r.json is status 'ok' but holds no metrics",
        ),
        (
            {"config": {}, "kind": "measure", "status": "ok", "metrics": {"a_bytes": -1}},
            "is a byte count and cannot be negative",
        ),
        (
            {"config": {}, "kind": "train", "status": "ok"},
            "record r.json is status 'ok' but holds no test_accuracy",
        ),
        (
            {"config": {}, "kind": "train", "status": "partial", "epochs": [3]},
            "record r.json: epoch 0 must be an object, got 3",
        ),
        ([1], "record r.json must be an object, got [1]"),
        (
            {"config": {}, "kind": "measure", "status": "ok", "metrics": {"a": 1}, "schema_version": 99},
            "record r.json uses record schema version 99; this ffbench reads up to 3",
        ),
    ],
)
def test_a_malformed_record_is_one_line(doc, message):
    with pytest.raises(ConfigError) as err:
        Record.from_dict(doc, "r.json")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_upgrade_fills_what_an_old_record_lacks():
    old = json.loads(
        next(p for p in COMMITTED if "2026-11-27" in str(p) and p.parent.name == "train").read_text()
    )
    assert "status" not in old and old["config"]["eval_chunk"] is None and "extra" in old["config"]
    new = Record.from_dict(old, "old.json").upgrade()
    assert new.status == "ok"
    assert set(new.config) == set(config_keys())
    assert new.config["eval_chunk"] == old["config"]["batch_size"]  # null was the batch size then
    assert new.config["arch"] == config_defaults()["arch"]
    if old["config"]["trainer"].startswith("ff"):
        assert new.config["ff_eval"] == "replicated"
    assert Record.from_dict(old, "old.json").config == old["config"]  # reading alone changes nothing


def test_upgrade_fills_the_timing_spread():
    doc = {
        "config": {},
        "kind": "measure",
        "status": "ok",
        "metrics": {"a": 1.0},
        "step_seconds": [1.0, 2.0, 3.0, 4.0, 5.0],
    }
    metrics = Record.from_dict(doc, "r.json").upgrade().metrics
    assert metrics["step_seconds_iqr"] == metrics["step_seconds_q3"] - metrics["step_seconds_q1"] > 0
    assert metrics["a"] == 1.0
    recent = {**doc, "metrics": {"step_seconds_iqr": 0.5}}
    assert Record.from_dict(recent, "r.json").upgrade().metrics == {"step_seconds_iqr": 0.5}


def test_a_current_record_is_unchanged_by_upgrade():
    path = next(p for p in COMMITTED if "2026-12-06-cpu-quick" in str(p) and p.parent.name == "records")
    data = json.loads(path.read_text())
    # as written today: with the configuration fields added since (at their defaults)
    data["config"] = {**{k: config_defaults()[k] for k in CONFIG_HISTORY}, **data["config"]}
    assert Record.from_dict(data, path).upgrade().to_dict() == data


def test_missing_fields_are_those_added_after_the_record_was_written():
    """What upgrade() fills for a record is what its git revision did not write yet."""
    git = shutil.which("git")
    if git is None or subprocess.run([git, "-C", ROOT, "rev-parse"], capture_output=True).returncode:
        pytest.skip("no git history here")
    cache: dict[tuple[str, str], bool] = {}
    for path in COMMITTED:
        data = json.loads(path.read_text())
        revision = (data.get("environment") or {}).get("git_revision", "").removesuffix("-dirty")
        for key in set(config_keys()) - set(data["config"]):
            assert key in CONFIG_HISTORY, (path, key)
            pair = (CONFIG_HISTORY[key], revision)
            if pair not in cache:
                run = [git, "-C", ROOT, "merge-base", "--is-ancestor", *pair]
                cache[pair] = subprocess.run(run, capture_output=True).returncode == 0
            assert not cache[pair], f"{path}: {key} existed at {revision}"


def test_the_schema_document_lists_the_record_fields():
    text = (ROOT / "docs" / "results-schema.md").read_text()
    start, end = "<!-- record fields: generated, do not edit -->\n", "\n<!-- end record fields -->"
    assert text[text.index(start) + len(start) : text.index(end)] == schema_table()


def test_upgrade_fills_the_training_peak():
    doc = {
        "config": {},
        "kind": "measure",
        "status": "ok",
        "metrics": {"tensor_peak_bytes": 10, "tensor_first_step_peak_bytes": 12},
    }
    assert Record.from_dict(doc, "r.json").upgrade().metrics["tensor_train_peak_bytes"] == 12
    recent = {**doc, "metrics": {"tensor_peak_bytes": 10, "tensor_train_peak_bytes": 11}}
    assert Record.from_dict(recent, "r.json").upgrade().metrics["tensor_train_peak_bytes"] == 11
    oom = {**doc, "status": "oom", "metrics": {}}
    assert Record.from_dict(oom, "r.json").upgrade().metrics == {}


def test_build_keeps_the_written_order_and_refuses_an_unknown_name():
    rec = Record.build(kind="measure", status="ok", error=None, config={}, metrics={"a_bytes": 1})
    assert list(rec.to_dict().items()) == [
        ("kind", "measure"), ("status", "ok"), ("error", None), ("config", {}), ("metrics", {"a_bytes": 1})
    ]  # fmt: skip
    with pytest.raises(TypeError, match="Record has no field 'metric'"):
        Record.build(kind="measure", metric={})


def test_updated_replaces_in_place_adds_after_and_writes_none_as_null():
    rec = Record.build(kind="train", status="ok", test_accuracy=0.5)
    later = rec.updated(status="partial", partial=True, error=None)
    assert list(later.to_dict().items()) == [
        ("kind", "train"), ("status", "partial"), ("test_accuracy", 0.5), ("partial", True), ("error", None)
    ]  # fmt: skip
    assert rec.to_dict() == {"kind": "train", "status": "ok", "test_accuracy": 0.5}  # unchanged
    with pytest.raises(TypeError, match="Record has no field 'partail'"):
        rec.updated(partail=True)


def test_without_drops_the_named_fields_and_keeps_the_order_of_the_rest():
    rec = Record.build(kind="measure", status="ok", timing_pending=True, config={}, metrics={"a": 1})
    out = rec.without("timing_pending", "timing_error")
    assert list(out.to_dict()) == ["kind", "status", "config", "metrics"]
    assert out.timing_pending is None and rec.timing_pending is True  # a copy: the original kept
