"""The GPU run's script, rehearsed on CPU with tiny sizes: every phase runs, in order, within
its deadline, and everything lands in one tar file."""

import json
import tarfile

from ffbench.run import device_check


def test_the_device_run_rehearses_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("FFBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code = device_check.main(["--out", str(out), "--device", "cpu", "--tiny", "--deadline", "900"])
    summary = json.loads((out / "device-run.json").read_text())
    outcomes = {p["phase"]: p["outcome"] for p in summary["phases"]}
    assert list(outcomes) == ["cuda-tests", "sweep", "maxbatch", "accuracy", "bfloat16", "report"]
    assert code == 0, outcomes
    assert all(o == "ok" for o in outcomes.values()), outcomes
    assert len(list((out / "sweep" / "records").glob("*.json"))) == 2
    train = json.loads((out / "train" / "ff-accuracy.json").read_text())
    assert train["status"] == "ok" and len(train["epochs"]) == 1
    with tarfile.open(tmp_path / device_check.TAR_NAME) as tar:
        names = tar.getnames()
    assert "run/device-run.json" in names and "run/report.html" in names


def test_a_phase_cut_by_the_deadline_is_said_and_the_run_still_packs(tmp_path):
    out = tmp_path / "run"
    # with 40 s in all, only the first phase can start (each needs its minimum time)
    device_check.main(["--out", str(out), "--device", "cpu", "--tiny", "--deadline", "55"])
    outcomes = [p["outcome"] for p in json.loads((out / "device-run.json").read_text())["phases"]]
    assert any(o.startswith("skipped") for o in outcomes)
    assert (tmp_path / device_check.TAR_NAME).exists()
