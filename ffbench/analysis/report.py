"""`ffbench report RESULTS... --out reports/NAME.html`: one self-contained HTML file.

    report = build_report(["results/2026-...-sweep", "runs/train-ff.json"], "reports/x.html")
    print_claims(report.verdicts)

RESULTS may be results folders (`ffbench sweep`, `ffbench maxbatch`), folders of record
files, record files (`ffbench measure --out`, `ffbench train --out`), or pytest-benchmark
JSON files (`pytest benchmarks/ --benchmark-json=FILE`). Everything is read and checked
before anything is written: a path that does not exist, a file that is not ffbench
results, or inputs without a single run raise `ConfigError` and write nothing.

The HTML has every figure inline (SVG as a base64 `data:` URI), an inline stylesheet, no
script and no external resource: it opens offline. The same figures are also written as
files next to it, `NAME_files/<figure>.svg`, listed in `NAME_files/ffbench-figures.txt`: a
later report removes only the SVGs listed there, never a file it did not write.

Loaders (also usable alone): `load_runs` (`ffbench.results.load` plus `group`,
`num_classes`, `in_features`), `load_epochs` (one row per epoch of `train` records),
`load_timelines` (one row per sample of each measure record's steady-step `timeline`),
`load_maxbatch` (the rows of `maxbatch.json`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .. import store, validate
from ..config import BATCH_CONVENTION, shown_keys
from ..errors import ConfigError
from ..units import MiB
from . import results, thresholds
from .claims import GROUPS, Verdict, evaluate

MAXBATCH_NAME = "maxbatch.json"


# -- reading the inputs ----------------------------------------------------------------------


@dataclass
class Inputs:
    """Every document found under the given paths, read and classified once. `records` are
    documents `ffbench.results` reads (measure and train records, pytest-benchmark JSON)."""

    records: list[tuple[Path, dict, str]] = field(default_factory=list)  # (file, doc, group)
    maxbatch: list[tuple[Path, dict, str]] = field(default_factory=list)
    folders: list[tuple[Path, dict, dict]] = field(default_factory=list)  # (dir, manifest, env)
    given: list[str] = field(default_factory=list)


def _group(folder: Path, device_name: Any) -> str:
    """Where a run was measured: its folder and device. Ratios never cross groups."""
    return f"{folder.resolve()}|{device_name or 'unknown device'}"


def _device_name(doc: dict) -> Any:
    env = doc.get("environment") or (doc.get("machine_info") or {}).get("ffbench") or {}
    return env.get("device_name") or env.get("device")


def _dataset_of(doc: dict) -> dict:
    """The dataset description of a record (of a pytest-benchmark file: its first benchmark's)."""
    ds = doc.get("dataset")
    if ds is None and isinstance(doc.get("benchmarks"), list) and doc["benchmarks"]:
        ds = ((doc["benchmarks"][0] or {}).get("extra_info") or {}).get("dataset")
    return ds if isinstance(ds, dict) else {}


def collect(paths: str | Path | Iterable[str | Path]) -> Inputs:
    """Read every input (`ffbench.store.walk`); ConfigError (nothing written) for anything unusable."""
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
            results.check_document(doc.data, doc.path, kind.name)
            inp.records.append((doc.path, doc.data, _group(doc.folder, _device_name(doc.data))))
        elif results.is_maxbatch(doc.data):
            validate.maxbatch_document(doc.data, doc.path)
            inp.maxbatch.append((doc.path, doc.data, _group(doc.folder, None)))
        elif not results.is_run_summary(doc.data, doc.path):
            raise ConfigError(
                f"{doc.path} is not ffbench results (not a record, a results folder, "
                f"maxbatch.json or pytest-benchmark JSON)"
            )
    return inp


def runs_from(inp: Inputs):
    """The runs table (see `load_runs`) of collected inputs."""
    import pandas as pd

    frames = []
    if inp.records:
        df = results.load([f for f, _, _ in inp.records])
        extra = {}
        for f, doc, group in inp.records:
            ds = _dataset_of(doc)
            extra[str(f)] = (group, ds.get("num_classes"), ds.get("in_features"))
        df["group"] = df["path"].map(lambda p: extra.get(p, (None,))[0])
        df["num_classes"] = df["path"].map(lambda p: extra.get(p, (None, None))[1])
        df["in_features"] = df["path"].map(lambda p: extra.get(p, (None, None, None))[2])
        frames.append(df)
    if not frames:
        return results.frame([], results.ROW_COLUMNS).assign(group=None, num_classes=None, in_features=None)
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
                    "path": str(f),
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
        "path",
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
            "max_batch_size",
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

ENV_KEYS = (
    "ffbench",
    "python",
    "torch",
    "cuda",
    "device",
    "device_name",
    "cpu_model",
    "cores",
    "threads",
    "threads_requested",
    "platform",
    "git_revision",
    "hostname",
    "allocator_setting",
    "isolation",
    "created",
)


def _short_group(group: str) -> str:
    from .plots import short_group

    return short_group(group)


def environment_table(inp: Inputs, runs):
    """One column per group (results folder and device), one row per environment key."""
    import pandas as pd

    envs: dict[str, dict] = {}
    for folder, _manifest, env in inp.folders:
        for g in runs["group"].dropna().unique():
            if g.startswith(str(folder.resolve()) + "|"):
                envs.setdefault(g, {}).update(env)
    for _path, doc, group in inp.records:
        env = doc.get("environment") or (doc.get("machine_info") or {}).get("ffbench") or {}
        target = envs.setdefault(group, {})
        for k, v in env.items():
            target.setdefault(k, v)
        if _dataset_of(doc):
            target.setdefault("dataset", _dataset_of(doc))
    data = {}
    for g, env in envs.items():
        col = {}
        for k in ENV_KEYS:
            if k in env:
                col[k] = env[k]
        ds = env.get("dataset")
        if isinstance(ds, dict):
            col["dataset"] = f"{ds.get('name')} ({ds.get('source')})"
        data[_short_group(g)] = {k: ("" if v is None else str(v)) for k, v in col.items()}
    return pd.DataFrame(data)


# The configuration table: every field marked `shown` in RunConfig, then the sweep settings.
CONFIG_SHOWN = (*shown_keys(), "timing_steps", "memory_limit_bytes", "timeout_seconds")


def configuration_table(runs):
    """The values each configuration field takes, per group and record kind."""
    import pandas as pd

    data = {}
    for (group, kind), s in runs.groupby(["group", "kind"], dropna=False):
        col = {}
        for c in CONFIG_SHOWN:
            vals = s[c].dropna().unique() if c in s.columns else []
            try:
                vals = sorted(vals)
            except TypeError:
                vals = list(vals)
            col[c] = ", ".join(str(v) for v in vals) if len(vals) else "default"
        col["eval_chunk"] = col["eval_chunk"] if col["eval_chunk"] != "default" else "= batch size"
        col["runs"] = str(len(s))
        col["batch convention"] = BATCH_CONVENTION
        data[f"{_short_group(group)} [{kind}]"] = col
    return pd.DataFrame(data)


RESULT_COLUMNS = [
    ("trainer", "trainer", None),
    ("depth", "depth", None),
    ("width", "width", None),
    ("batch_size", "batch", None),
    ("status", "status", None),
    ("tensor_peak_bytes", "peak (MiB)", MiB),
    ("tensor_transient_bytes", "transient (MiB)", MiB),
    ("tensor_saved_activations_bytes", "saved for backward (MiB)", MiB),
    ("tensor_eval_peak_bytes", "eval peak (MiB)", MiB),
    ("tensor_whole_run_peak_bytes", "whole-run peak (MiB)", MiB),
    ("analytic_peak_bytes", "analytic peak (MiB)", MiB),
    ("rss_rise_bytes", "RSS rise (MiB)", MiB),
    ("cuda_peak_allocated_bytes", "CUDA peak (MiB)", MiB),
    ("step_seconds_median", "step (ms)", 1e-3),
    ("examples_per_second", "examples/s", 1),
    ("test_accuracy", "test acc. (%)", 0.01),
]


def results_table(runs):
    import pandas as pd

    df = runs.sort_values(["kind", "group", "width", "batch_size", "depth", "trainer"], na_position="last")
    out = pd.DataFrame(index=df.index)
    if runs["group"].nunique() > 1:
        out["run"] = df["group"].map(_short_group)
    out["kind"] = df["kind"]
    for col, label, div in RESULT_COLUMNS:
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
class FigureOut:
    name: str
    question: str
    note: str
    file: Path | None  # the SVG file written, None when the figure was omitted
    svg: str | None = None


@dataclass
class Report:
    html_path: Path
    figures_dir: Path
    figures: list[FigureOut]
    verdicts: list[Verdict]
    runs: Any  # the runs table
    tables: dict[str, Any]

    def figure(self, name: str) -> FigureOut | None:
        return next((f for f in self.figures if f.name == name), None)


def check_out(out_html: Path, flag: str = "--out") -> None:
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


FIGURE_LIST = "ffbench-figures.txt"  # in NAME_files/: the figures this report wrote (nothing else is removed)
_FIGURE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def write_figures(files_dir: Path, figures: list[FigureOut]) -> None:
    """Write the figures' SVGs and the list of them; remove only the SVGs an earlier report
    listed there and this one does not draw (any other file in the folder is left alone)."""
    listing = files_dir / FIGURE_LIST
    try:
        earlier = set(listing.read_text(encoding="utf-8").split()) if listing.is_file() else set()
    except (OSError, UnicodeDecodeError):
        earlier = set()
    drawn = [f.name for f in figures if f.svg is not None]
    files_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(earlier - set(drawn)):
        if _FIGURE_NAME.match(name):
            (files_dir / f"{name}.svg").unlink(missing_ok=True)
    for f in figures:
        if f.svg is not None:
            store.write_text_atomic(f.file, f.svg)
    store.write_text_atomic(listing, "".join(f"{name}\n" for name in drawn))


def figures_dir_for(out_html: Path) -> Path:
    out_html = Path(out_html)
    return out_html.with_name(out_html.stem + "_files")


def draw_figures(runs, epochs, timelines, maxbatch) -> list:
    from . import plots

    out = []
    for fn in plots.FIGURES:
        try:
            made = fn(runs, epochs=epochs, timelines=timelines, maxbatch=maxbatch)
        except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the report
            made = plots.Plot(
                fn.__name__,
                fn.__name__.replace("_", " "),
                None,
                f"could not be drawn: {type(exc).__name__}: {exc}",
            )
        out.extend(made if isinstance(made, list) else [made])
    return out


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
    """Read `paths` and decide every claim. ConfigError when they hold no run."""
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
    return Analysis(inp, runs, epochs, timelines, maxbatch, probes, verdicts)


def build_report(paths, out_html: str | Path, *, title: str | None = None) -> Report:
    """Read `paths`, compute every claim and figure, write `out_html` and its figures.

    Nothing is written when an input is unusable or holds no run (ConfigError)."""
    out_html = Path(out_html)
    check_out(out_html)
    a = analyse(paths)
    inp, runs, epochs, timelines, maxbatch, probes, verdicts = (
        a.inputs,
        a.runs,
        a.epochs,
        a.timelines,
        a.maxbatch,
        a.probes,
        a.verdicts,
    )
    plots = draw_figures(runs, epochs, timelines, maxbatch)
    figures = []
    files_dir = figures_dir_for(out_html)
    for p in plots:
        svg = p.svg() if p.figure is not None else None
        figures.append(
            FigureOut(p.name, p.question, p.note, files_dir / f"{p.name}.svg" if svg else None, svg)
        )
    tables = {
        "environment": environment_table(inp, runs),
        "configuration": configuration_table(runs),
        "results": results_table(runs),
    }
    if len(maxbatch):
        tables["maxbatch"] = maxbatch.drop(columns=["group", "path"])
    text = render_html(title or out_html.stem, inp, runs, verdicts, figures, tables, probes)
    # everything computed: now write
    write_figures(files_dir, figures)
    store.write_text_atomic(out_html, text)
    return Report(out_html, files_dir, figures, verdicts, runs, tables)


# -- HTML --------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;
max-width:1200px;padding:1em 2em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0} th,td{border:1px solid #ddd;padding:.25em .5em;
vertical-align:top;text-align:left} th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{font-weight:600;white-space:normal} .holds{background:#e3f4e1} .partial{background:#fff4d6}
.doesnothold{background:#fbe3e1} .notevaluated{background:#eee;color:#555}
figure{margin:1.5em 0;padding:.5em;border:1px solid #eee} figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.9em;color:#444;margin-top:.3em} .omitted{color:#666;font-style:italic}
.small{font-size:.85em;color:#555} nav a{margin-right:1em} code{font-size:.9em}
.tablewrap{overflow-x:auto} table.results td{white-space:nowrap}
"""


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _table_html(df, index: bool, cls: str = "data") -> str:
    return (
        '<div class="tablewrap">'
        + df.to_html(index=index, border=0, na_rep="–", escape=True, classes=cls)
        + "</div>"
    )


CLAIMS_HEAD = (
    '<div class="tablewrap"><table class="claims"><thead><tr><th>#</th><th>claim</th>'
    "<th>verdict</th><th>numbers</th><th>test and threshold</th><th>evaluation chunk</th>"
    "<th>batch convention</th><th>figure</th></tr></thead><tbody>"
)


def _claims_html(verdicts: list[Verdict], fig_names: set[str]) -> list[str]:
    """Findings and checks of the instrument as two tables, then the thresholds with the
    revision that last changed each."""
    parts = ['<h2 id="claims">Claims</h2>']
    numbered = list(enumerate(verdicts, 1))
    for group, title in GROUPS.items():
        parts.append(f'<h3 id="claims-{group}">{_e(title)}</h3>')
        parts.append(CLAIMS_HEAD)
        parts += _claim_rows([(i, v) for i, v in numbered if v.group == group], fig_names)
    revisions = thresholds.revisions()
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td>{_e(getattr(thresholds, name))}</td><td>{_e(revisions[name])}</td></tr>"
        for name in thresholds.NAMES
    )
    parts.append(
        '<p class="small">Each claim is decided by one function in <code>ffbench/analysis/claims/</code>; its '
        "thresholds live in <code>ffbench/analysis/thresholds.py</code>, written before the run. The revision "
        "that last changed each threshold is shown, so a change after the results were seen is visible.</p>"
        f'<table class="thresholds"><thead><tr><th>threshold</th><th>value</th><th>last changed in</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )
    return parts


def _claim_rows(verdicts: list[tuple[int, Verdict]], fig_names: set[str]) -> list[str]:
    rows = []
    for i, v in verdicts:
        cls = v.status.replace(" ", "")
        fig = (
            f'<a href="#fig-{_e(v.figure)}">{_e(v.figure)}</a>'
            if v.figure and v.figure in fig_names
            else _e(v.figure or "–")
        )
        rows.append(
            f'<tr id="claim-{_e(v.key)}"><td>{i}</td><td>{_e(v.claim)}</td>'
            f'<td class="verdict {cls}">{_e(v.verdict)}</td><td>{_e(v.detail)}</td>'
            f'<td class="small">{_e(v.test)}</td><td>{_e(v.eval_chunk)}</td>'
            f'<td class="small">{_e(v.batch_convention)}</td><td>{fig}</td></tr>'
        )
    rows.append("</tbody></table></div>")
    return rows


def _figure_html(f: FigureOut) -> str:
    if f.svg is None:
        return (
            f'<figure id="fig-{_e(f.name)}" class="omitted"><figcaption><b>'
            f"{_e(f.question)}</b> Figure omitted: {_e(f.note)}</figcaption></figure>"
        )
    data = base64.b64encode(f.svg.encode("utf-8")).decode("ascii")
    return (
        f'<figure id="fig-{_e(f.name)}"><img alt="{_e(f.question)}" '
        f'src="data:image/svg+xml;base64,{data}"><figcaption><b>{_e(f.question)}</b> '
        f'{_e(f.note)} <span class="small">(also {_e(f.file.parent.name)}/'
        f"{_e(f.file.name)})</span></figcaption></figure>"
    )


def render_html(
    title: str,
    inp: Inputs,
    runs,
    verdicts: list[Verdict],
    figures: list[FigureOut],
    tables: dict,
    probes: int = 0,
) -> str:
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    counts = runs["status"].value_counts(dropna=False).to_dict() if len(runs) else {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ffbench report: {_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>ffbench report: {_e(title)}</h1>",
        f'<p class="small">Generated {_e(now)} from {_e(", ".join(inp.given))}. {len(runs)} runs ('
        + ", ".join(f"{_e(k)} {v}" for k, v in counts.items())
        + ")"
        + (
            f", plus {probes} maxbatch probe records (used for the largest-batch figure and table only)"
            if probes
            else ""
        )
        + ". Bytes are measured as bytes; "
        "axes and tables show MiB (2<sup>20</sup> bytes) or GiB (2<sup>30</sup>). "
        f"Batch convention: {_e(BATCH_CONVENTION)}.</p>",
        '<nav><a href="#claims">Claims</a><a href="#figures">Figures</a>'
        '<a href="#environment">Environment</a><a href="#configuration">Configuration</a>'
        '<a href="#results">Results</a></nav>',
    ]
    parts += _claims_html(verdicts, {f.name for f in figures})
    parts.append('<h2 id="figures">Figures</h2>')
    parts += [_figure_html(f) for f in figures]
    parts.append('<h2 id="environment">Environment</h2>')
    parts.append(_table_html(tables["environment"], index=True))
    parts.append('<h2 id="configuration">Configuration</h2>')
    parts.append(_table_html(tables["configuration"], index=True))
    parts.append('<h2 id="results">Results</h2>')
    parts.append('<p class="small">One row per run; – where a run has no such figure.</p>')
    parts.append(_table_html(tables["results"], index=False, cls="data results"))
    if "maxbatch" in tables:
        parts.append('<h2 id="maxbatch">Largest batch under the budget</h2>')
        parts.append(_table_html(tables["maxbatch"], index=False))
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


# -- text ----------------------------------------------------------------------------------------


def print_claims(verdicts: list[Verdict], file: TextIO | None = None) -> None:
    """The findings, then the checks of the instrument: verdict, numbers, test, chunk."""
    file = file or sys.stdout
    numbered = list(enumerate(verdicts, 1))
    for group, title in GROUPS.items():
        chosen = [(i, v) for i, v in numbered if v.group == group]
        if chosen:
            print(f"{title}:", file=file)
        for i, v in chosen:
            shown = v.verdict.upper() if v.verdict in ("holds", "does not hold") else v.verdict
            print(f"({i}) {v.claim}: {shown}", file=file)
            if v.detail:
                print(f"    numbers: {v.detail}", file=file)
            print(f"    test: {v.test}", file=file)
            print(
                f"    evaluation chunk: {v.eval_chunk}; {v.batch_convention}"
                + (f"; figure: {v.figure}" if v.figure else ""),
                file=file,
            )


def verdicts_json(verdicts: list[Verdict]) -> str:
    """The verdicts as JSON (for machines)."""
    from dataclasses import asdict

    return json.dumps([asdict(v) for v in verdicts], indent=2, default=str)
