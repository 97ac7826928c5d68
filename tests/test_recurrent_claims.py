"""Issue 16's claims and figures: FF in time flat in T, best FF against best BPTT at each T
(truncated BPTT's accuracy cost beside it), FF through a black box -- decided from records,
able to fail; and the profiles' recurrent memory sweeps, end to end."""

import json

import pytest

from ffbench.analysis import plots
from ffbench.analysis.claims import recurrent as claims
from ffbench.analysis.report import analyse, build_report
from ffbench.config import RunConfig
from ffbench.run import reproduce


def measure_record(trainer, steps, transient, window=None, start=1000):
    cfg = RunConfig(trainer=trainer, arch="recurrent", depth=2, width=16, batch_size=8, time_steps=steps,
                    bptt_window=window, dataset="synthetic")  # fmt: skip
    peak = start + transient
    metrics = {
        "tensor_peak_bytes": peak,
        "tensor_start_bytes": start,
        "tensor_transient_bytes": transient,
        "tensor_first_step_peak_bytes": peak - 10,
        "tensor_train_peak_bytes": peak,
    }
    return {"kind": "measure", "status": "ok", "config": cfg.to_dict(), "metrics": metrics}


def train_record(trainer, accuracy, seed=0, box=None, arch="mlp", window=None):
    cfg = RunConfig(trainer=trainer, arch=arch, depth=2, width=16, epochs=2, seed=seed, black_box=box,
                    bptt_window=window, dataset="digits")  # fmt: skip
    frozen = ["body.0.weight", "body.0.bias"] if trainer == "bp" and box else []
    return {"kind": "train", "config": cfg.to_dict(), "dataset": {"name": "digits"}, "val_accuracy": accuracy,
            "test_accuracy": accuracy, "epochs": [{"epoch": 1, "test_accuracy": accuracy}],
            "black_box": {"frozen_parameters": frozen} if box else None}  # fmt: skip


def write(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (folder / f"r{i}.json").write_text(json.dumps(r))
    return folder


def verdicts(folder):
    return {v.key: v for v in analyse([folder]).verdicts}


def memory_records(ff_transients, bp_growth=100):
    out = []
    for steps, ff in zip((2, 4, 8), ff_transients):
        out += [
            measure_record("ff", steps, ff),
            measure_record("bp", steps, 500 + bp_growth * steps),
            measure_record("bp-checkpoint", steps, 650 + 40 * steps),
            measure_record("bp", steps, 520 + bp_growth * min(steps, 4), window=4),
        ]
    return out


def test_ff_flat_in_time_holds_when_flat_and_fails_when_it_grows(tmp_path):
    v = verdicts(write(tmp_path / "flat", memory_records([400, 400, 400])))
    assert v["ff_transient_flat_in_time"].verdict == "holds"
    assert v["ff_transient_flat_in_time"].numbers["series"]["ff recurrent w16 d2 b8"]["spread"] == 0
    v = verdicts(write(tmp_path / "grows", memory_records([400, 400, 420])))  # 5 % over T
    assert v["ff_transient_flat_in_time"].verdict == "does not hold"


def test_best_ff_against_best_bptt_at_each_time_step(tmp_path):
    v = verdicts(write(tmp_path / "a", memory_records([400, 400, 400])))[
        "ff_in_time_needs_less_memory_than_bptt"
    ]
    assert v.verdict == "holds"
    by_t = {c["time_steps"]: c for c in v.numbers["configurations"].values()}
    # exact BPTT only: truncated BPTT (smallest at T8, 1920 B) is listed beside FF, never BPTT's best
    assert [by_t[t]["bptt_best"] for t in (2, 4, 8)] == ["bp", "bp-checkpoint", "bp-checkpoint"]
    assert by_t[8]["bytes"]["ff"] == 1400 and by_t[8]["ratio"] == pytest.approx(1400 / 1970)
    assert by_t[8]["others_over_bptt"] == {"bp[bptt_window=4]": pytest.approx(1920 / 1970)}
    # FF above the best BPTT variant at T = 2 only: the verdict says where it holds
    v = verdicts(write(tmp_path / "b", memory_records([800, 400, 400])))[
        "ff_in_time_needs_less_memory_than_bptt"
    ]
    assert v.verdict.startswith("holds only where") and "T2" not in v.verdict


def test_truncated_bptt_accuracy_cost_is_reported_from_train_records(tmp_path):
    records = memory_records([400, 400, 400]) + [
        train_record("bp", 0.95, arch="recurrent"),
        train_record("bp", 0.93, arch="recurrent", window=4),
        train_record("bp", 0.50, arch="recurrent", box=1),  # through the box: never full BPTT's seed
    ]
    found = verdicts(write(tmp_path / "c", records))
    v = found["ff_in_time_needs_less_memory_than_bptt"]
    assert "window 4 test 93.00 %" in v.detail and "-2.00 points" in v.detail
    assert "full BPTT 95.00 % (1)" in v.detail
    # nor is truncated BPTT a seed of bp without the box
    box = found["ff_learns_through_a_black_box"].numbers["settings"][0]
    assert box["bp without"] == pytest.approx(0.95) and box["bp without seeds"] == 1


def black_box_records(ff_with, bp_with=0.80, seeds=(0, 1, 2)):
    """ff 0.90 without the box, bp 0.95 without: with it, `ff_with` and `bp_with`."""
    out = []
    for seed in seeds:
        out += [
            train_record("ff", 0.90, seed),
            train_record("ff", ff_with, seed, box=1),
            train_record("bp", 0.95, seed),
            train_record("bp", bp_with, seed, box=1),
            train_record("bp-ste", 0.94, seed, box=1),
        ]
    return out


def box_verdict(folder, records):
    return verdicts(write(folder, records))["ff_learns_through_a_black_box"]


def test_black_box_claim_holds_where_ff_keeps_its_accuracy_and_bp_loses(tmp_path):
    v = box_verdict(tmp_path / "ok", black_box_records(0.897))
    assert v.verdict == "holds", v.detail
    row = v.numbers["settings"][0]
    assert row["ff with seeds"] == 3 and row["bp frozen"] == ["body.0.bias", "body.0.weight"]
    assert row["bp-ste with"] == pytest.approx(0.94)
    assert "ff -0.30 points" in v.summary and "bp -15.00 points" in v.summary
    assert "bp-ste 94.00 % with (-1.00 points against bp without, 3 seeds)" in v.detail
    # FF loses more than the tolerance: fails
    v = box_verdict(tmp_path / "bad", black_box_records(0.89))
    assert v.verdict == "does not hold"
    # runs through a black box never stand in FF's or BP's accuracy at equal architecture
    acc = verdicts(tmp_path / "bad")["ff_reaches_bp_accuracy_at_equal_architecture"]
    assert "0.89" not in acc.detail and "89.00" not in acc.summary


def test_black_box_claim_fails_where_the_box_does_not_matter_to_bp(tmp_path):
    """BP through the box changes as little as FF (a wide random first layer still serves):
    the setting cannot tell FF from BP, so the claim fails there."""
    v = box_verdict(tmp_path / "blind", black_box_records(0.897, bp_with=0.947))
    assert v.verdict == "does not hold"
    assert "cannot tell FF from BP" in v.detail and "cannot tell FF from BP" in v.summary
    # one setting that tells them apart and one that cannot: holds only where it can
    narrow = black_box_records(0.897)
    wide = [{**r, "config": {**r["config"], "width": 64}} for r in black_box_records(0.897, bp_with=0.947)]
    v = box_verdict(tmp_path / "both", narrow + wide)
    assert v.verdict.startswith("holds only where") and "w16" in v.verdict and "w64" not in v.verdict


def test_black_box_claim_is_not_evaluated_with_one_seed_or_without_bp_on_both_sides(tmp_path):
    v = box_verdict(tmp_path / "one", black_box_records(0.897, seeds=(0,)))
    assert v.verdict.startswith("not evaluated (") and "ff 1, bp 1 seeds" in v.verdict
    no_bp_without = [
        r for r in black_box_records(0.897) if not (r["config"]["trainer"] == "bp" and r["black_box"] is None)
    ]
    v = box_verdict(tmp_path / "nobp", no_bp_without)
    assert v.verdict.startswith("not evaluated (") and "bp 0 seeds" in v.verdict
    assert box_verdict(tmp_path / "none", [train_record("ff", 0.9)]).verdict.startswith("not evaluated (")


def test_the_figures_draw_from_the_records(tmp_path):
    folder = write(tmp_path / "all", memory_records([400, 400, 400]) + black_box_records(0.897))
    report = build_report([folder], tmp_path / "report.html")
    assert report.figure("memory_vs_time").file is not None
    assert report.figure("black_box").file is not None
    assert plots.memory_vs_time(None).figure is None and claims.black_box_table(None) == []


def test_both_profiles_measure_every_recurrent_trainer_over_t_memory_only():
    for profile in (reproduce.QUICK, reproduce.FULL):
        sweeps = [s for s in profile.sweeps if s.name == "recurrent"]
        assert {t for s in sweeps for t in s.grid["trainers"]} == {"ff", "bp", "bp-checkpoint"}
        assert all(s.steps == 0 for s in sweeps)
        plain = [s for s in sweeps if "bptt_window" not in s.grid and "micro_batches" not in s.grid]
        # T from 2 to 32 (the full profile every power of two; the quick one 2, 8, 32)
        assert all({2, 8, 32} <= set(s.grid["time_steps"]) for s in plain)
        # truncated BPTT where its window (4) cuts something, and micro-batches at long T
        truncated = [s for s in sweeps if s.grid.get("bptt_window") == [4]]
        assert truncated and all({8, 32} <= set(s.grid["time_steps"]) for s in truncated)
        micro = [s for s in sweeps if "micro_batches" in s.grid]
        assert micro and all({8, 32} <= set(s.grid["time_steps"]) for s in micro)
    assert {len(s.grid["time_steps"]) for s in reproduce.FULL.sweeps if s.name == "recurrent"} == {5}
    assert reproduce.QUICK.sweeps[-1].grid["widths"] == [256] and reproduce.FULL.sweeps[-1].grid[
        "widths"
    ] == [2000]
    paper = [c for c in reproduce.FULL.accuracy_runs if c.arch == "recurrent"]
    assert {c.trainer for c in paper} == {"ff", "bp", "bp-ce"} and all(c.time_steps == 8 for c in paper)


def test_the_recurrent_sweep_runs_end_to_end(tmp_path, monkeypatch):
    """The profiles' recurrent sweeps (shrunk) through real workers, then their claims."""
    from ffbench.run.sweep import plan_sweep, run_plan

    monkeypatch.setattr(reproduce, "TIME_STEPS", (2, 4))
    for sweep in reproduce._recurrent_sweeps((16,), (8,)):
        config = {"dataset": "synthetic", "device": "cpu", "threads": 1, **sweep.config}
        plan = plan_sweep(grid_flags=sweep.grid, config_flags=config, setting_flags={"steps": sweep.steps},
                          out=str(tmp_path / sweep.name))  # fmt: skip
        run_plan(plan, progress=False, echo=lambda s: None)
    v = verdicts(tmp_path / "recurrent")
    assert v["ff_transient_flat_in_time"].verdict == "holds"
    assert v["analytic_model_equals_tracker"].verdict == "holds"  # ff's ledger; BPTT's refuse
    # T2 and T4, each without and with micro-batches (1/4) on both sides
    assert len(v["ff_in_time_needs_less_memory_than_bptt"].numbers["configurations"]) == 4


def test_a_short_control_run_is_not_averaged_into_the_accuracy_at_equal_architecture(tmp_path):
    """The black box's short controls share the network of the long run: the accuracy claim
    takes each trainer's longest training only."""
    records = []
    for seed in (0, 1, 2):
        long_ff = train_record("ff", 0.97, seed, arch="recurrent")
        long_ff["config"]["epochs"] = 15
        records += [long_ff, train_record("ff", 0.90, seed, arch="recurrent"),
                    train_record("bp", 0.96, seed, arch="recurrent")]  # fmt: skip
    v = verdicts(write(tmp_path / "r", records))["ff_reaches_bp_accuracy_at_equal_architecture"]
    (entry,) = v.numbers["configurations"].values()
    assert entry["ff_error"] == pytest.approx(0.03) and entry["ff_seeds"] == 3
    assert entry["bp_error"] == pytest.approx(0.04)


def test_the_cross_entropy_read_out_is_never_the_best_bp(tmp_path):
    """bp-ce is another model (soft-max head): the family comparisons leave it out."""
    records = memory_records([400, 400, 400]) + [measure_record("bp-ce", 2, 1)]
    v = verdicts(write(tmp_path / "m", records))["best_ff_needs_less_memory_than_best_bp"]
    assert all(c["bp_best"] != "bp-ce" for c in v.numbers["configurations"].values())


def test_the_claims_keep_one_order_whichever_module_is_imported_first():
    """The report's and README's numbering must not depend on what imported a claim module
    first (a figure imports the recurrent claims before the report evaluates them)."""
    import subprocess
    import sys

    script = "import {first}; from ffbench.analysis.claims.registered import all_claims; print([f.__name__ for f in all_claims()])"
    orders = {
        first: subprocess.run(
            [sys.executable, "-c", script.format(first=first)], capture_output=True, text=True, check=True
        ).stdout  # fmt: skip
        for first in ("ffbench.analysis.claims.recurrent", "ffbench.analysis.claims.checks", "ffbench")
    }
    assert len(set(orders.values())) == 1, orders
    names = eval(next(iter(orders.values())))  # noqa: S307 - our own list of names
    assert names.index("ff_transient_flat_in_time") == len(names) - 1  # the checks' last
    assert names.index("ff_learns_through_a_black_box") < names.index("ff_activations_flat_in_depth")
