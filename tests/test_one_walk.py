"""One walk: every record file is opened once to build a report, and at most three times by a
resumed sweep (its check, its check under the folder's lock, the CSV). Opens are counted by
wrapping `open` (which `Path.read_text` and `Path.open` go through)."""

import builtins
import collections
import io
import shutil
from pathlib import Path

import pytest

from ffbench.analysis.report import build_report
from ffbench.cli import main
from ffbench.results import load

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "results" / "2026-12-06-cpu-quick-protocol"
TINY = ["--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--steps", "1", "--quiet"]


@pytest.fixture
def reads(monkeypatch) -> collections.Counter:
    """Opens for reading from now on, by resolved path."""
    counts: collections.Counter = collections.Counter()
    real = io.open

    def counting(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and not set(mode) & set("wax+"):
            counts[Path(file).resolve()] += 1
        return real(file, mode, *args, **kwargs)

    monkeypatch.setattr(io, "open", counting)
    monkeypatch.setattr(builtins, "open", counting)
    return counts


def test_a_report_reads_each_record_once(tmp_path, reads):
    """A results folder of four committed records and a train record beside it: one open each,
    while `load` alone (the counter's check) opens each again."""
    folder = tmp_path / "sweep"
    (folder / "records").mkdir(parents=True)
    for name in ("manifest.json", "environment.json"):
        shutil.copy(RUN / "sweep" / name, folder / name)
    for pattern in ("bp-d2-w500-b*.json", "ff-d2-w500-b64-*.json", "bp-local-d2-w500-b64-*.json"):
        for src in sorted((RUN / "sweep" / "records").glob(pattern)):
            shutil.copy(src, folder / "records" / src.name)
    train = tmp_path / "train.json"
    shutil.copy(RUN / "train" / "ff-d2-w500-b100-s0.json", train)
    records = [*sorted((folder / "records").glob("*.json")), train]
    assert len(records) == 6
    reads.clear()
    build_report([folder, train], tmp_path / "report.html")
    assert {p.name: reads[p.resolve()] for p in records} == {p.name: 1 for p in records}
    load([folder, train])
    assert {p.name: reads[p.resolve()] for p in records} == {p.name: 2 for p in records}


def test_a_resumed_sweep_reads_each_record_at_most_three_times(tmp_path, reads):
    """A finished sweep run again (nothing to measure), then with one record gone (measured
    again, its pair group timed again): no record is opened more than three times."""
    out = tmp_path / "sweep"
    grid = ["--trainers", "bp,ff", "--depths", "1", "--widths", "8", "--batch-sizes", "4,8"]
    command = ["sweep", *TINY, *grid, "--out", str(out)]
    assert main(command) == 0
    records = sorted((out / "records").glob("*.json"))
    assert len(records) == 4
    reads.clear()
    assert main(command) == 0
    seen = {p.name: reads[p.resolve()] for p in records}
    assert all(1 <= n <= 3 for n in seen.values()), seen
    records[0].unlink()
    reads.clear()
    assert main(command) == 0
    assert sorted(p.name for p in (out / "records").glob("*.json")) == [p.name for p in records]
    seen = {p.name: reads[p.resolve()] for p in records}
    assert seen[records[0].name] == 1, seen  # written by this run, read by the CSV only
    assert all(1 <= n <= 3 for n in seen.values()), seen
