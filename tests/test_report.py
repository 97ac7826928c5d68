"""`ffbench report` on real results made here: a small sweep through `ffbench.run.sweep`
(ffbench.run.sweep.measure, each configuration measured by the worker's own `run_spec`, in this
process to keep the test fast), a real `ffbench maxbatch` through the CLI, and real
`fit` records on the bundled digits. Checks the content, not the look: figures inline,
claims recomputed from the tables, no external resource, bad input writes nothing."""

from __future__ import annotations

import base64
import gc
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ffbench.analysis.claims import Verdict
from ffbench.analysis.claims.registered import all_claims
from ffbench.analysis.report import build_report, load_runs, load_timelines
from ffbench.analysis.thresholds import FLAT_TOLERANCE, MEMORY_MARGIN, MIN_DEPTH
from ffbench.analysis.verdicts import print_claims
from ffbench.cli import main
from ffbench.config import BATCH_CONVENTION, RunConfig
from ffbench.data import load_dataset
from ffbench.device import resolve_device
from ffbench.results import rows as results
from ffbench.results import store
from ffbench.results.store import ResultsFolder
from ffbench.run.executors import JobResult
from ffbench.run.fit import fit
from ffbench.run.sweep import SweepSettings, environment_metadata, grid_configs, measure, write_csv
from ffbench.run.worker import run_spec

TRAINERS = ["bp", "bp-checkpoint", "ff", "ff-frugal", "ff-summed", "bp-inbackward", "bp-local"]
GRID = {"trainers": TRAINERS, "depths": [1, 2, 3], "batch_sizes": [8, 64], "widths": [32]}
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ALL_FIGURES = [
    "peak_vs_depth",
    "memory_breakdown",
    "best_ff_vs_best_bp",
    "crossover",
    "frontier",
    "frontier_recurrent",
    "memory_vs_accuracy",
    "memory_at_target",
    "activations_vs_depth",
    "eval_vs_train",
    "step_time",
    "ff_bp_time_ratio",
    "accuracy",
    "accuracy_vs_time",
    "measured_vs_analytic",
    "timeline",
    "max_batch",
    "memory_vs_time",
    "black_box",
]


class InProcessExecutor:
    """The sweep's executor protocol, running each job through the worker's `run_spec` in
    this process (no torch import per configuration; no default-malloc timing child)."""

    def run(self, jobs):
        # the harness gc.collect()s around every tracked step; objects alive before the sweep
        # (this process's imports) are not garbage: freezing them makes each collect cheap
        gc.collect()
        gc.freeze()
        try:
            for job in jobs:
                spec = {**job.spec, "settings": {**job.spec["settings"], "compare_allocator": False}}
                started = time.perf_counter()
                record = time_group_here(spec) if job.kind == "time-group" else run_spec(spec).to_dict()
                yield JobResult(job, record, 0, time.perf_counter() - started, False, "")
        finally:
            gc.unfreeze()


FRONTIER_CLAIMS = ("frontier_ff_needs_less_memory_at_equal_time", "frontier_ff_trains_faster_at_equal_memory")


def time_group_here(spec: dict) -> dict:
    """A sweep's timing job (`ffbench.run.timing`) in this process."""
    from ffbench.run.harness import HarnessSettings, time_group

    configs = [RunConfig.from_dict(c) for c in spec["configs"]]
    return {
        "kind": "timing",
        "status": "ok",
        "results": time_group(configs, HarnessSettings(**spec["settings"])),
    }


def make_sweep(out: Path, grid: dict, **base_fields) -> Path:
    """A real results folder: every configuration of `grid` measured (tiny, synthetic, CPU)."""
    base = RunConfig(
        trainer=grid["trainers"][0],
        depth=grid["depths"][0],
        width=grid["widths"][0],
        batch_size=grid["batch_sizes"][0],
        dataset="synthetic",
        device="cpu",
        threads=1,
        **base_fields,
    )
    settings = SweepSettings(timing_steps=1, warmup_steps=0)
    data = load_dataset("synthetic", val_size=base.val_size)
    env = environment_metadata(resolve_device("cpu"), data.describe(), base, settings)
    env["isolation"] = "in-process (test): ffbench.run.worker.run_spec per configuration"
    folder = ResultsFolder.open(
        out,
        command="sweep",
        grid=grid,
        base_config=base.to_dict(),
        settings=settings.to_dict(),
        environment=env,
    )
    records = list(measure(folder, grid_configs(base, grid), settings, executor=InProcessExecutor()))
    assert all(r["status"] == "ok" for r in records), [r.get("error") for r in records]
    write_csv(folder)
    return out


def make_black_box_records(out: Path) -> Path:
    """Train records of the black box (issue 16), 3 seeds: ff and plain bp without and with
    the box, bp-ste with it. Records, not fits: the claim reads only their accuracies."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    for seed in (0, 1, 2):
        for trainer, box, accuracy in (
            ("ff", None, 0.90),
            ("ff", 1, 0.899),
            ("bp", None, 0.95),
            ("bp", 1, 0.80),
            ("bp-ste", 1, 0.94),
        ):
            cfg = RunConfig(
                trainer=trainer, depth=2, width=16, epochs=2, black_box=box, dataset="digits", seed=seed
            )
            frozen = ["body.0.weight", "body.0.bias"] if trainer == "bp" and box else []
            record = {"kind": "train", "config": cfg.to_dict(), "dataset": {"name": "digits"},
                      "val_accuracy": accuracy, "test_accuracy": accuracy,
                      "epochs": [{"epoch": 1, "test_accuracy": accuracy}],
                      "black_box": {"frozen_parameters": frozen} if box else None}  # fmt: skip
            (out / f"box-{trainer}-{box}-s{seed}.json").write_text(json.dumps(record))
    return out


def make_train_records(out: Path, seeds=(0,)) -> list[Path]:
    data = load_dataset("digits", val_size=100)
    paths = []
    for trainer in ("ff", "bp"):
        for seed in seeds:
            cfg = RunConfig(
                trainer=trainer,
                depth=1,
                width=32,
                batch_size=64,
                epochs=2,
                lr=0.01,
                dataset="digits",
                device="cpu",
                threads=1,
                val_size=100,
                seed=seed,
            )
            record = fit(cfg, data, progress=False, echo=lambda s: None)
            path = out / f"train-{trainer}-s{seed}.json"
            store.write_json_atomic(path, record.to_dict())
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    env = {**os.environ, "FFBENCH_CACHE": str(root / "cache")}  # never the user's ~/.cache
    # a real maxbatch search (worker processes under a real budget) runs beside the sweep
    maxbatch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ffbench",
            "maxbatch",
            "--memory-limit",
            "256MiB",
            "--trainers",
            "bp,ff",
            "--depths",
            "1",
            "--width",
            "16",
            "--dataset",
            "synthetic",
            "--threads",
            "1",
            "--max-batch",
            "64",
            "--tolerance",
            "0.5",
            "--out",
            str(root / "maxbatch"),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    # and two real pytest-benchmark runs of the benchmarks/ suite, written as JSON
    bench_json = root / "bench.json"
    bench = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(BENCHMARKS / "test_steps.py"),
            "--benchmark-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--ffbench-rounds",
            "1",
            "--ffbench-grid",
            "default",
            "-k",
            "test_train_step and b128 and (bp-d2 or ff-d2)",
            f"--benchmark-json={bench_json}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=root,
        env=env,
    )
    try:
        sweep = make_sweep(root / "sweep", GRID, eval_chunk=8)
        evaluation = {"trainers": ["ff"], "depths": [1], "batch_sizes": [8], "widths": [32],
                      "ff_eval": ["label-loop", "replicated"]}  # fmt: skip
        make_sweep(root / "evaluation", evaluation, eval_chunk=8)
        # the recurrent network over time steps (FF in time against BPTT) and the black box
        recurrent = {"trainers": ["ff", "bp"], "depths": [2], "batch_sizes": [8], "widths": [16],
                     "time_steps": [2, 4]}  # fmt: skip
        make_sweep(root / "recurrent", recurrent, arch="recurrent", eval_chunk=8)
        make_black_box_records(root / "box")
        train = make_train_records(root, seeds=(0, 1, 2))
        output, _ = maxbatch.communicate(timeout=600)
        bench_output, _ = bench.communicate(timeout=600)
    finally:
        for proc in (maxbatch, bench):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert maxbatch.returncode == 0, output
    assert bench.returncode == 0 and bench_json.exists(), bench_output
    out = root / "reports" / "tiny.html"
    report = build_report(
        [sweep, root / "evaluation", root / "recurrent", root / "box", *train, root / "maxbatch"], out
    )
    return {
        "root": root,
        "sweep": sweep,
        "train": train,
        "maxbatch": root / "maxbatch",
        "bench": bench_json,
        "report": report,
        "html": out.read_text(),
    }


def _inline_svgs(html: str) -> dict[str, str]:
    out = {}
    for m in re.finditer(
        r'<figure id="fig-([\w-]+)"><img alt="[^"]*" '
        r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"',
        html,
    ):
        out[m.group(1)] = base64.b64decode(m.group(2)).decode("utf-8")
    return out


def _verdict(report, key: str) -> Verdict:
    return next(v for v in report.verdicts if v.key == key)


def test_every_figure_is_inline_and_written_as_a_file(made):
    report, html = made["report"], made["html"]
    svgs = _inline_svgs(html)
    assert sorted(svgs) == sorted(ALL_FIGURES), [(f.name, f.note) for f in report.figures]
    for fig in report.figures:
        svg = svgs[fig.name]
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        # titled with its question (matplotlib keeps text as text: svg.fonttype none)
        assert (
            fig.question.split("(")[0].strip().replace("'", "&#x27;") in svg
            or fig.question.split("(")[0].strip() in svg
        )
        assert fig.file == report.figures_dir / f"{fig.name}.svg"
        assert fig.file.read_text() == svg
    assert report.figures_dir == made["root"] / "reports" / "tiny_files"


def test_no_external_resource_is_referenced(made):
    html = made["html"]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "<link" not in html.lower() and not re.search(r"<script[^>]*\bsrc", html, re.I)
    assert html.lower().count("<script>") == 1  # the inline table sorter, nothing fetched
    assert "@import" not in html and not re.search(r"url\(\s*['\"]?(?:https?:)?//", html)
    for name, svg in _inline_svgs(html).items():
        # internal references only: ids (#...) and inline data (a colour bar is a data: PNG)
        for href in re.findall(r"""href\s*=\s*["']([^"']*)["']""", svg):
            assert href.startswith(("#", "data:")), (name, href[:80])
        assert "<!DOCTYPE" not in svg, name
    # every internal link points at an anchor of the page
    ids = set(re.findall(r'id="([^"]+)"', html))
    for target in re.findall(r'href="#([^"]+)"', html):
        assert target in ids, target


def test_the_flatness_check_matches_the_table(made):
    """Recompute the check from results.load: ff's saved activations across depth, per batch."""
    df = results.load(made["sweep"])
    ff = df[(df["trainer"] == "ff") & (df["status"] == "ok")]
    flat = {}
    for batch, s in ff.groupby("batch_size"):
        v = s.groupby("depth")["tensor_saved_activations_bytes"].mean().astype(float)
        assert len(v) == 3
        v = v[v.index >= MIN_DEPTH]  # depth 1 lacks the width -> width layer (claim docstring)
        flat[f"w32 b{batch}"] = (v.max() - v.min()) / v.min() <= FLAT_TOLERANCE
    expected = (
        "holds"
        if all(flat.values())
        else "does not hold"
        if not any(flat.values())
        else "holds only where " + "; ".join(k for k, ok in flat.items() if ok)
    )
    v = _verdict(made["report"], "ff_activations_flat_in_depth")
    assert v.verdict == expected and v.group == "check"
    assert set(v.numbers["series"]) == set(flat)
    assert f"<dd>{expected}</dd>" in made["html"]


def test_best_ff_against_best_bp_matches_the_table(made):
    """Recompute: the smallest training-step peak of each family at every configuration."""
    df = results.load(made["sweep"])
    df = df[df["status"] == "ok"]
    v = _verdict(made["report"], "best_ff_needs_less_memory_than_best_bp")
    assert v.group == "finding"
    for (d, b), s in df.groupby(["depth", "batch_size"]):
        peaks = s.set_index("trainer")["tensor_train_peak_bytes"].astype(float)
        ff = peaks[[t for t in peaks.index if t.startswith("ff")]]
        bp = peaks[[t for t in peaks.index if not t.startswith("ff")]]
        entry = v.numbers["configurations"][f"w32 d{d} b{b}"]
        assert (entry["ff_best"], entry["bp_best"]) == (ff.idxmin(), bp.idxmin())
        assert entry["ratio"] == pytest.approx(ff.min() / bp.min())
        side = (
            "FF less"
            if entry["ratio"] < 1 - MEMORY_MARGIN
            else "BP less"
            if entry["ratio"] > 1 + MEMORY_MARGIN
            else "level"
        )
        assert entry["side"] == side


def test_time_ratio_is_fastest_against_fastest_within_one_run(made):
    df = results.load(made["sweep"])
    v = _verdict(made["report"], "ff_is_slower_per_step")
    for (d, b), s in df.groupby(["depth", "batch_size"]):
        t = s.set_index("trainer")["step_seconds_median"]
        ff = min(t[k] for k in t.index if k.startswith("ff"))
        # exact backprop at FF's micro-batch (the whole batch): never bp-local, never bp-accum's quarter
        bp = min(t[k] for k in t.index if k in ("bp", "bp-checkpoint", "bp-inbackward"))
        assert v.numbers["ratio"][f"w32 d{d} b{b}"] == pytest.approx(ff / bp)


def test_every_claim_has_a_verdict_test_figure_chunk_and_convention(made):
    report, html = made["report"], made["html"]
    assert [v.key for v in report.verdicts] == [f.__name__ for f in all_claims()]
    assert [v.group for v in report.verdicts] == sorted(
        (v.group for v in report.verdicts), key=["finding", "check"].index
    )
    names = {f.name for f in report.figures}
    for v in report.verdicts:
        assert re.fullmatch(r"holds|does not hold|holds only where .+|not evaluated \(.+\)", v.verdict)
        assert v.test and v.figure in names
        assert v.batch_convention == BATCH_CONVENTION
        card = re.search(
            rf'<article class="card [^"]*" id="claim-{v.key}">(.*?)</article>', html, re.S
        ).group(1)
        assert f"<dd>{v.eval_chunk}</dd>" in card and "<details>" in card
        assert f'href="#fig-{v.figure}"' in card
        # the summary box links every finding to its card
        if v.group == "finding":
            assert html.index(f'href="#claim-{v.key}"') < html.index('id="claims"')
    assert html.count(BATCH_CONVENTION.replace("'", "&#x27;")) == 1  # said once, at the top
    assert _verdict(report, "replicated_evaluation_costs_classes_times_rows").eval_chunk == "8"
    # everything needed is present, so every claim is evaluated; a time claim may wait on its
    # figures (flagged when this machine's load exceeded its cores while they were timed)
    time_claims = {"ff_is_slower_per_step", *FRONTIER_CLAIMS}
    waiting = [v for v in report.verdicts if v.key in time_claims and "fit for a verdict" in v.verdict]
    # time to the target needs unflagged epochs, which a loaded test machine may not give: its
    # verdicts are decided from constructed records in test_report_accuracy.py
    timed = [v for v in report.verdicts if v.key == "ff_needs_more_time_to_reach_the_target"]
    assert all(v.status != "not evaluated" or "no comparison decided" in v.verdict for v in timed)
    assert not [
        v for v in report.verdicts if v.status == "not evaluated" and v not in waiting and v not in timed
    ], report.verdicts
    # findings and checks are rendered apart, and every threshold with its revision
    assert html.index('id="claims-finding"') < html.index('id="claims-check"')
    assert "MEMORY_MARGIN" in html and "last changed in" in html


def test_accuracy_at_equal_architecture_uses_the_train_records(made):
    df = results.load(made["train"])
    ff = df[df["trainer"] == "ff"]["test_accuracy"]
    bp = df[df["trainer"] == "bp"]["test_accuracy"]
    v = _verdict(made["report"], "ff_reaches_bp_accuracy_at_equal_architecture")
    # the train records' network (the black box's controls at 2x16 are another configuration)
    (entry,) = [e for e in v.numbers["configurations"].values() if e["architecture"] == "1x32"]
    assert entry["ff_error"] == pytest.approx(1 - ff.mean()) and entry["bp_error"] == pytest.approx(
        1 - bp.mean()
    )
    assert entry["ff_seeds"] == 3 and entry["bp_seeds"] == 3
    assert entry["ff_train_peak_bytes"] > 0 and entry["bp_train_peak_bytes"] > 0


def test_timelines_peak_equals_the_recorded_peak(made):
    tl = load_timelines(made["sweep"])
    runs = load_runs(made["sweep"]).set_index("run_id")
    assert tl["run_id"].nunique() == len(runs)
    for run_id, s in tl.groupby("run_id"):
        assert s["live_bytes"].max() == runs.loc[run_id, "tensor_peak_bytes"]


def test_tables_and_print_claims(made, capsys):
    html = made["html"]
    for anchor in ("environment", "configuration", "results", "maxbatch"):
        assert f'id="{anchor}"' in html
    assert "AMD" in html or "Intel" in html or "cpu" in html
    print_claims(made["report"].verdicts, verbose=True)
    text = capsys.readouterr().out
    assert text.count("evaluation chunk:") == len(all_claims())
    assert "Findings about the algorithms:" in text and "Checks of the instrument:" in text


def test_absent_analytic_columns_omit_the_figure_with_a_note(made, tmp_path):
    """Records without analytic_* metrics (a plain folder of record files)."""
    loose = tmp_path / "loose"
    loose.mkdir()
    for src in sorted((made["sweep"] / "records").glob("ff*-d[12]-*b8-*.json")) + sorted(
        (made["sweep"] / "records").glob("bp-d[12]-*b8-*.json")
    ):
        doc = store.read_json(src, "record")
        doc["metrics"] = {k: v for k, v in doc["metrics"].items() if not k.startswith("analytic_")}
        doc.pop("timeline", None)
        store.write_json_atomic(loose / src.name, doc)
    report = build_report([loose], tmp_path / "out" / "loose.html")
    fig = report.figure("measured_vs_analytic")
    assert fig.file is None and "analytic" in fig.note
    assert report.figure("timeline").file is None and report.figure("accuracy").file is None
    v = next(v for v in report.verdicts if v.key == "analytic_model_equals_tracker")
    assert v.verdict.startswith("not evaluated (")
    html = (tmp_path / "out" / "loose.html").read_text()
    assert "Figure omitted" in html and not (tmp_path / "out" / "loose_files" / "timeline.svg").exists()


def test_cli_report_writes_and_prints(made, tmp_path, capsys):
    out = tmp_path / "r" / "acc.html"
    assert main(["report", *map(str, made["train"]), "--out-file", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "FF reaches backprop's accuracy with the same network" in text
    assert (tmp_path / "r" / "acc_files" / "accuracy.svg").exists()


@pytest.mark.parametrize(
    "kind", ["missing", "not-json", "foreign-json", "empty-folder", "empty-results-folder", "not-html"]
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(made, tmp_path, capsys, kind):
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "out" / "x.html"
    if kind == "missing":
        arg = str(inputs / "nope")
    elif kind == "not-json":
        (inputs / "a.json").write_text("not json")
        arg = str(inputs / "a.json")
    elif kind == "foreign-json":
        (inputs / "a.json").write_text('{"hello": 1}')
        arg = str(inputs / "a.json")
    elif kind == "empty-folder":
        arg = str(inputs)
    elif kind == "empty-results-folder":
        shutil.copytree(made["sweep"], inputs / "s", ignore=shutil.ignore_patterns("records"))
        arg = str(inputs / "s")
    else:
        arg, out = str(made["sweep"]), tmp_path / "out" / "x.txt"
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["report", arg, "--out-file", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ffbench: error: ") and err.count("\n") == 1, err
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "out").exists()


def test_pytest_benchmark_json_is_an_input(made, tmp_path):
    """A pytest-benchmark JSON file (benchmarks/ suite) reports like a sweep."""
    report = build_report([made["bench"]], tmp_path / "bench.html")
    runs = report.runs
    assert sorted(runs["trainer"]) == ["bp", "ff"] and (runs["source"] == "benchmark").all()
    v = next(v for v in report.verdicts if v.key == "best_ff_needs_less_memory_than_best_bp")
    peak = runs.set_index("trainer")["tensor_train_peak_bytes"]
    assert v.numbers["configurations"]["w500 d2 b128"]["ratio"] == pytest.approx(peak["ff"] / peak["bp"])
    assert report.figure("best_ff_vs_best_bp").file.exists()


def test_two_runs_compared_side_by_side_never_averaged(made, tmp_path):
    """`report A B --baseline A`: one group per run, labelled; bytes as exact deltas, time as
    a ratio; what changed (code revision); each run's verdicts apart."""
    import json

    other = tmp_path / "other"
    shutil.copytree(made["sweep"], other)
    record = sorted((other / "records").glob("ff-d2-*b8-*.json"))[0]
    doc = json.loads(record.read_text())
    doc["metrics"]["tensor_peak_bytes"] += 1024
    doc["metrics"]["step_seconds_median"] *= 2
    doc["environment"]["git_revision"] = "abc1234-dirty"
    record.write_text(json.dumps(doc))
    out = tmp_path / "cmp" / "cmp.html"
    assert (
        main(
            [
                "report",
                str(made["sweep"]),
                str(other),
                "--baseline",
                str(made["sweep"]),
                "--out-file",
                str(out),
            ]
        )
        == 0
    )
    report_html = out.read_text()
    deltas = build_report(
        [made["sweep"], other], tmp_path / "c2.html", baseline=str(made["sweep"])
    ).comparison.deltas
    changed = deltas[deltas["Δ peak (B)"] != "+0"]
    assert list(changed["Δ peak (B)"]) == ["+1,024"] and changed["configuration"].iloc[0].startswith(
        "ff w32 d2 b8"
    )
    assert changed["step ratio"].iloc[0] == pytest.approx(2.0, rel=1e-3)
    assert len(deltas) == len(GRID["trainers"]) * 3 * 2  # every configuration, once
    for text in (
        "What changed",
        "abc1234-dirty",
        "sweep (baseline)",
        "other",
        "measured from a modified working tree",
    ):
        assert text in report_html, text
    # one panel per run, side by side, never one line averaging both
    assert 'class="side" id="fig-peak_vs_depth"' in report_html
    assert main(["report", str(made["sweep"]), "--baseline", str(other)]) == 2


def test_a_figure_point_is_one_measurement(made):
    """Two measurements of one configuration (two folders, other optimizer settings) are
    never averaged into a figure's point: the default settings from the largest folder."""
    from ffbench.analysis.plots import one_per_point

    runs = load_runs(made["sweep"])
    twice = pd_concat([runs, runs.assign(group="elsewhere|cpu").head(3)])
    keys = ["trainer", "depth", "batch_size", "width"]
    picked = one_per_point(twice, keys)
    assert len(picked) == len(runs) and (picked["group"] != "elsewhere|cpu").all()


def pd_concat(frames):
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def test_caveats_flag_toy_runs_and_few_timed_steps(made):
    """The tiny test grid (width 32) is flagged beside its verdicts (a time verdict whose
    figures were flagged is not evaluated: nothing to qualify)."""
    v = _verdict(made["report"], "ff_is_slower_per_step")
    assert v.numbers["ratio"]  # computed either way
    if v.status == "not evaluated":
        assert "fit for a verdict" in v.verdict and v.caveats == []
    else:
        assert any(c.startswith("toy run: widths up to 32") for c in v.caveats)
    memory = _verdict(made["report"], "best_ff_needs_less_memory_than_best_bp")
    assert any(c.startswith("toy run: widths up to 32") for c in memory.caveats)
    acc = _verdict(made["report"], "ff_reaches_bp_accuracy_at_equal_architecture")
    assert not any("synthetic" in c for c in acc.caveats)  # digits: real data
    assert "&#9888; toy run" in made["html"]


def test_one_configuration_twice_in_one_group_is_never_averaged(made, tmp_path):
    """Two records of one configuration in one folder: the claims that pair it say why they
    are not evaluated, the table lists both, no figure mixes them."""
    loose = tmp_path / "twice"
    loose.mkdir()
    for src in sorted((made["sweep"] / "records").glob("*-d[12]-*b8-*.json")):
        shutil.copy(src, loose / src.name)
    dup = sorted(loose.glob("ff-d2-*.json"))[0]
    shutil.copy(dup, loose / ("again-" + dup.name))
    report = build_report([loose], tmp_path / "out" / "twice.html")
    v = next(v for v in report.verdicts if v.key == "best_ff_needs_less_memory_than_best_bp")
    assert v.verdict.startswith("not evaluated (2 measurements of ff w32 d2 b8 in one group")
    results_rows = report.tables["results"]
    assert len(results_rows[(results_rows["trainer"] == "ff") & (results_rows["depth"] == 2)]) == 2
    assert report.figure("peak_vs_depth").file.exists()
