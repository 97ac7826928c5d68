"""`ffbench.track` around steps ffbench did not write, who holds the peak (allocation sites),
`ffbench diff`, the trace export, and the documented example (docs/track-your-own-loop.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import ffbench
from ffbench.cli import main
from ffbench.config import RunConfig
from ffbench.run.harness import HarnessSettings, measure_memory, prepare

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "track-your-own-loop.md"
SMALL = dict(depth=2, width=64, batch_size=32, dataset="synthetic", threads=1, val_size=0)


def doc_blocks() -> list[tuple[str, str]]:
    """The doc's fenced blocks as (info string, text)."""
    blocks, info, lines = [], None, []
    for line in DOC.read_text().splitlines(keepends=True):
        if info is None and line.startswith("```"):
            info, lines = line[3:].strip(), []
        elif info is not None and line.strip() == "```":
            blocks.append((info, "".join(lines)))
            info = None
        elif info is not None:
            lines.append(line)
    return blocks


def doc_files() -> dict[str, str]:
    """The doc's files: ```python NAME blocks."""
    return {info.split()[1]: text for info, text in doc_blocks() if info.startswith("python ")}


def doc_outputs() -> list[str]:
    """The doc's unlabelled blocks (commands and what they print)."""
    return [text for info, text in doc_blocks() if not info]


def fixed_lines(text: str) -> str:
    """Output with ffbench's own line numbers masked (they move when ffbench's code does)."""
    return re.sub(r"(trainers/\w+\.py):\d+", r"\1:N", text)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The doc's example files in a folder named `example`, measure_both.py run there."""
    folder = tmp_path_factory.mktemp("doc") / "example"
    folder.mkdir()
    for name, body in doc_files().items():
        (folder / name).write_text(body)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(folder)])}
    proc = subprocess.run(
        [sys.executable, "measure_both.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return folder, proc.stdout


def test_documented_example_prints_what_the_doc_shows(example):
    folder, printed = example
    shown = next(block for block in doc_outputs() if block.startswith("at the peak (bytes)"))
    assert printed == shown
    mine = json.loads((folder / "my-ff-loop.json").read_text())
    m = mine["metrics"]
    params = 4 * (784 * 500 + 500 + 500 * 500 + 500)
    assert m["tensor_peak_parameters_bytes"] == params == m["tensor_peak_gradients_bytes"]
    assert m["tensor_peak_optimizer_state_bytes"] == 2 * params + 4 * 4  # moments + 4 step counters
    assert m["tensor_peak_inputs_bytes"] == 256 * 784 * 4 + 256 * 8
    assert sum(m[f"tensor_peak_{c}_bytes"] for c in ffbench.measure.CATEGORIES) == m["tensor_peak_bytes"]
    assert sum(mine["peak_sites"].values()) == m["tensor_peak_bytes"]
    assert [p["name"] for p in mine["phases"]] == ["forward", "backward", "optimizer"]
    # the record loads like any other
    from ffbench.results import load

    rows = load(folder / "my-ff-loop.json")
    assert list(rows["tensor_peak_bytes"]) == [m["tensor_peak_bytes"]] and list(rows["kind"]) == ["track"]


def test_documented_diff_names_the_sites_whose_bytes_differ(example, capsys, monkeypatch):
    folder, _ = example
    monkeypatch.chdir(folder)
    command = next(b for b in doc_outputs() if b.startswith("ffbench diff")).split()[1:]
    assert main(command) == 0
    out = capsys.readouterr().out
    shown = next(b for b in doc_outputs() if b.startswith("peak A "))
    assert fixed_lines(out) == fixed_lines(shown)
    # the site deltas add up to the difference of the peaks, to the byte
    from ffbench.analysis.attribution import site_deltas

    a, b = (json.loads((folder / f).read_text()) for f in ("my-ff-loop.json", "ff-frugal.json"))
    deltas = site_deltas(a, b)
    assert (
        sum(d.delta for d in deltas) == b["metrics"]["tensor_peak_bytes"] - a["metrics"]["tensor_peak_bytes"]
    )


def test_trace_export_has_every_required_trace_event_field(example, tmp_path):
    folder, _ = example
    out = tmp_path / "t.json"
    assert main(["export", str(folder / "my-ff-loop.json"), "--format", "trace", "--out-file", str(out)]) == 0
    doc = json.loads(out.read_text())
    record = json.loads((folder / "my-ff-loop.json").read_text())
    events = doc["traceEvents"]
    # Trace Event Format: every event has name, ph, ts, pid, tid; X has dur >= 0; C's args are
    # numbers; i's scope is g, p or t; M names a process or thread
    for e in events:
        assert isinstance(e["name"], str) and e["ph"] in "XCiM" and len(e["ph"]) == 1
        assert (
            isinstance(e["ts"], int)
            and e["ts"] >= 0
            and isinstance(e["pid"], int)
            and isinstance(e["tid"], int)
        )
        if e["ph"] == "X":
            assert isinstance(e["dur"], int) and e["dur"] >= 0
        if e["ph"] == "C":
            assert all(isinstance(v, (int, float)) for v in e["args"].values())
        if e["ph"] == "i":
            assert e["s"] in ("g", "p", "t")
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and isinstance(e["args"]["name"], str)
    counters = [(e["ts"], e["args"]["bytes"]) for e in events if e["ph"] == "C"]
    assert counters == [tuple(p) for p in record["timeline"]]
    assert max(b for _, b in counters) == record["metrics"]["tensor_peak_bytes"]
    slices = [(e["name"], e["ts"], e["ts"] + e["dur"]) for e in events if e["ph"] == "X"]
    assert [s[0] for s in slices] == ["forward", "backward", "optimizer"]
    assert all(a[2] <= b[1] for a, b in zip(slices, slices[1:]))  # in order, not overlapping


def test_track_gives_the_harness_figures_for_ff_frugal_to_the_byte(one_torch_thread):
    config = RunConfig(trainer="ff-frugal", **SMALL)
    harness = measure_memory(prepare(config), HarnessSettings(warmup_steps=1, evaluate=False)).steady
    run = prepare(config)
    for _ in range(2):  # the first step and one warm-up step, as measure_memory
        run.trainer.train_step(*next(run.batches))
    x, y = next(run.batches)
    with ffbench.track(model=run.trainer.model, optimizers=run.trainer.optimizers(), inputs=(x, y)) as t:
        run.trainer.train_step(x, y)
    mine = t.result()
    assert (mine.peak_bytes, mine.start_bytes, mine.end_bytes) == (
        harness.peak_bytes,
        harness.start_bytes,
        harness.end_bytes,
    )
    assert mine.peak_breakdown == harness.peak_breakdown
    assert [asdict(p) for p in mine.phases] == [asdict(p) for p in harness.phases]
    assert mine.timeline == harness.timeline


def test_sites_change_no_byte_and_sum_to_the_peak(one_torch_thread):
    config = RunConfig(trainer="ff", **SMALL)
    plain = measure_memory(prepare(config), HarnessSettings(evaluate=False)).steady
    sited = measure_memory(prepare(config), HarnessSettings(evaluate=False, sites=4)).steady
    assert plain.peak_holders is None and plain.peak_sites is None
    assert (sited.peak_bytes, sited.peak_breakdown, sited.timeline) == (
        plain.peak_bytes,
        plain.peak_breakdown,
        plain.timeline,
    )
    assert sum(sited.peak_sites.values()) == sited.peak_bytes
    assert len(sited.peak_holders) == 4
    sizes = [h["bytes"] for h in sited.peak_holders]
    assert sizes == sorted(sizes, reverse=True)
    grads = [h for h in sited.peak_holders if h["category"] == "gradients"]
    assert grads and all(h["site"].startswith("trainers/") for h in grads)


def test_decorator_measures_each_call_and_counts_tensor_arguments_as_inputs():
    net = torch.nn.Linear(8, 4)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    @ffbench.track(model=net, optimizers=[opt], sites=2)
    def step(x, y):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    x, y = torch.rand(16, 8), torch.randint(0, 4, (16,))
    params = 4 * (8 * 4 + 4)
    step(x, y)
    first = step.tracker
    step(x, y)
    assert step.tracker is not first
    r = step.tracker.result()
    assert first.result().start_bytes == params + x.nbytes + y.nbytes  # no gradient yet
    assert r.start_bytes == 2 * params + x.nbytes + y.nbytes  # the first call's gradients
    assert r.peak_breakdown["inputs"] == x.nbytes + y.nbytes
    assert r.peak_breakdown["parameters"] == params
    assert r.peak_holders[0] == {
        "bytes": x.nbytes,
        "category": "inputs",
        "site": "(before the block: inputs)",
        "where": "",
    }
    assert step.tracker.record().metrics["tensor_peak_bytes"] == r.peak_bytes


def test_track_refuses_a_bad_sites_value():
    with pytest.raises(ValueError, match="sites"):
        ffbench.track(sites=-1)


def test_import_ffbench_does_not_import_torch():
    code = "import sys, ffbench; assert callable(ffbench.track); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_measure_shows_sites_and_diff_names_ff_and_ff_frugal_sites(tmp_path, capsys):
    common = ["--depth", "2", "--width", "64", "--batch-size", "32", "--dataset", "synthetic"]
    common += ["--threads", "1", "--val-size", "0", "--steps", "1", "--warmup", "1"]
    for trainer in ("ff", "ff-frugal"):
        args = [
            "measure",
            "--trainer",
            trainer,
            *common,
            "--sites",
            "6",
            "--out-file",
            str(tmp_path / f"{trainer}.json"),
        ]
        assert main(args) == 0
        shown = capsys.readouterr().out
        assert "largest storages at the peak (6), allocated at:" in shown
        assert re.search(r"  (gradients|other|activations) +trainers/\w+\.py:\d+", shown), shown
    assert main(["diff", str(tmp_path / "ff.json"), str(tmp_path / "ff-frugal.json")]) == 0
    out = capsys.readouterr().out
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("ff.json", "ff-frugal.json"))
    diff = b["metrics"]["tensor_peak_bytes"] - a["metrics"]["tensor_peak_bytes"]
    assert f"B - A  {diff:+,} B" in out
    site_lines = [line for line in out.splitlines()[4:] if "trainers/" in line]
    assert any("trainers/ff.py:" in line for line in site_lines)
    assert any("trainers/ff_frugal.py:" in line for line in site_lines)
    # the report shows them too
    from ffbench.analysis.report import build_report

    report = build_report([tmp_path / "ff.json", tmp_path / "ff-frugal.json"], tmp_path / "r" / "r.html")
    holders = report.tables["holders"]
    assert list(holders["bytes"]) == [h["bytes"] for r in (a, b) for h in r["peak_holders"]]
    page = (tmp_path / "r" / "r.html").read_text()
    assert "Who holds the peak" in page and a["peak_holders"][-1]["site"].split(" < ")[0] in page
    # a record without sites: one line, exit status 2
    del a["peak_sites"]
    (tmp_path / "plain.json").write_text(json.dumps(a))
    assert main(["diff", str(tmp_path / "plain.json"), str(tmp_path / "ff.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ffbench: error: ") and "no allocation sites" in err and err.count("\n") == 1


def test_export_for_github_action_benchmark_on_two_commits(example, tmp_path, capsys):
    from ffbench.analysis.export import read_history

    folder, _ = example
    history, listing = tmp_path / "history.jsonl", tmp_path / "memory.json"
    records = [str(folder / "my-ff-loop.json"), str(folder / "ff-frugal.json")]
    for commit in ("aaaaaaa", "bbbbbbb"):
        args = ["export", *records, "--format", "benchmark-action", "--commit", commit]
        assert main([*args, "--out-file", str(listing), "--history", str(history)]) == 0
    runs = list(read_history(history).items())
    assert [run.split()[0] for run, _ in runs] == ["aaaaaaa", "bbbbbbb"]
    peaks = {"my-ff-loop: tensor step peak": 17_095_568, "ff-frugal: tensor step peak": 14_250_884}
    for (_, entries), commit in zip(runs, ("aaaaaaa", "bbbbbbb")):
        assert {e["name"]: e["value"] for e in entries if e["name"] in peaks} == peaks
        for e in entries:  # github-action-benchmark's fields and types
            assert set(e) == {"name", "unit", "value", "range", "extra"} and e["unit"] == "bytes"
            assert isinstance(e["value"], int) and isinstance(e["range"], str)
            assert e["extra"].startswith(f"commit: {commit}\nmachine: ")
    assert json.loads(listing.read_text()) == runs[-1][1]
    # bad input: one line, exit status 2, nothing written
    before = history.read_text()
    bad = ["export", *records, "--format", "benchmark-action", "--history", str(tmp_path / "no" / "h.jsonl")]
    assert main(bad) == 2
    assert capsys.readouterr().err.count("\n") == 1 and history.read_text() == before
    assert main(["export", *records, "--format", "trace"]) == 2  # one record only
    assert "give one record" in capsys.readouterr().err
