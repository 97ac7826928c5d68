"""What `ffbench report` prints: one line per claim (details with -v), a comparison's "what
changed" table; and no matplotlib figure left open while the report is drawn."""

import json
import shutil
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

from ffbench import cli
from ffbench.analysis.claims.registered import all_claims
from ffbench.run import sweep

SWEEP = Path(__file__).resolve().parents[1] / "results" / "2026-12-06-cpu-recurrent" / "recurrent"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The committed recurrent sweep, and a copy of it whose environment says 'cpu_model: other'."""
    root = tmp_path_factory.mktemp("runs")
    a, b = root / "a", root / "b"
    shutil.copytree(SWEEP, a)
    shutil.copytree(SWEEP, b)
    env = json.loads((b / "environment.json").read_text())
    env["cpu_model"] = "Another CPU"
    (b / "environment.json").write_text(json.dumps(env))
    return root, a, b


def test_report_prints_one_line_per_claim_and_details_with_v(two_runs, capsys):
    root, a, _ = two_runs
    assert cli.main(["report", str(a), "--out-file", str(root / "a.html")]) == 0
    short = capsys.readouterr().out
    claim_lines = [line for line in short.splitlines() if line.startswith("(")]
    assert len(claim_lines) == len(all_claims())
    assert "    test:" not in short and "evaluation chunk:" not in short
    assert cli.main(["report", str(a), "--out-file", str(root / "a.html"), "-v"]) == 0
    long = capsys.readouterr().out
    assert long.count("    test:") == len(all_claims())
    assert long.count("evaluation chunk:") == len(all_claims())


def test_a_comparison_prints_what_changed(two_runs, capsys):
    root, a, b = two_runs
    out = root / "ab.html"
    assert cli.main(["report", str(a), str(b), "--baseline", str(a), "--out-file", str(out)]) == 0
    text = capsys.readouterr().out
    assert "what changed:" in text
    changed = next(line for line in text.splitlines() if "cpu_model" in line)
    measured_on = json.loads((a / "environment.json").read_text())["cpu_model"]
    assert "Another CPU" in changed and measured_on in changed


def test_figures_are_closed_as_they_are_drawn(two_runs, monkeypatch):
    """matplotlib warns when a new figure is opened while max_open_warning are open: with two
    allowed, the report must close each figure function's figures before drawing the next."""
    root, a, _ = two_runs
    plt.close("all")
    monkeypatch.setitem(matplotlib.rcParams, "figure.max_open_warning", 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (
            cli.main(["report", str(a), str(a), "--baseline", str(a), "--out-file", str(root / "aa.html")])
            == 0
        )
    assert [str(w.message) for w in caught if "figures have been opened" in str(w.message)] == []
    assert plt.get_fignums() == []


def test_a_sweep_logs_each_configuration_and_ends_with_what_to_run_next(tmp_path, capsys):
    out = tmp_path / "tiny"
    args = ["sweep", "--trainers", "ff,bp", "--depths", "1", "--widths", "16", "--batch-sizes", "4"]
    args += ["--dataset", "synthetic", "--threads", "1", "--steps", "1", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].startswith(f"next: ffbench report {out}")
    records = sorted((out / "records").glob("*.json"))
    assert len(records) == 2
    for path in records:
        record = json.loads(path.read_text())
        line = sweep.finished_line(record)
        assert line in printed
        peak = record["metrics"]["tensor_train_peak_bytes"]
        assert line.startswith(f"{record['config']['trainer']}-d1-w16-b4: ok, training peak {peak:,} B (")
        assert f"step {1000 * record['metrics']['step_seconds_median']:,.1f} ms" in line
    assert cli.main([*args, "--quiet"]) == 0
    assert capsys.readouterr().out == ""  # --quiet: nothing at all


def test_a_failed_configuration_says_why_and_how_to_retry():
    failed = {"status": "error", "error": "ValueError: boom", "config": {"trainer": "ff", "depth": 2}}
    assert sweep.finished_line(failed).endswith(": error (ValueError: boom)")
    text = sweep.next_steps(Path("results/x"), {"ok": 3, "error": 1})
    assert text.splitlines()[0].startswith("next: ffbench report results/x")
    assert "--retry-errors" in text
    assert "--retry-errors" not in sweep.next_steps(Path("results/x"), {"ok": 4})
