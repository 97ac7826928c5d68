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
        (["--micro-batch", "0"], "argument --micro-batch: expected rows (an integer >= 1"),
        (["--micro-batch", "5/4"], "or a fraction of the batch such as 1/4, got '5/4'"),
        (
            ["--trainer", "bp-inbackward", "--micro-batch", "1/4"],
            "--micro-batch does not apply to bp-inbackward (--arch mlp): it steps each parameter "
            "inside backward, before the batch is complete",
        ),
        (
            ["--ff-micro-schedule", "layer-major"],
            "--ff-micro-schedule is a FF trainers' (with --micro-batch) option",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "run.json"
    code = exit_code(["train", *args, "--out-file", str(out), "--quiet"])
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
    assert main(["train", "--device", "cuda", "--dataset", "digits", "--out-file", str(out)]) == 2
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
            "--out-file",
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
        "--out-file",
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
        "--out-file",
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


def _help(*argv) -> str:
    from ffbench.cli import build_parser

    parser = build_parser()
    if not argv:
        return parser.format_help()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[argv[0]].format_help()


def test_top_level_help_is_a_users_text():
    text = _help()
    assert "typical use:" in text and "ffbench reproduce --profile quick" in text
    assert "--out DIR is always a folder" in text and "COMMAND" in text
    assert "argument parsing" not in text and "namespace" not in text


def test_flags_that_do_nothing_are_not_offered():
    assert "--epochs" in _help("train") and "--target-accuracy" in _help("train")
    for command in ("measure", "sweep", "maxbatch", "reproduce", "report"):
        assert "--epochs" not in _help(command) and "--target-accuracy" not in _help(command), command
    for command in ("train", "measure", "report"):
        assert "--out-file" in _help(command) and "--out DIR" in _help(command)
    for command in ("sweep", "maxbatch", "reproduce"):
        assert "--out-file" not in _help(command) and "--dry-run" in _help(command)
    assert "--trainer {" in _help("train")  # a name is chosen from its choices


@pytest.mark.parametrize("command", [["train", "--dataset", "digits"], ["report", "results"]])
def test_out_names_a_folder_and_out_file_a_file(tmp_path, capsys, command):
    out = tmp_path / ("x.json" if command[0] == "train" else "x.html")
    assert exit_code([*command, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"use --out-file {out}" in err
    assert not out.exists()


def test_train_out_folder_names_the_record_after_the_run(tmp_path):
    code = main(["train", "--dataset", "digits", "--depth", "1", "--width", "16", "--threads", "1",
                 "--val-size", "100", "--out", str(tmp_path / "runs"), "--quiet"])  # fmt: skip
    assert code == 0
    (record,) = (tmp_path / "runs").glob("bp-d1-w16-b100-*.json")
    assert json.loads(record.read_text())["config"]["width"] == 16


TINY_SWEEP = ["--dataset", "synthetic", "--threads", "1", "--trainers", "bp,ff", "--depths", "1",
              "--widths", "8", "--batch-sizes", "4", "--steps", "1"]  # fmt: skip


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", *TINY_SWEEP, "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 configurations" in text and "0 already recorded, 2 to run" in text
    assert "estimated time: about" in text and "Nothing written" in text
    args = ["maxbatch", "--memory-limit", "16MiB", "--trainers", "bp,ff", "--depths", "1", "--width", "8"]
    assert main([*args, "--dataset", "synthetic", "--out", str(tmp_path / "mb"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "2 searches" in text and "starts at batch" in text and "estimated time: about" in text
    assert (
        main(["reproduce", "--results", str(tmp_path / "r"), "--reports", str(tmp_path / "p"), "--dry-run"])
        == 0
    )
    text = capsys.readouterr().out
    assert "memory sweep:" in text and "estimated total: about" in text
    assert not any(tmp_path.iterdir())


def test_sweep_progress_is_plain_lines_in_a_log(tmp_path):
    """stderr is a pipe, not a terminal: one line per configuration started, naming the one
    running now (not the one just finished), no bar redraws."""
    proc = run_cli("sweep", *TINY_SWEEP, "--out", str(tmp_path / "s"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "running" in ln]
    assert [ln.split("running ")[1] for ln in lines] == ["bp-d1-w8-b4", "ff-d1-w8-b4"], proc.stderr
    assert "[1/2 config]" in lines[0] and "[2/2 config]" in lines[1]
    assert "\r" not in proc.stderr and "it/s" not in proc.stderr


def test_measure_prints_measured_beside_modelled(capsys):
    args = ["measure", "--dataset", "synthetic", "--threads", "1", "--trainer", "ff", "--depth", "2",
            "--width", "16", "--batch-size", "8", "--steps", "1", "--warmup", "0"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "measured" in text and "modelled" in text and "difference" in text
    peak = next(ln for ln in text.splitlines() if "training step peak" in ln)
    assert peak.rstrip().endswith("+0 B")  # the analytic model is exact for ff
    assert "IQR" in text


HEAVY = ("torch", "pandas", "seaborn", "matplotlib")


@pytest.mark.parametrize(
    "argv", [["--version"], ["--help"], ["report", "--help"], ["reproduce", "--help"], ["sweep", "--help"]]
)
def test_version_and_help_build_the_parser_without_torch(argv):
    """--version and --help answer without importing torch (the parser is built from config
    metadata; --trainer's names are loaded only when checked or listed). In a fresh interpreter."""
    code = (
        "import contextlib, io, sys\n"
        "from ffbench.cli import build_parser\n"
        "parser = build_parser()\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        f"        parser.parse_args({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert out.getvalue(), 'nothing printed'\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "none", f"{argv} imported {proc.stdout.strip()}"


def test_trainer_names_are_still_checked_and_listed():
    """The lazily loaded --trainer choices still refuse an unknown name and list every trainer."""
    from ffbench.trainers.registry import trainer_names

    assert exit_code(["train", "--trainer", "magic"]) == 2
    assert "{" + ",".join(trainer_names()) + "}" in _help("train")
