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


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--depth", "0"], "depth must be a positive integer"),
        (["--width", "-3"], "width must be a positive integer"),
        (["--batch-size", "0"], "batch-size must be a positive integer"),
        (["--trainer", "magic"], "unknown trainer 'magic'"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--depth", "two"], "invalid int value"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "run.json"
    code = (
        main(
            [
                "train",
                *args,
                "--dataset" if "--dataset" not in args else "--seed",
                "digits" if "--dataset" not in args else "0",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        if "--depth" not in args or args[1] != "two"
        else None
    )
    if code is None:  # argparse-level error exits through SystemExit
        with pytest.raises(SystemExit) as exc:
            main(["train", *args, "--out", str(out)])
        code = exc.value.code
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
    assert record["ff_evaluation"]["chunk"] == 32
    assert record["test_accuracy"] > 0.5  # goodness evaluation learns well above chance (0.1)
    assert 0 < record["readout"]["untrained_control"] <= 1
    assert 0 < record["readout"]["trained"] <= 1
