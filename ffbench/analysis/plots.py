"""The report's figures: seaborn on matplotlib's Agg backend, one question per figure.

Every figure function takes the report's tables (see `ffbench.analysis.report`) and returns a
`Plot`: the figure titled with the question it answers, or no figure and a note saying why
(the data it needs is absent). It is registered with `@figure(order)`, its place in the
report: adding a figure = one decorated function. Bytes are bytes in the tables; axes are
labelled in MiB (2^20 bytes) or GiB (2^30) -- `axis_unit` picks one per figure.

Ratios (FF over BP) are taken between runs of one group (one results folder on one
device), never across devices; absolute times are drawn per device.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib
import matplotlib.ticker
import numpy as np

matplotlib.use("Agg")  # no display, deterministic: before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from ..arch import is_image  # noqa: E402
from ..schema import CATEGORIES  # noqa: E402
from ..trainers.registry import DISPLAY_ORDER, display_order  # noqa: E402
from ..units import GiB, MiB  # noqa: E402
from .claims.tables import (  # noqa: E402
    TRAIN_PEAK,
    best_of_families,
    group_name,
    group_names,
    ok_runs,
    with_analytic,
    with_train_peak,
)
from .thresholds import ARITHMETIC_FLOOR  # noqa: E402

RC = {
    "svg.fonttype": "none",  # text stays text (searchable, small); the browser picks the font
    "svg.hashsalt": "ffbench",  # deterministic ids
    "font.family": "sans-serif",
    "figure.dpi": 100,
}


@dataclass
class Plot:
    name: str  # file stem and HTML anchor
    question: str  # the title: the question the figure answers
    figure: object | None = None  # a matplotlib Figure, None when omitted
    note: str = ""  # why omitted, or what the reader should know

    def svg(self) -> str:
        """The figure as SVG text (closes the figure)."""
        buf = io.StringIO()
        with plt.rc_context(RC):
            self.figure.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(self.figure)
        # drop the DOCTYPE: it names a DTD by URL (never fetched, but the report names no URL)
        return re.sub(r"<!DOCTYPE[^>]*>\s*", "", buf.getvalue(), count=1)


FIGURES: list[Callable] = []  # every figure function, in report order (see `figure`)


def figure(order: int, every_architecture: bool = False):
    """Register a figure function: it takes the report's tables and returns a Plot or a list
    of Plots. `order` places it in the report (lowest first, each order given once).
    Figures that compare architectures (`every_architecture`) see every run; the others see
    none with an image body (conv, local): their axes are width and depth (recurrent rows:
    `over_depth`, `memory_vs_time`)."""

    def register(fn: Callable) -> Callable:
        taken = [f.__name__ for f in FIGURES if f.figure_order == order]
        if taken:
            raise ValueError(f"figure {fn.__name__}: order {order} is {taken[0]}'s already")
        fn.figure_order, fn.every_architecture = order, every_architecture
        FIGURES.append(fn)
        FIGURES.sort(key=lambda f: f.figure_order)
        return fn

    return register


def runs_for(fn: Callable, runs):
    """The runs a registered figure function draws from (see `figure`)."""
    return runs if fn.every_architecture else without_image_bodies(runs)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
DASHES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1, 1, 1)))
KNOWN = DISPLAY_ORDER  # the built-in trainers: fixed places in the map


def _place(name: str) -> int:
    """A trainer's (or variant's) fixed place in the style map: built-in names by their order,
    any other name by a hash of it, so its style never depends on who else is drawn."""
    if name in KNOWN:
        return KNOWN.index(name)
    return len(KNOWN) + int(hashlib.sha1(name.encode()).hexdigest(), 16) % 97


def trainer_style(name: str) -> dict:
    """THE trainer -> colour, marker and dash map every figure uses: lines stay apart where
    they overlap and in grey print, not only by colour. A variant (bp[bptt_window=4]) is a
    name of its own."""
    colours = sns.color_palette("tab20", 20)
    i = _place(str(name))
    # tab20 pairs a dark and a light shade: built-ins take the dark ones first
    colour = colours[(2 * i) % 20] if i < 10 else colours[(2 * i + 1) % 20]
    return {"color": colour, "marker": MARKERS[i % len(MARKERS)], "ls": DASHES[i % len(DASHES)]}


def palette(trainers) -> dict:
    """One fixed colour per trainer, the same in every figure (`trainer_style`)."""
    return {t: trainer_style(t)["color"] for t in trainers}


def trainer_order(trainers) -> list[str]:
    return display_order(trainers)


def line_styles(trainers) -> dict[str, dict]:
    """`trainer_style` of each trainer."""
    return {t: trainer_style(t) for t in trainers}


# -- FF/BP ratios: one colour scale for every view --------------------------------------------
RATIO_LIMITS = (0.25, 4.0)  # symmetric in ratio: x 4 and / 4 at the two ends, 1 in the middle
RATIO_CMAP = "RdBu_r"  # blue: FF needs less (below 1); red: FF needs more


def ratio_norm():
    """THE colour norm of every FF/BP ratio view: logarithmic, centred at 1, the same range
    in every figure of every report (a colour always means one ratio; the cells say the value)."""
    return matplotlib.colors.LogNorm(*RATIO_LIMITS, clip=True)


def ratio_heatmap(ax, grid, label: str) -> None:
    """One FF/BP ratio grid drawn on the shared scale, each cell annotated with its value."""
    with warnings.catch_warnings():  # seaborn 0.13 calls a deprecated Colormap.set_bad
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        sns.heatmap(grid, ax=ax, annot=True, fmt=".2f", cmap=RATIO_CMAP, norm=ratio_norm(), linewidths=0.5,
                    cbar_kws={"label": label, "ticks": [0.25, 0.5, 1, 2, 4]})  # fmt: skip
    bar = ax.collections[0].colorbar
    if bar is not None:
        bar.ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # the five ticks alone
        bar.set_ticklabels(["1/4", "1/2", "1", "2", "4"])


def one_per_point(df, keys: list[str]):
    """One row per point of a figure, never a mean of two measurements: the default
    optimizer setting and variant where several were measured, then the row of the largest
    group (results folder) measured at that point."""
    from .claims.tables import variant

    if df is None or len(df) == 0:
        return df
    df = df.assign(_variant=[variant(r) for _, r in df.iterrows()])
    df = df[df["_variant"] == df["trainer"]] if (df["_variant"] == df["trainer"]).any() else df
    if "optimizer" in df.columns:
        common = df.groupby(["optimizer", "optimizer_impl"], dropna=False).size().idxmax()
        df = df[(df["optimizer"] == common[0]) & (df["optimizer_impl"] == common[1])]
    size = df.groupby("group")["group"].transform("size") if "group" in df.columns else 0
    df = df.assign(_size=size).sort_values("_size", ascending=False, kind="stable")
    return df.drop_duplicates(keys).drop(columns=["_variant", "_size"]).sort_index()


def small_multiples(
    long, *, row: str, col: str, x: str, question: str, xlabel: str, ylabel=None, from_zero: bool = True
):
    """Panels rows x cols of one line per trainer (`value` over `x`), each panel with its own
    y-axis (from 0 unless `from_zero` is False); `lo`/`hi` columns, when present, are drawn
    as error bars (e.g. the IQR). Never dodged along the numeric x: identical values (bp and
    bp-inbackward share every update) stay apart by marker and dash."""
    rows, cols = list(dict.fromkeys(long[row])), list(dict.fromkeys(long[col]))
    order = trainer_order(long["trainer"])
    styles = line_styles(order)
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(3.7 * len(cols) + 0.9, 2.9 * len(rows) + 1.0), squeeze=False
    )
    for (i, r), (j, c) in ((a, b) for a in enumerate(rows) for b in enumerate(cols)):
        ax, part = axes[i][j], long[(long[row] == r) & (long[col] == c)]
        for t in order:
            s = part[part["trainer"] == t].sort_values(x)
            if len(s):
                _line(ax, s, x, t, styles[t])
        if long[x].nunique() <= 12:
            ax.set_xticks(sorted(long[x].unique()))
        if from_zero:
            ax.set_ylim(bottom=0)
        ax.set_title(f"{c}" if len(rows) == 1 else f"{r}\n{c}", fontsize=9)
        ax.set_xlabel(xlabel if i == len(rows) - 1 else "")
        ax.set_ylabel((ylabel or r) if j == 0 else "")
        ax.grid(True, color="#ddd", lw=0.6)
    handles = [plt.Line2D([], [], lw=1.6, ms=5, **styles[t]) for t in order]
    fig.suptitle(question, fontsize=13)
    fig.tight_layout(rect=(0, 0.06 if len(rows) > 1 else 0.1, 1, 1))
    fig.legend(handles, order, loc="lower center", ncol=min(len(order), 8), frameon=False, title="trainer")
    return fig


def _line(ax, s, x: str, trainer: str, style: dict) -> None:
    if "lo" in s.columns and s["lo"].notna().any():
        err = [(s["value"] - s["lo"]).clip(lower=0), (s["hi"] - s["value"]).clip(lower=0)]
        ax.errorbar(s[x], s["value"], yerr=err, capsize=3, lw=1.6, ms=5, label=trainer, **style)
    else:
        ax.plot(s[x], s["value"], lw=1.6, ms=5, label=trainer, **style)


def axis_unit(values) -> tuple[float, str]:
    """(divisor, label) for byte values: GiB when the largest is >= 2 GiB, else MiB."""
    finite = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if finite and max(finite) >= 2 * GiB:
        return GiB, "GiB"
    return MiB, "MiB"


def _title(fig, text: str) -> None:
    fig.suptitle(text, fontsize=13, y=1.0)
    fig.tight_layout()


@contextlib.contextmanager
def fixed_jitter(seed: int = 0):
    """seaborn's strip-plot jitter draws from numpy's global random state: seeded here (and
    the state given back after) so a report rebuilds the same figure every time."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _sns(fn, data, x: str, y: str, hue: str, **kw):
    """`fn(data=data, x=x, y=y, hue=hue, **kw)` for a seaborn plotting function; coloured by
    trainer (hue "trainer"): in the report's trainer order and colours."""
    if hue == "trainer":
        order = trainer_order(data["trainer"])
        kw = {"hue_order": order, "palette": palette(order), **kw}
    return fn(data=data, x=x, y=y, hue=hue, **kw)


def _bars(data, x: str, y: str, hue: str, col: str, size: tuple[float, float], **kw):
    """Bar panels, one per value of `col` (`_sns` over `sns.catplot`), each panel
    size = (height, aspect); bar heights as they are (no error bars)."""
    height, aspect = size
    return _sns(
        sns.catplot, data, x, y, hue, col=col, kind="bar", height=height, aspect=aspect, errorbar=None, **kw
    )


def _label_axes(ax, xlabel: str, ylabel: str, legend: str | None = None) -> None:
    """A panel's axis labels and, with `legend`, its legend (so titled) right of it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend is not None:
        ax.legend(title=legend, bbox_to_anchor=(1.01, 1), loc="upper left")


def _finish_grid(g, question: str) -> None:
    """A seaborn grid's figure title and its legend below the panels."""
    _title(g.figure, question)
    _legend_below(g)


def _legend_below(g, title: str | None = None) -> None:
    """A seaborn grid's legend under the panels, in one row (it would cover margin titles)."""
    if getattr(g, "legend", None) is None:
        return
    n = len(g.legend.get_texts())
    extra = {"title": title} if title is not None else {}
    sns.move_legend(g, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(n, 7), frameon=False, **extra)


def _float(df, cols):
    df = df.copy()
    for c in cols:
        df[c] = df[c].astype("float64")
    return df


def chosen_config(runs) -> tuple[int, int, int] | None:
    """(width, depth, batch_size) of the largest configuration measured: the largest depth,
    then the largest batch at that depth, then the largest width."""
    df = ok_runs(runs)
    if df is None or len(df) == 0:
        return None
    d = int(df["depth"].max())
    b = int(df[df["depth"] == d]["batch_size"].max())
    w = int(df[(df["depth"] == d) & (df["batch_size"] == b)]["width"].max())
    return w, d, b


def _long(df, metrics: dict[str, str], keys: list[str]):
    """Wide metric columns -> rows (measure, value) for the metrics present."""
    import pandas as pd

    parts = []
    for col, label in metrics.items():
        if col in df.columns and df[col].notna().any():
            part = df[keys + [col]].rename(columns={col: "value"})
            part = part[part["value"].notna()]
            part["measure"] = label
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=keys + ["value", "measure"])
    out = pd.concat(parts, ignore_index=True)
    out["value"] = out["value"].astype("float64")
    return out


def over_depth(df):
    """Rows of networks that grow by depth alone (the recurrent network grows in time too:
    `memory_vs_time` draws it)."""
    if df is None or len(df) == 0 or "arch" not in df.columns:
        return df
    return df[df["arch"].fillna("mlp") != "recurrent"]


def net_label(row) -> str:
    """depth x width, and the recurrent network's time steps or a black box where present."""
    size = f"c{row.get('channels')}" if is_image(row.get("arch")) else f"{int(row['width'])}"
    text = f"{int(row['depth'])}x{size}"
    if row.get("arch") == "recurrent":
        text += f" recurrent T{int(row['time_steps'])}"
    box = row.get("black_box")
    return text + (f" box@{int(box)}" if box is not None and box == box else "")


def panel_label(df):
    """The column panels: batch size, and width where several widths were measured."""
    several = df["width"].nunique() > 1
    image = df["arch"].map(is_image) if "arch" in df.columns else [False] * len(df)
    channels = df["channels"] if "channels" in df.columns else [None] * len(df)
    return [
        f"batch {int(b)}" + (f", channels {c}" if im else f", width {int(w)}" if several else "")
        for b, w, im, c in zip(df["batch_size"], df["width"], image, channels)
    ]


def _memory_facets(df, metrics: dict[str, str], question: str, name: str, note: str = "") -> Plot:
    df = over_depth(df)
    keys = ["trainer", "depth", "batch_size", "width"]
    df = one_per_point(df, keys)
    long = _long(df, metrics, keys)
    if len(long) == 0:
        return Plot(name, question, None, "no such figures in the records")
    div, unit = axis_unit(long["value"])
    long["value"] = long["value"] / div
    long = long.sort_values(["batch_size", "width"]).assign(panel=lambda d: panel_label(d))
    long["measure"] = long["measure"] + f" ({unit})"
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig = small_multiples(
            long, row="measure", col="panel", x="depth", question=question, xlabel="depth (hidden layers)"
        )
    return Plot(name, question, fig, (note + " " if note else "") + "Each panel has its own y-axis.")


# -- the figures ----------------------------------------------------------------------------


@figure(40)
def peak_vs_depth(runs, **_) -> Plot:
    question = "How does peak memory grow with depth, for each trainer?"
    df = ok_runs(runs)
    if df is None or len(df) == 0:
        return Plot("peak_vs_depth", question, None, "no successful measure runs")
    metrics = {"tensor_peak_bytes": "tensor-level peak"}
    if "cuda_peak_allocated_bytes" in df.columns and df["cuda_peak_allocated_bytes"].notna().any():
        metrics["cuda_peak_allocated_bytes"] = "CUDA allocated peak"
        metrics["cuda_peak_reserved_bytes"] = "CUDA reserved peak"
    elif "rss_rise_bytes" in df.columns and df["rss_rise_bytes"].notna().any():
        metrics["rss_rise_bytes"] = "RSS high-water rise"
    return _memory_facets(
        df,
        metrics,
        question,
        "peak_vs_depth",
        "Rows: tensor-level peak (exact, all devices) and the allocator (CUDA) "
        "or process high-water (CPU) figure where recorded.",
    )


@figure(80)
def activations_vs_depth(runs, **_) -> Plot:
    question = "Does the memory held for backward grow with depth?"
    df = ok_runs(runs)
    if df is None or len(df) == 0:
        return Plot("activations_vs_depth", question, None, "no successful measure runs")
    return _memory_facets(
        df,
        {"tensor_saved_activations_bytes": "saved for backward", "tensor_transient_bytes": "transient"},
        question,
        "activations_vs_depth",
        "Saved for backward: the most bytes saved for backward alive at once in "
        "the steady step. Transient: step peak minus bytes alive at the step start.",
    )


@figure(50)
def memory_breakdown(runs, **_) -> Plot:
    cfg = chosen_config(runs)
    if cfg is None:
        return Plot(
            "memory_breakdown", "Where does the memory go at the peak?", None, "no successful measure runs"
        )
    w, d, b = cfg
    question = f"Where does the memory go at the peak? (depth {d}, batch {b}, width {w})"
    df = ok_runs(runs)
    df = one_per_point(df[(df["width"] == w) & (df["depth"] == d) & (df["batch_size"] == b)], ["trainer"])
    cols = [f"tensor_peak_{c}_bytes" for c in CATEGORIES]
    table = _float(df, cols).groupby("trainer")[cols].mean()
    table = table.reindex([t for t in trainer_order(table.index)])
    table.columns = [c.replace("_", " ") for c in CATEGORIES]
    div, unit = axis_unit(table.sum(axis=1))
    table = table / div
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(8, 0.5 * len(table) + 2))
        table.plot.barh(stacked=True, ax=ax, color=sns.color_palette("Set2", len(CATEGORIES)), width=0.7)
        ax.invert_yaxis()
        _label_axes(ax, f"tensor-level bytes alive at the steady step's peak ({unit})", "trainer", "category")
        _title(fig, question)
    return Plot(
        "memory_breakdown",
        question,
        fig,
        "The largest configuration measured: largest depth, then largest batch at it.",
    )


def _ratio_panels(table, question: str, name: str, label: str, note: str) -> Plot:
    """FF/BP ratios as heatmaps on the shared scale (`ratio_norm`): one panel per results
    folder, body (width, or channels for an image body) and optimizer; rows: depth (the
    recurrent network: its time steps T), columns: batch (micro-batch when below it)."""
    arch = table["arch"].fillna("mlp") if "arch" in table.columns else "mlp"
    table = table.assign(arch=arch, body=[_body(r) for _, r in table.iterrows()])
    table = table.assign(
        row=[f"T{int(r['time_steps'])} d{int(r['depth'])}" if r["arch"] == "recurrent" else int(r["depth"])
             for _, r in table.iterrows()],
        column=[_batch_text(r) for _, r in table.iterrows()],
    )  # fmt: skip
    keys = [c for c in ("group", "arch", "body", "optimizer", "optimizer_impl") if c in table.columns]
    panels = list(table.groupby(keys, dropna=False, sort=False))
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    with sns.axes_style("white"), plt.rc_context(RC):
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 1, 3.6 * rows + 0.6), squeeze=False)
        for ax, (values, p) in zip(axes.flat, panels):
            order = p.sort_values(["time_steps", "depth"] if "time_steps" in p.columns else ["depth"])
            grid = p.pivot_table(index="row", columns="column", values="ratio", aggfunc="first", sort=False)
            grid = grid.reindex(index=list(dict.fromkeys(order["row"])),
                                columns=sorted(grid.columns, key=_batch_key))  # fmt: skip
            ratio_heatmap(ax, grid, label)
            ax.set_xlabel("batch size (real examples)")
            ax.set_ylabel("time steps T, depth" if values[1] == "recurrent" else "depth (hidden layers)")
            what = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
            opt = f"{what.get('optimizer')} {what.get('optimizer_impl')}"
            ax.set_title(f"{what['arch']} {what['body']}, {opt}\n{group_name(p.iloc[0])}", fontsize=9)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        _title(fig, question)
    return Plot(
        name, question, fig, note + " One colour scale for every ratio of the report (1/4 to 4, log)."
    )


def _body(r) -> str:
    """A body's size: channels (kernel, stride) for an image body, width otherwise."""
    arch = r.get("arch")
    if is_image(arch):
        return f"channels {r['channels']} k{r.get('kernel')} s{r.get('stride')}"
    return f"width {int(r['width'])}"


def _batch_text(r) -> str:
    micro = r.get("micro")
    small = micro is not None and micro == micro and int(micro) < int(r["batch_size"])
    return f"{int(r['batch_size'])}" + (f" (micro {int(micro)})" if small else "")


def _batch_key(text: str) -> tuple[int, str]:
    return int(text.split()[0]), text


@figure(10, every_architecture=True)
def best_ff_vs_best_bp(runs, **_) -> Plot:
    """Best FF over best exact-BP training-step peak per configuration and micro-batch, every
    architecture (the recurrent network over its time steps), one shared colour scale."""
    question = "Where does the most frugal FF need less memory than the most frugal exact BP? (best FF / best BP, equal micro-batch)"
    table = best_of_families(with_train_peak(runs), TRAIN_PEAK)
    if len(table) == 0:
        return Plot(
            "best_ff_vs_best_bp", question, None, "needs an FF and an exact-BP trainer at one configuration"
        )
    winners = ", ".join(sorted(set(table["ff_best"]) | set(table["bp_best"])))
    note = (
        "Blue: the best FF variant needs less than the best exact-BP variant (< 1); red: more. Each cell "
        f"compares the smallest training-step peak of each family at one batch and micro-batch ({winners} "
        "among the winners); evaluation is excluded; other rules (bp-local, truncated BPTT, ...) never count."
    )
    return _ratio_panels(table, question, "best_ff_vs_best_bp", "best FF / best BP peak", note)


@figure(60)
def memory_vs_accuracy(runs, **_) -> Plot:
    """Test accuracy against the training step's tensor-level peak of the accuracy runs."""
    question = "What does accuracy cost in memory? (test accuracy against training-step peak)"
    if runs is None or len(runs) == 0 or "analytic_train_peak_bytes" not in runs.columns:
        return Plot("memory_vs_accuracy", question, None, "needs train records with their training memory")
    acc = runs[runs["test_accuracy"].notna() & runs["analytic_train_peak_bytes"].notna()]
    if len(acc) == 0:
        return Plot("memory_vs_accuracy", question, None, "needs train records with their training memory")
    acc = acc.assign(peak=acc["analytic_train_peak_bytes"].astype("float64") / MiB,
                     accuracy=100 * acc["test_accuracy"].astype("float64"),
                     net=[net_label(r) for _, r in acc.iterrows()])  # fmt: skip
    fig = _peak_accuracy_points(acc, ["dataset", "trainer", "net"], question,
                                "test accuracy (%), mean over seeds (± sd where n > 1)", "")  # fmt: skip
    return Plot("memory_vs_accuracy", question, fig, "Upper left is better: more accuracy for less memory.")


@figure(130)
def accuracy_vs_time(runs, epochs=None, **_) -> Plot:
    """Validation accuracy against cumulative training CPU seconds, one line per seed, both
    families, the target as a dashed line: what accuracy costs in time."""
    from .target import flag_epochs, outcomes, run_epochs

    question = (
        "How fast does each family reach the target? (validation accuracy against training CPU seconds)"
    )
    oc = outcomes(runs, epochs)
    if len(oc) == 0:
        return Plot("accuracy_vs_time", question, None, "needs train records with their epochs")
    oc = oc.assign(
        setting=[f"{r['dataset']}, {r['arch']} {r['depth']}x{r['width']}" for _, r in oc.iterrows()]
    )
    settings = list(dict.fromkeys(oc["setting"]))
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings) + 0.8, 4.2), squeeze=False)
        for ax, setting in zip(axes[0], settings):
            part = oc[oc["setting"] == setting]
            for _, r in part.iterrows():
                rows = run_epochs(epochs, r["path"])
                flag_epochs(rows, None)
                style = trainer_style(r["trainer"])
                xs = [e["cumulative_train_cpu_seconds"] for e in rows]
                if any(x is None for x in xs):
                    continue
                ax.plot(xs, [100 * e["val_accuracy"] for e in rows], lw=1.2, ms=3, alpha=0.8,
                        label=f"{r['trainer']}", **style)  # fmt: skip
            ax.axhline(100 * float(part["target"].iloc[0]), color="#555", ls="--", lw=1)
            ax.set_title(setting, fontsize=9)
            ax.set_xlabel("cumulative training CPU seconds (evaluation excluded)")
            ax.set_ylabel("validation accuracy (%)")
            handles = {h.get_label(): h for h in ax.get_lines() if not h.get_label().startswith("_")}
            ax.legend(handles.values(), handles.keys(), title="trainer (one line per seed)", fontsize=8)
        _title(fig, question)
    return Plot(
        "accuracy_vs_time",
        question,
        fig,
        "One line per seed; the dashed line is the target (thresholds.TARGET_ACCURACY). CPU seconds of "
        "training at the runs' thread count (one in reproduce); runs stopped at the target end there.",
    )


@figure(70)
def memory_at_target(runs, epochs=None, **_) -> Plot:
    """Test accuracy at the target against the training-step peak of the configuration that
    was trained to it, per trainer: memory at comparable accuracy."""
    from .target import outcomes

    question = (
        "What memory does each family need at the target accuracy? (training-step peak, test accuracy there)"
    )
    oc = outcomes(runs, epochs)
    oc = oc[(oc["reached"] == True) & oc["train_peak_bytes"].notna()] if len(oc) else oc  # noqa: E712
    if len(oc) == 0:
        return Plot(
            "memory_at_target", question, None, "needs train records that reached the target, with memory"
        )
    oc = oc.assign(peak=[float(x) / MiB for x in oc["train_peak_bytes"]],
                   accuracy=[100 * (1 - float(x)) for x in oc["target_error"]],
                   net=[f"{r['dataset']} {r['arch']} {r['depth']}x{r['width']}" for _, r in oc.iterrows()])  # fmt: skip
    fig = _peak_accuracy_points(oc, ["trainer", "net"], question, "test accuracy at the target (%), mean (± sd)",
                                " seeds")  # fmt: skip
    return Plot(
        "memory_at_target",
        question,
        fig,
        "Each point: the configuration actually trained to the target validation accuracy, its test accuracy at "
        "the epoch it got there (seeds that reached it), and its training step's peak. Left is less memory.",
    )


def _peak_accuracy_points(frame, keys: list[str], question: str, ylabel: str, seeds_word: str):
    """One point per (keys) group of `frame` (columns peak in MiB, accuracy in %, trainer, net):
    mean training-step peak against mean accuracy, the seeds' sd as an error bar where n > 1."""
    summary = frame.groupby(keys, as_index=False).agg(
        peak=("peak", "mean"),
        accuracy=("accuracy", "mean"),
        sd=("accuracy", "std"),
        seeds=("accuracy", "size"),
    )
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        for _, r in summary.iterrows():
            style = trainer_style(r["trainer"])
            spread = r["sd"] if r["seeds"] > 1 else None  # spread only where n > 1
            ax.errorbar(r["peak"], r["accuracy"], yerr=spread, fmt=style["marker"], color=style["color"],
                        capsize=3)  # fmt: skip
            ax.annotate(f"{r['trainer']} {r['net']} ({int(r['seeds'])}{seeds_word})", (r["peak"], r["accuracy"]),
                        textcoords="offset points", xytext=(6, 4), fontsize=8)  # fmt: skip
        ax.set_xlabel("training-step tensor-level peak (MiB, analytic model: exact)")
        ax.set_ylabel(ylabel)
        _title(fig, question)
    return fig


@figure(100)
def step_time(runs, **_) -> list[Plot]:
    """One figure per device: absolute times are never mixed across devices. Medians with
    the interquartile range of the timed steps as error bars."""
    df = ok_runs(runs)
    question = "How do step time and throughput change with depth?"
    if df is None or len(df) == 0 or df["step_seconds_median"].isna().all():
        return [Plot("step_time", question, None, "no step times in the records")]
    df = one_per_point(df[df["step_seconds_median"].notna()], ["trainer", "depth", "batch_size", "width"])
    devices = sorted(df["device_name"].fillna("unknown device").unique())
    plots = []
    for i, dev in enumerate(devices):
        sub = df[df["device_name"].fillna("unknown device") == dev].sort_values(["batch_size", "width"])
        q = f"{question} ({dev})" if len(devices) > 1 else question
        with sns.axes_style("whitegrid"), plt.rc_context(RC):
            fig = small_multiples(
                _time_long(sub),
                row="measure",
                col="panel",
                x="depth",
                question=q,
                xlabel="depth (hidden layers)",
            )
        steps = sub["timed_steps"].dropna() if "timed_steps" in sub.columns else []
        counts = (
            "?"
            if not len(steps)
            else f"{int(min(steps))}" + (f"-{int(max(steps))}" if max(steps) > min(steps) else "")
        )
        plots.append(
            Plot(
                "step_time" if i == 0 else f"step_time_{i + 1}",
                q,
                fig,
                f"Measured on {dev}: median of {counts} timed steps per point (no tracker attached); "
                "error bars span the interquartile range. Each panel has its own y-axis.",
            )
        )
    return plots


def _time_long(sub):
    """Step time (median, IQR) and throughput as rows of (measure, value, lo, hi)."""
    import pandas as pd

    keys = sub[["trainer", "depth", "batch_size", "width"]].assign(panel=panel_label(sub))
    ms = sub["step_seconds_median"].astype("float64") * 1000
    has_q = "step_seconds_q1" in sub.columns
    time = keys.assign(
        measure="step time, median and IQR (ms)",
        value=ms,
        lo=sub["step_seconds_q1"].astype("float64") * 1000 if has_q else float("nan"),
        hi=sub["step_seconds_q3"].astype("float64") * 1000 if has_q else float("nan"),
    )
    rate = keys.assign(
        measure="throughput (real examples / s)", value=sub["examples_per_second"].astype("float64")
    )
    return pd.concat([time, rate.assign(lo=float("nan"), hi=float("nan"))], ignore_index=True)


@figure(110, every_architecture=True)
def ff_bp_time_ratio(runs, **_) -> Plot:
    """Fastest FF over fastest exact-BP median step time, on the shared ratio scale."""
    question = "How much slower is an FF step than an exact-BP step? (fastest FF / fastest BP step time)"
    table = best_of_families(ok_runs(runs), "step_seconds_median")
    if len(table) == 0:
        return Plot(
            "ff_bp_time_ratio",
            question,
            None,
            "needs step times of an FF and an exact-BP trainer at one configuration",
        )
    note = (
        "Each ratio is taken between runs of one results folder on one device; red: FF's step takes "
        f"longer. The arithmetic floor of an MLP is {ARITHMETIC_FLOOR:.2f} (FF 4 matmul units, BP 3)."
    )
    return _ratio_panels(table, question, "ff_bp_time_ratio", "fastest FF / fastest BP step time", note)


@figure(120)
def accuracy(runs, epochs=None, **_) -> Plot:
    question = "How accurate is each trainer after each epoch?"
    if epochs is not None:
        epochs = epochs[epochs["test_accuracy"].notna()]  # a run to a target: test only where it ended
    if epochs is None or len(epochs) == 0:
        return Plot("accuracy", question, None, "no train records (ffbench train --out-file FILE writes one)")
    df = epochs.assign(acc=epochs["test_accuracy"].astype("float64") * 100)
    df["setting"] = [
        f"{ds}, d{d} w{w} b{b}"
        for ds, d, w, b in zip(df["dataset"], df["depth"], df["width"], df["batch_size"])
    ]
    df["setting"] = df["setting"] + _run_labels(df, runs)
    df = df.drop_duplicates(["setting", "trainer", "seed", "epoch"])  # one run per seed, never a mean of two
    stats = df.groupby(["setting", "trainer", "epoch"], as_index=False).agg(
        value=("acc", "mean"), sd=("acc", "std"), seeds=("acc", "size")
    )
    several = bool((stats["seeds"] > 1).any())
    # spread only where there is one: a single seed gets no error bar (sd is NaN there)
    stats = stats.assign(lo=stats["value"] - stats["sd"], hi=stats["value"] + stats["sd"], row="")
    if not several:
        stats = stats.drop(columns=["lo", "hi"])
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig = small_multiples(
            stats,
            row="row",
            col="setting",
            x="epoch",
            question=question,
            xlabel="epoch",
            ylabel="test accuracy (%)",
            from_zero=False,
        )
    return Plot(
        "accuracy",
        question,
        fig,
        (
            "Mean over seeds; error bars: one standard deviation over seeds. "
            if several
            else "One seed per trainer. "
        )
        + "Each panel's y-axis is zoomed to its curves (not 0-100 %).",
    )


def _run_labels(epochs, runs):
    """Per epoch row: the recurrent network's time steps and a black box, from its run."""
    if runs is None or len(runs) == 0 or "arch" not in runs.columns:
        return ""
    by_path = {r["path"]: net_label(r).partition(" ")[2] for _, r in runs.iterrows() if r["kind"] == "train"}
    return epochs["path"].map(lambda p: (" " + by_path[p]) if by_path.get(p) else "")


@figure(160, every_architecture=True)
def measured_vs_analytic(runs, **_) -> Plot:
    question = "Does the analytic memory model predict the measured peak?"
    df = with_analytic(runs)
    if df is None:
        return Plot(
            "measured_vs_analytic",
            question,
            None,
            "the records carry no analytic prediction (analytic_peak_bytes)",
        )
    df = _float(df, ["analytic_peak_bytes", "tensor_peak_bytes"])
    div, unit = axis_unit(list(df["tensor_peak_bytes"]) + list(df["analytic_peak_bytes"]))
    df["measured"] = df["tensor_peak_bytes"] / div
    df["analytic"] = df["analytic_peak_bytes"] / div
    df["error (%)"] = 100 * (df["analytic_peak_bytes"] - df["tensor_peak_bytes"]) / df["tensor_peak_bytes"]
    order = trainer_order(df["trainer"])
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
        _sns(sns.scatterplot, df, "analytic", "measured", "trainer", ax=a, s=40, legend=False)
        top = max(df["measured"].max(), df["analytic"].max()) * 1.05
        a.plot([0, top], [0, top], color="black", lw=1, ls="--")
        _label_axes(a, f"analytic peak ({unit})", f"measured tensor-level peak ({unit})")
        a.set_title("each point: one run; dashed: equality", fontsize=10)
        with fixed_jitter():
            _sns(
                sns.stripplot, df, "error (%)", "trainer", "trainer", order=order, ax=b, legend=False, size=6
            )
        b.axvline(0, color="black", lw=1)
        b.set_xlabel("(analytic - measured) / measured (%)")
        b.set_title("relative error per run", fontsize=10)
        _title(fig, question)
    return Plot("measured_vs_analytic", question, fig)


@figure(170)
def timeline(runs, timelines=None, **_) -> Plot:
    base = "How does live memory evolve over one training step?"
    # the largest configuration among the runs that recorded a timeline
    cfg = (
        chosen_config(runs[runs["run_id"].isin(set(timelines["run_id"]))])
        if timelines is not None and len(timelines) and runs is not None and len(runs)
        else None
    )
    if timelines is None or len(timelines) == 0 or cfg is None:
        return Plot(
            "timeline", base, None, "no timeline in the records (sweeps record one unless timeline is off)"
        )
    w, d, b = cfg
    t = timelines[(timelines["width"] == w) & (timelines["depth"] == d) & (timelines["batch_size"] == b)]
    if len(t) == 0:
        return Plot("timeline", base, None, f"no timeline at depth {d}, batch {b}, width {w}")
    # one run per trainer (the first group that has it)
    first = t.groupby("trainer")["run_id"].first()
    t = t[t["run_id"].isin(first.values)].copy()
    div, unit = axis_unit(t["live_bytes"])
    t["live"] = t["live_bytes"].astype("float64") / div
    question = f"{base} (depth {d}, batch {b}, width {w})"
    order = trainer_order(t["trainer"])
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        g = _sns(
            sns.relplot,
            t,
            "op_index",
            "live",
            "trainer",
            col="trainer",
            col_order=order,
            col_wrap=min(3, len(order)),
            kind="line",
            height=2.8,
            aspect=1.4,
            facet_kws={"sharex": False},
            legend=False,
            drawstyle="steps-post",
        )
        for ax, trainer in zip(g.axes.flat, order):
            s = t[t["trainer"] == trainer]
            i = s["live"].idxmax()
            ax.plot([s.loc[i, "op_index"]], [s.loc[i, "live"]], "o", color="black", ms=4)
            ax.axhline(s["live"].iloc[0], color="grey", lw=0.8, ls=":")
            ax.set_ylim(bottom=0)
        g.set_titles(col_template="{col_name}")
        g.set_axis_labels("op index within the step", f"live tensor bytes ({unit})")
        _finish_grid(g, question)
    return Plot(
        "timeline",
        question,
        g.figure,
        "Sum of live tensor storage after every op of one steady-state step; "
        "dot: the peak; dotted line: bytes alive at the step start.",
    )


@figure(90)
def eval_vs_train(runs, **_) -> Plot:
    cfg = chosen_config(runs)
    base = "Does evaluation need more memory than a training step?"
    df = ok_runs(runs)
    if cfg is None or df["tensor_eval_peak_bytes"].isna().all():
        return Plot("eval_vs_train", base, None, "no evaluation figures in the records")
    w, d, _b = cfg
    df = df[(df["width"] == w) & (df["depth"] == d) & df["tensor_eval_peak_bytes"].notna()]
    df = one_per_point(df, ["trainer", "batch_size"])
    long = _long(
        df,
        {"tensor_peak_bytes": "training step", "tensor_eval_peak_bytes": "evaluation (one chunk)"},
        ["trainer", "batch_size", "eval_chunk"],
    )
    div, unit = axis_unit(long["value"])
    long["value"] = long["value"] / div
    order = trainer_order(long["trainer"])
    chunks = ", ".join(str(int(c)) for c in sorted(df["eval_chunk"].dropna().unique())) or "?"
    question = f"{base} (depth {d}, width {w}; evaluation chunk {chunks})"
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        # batch sizes differ by 16x: each panel its own scale
        g = _bars(
            long,
            "trainer",
            "value",
            "measure",
            "batch_size",
            (3.4, 1.3),
            order=order,
            palette="Paired",
            sharey=False,
        )
        g.set_axis_labels("", f"tensor-level peak ({unit})")
        g.set_titles(col_template="batch {col_name}")
        for ax in g.axes.flat:
            ax.tick_params(axis="x", rotation=30)
        _finish_grid(g, question)
    return Plot(
        "eval_vs_train",
        question,
        g.figure,
        "FF evaluates by trying every label: a chunk of n examples is num_classes x n rows.",
    )


@figure(180)
def max_batch(runs, maxbatch=None, **_) -> Plot:
    question = "What is the largest batch that fits the memory budget, per trainer and depth?"
    if maxbatch is None or len(maxbatch) == 0:
        return Plot("max_batch", question, None, "ffbench maxbatch did not run for these results")
    mb = maxbatch.copy()
    budgets = sorted(mb["budget_bytes"].dropna().unique())
    div, unit = axis_unit(budgets)
    mb["budget"] = mb["budget_bytes"].map(
        lambda x: f"budget {x / div:.4g} {unit}, width " if x == x else "budget ?, width "
    ) + mb["width"].astype(str)
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        g = _bars(mb, "depth", "max_batch_size", "trainer", "budget", (3.6, 1.4))
        for ax in g.axes.flat:  # bars from zero (never a log axis): their lengths compare
            for cont in ax.containers:
                ax.bar_label(cont, fmt="%d", fontsize=7)
        g.set_axis_labels("depth (hidden layers)", "largest batch that fits")
        g.set_titles(col_template="{col_name}")
        _finish_grid(g, question)
    capped = mb[mb["capped"] == True]  # noqa: E712
    return Plot(
        "max_batch",
        question,
        g.figure,
        "Measured (each probe a real run under the budget). "
        + (
            f"{len(capped)} search(es) hit the --max-batch cap: the true value is larger."
            if len(capped)
            else ""
        ),
    )


@figure(140)
def memory_vs_time(runs, **_) -> Plot:
    """The recurrent network's training-step memory over the number of time steps T, one
    line per trainer variant (bp[bptt_window=k] is truncated BPTT), one panel per shape."""
    from .claims.recurrent import recurrent_rows

    question = "Does training memory grow with the number of time steps? (recurrent network)"
    df = recurrent_rows(runs)
    if df is None or len(df) == 0:
        return Plot(
            "memory_vs_time", question, None, "no measurement of the recurrent network (--arch recurrent)"
        )
    df = df.assign(shape=[f"w{int(r.width)} d{int(r.depth)} b{int(r.batch_size)}" for r in df.itertuples()])
    long = _long(df, {"tensor_transient_bytes": "transient (peak - start)", TRAIN_PEAK: "training-step peak"},
                 ["variant", "time_steps", "shape"])  # fmt: skip
    div, unit = axis_unit(long["value"])
    long["value"] = long["value"] / div
    long = long.rename(columns={"variant": "trainer"})  # each variant: its own style in the map
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig = small_multiples(long, row="measure", col="shape", x="time_steps", question=question,
                              xlabel="time steps T", ylabel=unit)  # fmt: skip
        for ax in fig.axes:
            ax.set_xscale("log", base=2)
            ax.set_xticks(
                sorted(long["time_steps"].unique()),
                [str(int(t)) for t in sorted(long["time_steps"].unique())],
            )
    return Plot("memory_vs_time", question, fig,
                "Tensor-level bytes of one steady training step (exact). ff keeps only the states "
                "across steps; bp keeps every step's graph; bp[bptt_window=k] at most k steps'; "
                "bp-checkpoint each step's input states.")  # fmt: skip


@figure(150)
def black_box(runs, **_) -> Plot:
    """Test accuracy with and without the black box, per trainer, with the table of numbers."""
    from .claims.recurrent import BOX_TRAINERS, black_box_table

    question = "Does a black box in the forward pass stop learning? (test accuracy with and without)"
    table = black_box_table(runs)
    if not table:
        return Plot("black_box", question, None, "no train records with --black-box")
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig, axes = plt.subplots(len(table), 1, figsize=(8.5, 3.4 * len(table)), squeeze=False)
        for ax, row in zip(axes[:, 0], table):
            bars = [(t, w, 100 * row[f"{t} {w}"]) for t in BOX_TRAINERS for w in ("without", "with")
                    if row[f"{t} {w} seeds"]]  # fmt: skip
            labels = [f"{t}\n{w} box ({row[f'{t} {w} seeds']})" for t, w, _ in bars]
            values = [v for _, _, v in bars]
            colours = [palette(BOX_TRAINERS)[t] for t, _, _ in bars]
            cont = ax.bar(range(len(bars)), values, color=colours)
            for patch, (_, w, _) in zip(cont, bars):
                patch.set_alpha(0.45 if w == "without" else 1.0)
            ax.bar_label(cont, fmt="%.2f", fontsize=8)
            ax.set_xticks(range(len(bars)), labels, fontsize=8)
            ax.set_ylim(0, 100)  # bars start at zero: their lengths compare
            ax.set_ylabel("test accuracy (%)")
            frozen = ", ".join(row["bp frozen"]) or "none"
            ax.set_title(f"{row['setting']}\nbp with the box never updated: {frozen}", fontsize=9)
        _title(fig, question)
    return Plot("black_box", question, fig,
                "Mean over seeds (count in brackets). The box: 2-bit NumPy quantisation of the layer's "
                "RMS-normalised output, outside autograd. bp with the box: no gradient reaches the "
                "layers below it (they keep their initial weights); bp-ste: straight-through estimator.")  # fmt: skip


@figure(30, every_architecture=True)
def crossover(runs, **_) -> Plot:
    """Best FF / best BP training peak against how much of backprop's peak its saved
    activations are, every configuration of every architecture: where the ratio crosses 1."""
    question = "As activations grow, where does the most frugal FF overtake the most frugal BP? (crossover)"
    name = "crossover"
    table = best_of_families(with_train_peak(runs), TRAIN_PEAK)
    if len(table) == 0 or table["bp_activation_share"].isna().all():
        return Plot(
            name, question, None, "needs bp, another BP trainer and an FF trainer at one configuration"
        )
    t = table.dropna(subset=["bp_activation_share"]).copy()
    t["architecture"] = t["arch"].fillna("mlp") if "arch" in t.columns else "mlp"
    t["share"] = 100 * t["bp_activation_share"].astype("float64")
    with sns.axes_style("whitegrid"), plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(8, 4.8))
        for k, (arch, part) in enumerate(t.groupby("architecture", sort=True)):
            points = ax.scatter(part["share"], part["ratio"], c=part["ratio"], cmap=RATIO_CMAP, norm=ratio_norm(),
                                marker=MARKERS[k % len(MARKERS)], s=70, edgecolors="0.2", label=arch)  # fmt: skip
        bar = fig.colorbar(points, ax=ax, label="best FF / best BP (shared scale)")
        bar.ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        bar.set_ticks([0.25, 0.5, 1, 2, 4], labels=["1/4", "1/2", "1", "2", "4"])
        ax.legend(title="architecture")
        ax.set_yscale("log")
        ax.set_ylim(*RATIO_LIMITS)
        ax.set_yticks([0.25, 0.5, 1, 2, 4], ["1/4", "1/2", "1", "2", "4"])
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.axhline(1.0, color="0.3", lw=1, ls="--")
        _label_axes(
            ax,
            "saved activations at bp's steady-step peak (% of that peak)",
            "best FF / best BP training peak",
        )
        ax.set_xlim(0, 100)
        below = t[t["ratio"] < 1]
        if len(below):
            ax.axvline(below["share"].min(), color="tab:blue", lw=0.8, ls=":")
        _title(fig, question)
    where = (f"The first configuration where FF needs less is at {below['share'].min():.0f} % activations."
             if len(below) else "FF's best never needs less than BP's best here.")  # fmt: skip
    note = (
        "One point per configuration (results folder, architecture, shape, batch, optimizer); below the dashed "
        f"line the most frugal FF variant needs less than the most frugal BP variant. {where} "
        "Activations: tensors autograd saved for backward, as the tracker classifies them at bp's peak."
    )
    return Plot(name, question, fig, note)


@figure(20, every_architecture=True)
def frontier(runs, **_) -> list[Plot]:
    """One figure per architecture: each network's measured points (time per real example,
    training-step peak) of the FF and the exact-BP family, each family's Pareto frontier
    drawn as a line, dominated points faint."""
    from .claims.frontier import TIME, frontier_points

    points = frontier_points(runs)
    question = "Which family trains with less memory for its speed? (memory-time frontier)"
    if len(points) == 0:
        return [
            Plot("frontier", question, None, "needs step times and peaks of an FF and an exact-BP trainer")
        ]
    plots = []
    for k, (arch, part) in enumerate(points.groupby("arch", sort=False)):
        q = f"{question[:-1]}, {arch})"
        nets, names = list(part.groupby(["group", "network"], sort=True)), group_names(runs)
        cols = min(3, len(nets))
        rows = -(-len(nets) // cols)
        with sns.axes_style("whitegrid"), plt.rc_context(RC):
            fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols + 0.6, 3.4 * rows + 1.0), squeeze=False)
            for ax, ((group, net), s) in zip(axes.flat, nets):
                _frontier_panel(ax, s, TIME)
                ax.set_title(f"{net}\n{names[group]}", fontsize=9)
            for ax in list(axes.flat)[len(nets) :]:
                ax.axis("off")
            names = trainer_order(part["variant"])
            handles = [plt.Line2D([], [], lw=0, ms=6, color=trainer_style(t)["color"],
                                  marker=trainer_style(t)["marker"]) for t in names]  # fmt: skip
            handles += [plt.Line2D([], [], color="0.15", ls=ls) for ls in ("-", "--")]
            fig.suptitle(q, fontsize=13)
            fig.tight_layout(rect=(0, 0.1, 1, 1))
            fig.legend(handles, [*names, "FF frontier", "exact-BP frontier"], loc="lower center",
                       ncol=min(len(handles), 6), frameon=False)  # fmt: skip
        plots.append(Plot("frontier" if k == 0 else f"frontier_{arch}", q, fig,
                          "Every knob setting measured (trainer variant, batch, micro-batch, optimizer "
                          "implementation) of one network is a point; lower left is better. Solid: FF's "
                          "frontier, dashed: exact BP's; faint points are dominated within their family."))  # fmt: skip
    return plots


def _frontier_panel(ax, s, time: str) -> None:
    for _, r in s.iterrows():
        style = trainer_style(r["variant"])
        ax.plot([1e6 * r[time]], [r["peak"] / MiB], lw=0, ms=7, marker=style["marker"], color=style["color"],
                alpha=1.0 if r["on_frontier"] else 0.25, label=r["variant"])  # fmt: skip
    for fam, ls in (("ff", "-"), ("bp", "--")):
        f = s[(s["family"] == fam) & s["on_frontier"]].sort_values(time)
        ax.step(1e6 * f[time], f["peak"] / MiB, where="post", color="0.15", ls=ls, lw=1.2)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("median step time per real example (µs)")
    ax.set_ylabel("training-step peak (MiB)")


def without_image_bodies(runs):
    if runs is None or len(runs) == 0 or "arch" not in runs.columns:
        return runs
    return runs[~runs["arch"].map(is_image)]
