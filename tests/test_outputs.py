"""Outputs that cannot collide (issue 24): `train` and `measure` never write over a record,
a run cut short stays `partial`, a comparison report has its own name."""

import json

import pytest

import ffbench.run.fit as fit_module
from ffbench.cli import main
from ffbench.results import load

T = ["--dataset", "synthetic", "--width", "16", "--depth", "1", "--batch-size", "8", "--epochs", "4",
     "--threads", "1", "--quiet"]  # fmt: skip
MEASURE = ["--dataset", "synthetic", "--trainer", "ff", "--width", "16", "--depth", "1", "--batch-size", "8",
           "--threads", "1", "--quiet"]  # fmt: skip


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def interrupt_after_first_epoch(monkeypatch):
    """Ctrl-C as the second epoch starts: fit's epoch hook raises after the first epoch."""
    real = fit_module.fit

    def fit(*args, on_epoch=None, **kwargs):
        def hook(record):
            on_epoch(record)
            raise KeyboardInterrupt

        return real(*args, on_epoch=hook if on_epoch else None, **kwargs)

    monkeypatch.setattr(fit_module, "fit", fit)


def test_a_rerun_writes_beside_and_an_interrupted_one_stays_partial(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    assert main(["train", *T, "--out", str(runs)]) == 0
    (first,) = runs.glob("*.json")
    assert first.name.endswith("-train-1.json")
    before = first.read_bytes()
    interrupt_after_first_epoch(monkeypatch)
    assert main(["train", *T, "--out", str(runs)]) == 130
    err = capsys.readouterr().err.strip()
    second = runs / first.name.replace("-train-1.json", "-train-2.json")
    assert len(err.splitlines()) == 1 and "after 1 of 4 epoch(s)" in err and str(second) in err
    assert first.read_bytes() == before  # the finished record untouched
    record = json.loads(second.read_text())
    assert record["status"] == "partial" and len(record["epochs"]) == 1
    df = load(runs).set_index("path")
    assert df.loc[str(first), "status"] == "ok" and df.loc[str(second), "status"] == "partial"


def test_a_copy_marked_partial_by_an_older_version_reads_as_partial(tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", *T, "--out", str(runs)]) == 0
    (path,) = runs.glob("*.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "partial": True, "status": "ok"}))
    assert load(runs)["status"].tolist() == ["partial"]


def test_out_file_is_never_replaced_unless_told(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run.json"
    assert main(["train", *T, "--out-file", str(out)]) == 0
    before = out.read_bytes()
    assert exit_code(["train", *T, "--epochs", "2", "--out-file", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--overwrite" in err and out.read_bytes() == before
    interrupt_after_first_epoch(monkeypatch)
    assert main(["train", *T, "--out-file", str(out), "--overwrite"]) == 130
    assert out.read_bytes() == before  # intact until the new record is complete
    partial = tmp_path / "run.partial.json"
    assert json.loads(partial.read_text())["status"] == "partial"
    monkeypatch.undo()
    assert main(["train", *T, "--epochs", "2", "--out-file", str(out), "--overwrite"]) == 0
    assert len(json.loads(out.read_text())["epochs"]) == 2 and not partial.exists()


def test_measure_never_replaces_a_train_record(tmp_path):
    runs = tmp_path / "runs"
    assert main(["train", *MEASURE, "--epochs", "1", "--out", str(runs)]) == 0
    assert main(["measure", *MEASURE, "--steps", "1", "--out", str(runs)]) == 0
    names = sorted(p.name for p in runs.glob("*.json"))
    assert len(names) == 2 and names[0].endswith("-measure-1.json") and names[1].endswith("-train-1.json")
    assert sorted(load(runs)["kind"]) == ["measure", "train"]


@pytest.mark.parametrize("command", [["measure", *MEASURE, "--steps", "1"], ["train", *T]])
def test_an_existing_file_of_any_kind_is_refused(tmp_path, capsys, command):
    out = tmp_path / "notes.json"
    out.write_text("my notes")
    assert exit_code([*command, "--out-file", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "my notes"


def test_a_comparison_has_its_own_report_name():
    from ffbench.cli import report_name

    assert report_name(["results/a"], None) == "a.html"
    assert report_name(["results/a", "results/b"], "results/a") == "a-vs-b.html"
    assert report_name(["results/b", "results/a"], "results/a") == "a-vs-b.html"
    assert report_name(["x/run", "y/run"], "x/run") == "run-vs-run.html"
    assert report_name(["results/a", "results/b"], None) == "a-and-b.html"


def test_comparing_two_runs_leaves_the_first_runs_report_alone(tmp_path, monkeypatch, capsys):
    runs = [tmp_path / "a", tmp_path / "b"]
    for seed, folder in enumerate(runs):
        assert main(["train", *T, "--epochs", "1", "--seed", str(seed), "--out", str(folder)]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["report", "a", "--quiet"]) == 0
    own = (tmp_path / "reports" / "a.html").read_bytes()
    assert main(["report", "a", "b", "--baseline", "a", "--quiet"]) == 0
    assert (tmp_path / "reports" / "a-vs-b.html").is_file()
    assert (tmp_path / "reports" / "a.html").read_bytes() == own
    assert main(["report", "a", "--quiet"]) == 0  # its own report is rebuilt
    notes = tmp_path / "notes.html"
    notes.write_text("<p>mine</p>")
    assert exit_code(["report", "a", "--out-file", str(notes), "--quiet"]) == 2
    assert "not an ffbench report" in capsys.readouterr().err and notes.read_text() == "<p>mine</p>"
    assert main(["report", "a", "--out-file", str(notes), "--overwrite", "--quiet"]) == 0
