"""`ffbench report RESULTS... [--out DIR | --out-file FILE.html] [--baseline RESULTS]`: one
self-contained HTML file.

    report = build_report(["results/2026-...-sweep", "runs/train-ff.json"], "reports/x.html")
    print_claims(report.verdicts)  # ffbench.analysis.verdicts
    build_report(["results/a", "results/b"], "reports/a-vs-b.html", baseline="results/a")

RESULTS may be results folders (`ffbench sweep`, `ffbench maxbatch`), run folders of
`ffbench reproduce`, folders of record files, record files (`ffbench measure`, `ffbench
train`), or pytest-benchmark JSON files (`pytest benchmarks/ --benchmark-json=FILE`).
Everything is read and checked before anything is written: a path that does not exist, a
file that is not ffbench results, or inputs without a single run raise `ConfigError` and
write nothing. Without `baseline` the RESULTS are parts of one run; with it, each is a run
of its own, analysed alone and compared (`ffbench.analysis.compare`).

The page (`ffbench.analysis.html`) opens on a summary of the findings, then claim cards,
figures (SVG inline as base64 `data:` URIs) and sortable tables; its stylesheet and a few
lines of script are inline and it names no external resource: it opens offline. The
figures are also written next to it (`ffbench.analysis.drawing`), `NAME_files/<figure>.svg`, listed in
`NAME_files/ffbench-figures.txt`: a later report removes only the SVGs listed there, never a
file it did not write.

Loaders (also usable alone): `load_runs` (`ffbench.results.load` plus `group`,
`num_classes`, `in_features`), `load_epochs` (one row per epoch of `train` records),
`load_timelines` (one row per sample of each measure record's steady-step `timeline`),
`load_maxbatch` (the rows of `maxbatch.json`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import validate
from ..config import BATCH_CONVENTION
from ..errors import ConfigError
from ..results import rows as results
from ..results import store
from ..results.benchjson import is_benchmark_json
from ..units import MiB
from . import caveats, html
from .claims import Verdict
from .claims.registered import evaluate
from .claims.tables import GROUP_COLUMNS, group_columns, group_key, group_names
from .divisions import closed_division_table
from .drawing import FIGURE_LIST, FigureOut, figure_rows, figures_dir_for, write_figures
from .tables import configuration_table, dataset_of, environment_table

# -- reading the inputs ----------------------------------------------------------------------


@dataclass
class Inputs:
    """Every document found under the given paths, read and classified once. `records` are
    documents `ffbench.results` reads (measure and train records, pytest-benchmark JSON), as
    written; `checked` the same documents as the tables read them (`results.checked`)."""

    records: list[tuple[Path, dict, str]] = field(default_factory=list)  # (file, doc, group)
    checked: list[tuple[store.Document, results.RecordKind]] = field(default_factory=list)
    maxbatch: list[tuple[Path, dict, str]] = field(default_factory=list)
    folders: list[tuple[Path, dict, dict]] = field(default_factory=list)  # (dir, manifest, env)
    groups: dict[str, dict] = field(default_factory=dict)  # a record's group -> its columns
    given: list[str] = field(default_factory=list)


def _device_name(doc: dict) -> Any:
    env = doc.get("environment") or (doc.get("machine_info") or {}).get("ffbench") or {}
    return env.get("device_name") or env.get("device")


def collect(paths: str | Path | Iterable[str | Path]) -> Inputs:
    """Read every input once (`ffbench.results.store.walk`); ConfigError (nothing written) for
    anything unusable."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ConfigError(
            "no results given: name results folders, record files or pytest-benchmark JSON files"
        )
    inp = Inputs(given=[str(p) for p in paths])
    folders: dict[Path, dict] = {}
    for doc in store.walk(paths):
        if doc.manifest is not None and doc.folder not in folders:
            env_path = doc.folder / store.ENVIRONMENT
            env = store.read_json(env_path, "environment") if env_path.exists() else {}
            folders[doc.folder] = env
            inp.folders.append((doc.folder, doc.manifest, env if isinstance(env, dict) else {}))
        kind = results.kind_of(doc.data)
        if kind is not None:
            inp.checked.append((results.checked(doc, kind), kind))
            # a pytest-benchmark file is one session's run: its own group, so two saved
            # sessions in one folder are never paired or averaged together
            where = doc.path if is_benchmark_json(doc.data) else doc.folder
            group = group_columns(where, _device_name(doc.data))
            inp.groups[group["group"]] = group
            inp.records.append((doc.path, doc.data, group["group"]))
        elif results.is_maxbatch(doc.data):
            validate.maxbatch_document(doc.data, doc.path)
            inp.maxbatch.append((doc.path, doc.data, group_key(doc.folder, None)))
        elif not results.is_run_summary(doc.data, doc.path):
            raise ConfigError(
                f"{doc.path} is not ffbench results (not a record, a results folder, "
                f"maxbatch.json or pytest-benchmark JSON)"
            )
    return inp


def runs_from(inp: Inputs):
    """The runs table (see `load_runs`) of collected inputs (no file read again)."""
    import pandas as pd

    frames = []
    if inp.records:
        df = results.table(inp.checked)
        extra = {}
        for f, doc, group in inp.records:
            ds = dataset_of(doc)
            extra[str(f)] = (group, ds.get("num_classes"), ds.get("in_features"))
        df["group"] = df["path"].map(lambda p: extra.get(p, (None,))[0])
        for c in GROUP_COLUMNS:
            df[c] = df["group"].map(lambda g, c=c: inp.groups.get(g, {}).get(c))
        df["num_classes"] = df["path"].map(lambda p: extra.get(p, (None, None))[1])
        df["in_features"] = df["path"].map(lambda p: extra.get(p, (None, None, None))[2])
        frames.append(df)
    if not frames:
        empty = dict.fromkeys(("group", *GROUP_COLUMNS, "num_classes", "in_features"))
        return results.frame([], results.ROW_COLUMNS).assign(**empty)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for c in ("num_classes", "in_features"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("Int64")
    return df


def load_runs(paths):
    """`ffbench.results.load(paths)` (pytest-benchmark JSON included) plus `group` (results
    folder and device of each run), `num_classes` and `in_features` of its dataset."""
    return runs_from(collect(paths))


def epochs_from(inp: Inputs):
    import pandas as pd

    rows = []
    for f, doc, group in inp.records:
        if doc.get("kind") != "train":
            continue
        cfg = doc.get("config") or {}
        ds = doc.get("dataset") or {}
        for e in doc.get("epochs") or []:
            rows.append(
                {
                    "run_id": results.run_id(doc.get("source") or "train", f),
                    "group": group,
                    "trainer": cfg.get("trainer"),
                    "depth": cfg.get("depth"),
                    "width": cfg.get("width"),
                    "batch_size": cfg.get("batch_size"),
                    "lr": cfg.get("lr"),
                    "seed": cfg.get("seed"),
                    "dataset": ds.get("name") if isinstance(ds, dict) else ds,
                    "eval_chunk": doc.get("eval_chunk"),
                    "epoch": e.get("epoch"),
                    "train_loss": e.get("train_loss"),
                    "val_accuracy": e.get("val_accuracy"),
                    "test_accuracy": e.get("test_accuracy"),
                    "train_seconds": e.get("train_seconds"),
                    "path": str(f),
                    "arch": cfg.get("arch"),
                    "train_cpu_seconds": e.get("train_cpu_seconds"),
                    "load_average": e.get("load_average"),
                }
            )
    cols = [
        "run_id",
        "group",
        "trainer",
        "depth",
        "width",
        "batch_size",
        "lr",
        "seed",
        "dataset",
        "eval_chunk",
        "epoch",
        "train_loss",
        "val_accuracy",
        "test_accuracy",
        "train_seconds",
        "path",
        "arch",
        "train_cpu_seconds",
        "load_average",
    ]
    return pd.DataFrame(rows, columns=cols)


def load_epochs(paths):
    """One row per epoch of every `train` record: trainer, depth, width, batch_size, lr,
    seed, dataset, eval_chunk, epoch, train_loss, val_accuracy, test_accuracy."""
    return epochs_from(collect(paths))


def timelines_from(inp: Inputs):
    import pandas as pd

    cols = ["run_id", "group", "trainer", "depth", "width", "batch_size", "op_index", "live_bytes", "path"]
    parts = []
    for f, doc, group in inp.records:
        tl = doc.get("timeline")
        if doc.get("kind") != "measure" or doc.get("status", "ok") != "ok" or not tl:
            continue
        cfg = doc.get("config") or {}
        part = pd.DataFrame(tl, columns=["op_index", "live_bytes"])
        part["run_id"] = results.run_id(doc.get("source") or "measure", f)
        part["group"] = group
        for k in ("trainer", "depth", "width", "batch_size"):
            part[k] = cfg.get(k)
        part["path"] = str(f)
        parts.append(part[cols])
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)


def load_timelines(paths):
    """Long table of the steady-step timelines in measure records: one row per sample
    (op_index, live_bytes), with run_id (as in `results.load`), trainer, depth, width,
    batch_size. Records without a timeline contribute nothing."""
    return timelines_from(collect(paths))


def maxbatch_from(inp: Inputs):
    import pandas as pd

    rows = []
    for f, doc, group in inp.maxbatch:
        for r in doc.get("results") or []:
            rows.append(
                {
                    "group": group,
                    "trainer": r.get("trainer"),
                    "depth": r.get("depth"),
                    "width": r.get("width", doc.get("width")),
                    "budget_bytes": r.get("budget_bytes", doc.get("budget_bytes")),
                    "criterion": doc.get("criterion"),
                    "budget_kind": doc.get("budget_kind", "process"),
                    "max_batch_size": r.get("max_batch_size"),
                    "micro_batch": r.get("micro_batch", doc.get("micro_batch")),
                    "first_failing": r.get("first_failing"),
                    "capped": bool(r.get("capped")),
                    "probes": len(r.get("probes") or []),
                    "note": r.get("note"),
                    "path": str(f),
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "group",
            "trainer",
            "depth",
            "width",
            "budget_bytes",
            "criterion",
            "budget_kind",
            "max_batch_size",
            "micro_batch",
            "first_failing",
            "capped",
            "probes",
            "note",
            "path",
        ],
    )


def load_maxbatch(paths):
    """The searches of every maxbatch.json under `paths`: trainer, depth, width,
    budget_bytes, criterion, max_batch_size, first_failing, capped, probes."""
    return maxbatch_from(collect(paths))


# -- tables ------------------------------------------------------------------------------------

CONFIG_COLUMNS = [
    ("trainer", "trainer", None),
    ("depth", "depth", None),
    ("width", "width", None),
    ("batch_size", "batch", None),
]
MEASURE_COLUMNS = [
    *CONFIG_COLUMNS,
    ("status", "status", None),
    ("tensor_peak_bytes", "peak (MiB)", MiB),
    ("tensor_transient_bytes", "transient (MiB)", MiB),
    ("tensor_saved_activations_bytes", "saved for backward (MiB)", MiB),
    ("tensor_eval_peak_bytes", "eval peak (MiB)", MiB),
    ("tensor_whole_run_peak_bytes", "whole-run peak (MiB)", MiB),
    ("analytic_peak_bytes", "analytic peak (MiB)", MiB),
    ("rss_rise_bytes", "RSS rise (MiB)", MiB),
    ("cuda_allocated_predicted_bytes", "CUDA allocated, predicted (MiB)", MiB),
    ("cuda_peak_allocated_bytes", "CUDA peak (MiB)", MiB),
    ("step_seconds_median", "step median (ms)", 1e-3),
    ("step_seconds_iqr", "step IQR (ms)", 1e-3),
    ("timed_steps", "timed steps", None),
    ("examples_per_second", "examples/s", 1),
]
TRAIN_COLUMNS = [
    *CONFIG_COLUMNS,
    *((c, c.replace("_", " "), None) for c in ("epochs", "lr", "seed", "dataset", "eval_chunk")),
    ("val_accuracy", "val. acc. (%)", 0.01),
    ("test_accuracy", "test acc. (%)", 0.01),
    ("readout_accuracy", "read-out acc. (%)", 0.01),
    ("analytic_train_peak_bytes", "training peak, analytic (MiB)", MiB),
    ("train_seconds", "train (s)", 1),
]


def results_table(runs, kind: str = "measure", run_label=None):
    """One row per run of `kind` (measure or train), in display units; `run` first when the
    rows come from several groups (or `run_label` maps each row to its run)."""
    import pandas as pd

    columns = MEASURE_COLUMNS if kind == "measure" else TRAIN_COLUMNS
    df = runs[runs["kind"] == kind]
    df = df.sort_values(["group", "width", "batch_size", "depth", "trainer", "seed"], na_position="last")
    out = pd.DataFrame(index=df.index)
    if run_label is not None:
        out["run"] = df.index.map(run_label)
    if df["group"].nunique() > 1:
        out["results"] = df["group"].map(group_names(df))
    for col, label, div in columns:
        if col not in df.columns or df[col].isna().all():
            continue
        if div is None:
            out[label] = df[col]
        else:
            values = (df[col].astype("float64") / div).round(2 if div != 1 else 0)
            out[label] = values.astype("Int64") if div == 1 else values
    return out.reset_index(drop=True)


# -- the report --------------------------------------------------------------------------------


@dataclass
class Report:
    html_path: Path
    figures_dir: Path
    figures: list[FigureOut]
    verdicts: list[Verdict]  # the (baseline) run's
    runs: Any  # the (baseline) run's runs table
    tables: dict[str, Any]
    analyses: list[Any] = field(default_factory=list)  # one Analysis per run (several: a comparison)
    labels: list[str | None] = field(default_factory=list)
    comparison: Any = None  # compare.Comparison with a baseline

    def figure(self, name: str) -> FigureOut | None:
        return next((f for f in self.figures if f.name == name), None)


def check_out(out_html: Path, flag: str = "--out-file") -> None:
    """ConfigError unless the report and its figures folder can be written (writes nothing)."""
    out_html = Path(out_html)
    if out_html.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"{flag} {out_html}: give an .html file name such as reports/sweep.html")
    if out_html.exists() and out_html.is_dir():
        raise ConfigError(f"{flag} {out_html} is a folder; give an .html file name")
    files = figures_dir_for(out_html)
    if files.exists() and not files.is_dir():
        raise ConfigError(f"{files} exists and is not a folder (the report's figures go there)")
    store.check_writable_place(out_html, flag)
    store.check_writable_place(files / FIGURE_LIST, flag)


@dataclass
class Analysis:
    """Every table and verdict the report is made of (what `analyse` computes)."""

    inputs: Inputs
    runs: Any
    epochs: Any
    timelines: Any
    maxbatch: Any
    probes: int
    verdicts: list[Verdict]


def analyse(paths) -> Analysis:
    """Read `paths` and decide every claim, with the warnings beside each verdict
    (`caveats`). ConfigError when they hold no run."""
    inp = collect(paths)
    runs, epochs, timelines, maxbatch = (
        runs_from(inp),
        epochs_from(inp),
        timelines_from(inp),
        maxbatch_from(inp),
    )
    if len(runs) == 0 and len(maxbatch) == 0:
        raise ConfigError(f"no ffbench runs in {', '.join(inp.given)}: nothing to report")
    # maxbatch probes (arbitrary batch sizes, many over budget) answer one question, the
    # largest batch (maxbatch.json); they stay out of the other figures, claims and tables
    probes = int((runs["source"] == "maxbatch").sum()) if len(runs) else 0
    runs = runs[runs["source"] != "maxbatch"].reset_index(drop=True) if probes else runs
    timelines = timelines[timelines["run_id"].isin(set(runs["run_id"]))] if len(timelines) else timelines
    verdicts = evaluate(runs, epochs, maxbatch)
    revisions = [env.get("git_revision") for _, _, env in inp.folders]
    caveats.attach(verdicts, runs, epochs, maxbatch, revisions)
    return Analysis(inp, runs, epochs, timelines, maxbatch, probes, verdicts)


def maxbatch_table(maxbatch):
    """The searches in display units (budget in MiB)."""
    df = maxbatch.assign(budget_mib=(maxbatch["budget_bytes"].astype("float64") / MiB).round(2))
    cols = {"trainer": "trainer", "depth": "depth", "width": "width", "budget_mib": "budget (MiB)",
            "budget_kind": "budget kind", "criterion": "criterion", "max_batch_size": "largest batch",
            "first_failing": "first failing", "capped": "capped", "probes": "probes", "note": "note"}  # fmt: skip
    return df[list(cols)].rename(columns=cols).reset_index(drop=True)


def _side_by_side(frames: list, labels: list[str | None]):
    """Per-run tables with one column per group: columns prefixed by the run's label."""
    import pandas as pd

    if len(frames) == 1:
        return frames[0]
    return pd.concat([f.add_prefix(f"{label}: ") for f, label in zip(frames, labels)], axis=1)


def _stacked(frames: list, labels: list[str | None]):
    """Per-run row tables, one after the other, with a `run` column first (several runs)."""
    import pandas as pd

    if len(frames) == 1:
        return frames[0]
    parts = [f.assign(run=label)[["run", *f.columns]] for f, label in zip(frames, labels) if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else frames[0]


def report_tables(analyses: list[Analysis], labels: list[str | None]) -> dict[str, Any]:
    """The report's tables, each over every run (labelled when several)."""
    from .tables import environment_summary, peak_pivot

    tables = {
        "environment": _side_by_side(
            [environment_summary(environment_table(a.inputs, a.runs)) for a in analyses], labels
        ),
        "configuration": _side_by_side([configuration_table(a.runs) for a in analyses], labels),
        "pivot": _side_by_side([peak_pivot(a.runs) for a in analyses], labels),
        "results": _stacked([results_table(a.runs, "measure") for a in analyses], labels),
        "train": _stacked([results_table(a.runs, "train") for a in analyses], labels),
    }
    tables["divisions"] = _stacked([closed_division_table(a.runs) for a in analyses], labels)
    if any(len(a.maxbatch) for a in analyses):
        tables["maxbatch"] = _stacked([maxbatch_table(a.maxbatch) for a in analyses], labels)
    holders = [holders_table(a.runs) for a in analyses]
    if any(len(h) for h in holders):
        tables["holders"] = _stacked(holders, labels)
    return tables


def holders_table(runs):
    """The largest storages at the peak of each measure or track record measured with
    allocation sites (the rows' `peak_holders`, kept by `results.load`: no file read again)."""
    import pandas as pd

    from ..units import format_bytes

    rows = []
    if len(runs) and "peak_holders" in runs.columns:
        for _, r in runs[runs["peak_holders"].notna()].iterrows():
            for h in r["peak_holders"]:
                rows.append({"record": Path(r["path"]).stem, "bytes": h["bytes"], "size": format_bytes(h["bytes"]),
                             "category": h["category"], "allocated at": h["site"], "running": h["where"]})  # fmt: skip
    return pd.DataFrame(rows)


SECTIONS = (
    (
        "divisions",
        "Closed division: techniques per family",
        "Same-update techniques each family may use (the FF-vs-BP claims take each family's best over "
        "those measured); other rules form the open division.",
        False,
    ),
    (
        "environment",
        "Environment",
        'What every results folder and device shares; "differs in" names each one that differs.',
        True,
    ),
    (
        "configuration",
        "Configuration",
        "The values each configuration field takes, per results folder.",
        True,
    ),
    (
        "pivot",
        "Training-step peak by trainer (MiB)",
        "Tensor-level training-step peak, one row per configuration, one column per trainer (with its "
        "options where not the defaults); the smallest of each row in bold (bp-ce, the recurrent "
        "network's cross-entropy read-out, is another model and never compared). Every measurement is in "
        "the table below.",
        True,
    ),
    (
        "results",
        "Results: memory and time",
        "One row per measured configuration; click a header to sort, type in the box to keep the rows "
        "holding that text.",
        False,
    ),
    ("train", "Results: accuracy", "One row per training run (`ffbench train`).", False),
    ("maxbatch", "Largest batch under the budget", "One row per search (`ffbench maxbatch`).", False),
    (
        "holders",
        "Who holds the peak",
        "The largest storages alive at the steady step's peak, with the file:line that allocated "
        "each and the module or phase running (records measured with `--sites N` or "
        "`ffbench.track(..., sites=N)`; `ffbench diff A B` sets two records' sites side by side).",
        False,
    ),
)
LONG = {"results": True, "train": False}  # filterable tables; True: folded until opened


def table_sections(tables: dict[str, Any]) -> list:
    out = []
    for anchor, title, note, index in SECTIONS:
        if anchor not in tables or not len(tables[anchor]):
            continue
        if anchor == "pivot":  # bp-ce, a cross-entropy read-out, is another model: shown, not compared
            made = html.pivot(tables[anchor], apart=("bp-ce",))
        else:
            made = html.table(tables[anchor], index=index)
        made.filterable = anchor in LONG
        out.append(html.Section(anchor, title, made, note, collapsed=LONG.get(anchor, False)))
    return out


def counts_text(analyses: list[Analysis], labels: list[str | None]) -> str:
    parts = []
    for a, label in zip(analyses, labels):
        counts = a.runs["status"].value_counts(dropna=False).to_dict() if len(a.runs) else {}
        text = f"{len(a.runs)} runs (" + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"
        if a.probes:
            text += (
                f", plus {a.probes} maxbatch probe records (used for the largest-batch figure and table only)"
            )
        parts.append(f"{label}: {text}" if label else text)
    return "; ".join(parts) + "."


def _analyses(paths: list, baseline) -> tuple[list[Analysis], list[str | None]]:
    """One analysis of everything, or one per RESULTS (baseline first) when comparing."""
    if baseline is None:
        return [analyse(paths)], [None]
    from .compare import baseline_first, run_labels

    labels = run_labels(paths)
    order = baseline_first(paths, labels, baseline)
    return [analyse([paths[i]]) for i in order], [labels[i] for i in order]


def build_report(paths, out_html: str | Path, *, title: str | None = None, baseline=None) -> Report:
    """Read `paths`, compute every claim and figure, write `out_html` and its figures.

    With `baseline` (one of `paths`, or its label), each path is a run of its own: every
    verdict, figure and table is shown per run, labelled, and the runs are compared with the
    baseline (`ffbench.analysis.compare`). Nothing is written when an input is unusable or
    holds no run (ConfigError)."""
    out_html = Path(out_html)
    check_out(out_html)
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    analyses, labels = _analyses(paths, baseline)
    files_dir = figures_dir_for(out_html)
    rows, figures = figure_rows(analyses, labels, files_dir)
    tables = report_tables(analyses, labels)
    comparison = None
    if baseline is not None:
        from .compare import compare

        comparison = compare(analyses, labels)
    page = html.Page(
        title=title or out_html.stem,
        generated=_dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat(),
        sources=", ".join(str(p) for p in paths),
        counts=counts_text(analyses, labels),
        batch_convention=BATCH_CONVENTION,
        runs=[(label, a.verdicts) for label, a in zip(labels, analyses)],
        figures=rows,
        sections=table_sections(tables),
        baseline=labels[0] if baseline is not None else None,
        comparison=comparison.view() if comparison is not None else None,
    )
    text = html.render(page)
    # everything computed: now write
    write_figures(files_dir, figures)
    store.write_text_atomic(out_html, text)
    a = analyses[0]
    return Report(out_html, files_dir, figures, a.verdicts, a.runs, tables, analyses, labels, comparison)
