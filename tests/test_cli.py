"""The command line end to end: real training on bundled data, one-line errors."""

import json
import subprocess
import sys

import pytest

from ffbench.cli import main


def run_cli(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "ffbench", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def exit_code(argv) -> int:
    """main()'s status, whether a config error returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--depth", "0"], "argument --depth: expected an integer >= 1"),
        (["--width", "-3"], "argument --width: expected an integer >= 1"),
        (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1"),
        (["--trainer", "magic"], "argument --trainer: invalid choice: 'magic'"),
        (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
        (["--optimizer", "lbfgs"], "argument --optimizer: invalid choice: 'lbfgs'"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
        (["--depth", "two"], "expected an integer, got 'two'"),
        (["--lr", "inf"], "argument --lr: expected a finite number > 0"),
        (["--ff-threshold", "nan"], "argument --ff-threshold: expected a finite number > 0"),
        (["--seed", str(2**70)], "argument --seed: expected an integer >= 0 and at most"),
        (["--ff-eval-layers", "0"], "ff-eval-layers '0' names a layer outside"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "run.json"
    code = exit_code(["train", *args, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("ffbench: error:")
    assert fragment in err
    assert not out.exists()


def test_cuda_without_gpu_is_refused(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "run.json"
    assert main(["train", "--device", "cuda", "--dataset", "digits", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA GPU" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_missing_data_offline_names_the_places_searched(tmp_path, monkeypatch, capsys):
    from ffbench import data

    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setenv("FFBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FFBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        data, "_download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")), raising=False
    )
    out = tmp_path / "run.json"
    code = main(
        [
            "train",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "nowhere" in err and "--dataset digits" in err
    assert not out.exists()


def test_train_writes_a_record_that_shows_learning(tmp_path):
    out = tmp_path / "bp.json"
    proc = run_cli(
        "train",
        "--trainer",
        "bp",
        "--dataset",
        "digits",
        "--depth",
        "2",
        "--width",
        "64",
        "--batch-size",
        "32",
        "--epochs",
        "3",
        "--lr",
        "3e-3",
        "--threads",
        "1",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3/3" in proc.stdout
    record = json.loads(out.read_text())
    assert record["dataset"]["name"] == "digits"
    assert record["config"]["depth"] == 2 and len(record["epochs"]) == 3
    assert record["test_accuracy"] > 0.85  # 10 classes: chance is 0.1
    assert record["environment"]["torch"]


def test_ff_train_reports_goodness_and_readout_with_control(tmp_path):
    out = tmp_path / "ff.json"
    proc = run_cli(
        "train",
        "--trainer",
        "ff",
        "--dataset",
        "digits",
        "--depth",
        "2",
        "--width",
        "128",
        "--batch-size",
        "32",
        "--epochs",
        "10",
        "--lr",
        "1e-2",
        "--threads",
        "1",
        "--quiet",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert record["ff_evaluation"]["layers"] == [1, 2]
    assert record["ff_evaluation"]["chunk"] == 256  # the evaluation chunk does not follow the batch
    assert record["test_accuracy"] > 0.5  # goodness evaluation learns well above chance (0.1)
    assert 0 < record["readout"]["untrained_control"] <= 1
    assert 0 < record["readout"]["trained"] <= 1
