"""The GPU run's script, rehearsed on CPU with tiny sizes: every phase runs, in order, within
its deadline, and everything lands in one tar file."""

import json
import tarfile

import pytest

from ffbench import cuda_allocator, environment
from ffbench.run import device_check


def test_the_device_run_rehearses_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("FFBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = ["--out", str(out), "--device", "cpu", "--tiny", "--deadline", "900", "--revision", "abc1234"]
    code = device_check.main(argv)
    summary = json.loads((out / "device-run.json").read_text())
    assert summary["revision"] == "abc1234"
    outcomes = {p["phase"]: p["outcome"] for p in summary["phases"]}
    assert list(outcomes) == ["cuda-tests", "sweep", "maxbatch", "accuracy", "bfloat16", "report"]
    assert code == 0, outcomes
    assert all(o == "ok" for o in outcomes.values()), outcomes
    assert len(list((out / "sweep" / "records").glob("*.json"))) == 2
    # predicted vs allocator for every sweep and bfloat16 record; on CPU nothing is measured
    rows = summary["prediction_vs_allocator"]
    assert rows == json.loads((out / "prediction-vs-allocator.json").read_text())
    assert len(rows) == 2 + 2
    for row in rows:
        assert row["predicted_bytes"] == row["analytic_predicted_bytes"] > row["tensor_peak_bytes"]
        assert row["measured_bytes"] is None and row["explanation"].startswith("not measured")
        assert row["step_seconds_median"] > 0 and row["energy_joules_per_step"] is None
    train = json.loads((out / "train" / "ff-accuracy.json").read_text())
    assert train["status"] == "ok" and len(train["epochs"]) == 1
    with tarfile.open(tmp_path / device_check.TAR_NAME) as tar:
        names = tar.getnames()
    assert "run/device-run.json" in names and "run/report.html" in names


def test_a_phase_cut_by_the_deadline_is_said_and_the_run_still_packs(tmp_path):
    out = tmp_path / "run"
    # with 40 s in all, only the first phase can start (each needs its minimum time)
    device_check.main(
        ["--out", str(out), "--device", "cpu", "--tiny", "--deadline", "55", "--revision", "r1"]
    )
    outcomes = [p["outcome"] for p in json.loads((out / "device-run.json").read_text())["phases"]]
    assert any(o.startswith("skipped") for o in outcomes)
    assert (tmp_path / device_check.TAR_NAME).exists()


def test_the_revision_must_be_given(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        device_check.main(["--out", str(tmp_path / "run"), "--device", "cpu", "--tiny"])
    assert exc.value.code == 2 and "--revision" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_given_revision_is_recorded_where_git_cannot_say(monkeypatch):
    monkeypatch.setattr(environment, "_git_revision", lambda: None)
    monkeypatch.setenv(environment.REVISION_ENV, "abc1234")
    assert environment.git_revision() == "abc1234"
    monkeypatch.delenv(environment.REVISION_ENV)
    assert environment.git_revision() is None


def test_differences_are_explained_where_the_rule_can_say():
    cublas, lt = cuda_allocator.workspace_sizes((9, 0), env={})
    explain = device_check.explain
    assert explain(10_000, 10_000, (9, 0)) == "equal to the byte"
    assert "-1 cuBLAS" in explain(10_000 + cublas, 10_000, (9, 0))
    assert "+0 cuBLAS" in explain(10_000, 10_000 + lt, (9, 0)) and "+1 cuBLASLt" in explain(
        10_000, 10_000 + lt, (9, 0)
    )
    assert "lower bound" in explain(10_000, 10_512, (9, 0))
    assert "over-counts" in explain(10_000, 9_488, (9, 0))
    assert explain(10_000, None, (9, 0)).startswith("not measured")
