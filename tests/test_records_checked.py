"""Records checked on read (issue 24): named after their configuration, each configuration
once per folder, byte counts not negative, `ok` records with their metrics, records/ a folder."""

import json
import shutil

import pytest

from ffbench.cli import main
from ffbench.errors import ConfigError
from ffbench.results import load

SWEEP = ["sweep", "--dataset", "synthetic", "--trainers", "bp", "--depths", "1", "--widths", "8",
         "--batch-sizes", "4", "--steps", "1", "--threads", "1", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "o"
    assert main([*SWEEP, "--out", str(out)]) == 0
    return out


@pytest.fixture
def folder(measured, tmp_path):
    copy = tmp_path / "o"
    shutil.copytree(measured, copy)
    return copy


def the_record(folder):
    (path,) = (folder / "records").glob("*.json")
    return path, json.loads(path.read_text())


def test_a_record_copied_under_a_second_name_is_an_error_naming_both(folder, capsys):
    path, _ = the_record(folder)
    copy = path.with_name("bp-d1-w8-b4-000000000000.json")
    shutil.copy(path, copy)
    with pytest.raises(ConfigError, match="hold the same configuration") as err:
        load(folder)
    assert path.name in str(err.value) and copy.name in str(err.value)
    assert main(["report", str(folder), "--out-file", str(folder.parent / "r.html"), "--quiet"]) == 2
    assert not (folder.parent / "r.html").exists()


def test_an_edited_record_is_refused_on_read_and_on_resume(folder, capsys):
    path, record = the_record(folder)
    record["config"]["trainer"] = "ff"
    path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="copied or edited"):
        load(folder)
    before = {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert main([*SWEEP, "--out", str(folder)]) == 2
    assert "copied or edited" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # manifest included


@pytest.mark.parametrize(
    "change,fragment",
    [
        (lambda r: r["metrics"].update(tensor_peak_bytes=-1), "cannot be negative"),
        (lambda r: r.update(metrics={}), "holds no metrics"),
        (lambda r: r["phases"][0].update(peak_bytes=-5), "cannot be negative"),
    ],
)
def test_impossible_records_are_refused(folder, change, fragment):
    path, record = the_record(folder)
    change(record)
    path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match=fragment):
        load(folder)


def test_records_replaced_by_a_file_is_an_error_not_an_empty_table(folder, capsys):
    shutil.rmtree(folder / "records")
    (folder / "records").write_text("not a folder")
    with pytest.raises(ConfigError, match="is not a folder"):
        load(folder)
    assert main([*SWEEP, "--out", str(folder)]) == 2
    assert (folder / "records").read_text() == "not a folder"


def test_a_bad_record_is_refused_before_the_manifest_is_rewritten(folder, capsys):
    path, record = the_record(folder)
    record["metrics"]["tensor_peak_bytes"] = -1
    path.write_text(json.dumps(record))
    manifest = (folder / "manifest.json").read_bytes()
    assert main([*SWEEP, "--out", str(folder)]) == 2
    assert "cannot be negative" in capsys.readouterr().err
    assert (folder / "manifest.json").read_bytes() == manifest


def test_retry_errors_dry_run_counts_the_errors_it_would_run(folder, capsys):
    path, record = the_record(folder)
    path.write_text(json.dumps({**record, "status": "error", "error": "boom"}))
    assert main([*SWEEP, "--out", str(folder), "--dry-run"]) == 0
    assert "1 already recorded, 0 to run" in capsys.readouterr().out
    assert main([*SWEEP, "--out", str(folder), "--dry-run", "--retry-errors"]) == 0
    assert "0 already recorded, 1 to run" in capsys.readouterr().out


def test_a_dry_run_reads_a_folder_it_could_not_write(folder, monkeypatch, capsys):
    import os

    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if mode & os.W_OK else real(path, mode))
    assert main([*SWEEP, "--out", str(folder), "--dry-run"]) == 0
    assert "1 already recorded, 0 to run" in capsys.readouterr().out
    assert main([*SWEEP, "--out", str(folder)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_a_resumed_sweep_says_it_times_what_was_measured_before_a_kill(folder, capsys):
    """A sweep killed between measuring and timing leaves records awaiting their times: the
    resumed sweep's first line counts them ("0 to run" alone hid the work it then does)."""
    path, record = the_record(folder)
    path.write_text(json.dumps({**record, "timing_pending": True}))
    assert main([*SWEEP[:-1], "--out", str(folder)]) == 0  # not --quiet
    assert "(1 already recorded, 0 to run, 1 to time)" in capsys.readouterr().out
    assert "timing_pending" not in json.loads(path.read_text())
