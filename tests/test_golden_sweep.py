"""The byte gate: a tiny sweep (bp and ff, MLP, two depths, synthetic data, one thread) gives
the record file names and the `tensor_*` and `analytic_*` metrics, `phases` and `timeline` of
the committed golden fixture, exactly. The fixture was written by the code before the record
builders were rewritten; rewriting the hallways must leave what the rooms measure alone.

Rewrite the fixture (only when a change of the measurements is meant, and say so in the commit):
`PYTHONPATH=. python tests/test_golden_sweep.py`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from ffbench.cli import main

GOLDEN = Path(__file__).resolve().parent / "data" / "golden_tiny_sweep.json"
GRID = ["--trainers", "bp,ff", "--depths", "1,2", "--widths", "8", "--batch-sizes", "4"]
TINY = ["--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--steps", "1", "--quiet"]


def measured(out: Path) -> dict:
    """Per record file name: its tensor-level metrics, phases and timeline."""
    view = {}
    for path in sorted((out / "records").glob("*.json")):
        record = json.loads(path.read_text())
        metrics = record["metrics"]
        view[path.name] = {
            "metrics": {k: v for k, v in metrics.items() if k.startswith(("tensor_", "analytic_"))},
            "phases": record["phases"],
            "timeline": record["timeline"],
        }
    return view


def tiny_sweep(out: Path) -> dict:
    assert main(["sweep", *TINY, *GRID, "--out", str(out)]) == 0
    return measured(out)


def test_tiny_sweep_measures_what_the_golden_fixture_holds(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    fresh = tiny_sweep(tmp_path / "sweep")
    assert sorted(fresh) == sorted(golden)  # the record names: the resume identity
    assert len(golden) == 4
    for name, want in golden.items():
        assert want["metrics"] and want["phases"] and want["timeline"], name
        assert fresh[name] == want, name


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        view = tiny_sweep(Path(tmp) / "sweep")
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(view, indent=1, sort_keys=True) + "\n")
    sys.exit(0)
