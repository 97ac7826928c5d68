"""reproduce --dry-run's estimate from the last run's recorded stage times (constructed summaries)."""

import json

import pytest

from ffbench.run.calibrate import calibrate, last_summary, recorded_seconds

MODEL = {"memory": 1000.0, "maxbatch": 500.0, "accuracy": 3000.0}


def summary(
    root, name, *, profile="quick", device="cpu", plan=None, dataset=("mnist", 55000), invocations=None
):
    doc = {
        "profile": profile,
        "device": device,
        "dataset": {"name": dataset[0], "train_size": dataset[1]},
        "invocations": invocations
        or [
            {"finished": "2026-12-06T07:23:17+00:00",
             "seconds": {"memory": 300.0, "maxbatch": 120.0, "accuracy": 600.0, "report": 20.0, "total": 1040.0}},
            {"finished": "2026-12-06T07:28:12+00:00",
             "seconds": {"memory": 10.0, "maxbatch": 0.0, "accuracy": 0.0, "report": 25.0, "total": 35.0}},
        ],
    }  # fmt: skip
    if plan is not None:
        doc["plan"] = plan
    (root / name).mkdir(parents=True)
    (root / name / "reproduce.json").write_text(json.dumps(doc))
    return doc


def test_stage_seconds_add_up_over_a_resumed_run_and_the_report_is_the_last():
    doc = {"invocations": [{"seconds": {"memory": 300.0, "accuracy": 600.0, "report": 20.0}},
                           {"seconds": {"memory": 10.0, "accuracy": 0.5, "report": 25.0}}]}  # fmt: skip
    assert recorded_seconds(doc) == {"memory": 310.0, "accuracy": 600.5, "report": 25.0}


def test_the_latest_run_of_the_same_profile_and_device_is_used(tmp_path):
    summary(tmp_path, "a-quick")
    later = [{"finished": "2026-12-07T00:00:00+00:00", "seconds": {"memory": 1.0}}]
    summary(tmp_path, "b-quick", invocations=later)
    summary(tmp_path, "c-full", profile="full", invocations=[{"finished": "2027-01-01", "seconds": {}}])
    summary(tmp_path, "d-cuda", device="cuda:0", invocations=[{"finished": "2027-01-01", "seconds": {}}])
    (tmp_path / "e-broken").mkdir()
    (tmp_path / "e-broken" / "reproduce.json").write_text("{not json")
    path, _ = last_summary(tmp_path, "quick", "cpu")
    assert path.parent.name == "b-quick"
    assert last_summary(tmp_path, "quick", "cuda")[0].parent.name == "d-cuda"
    assert last_summary(tmp_path / "none", "quick", "cpu") is None


def test_without_an_earlier_run_the_model_is_the_estimate(tmp_path):
    cal = calibrate(MODEL, {"memory": 10}, ("mnist", 55000), last_summary(tmp_path, "quick", "cpu"))
    assert cal.seconds == MODEL and "arithmetic model" in cal.source


def test_recorded_stage_times_are_scaled_by_the_work_now(tmp_path):
    summary(tmp_path, "run", plan={"memory": 400, "maxbatch": 16, "accuracy": 75})
    plan_now = {"memory": 200, "maxbatch": 16, "accuracy": 150}
    cal = calibrate(MODEL, plan_now, ("mnist", 55000), last_summary(tmp_path, "quick", "cpu"))
    assert cal.seconds == pytest.approx(
        {"memory": 155.0, "maxbatch": 120.0, "accuracy": 1200.0, "report": 25.0}
    )
    assert (
        "recorded by run" in cal.source and "memory x 0.50" in cal.source and "accuracy x 2.00" in cal.source
    )
    assert cal.notes == []


def test_a_summary_without_a_plan_is_used_unscaled_and_says_so(tmp_path):
    summary(tmp_path, "run")
    cal = calibrate(MODEL, {"memory": 1}, ("mnist", 55000), last_summary(tmp_path, "quick", "cpu"))
    assert cal.seconds == {"memory": 310.0, "maxbatch": 120.0, "accuracy": 600.0, "report": 25.0}
    assert "unscaled" in cal.source


def test_accuracy_on_another_dataset_scales_by_its_training_examples(tmp_path):
    summary(tmp_path, "run", plan={"accuracy": 75})
    found = last_summary(tmp_path, "quick", "cpu")
    cal = calibrate(MODEL, {"accuracy": 75}, ("digits", 5500), found)
    assert cal.seconds["accuracy"] == pytest.approx(60.0)
    assert any("trained on mnist (55000 examples), now digits (5500)" in n for n in cal.notes)


def test_accuracy_on_another_dataset_of_unknown_size_is_the_models(tmp_path):
    summary(tmp_path, "run", dataset=("mnist", None))
    cal = calibrate(MODEL, {}, ("digits", 5500), last_summary(tmp_path, "quick", "cpu"))
    assert cal.seconds["accuracy"] == MODEL["accuracy"] and cal.seconds["memory"] == 310.0
    assert any("accuracy: the model's" in n for n in cal.notes)
