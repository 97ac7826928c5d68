"""Issue 23's accuracy protocol: runs stop at the target, flagged epochs never count as time,
FF and BP tuned with the same budget, and the accuracy and time-to-target claims decided from
records, able to fail."""

import json

import pytest

from ffbench.analysis import thresholds as T
from ffbench.analysis.report import analyse
from ffbench.analysis.target import flag_epochs, time_to_target, welch_interval
from ffbench.config import RunConfig
from ffbench.data import load_dataset
from ffbench.errors import ConfigError
from ffbench.run import tuning
from ffbench.run.fit import fit


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_size=200)


def _fit(digits, **kw):
    cfg = RunConfig(trainer="bp", depth=1, width=32, batch_size=32, lr=1e-2, dataset="digits", device="cpu",
                    val_size=200, **kw)  # fmt: skip
    return fit(cfg, digits, progress=False, echo=lambda s: None).to_dict()


def test_a_run_stops_at_the_first_epoch_reaching_the_target_and_says_when(digits):
    target = 0.8
    record = _fit(digits, epochs=30, target_accuracy=target)
    epochs = record["epochs"]
    assert record["threads"] == 1  # one thread on a CPU unless asked
    assert len(epochs) < 30 and epochs[-1]["val_accuracy"] >= target
    assert all(e["val_accuracy"] < target for e in epochs[:-1])
    ttt = record["time_to_target"]
    assert ttt["reached"] and ttt["epoch"] == len(epochs) and ttt["split"] == "validation"
    assert ttt["test_accuracy"] == epochs[-1]["test_accuracy"] == record["test_accuracy"] is not None
    assert all(e["test_accuracy"] is None for e in epochs[:-1])  # the test split: where the run ends
    assert ttt["cpu_seconds"] == pytest.approx(sum(e["train_cpu_seconds"] for e in epochs))
    assert ttt["wall_seconds"] == pytest.approx(sum(e["train_seconds"] for e in epochs))
    # a target never reached: every epoch of the cap, and the record says so
    record = _fit(digits, epochs=2, target_accuracy=1.0, threads=2)
    assert record["threads"] == 2 and len(record["epochs"]) == 2
    assert record["time_to_target"]["reached"] is False
    assert record["time_to_target"]["note"] == "the epoch cap (2) was hit without reaching it"
    # without a target, every epoch runs and no time to target is recorded
    record = _fit(digits, epochs=2)
    assert len(record["epochs"]) == 2 and "time_to_target" not in record
    assert all(e["test_accuracy"] is not None for e in record["epochs"])


def _epochs(cpu, load, val):
    return [{"epoch": i + 1, "train_seconds": c, "train_cpu_seconds": c, "load_average": a, "val_accuracy": v,
             "test_accuracy": v} for i, (c, a, v) in enumerate(zip(cpu, load, val))]  # fmt: skip


def test_flagged_epochs_never_count_as_time_to_the_target():
    # epoch 2 ran under load (3.0 > 2 cores), epoch 3 took 10 s against a median of 2 s
    epochs = _epochs([2.0, 2.0, 10.0, 2.0, 2.0], [0.5, 3.0, 0.5, 0.5, 0.5], [0.5, 0.6, 0.7, 0.95, 0.99])
    flag_epochs(epochs, cores=2)
    assert [(e["flag_load"], e["flag_outlier"]) for e in epochs] == [(0, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    t = time_to_target(epochs, 0.9, cap=5)
    assert t["epoch"] == 4 and t["flagged_epochs"] == [2, 3] and t["unflagged_epochs"] == 2
    assert t["cpu_seconds"] == 16.0  # every epoch's CPU seconds
    assert t["unflagged_cpu_seconds"] == 8.0  # the mean of epochs 1 and 4 (2 s) x 4 epochs
    epochs = _epochs([2.0, 2.0], [9.0, 9.0], [0.95, 0.99])
    flag_epochs(epochs, cores=2)
    assert time_to_target(epochs, 0.9, cap=2)["unflagged_cpu_seconds"] is None


def test_welch_interval_matches_a_hand_computation():
    d, lo, hi = welch_interval([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0.95)
    # equal samples: 0 +- t(0.975, 4) x sqrt(2/3), t = 2.7764
    assert d == 0 and hi == pytest.approx(2.7764 * (2 / 3) ** 0.5, rel=1e-4) and lo == -hi


def test_the_tuning_gives_both_families_the_same_declared_budget(digits):
    plan = tuning.plan_for(2, 500, epoch_cap=20)
    assert plan.trials == T.TUNING_TRIALS
    assert {f: len(g) for f, g in plan.grids.items()} == {"ff": T.TUNING_TRIALS, "bp": T.TUNING_TRIALS}
    assert all("ff_threshold" in r for r in plan.grids["ff"])  # FF's theta within the same count
    unequal = tuning.TuningPlan(1, 16, 32, 2, {"ff": ({"lr": 1e-2},), "bp": ({"lr": 1e-2}, {"lr": 1e-3})})
    with pytest.raises(ConfigError, match="unequal trial counts"):
        assert unequal.trials
    small = tuning.TuningPlan(1, 16, 32, 2, {"ff": ({"lr": 1e-2, "ff_threshold": 2.0},
                                                    {"lr": 3e-2, "ff_threshold": 8.0}),
                                             "bp": ({"lr": 1e-3}, {"lr": 3e-2})})  # fmt: skip
    record = tuning.tune(small, digits, 0.8, echo=lambda s: None)
    assert record["plan"]["trials_per_family"] == 2 and record["plan"]["epoch_cap"] == 2
    for family, f in record["families"].items():
        assert [t["recipe"] for t in f["trials"]] == [dict(r) for r in small.grids[family]]
        assert all(t["epochs_run"] <= 2 for t in f["trials"])
        assert f["chosen"] == min(f["trials"], key=tuning.rank_key)["recipe"]


def test_the_chosen_trial_is_the_fastest_to_the_target_then_the_most_accurate():
    def trial(lr, reached, epochs, val):
        return {"recipe": {"lr": lr}, "reached": reached, "epochs_to_target": epochs if reached else None,
                "val_accuracy": val, "best_val_accuracy": val}  # fmt: skip

    trials = [trial(1, False, None, 0.99), trial(2, True, 5, 0.97), trial(3, True, 3, 0.971),
              trial(4, True, 3, 0.975)]  # fmt: skip
    assert tuning.choose(trials)["recipe"] == {"lr": 4}
    assert tuning.choose([trial(1, False, None, 0.9), trial(2, False, None, 0.95)])["recipe"] == {"lr": 2}


def _record(trainer, seed, val, test, cpu=2.0, load=0.5, threads=1, epochs_cap=20, peak=1000):
    """A train record of `len(val)` epochs (stopped at the target when shorter than the cap)."""
    cfg = RunConfig(trainer=trainer, depth=2, width=500, epochs=epochs_cap, seed=seed, dataset="mnist",
                    threads=threads, target_accuracy=0.97)  # fmt: skip
    epochs = [{"epoch": i + 1, "val_accuracy": v, "test_accuracy": t, "train_seconds": cpu,
               "train_cpu_seconds": cpu, "load_average": load} for i, (v, t) in enumerate(zip(val, test))]  # fmt: skip
    return {"kind": "train", "status": "ok", "config": cfg.to_dict(), "dataset": {"name": "mnist"},
            "environment": {"cores": 2, "device": "cpu"}, "epochs": epochs, "val_accuracy": val[-1], "test_accuracy": test[-1],
            "memory": {"analytic_train_peak_bytes": peak}}  # fmt: skip


def _verdicts(tmp_path, records, name="r"):
    folder = tmp_path / name
    folder.mkdir()
    for i, r in enumerate(records):
        (folder / f"t{i}.json").write_text(json.dumps(r))
    return {v.key: v for v in analyse([folder]).verdicts}


def _runs(ff_tests, bp_tests, ff_epochs=4, bp_epochs=2, **kw):
    """FF and BP stopped at the target (val 0.97 at their last epoch), one record per seed."""
    out = []
    for seed, (f, b) in enumerate(zip(ff_tests, bp_tests)):
        out.append(_record("ff", seed, [0.9] * (ff_epochs - 1) + [0.97], [0.9] * (ff_epochs - 1) + [f],
                           cpu=10.0 + seed, **kw))  # fmt: skip
        out.append(_record("bp", seed, [0.9] * (bp_epochs - 1) + [0.97], [0.9] * (bp_epochs - 1) + [b],
                           cpu=1.0 + 0.1 * seed, **kw))  # fmt: skip
    return out


ACC = "ff_reaches_bp_accuracy_at_equal_architecture"
TIME = "ff_needs_more_time_to_reach_the_target"


def test_the_accuracy_claim_decides_at_the_target_with_a_confidence_interval(tmp_path):
    # FF's test error 3.0 % against BP's 2.9 %: within 25 % of BP's, the interval well inside
    v = _verdicts(tmp_path, _runs([0.970, 0.9701, 0.9699], [0.971, 0.9711, 0.9709]), "close")[ACC]
    assert v.verdict == "holds"
    entry = v.numbers["configurations"]["mnist 2x500 ff"]
    assert entry["at_target"]["decision"] is True and entry["at_cap"]["decision"] is None  # stopped
    assert entry["ff_epochs_to_target"] == 4 and entry["bp_epochs_to_target"] == 2
    assert entry["ff_train_peak_bytes"] == 1000
    # FF's 6 % against BP's 2.9 %: the interval lies above the tolerance
    v = _verdicts(tmp_path, _runs([0.940, 0.9401, 0.9399], [0.971, 0.9711, 0.9709]), "far")[ACC]
    assert v.verdict == "does not hold"
    # the same means from two seeds: too few, nothing decided
    v = _verdicts(tmp_path, _runs([0.940, 0.9401], [0.971, 0.9711]), "two")[ACC]
    assert v.verdict.startswith("not evaluated") and "2 and 2 seeds (< 3)" in v.verdict
    # spread across seeds so wide the interval straddles the line: not decided either
    v = _verdicts(tmp_path, _runs([0.99, 0.94, 0.965], [0.971, 0.9711, 0.9709]), "wide")[ACC]
    assert v.verdict.startswith("not evaluated") and "straddles" in v.verdict


def test_the_accuracy_claim_also_compares_runs_at_their_cap(tmp_path):
    # no run reaches the 97 % validation target in its 3-epoch cap: compared at the cap
    records = []
    for seed in range(3):
        records.append(_record("ff", seed, [0.9] * 3, [0.9, 0.9, 0.90 + 0.0001 * seed], epochs_cap=3))
        records.append(_record("bp", seed, [0.9] * 3, [0.9, 0.9, 0.95 + 0.0001 * seed], epochs_cap=3))
    v = _verdicts(tmp_path, records)[ACC]
    entry = v.numbers["configurations"]["mnist 2x500 ff"]
    assert entry["at_cap"]["decision"] is False and entry["at_target"]["decision"] is None
    assert v.verdict == "does not hold"


def test_the_time_to_target_claim_uses_unflagged_cpu_seconds_and_can_fail(tmp_path):
    ff, bp = [0.97] * 3, [0.971] * 3
    v = _verdicts(tmp_path, _runs(ff, bp), "slow")[TIME]
    assert v.verdict == "holds"
    c = v.numbers["configurations"]["mnist 2x500 ff"]
    assert c["ff_seconds"] == [40.0, 44.0, 48.0] and c["bp_seconds"] == pytest.approx([2.0, 2.2, 2.4])
    # BP needing more epochs than FF: FF reaches it in less CPU time, the claim fails
    v = _verdicts(tmp_path, _runs(ff, bp, ff_epochs=1, bp_epochs=20), "fast")[TIME]
    assert v.verdict == "does not hold"
    # every epoch under load (5 > 2 cores): no usable time, not evaluated
    v = _verdicts(tmp_path, _runs(ff, bp, load=5.0), "loaded")[TIME]
    assert v.verdict.startswith("not evaluated") and "3 x every epoch flagged" in v.verdict
    # runs at two threads never give the time
    v = _verdicts(tmp_path, _runs(ff, bp, threads=2), "threads")[TIME]
    assert v.verdict.startswith("not evaluated") and "3 x not at one thread" in v.verdict
    # too few seeds
    v = _verdicts(tmp_path, _runs(ff[:2], bp[:2]), "few")[TIME]
    assert v.verdict.startswith("not evaluated") and "(< 3 each)" in v.verdict
