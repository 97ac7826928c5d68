"""The data of a measurement never changes silently (issue 24): memory commands default to
synthetic data of the architecture's input shape; an accuracy run says what it fell back to."""

import json

from ffbench.cli import main
from ffbench.run.sweep import plan_sweep


def test_measure_defaults_to_synthetic_of_the_architectures_shape(tmp_path, monkeypatch):
    monkeypatch.delenv("FFBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./data here
    runs = tmp_path / "runs"
    for arch in ("mlp", "conv"):
        size = ["--width", "16"] if arch == "mlp" else ["--channels", "4"]
        argv = ["measure", "--arch", arch, "--depth", "1", *size, "--batch-size", "4", "--steps", "1",
                "--threads", "1", "--quiet", "--out", str(runs / arch)]  # fmt: skip
        assert main(argv) == 0
        (path,) = (runs / arch).glob("*.json")
        record = json.loads(path.read_text())
        assert record["config"]["dataset"] == "synthetic" and record["dataset"]["name"] == "synthetic"
        assert record["dataset"]["in_features"] == (784 if arch == "mlp" else 3 * 32 * 32)


def test_a_sweep_defaults_to_synthetic_and_a_named_dataset_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = {"trainers": ["bp"], "depths": [1], "widths": [8], "batch_sizes": [4]}
    plan = plan_sweep(grid_flags=grid, out=str(tmp_path / "a"))
    assert {c.dataset for c in plan.configs} == {"synthetic"}
    plan = plan_sweep(grid_flags=grid, config_flags={"dataset": "digits"}, out=str(tmp_path / "b"))
    assert {c.dataset for c in plan.configs} == {"digits"}


def test_an_accuracy_run_says_which_dataset_it_fell_back_to(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FFBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    import ffbench.data as data

    monkeypatch.setattr(data, "_find_idx", lambda name, data_dir, cache: (None, ["nowhere"]))
    argv = [
        "train",
        "--depth",
        "1",
        "--width",
        "8",
        "--epochs",
        "1",
        "--val-size",
        "50",
        "--threads",
        "1",
        "--quiet",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and "--dataset auto fell back to digits" in err[0] and "64 features" in err[0]
