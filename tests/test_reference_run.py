"""The committed quick reference run is reproducible: re-measuring a few of its
configurations with today's code gives every tensor-level figure to the byte."""

from pathlib import Path

import pytest

from ffbench.config import RunConfig, config_keys
from ffbench.results import store
from ffbench.run.harness import HarnessSettings, run_one

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "2026-11-27-cpu-quick" / "sweep"
PICK = ("bp-d2-w500-b64-", "ff-d4-w500-b64-", "bp-checkpoint-d8-w500-b64-", "bp-local-d2-w500-b64-")


def _reference_records():
    paths = sorted((REFERENCE / store.RECORDS).glob("*.json"))
    return [p for p in paths if p.name.startswith(PICK)]


@pytest.mark.parametrize("path", _reference_records(), ids=lambda p: p.name.rsplit("-", 1)[0])
def test_tensor_bytes_match_the_committed_run(path):
    record = store.read_json(path, "record")
    assert record["status"] == "ok"
    config = RunConfig.from_dict({k: v for k, v in record["config"].items() if k in config_keys()})
    fresh = run_one(config, HarnessSettings(warmup_steps=0, timing_steps=1, compare_allocator=False))
    committed = {k: v for k, v in record["metrics"].items() if k.startswith(("tensor_", "analytic_"))}
    assert committed, "the reference record has no tensor-level figures"
    assert {k: fresh.metrics.get(k) for k in committed} == committed


def test_the_picked_configurations_exist():
    assert len(_reference_records()) == len(PICK)
