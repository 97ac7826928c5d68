"""Claims of issue 16: Forward-Forward in time against backpropagation through time, and
learning through a black box (see ffbench/trainers/recurrent.py and ffbench/blackbox.py)."""

from __future__ import annotations

import math

from .. import thresholds as T
from . import Verdict, claim, not_evaluated, verdict_from
from .tables import TRAIN_PEAK, label, num, pair_key, ratio_words, with_train_peak, with_variants

READOUT = "bp-ce"  # a different model (soft-max head, no negatives): reported, never the BPTT side


def recurrent_rows(runs):
    """Measure rows of --arch recurrent with a training-step peak, one per variant, each
    with a `variant` column (bp[bptt_window=4] is truncated BPTT)."""
    df = with_train_peak(runs)
    if df is None or len(df) == 0 or "arch" not in df.columns:
        return None
    df = df[df["arch"] == "recurrent"]
    return with_variants(df) if len(df) else None


def shape(row) -> str:
    """A recurrent configuration without its number of time steps."""
    return label(row, steps=False)


def _series_keys(df) -> list[str]:
    """Everything that identifies a configuration (`pair_key`) but the number of time steps."""
    return [c for c in pair_key(df) if c != "time_steps"]


@claim("check", figure="memory_vs_time", thresholds=("TIME_FLAT_TOLERANCE",))
def ff_transient_flat_in_time(runs, epochs=None, maxbatch=None) -> Verdict:
    """FF in time holds no more memory for more time steps.

    Test: for each FF trainer on the recurrent network, at each fixed (group, width, depth,
    batch, optimizer, dtype) measured at two or more `time_steps`, the training step's
    transient (`tensor_transient_bytes`: peak minus the bytes alive at its start) over T;
    flat when (max - min) / min <= TIME_FLAT_TOLERANCE. A failure means the trainer keeps
    something across steps that it must not.
    """
    v = Verdict()
    df = recurrent_rows(runs)
    ff = df[df["trainer"].str.startswith("ff")] if df is not None else None
    if ff is None or len(ff) == 0:
        v.verdict = not_evaluated("no FF measurement of the recurrent network")
        return v
    passes, lines, series = {}, [], {}
    for values, s in ff.groupby(["variant", *_series_keys(ff)], dropna=False):
        by_t = s.groupby("time_steps")["tensor_transient_bytes"].mean().astype("float64")
        if len(by_t) < 2:
            continue
        spread = (by_t.max() - by_t.min()) / by_t.min()
        key = f"{values[0]} {shape(s.iloc[0])}"
        passes[key] = spread <= T.TIME_FLAT_TOLERANCE
        series[key] = {
            "time_steps": [int(t) for t in by_t.index],
            "bytes": [int(b) for b in by_t],
            "spread": spread,
        }
        lines.append(
            f"{key}: "
            + ", ".join(f"T{int(t)} {b:,.0f} B" for t, b in by_t.items())
            + f" (spread {100 * spread:.2f} %)"
        )
    if not passes:
        v.verdict = not_evaluated("FF measured at one number of time steps only")
        return v
    v.verdict, v.numbers = verdict_from(passes), {"series": series}
    v.detail = "tensor_transient_bytes of FF over T: " + "; ".join(lines)
    v.summary = "; ".join(f"{k}: spread {100 * s['spread']:.2f} % over T {min(s['time_steps'])}-{max(s['time_steps'])}"
                          for k, s in series.items())  # fmt: skip
    return v


def _accuracy_of(runs, **match) -> tuple[float, int]:
    """Mean test accuracy and seed count of the train rows matching `match` (NaN, 0: none)."""
    if runs is None or len(runs) == 0 or "test_accuracy" not in runs.columns:
        return math.nan, 0
    rows = runs[runs["kind"] == "train"]
    for col, value in match.items():
        rows = rows[rows[col].isna()] if value is None else rows[rows[col] == value]
    return (float(rows["test_accuracy"].astype("float64").mean()), len(rows)) if len(rows) else (math.nan, 0)


def truncation_cost(runs) -> str:
    """Truncated BPTT's accuracy beside full BPTT's, from train records of --arch recurrent."""
    if runs is None or len(runs) == 0 or "bptt_window" not in runs.columns:
        return "no train records of truncated BPTT"
    train = runs[(runs["kind"] == "train") & (runs["arch"] == "recurrent") & (runs["trainer"] == "bp")]
    if "black_box" in train.columns:
        train = train[train["black_box"].isna()]  # runs through the box answer another claim
    lines = []
    for (depth, width, steps, epochs), s in train.groupby(["depth", "width", "time_steps", "epochs"]):
        full, n_full = _accuracy_of(s, bptt_window=None)
        for k in sorted({int(w) for w in s["bptt_window"].dropna()}):
            cut, n_cut = _accuracy_of(s, bptt_window=k)
            lines.append(f"d{int(depth)} w{int(width)} T{int(steps)} {int(epochs)} epochs: window {k} test {100 * cut:.2f} % "
                         f"({n_cut} seeds) vs full BPTT {100 * full:.2f} % ({n_full}): "
                         f"{100 * (cut - full):+.2f} points")  # fmt: skip
    return "; ".join(lines) or "no train records of truncated BPTT"


@claim("finding", figure="memory_vs_time", thresholds=("MEMORY_MARGIN",))
def ff_in_time_needs_less_memory_than_bptt(runs, epochs=None, maxbatch=None) -> Verdict:
    """FF in time trains with less memory than the most frugal exact BPTT.

    Test: at every recurrent configuration (group, width, depth, batch, T, optimizer,
    dtype) measured for an FF trainer and a BPTT variant (bp: full BPTT, bp with
    bptt_window: truncated, bp-checkpoint, bp-ste) at one micro-batch, the smallest
    training-step peak (`tensor_train_peak_bytes`) of FF and of exact BPTT (family bp: full
    BPTT, checkpointed); FF passes where its best is below (1 - MEMORY_MARGIN) x the best
    exact BPTT's. Other rules (truncated BPTT, bp-ste, the cross-entropy read-out bp-ce) are
    listed beside FF, never deciding it; truncated BPTT's accuracy against full BPTT's (train
    records) is reported beside it.
    """
    v = Verdict()
    df = recurrent_rows(runs)
    if df is None or len(df) == 0:
        v.verdict = not_evaluated("no measurement of the recurrent network")
        return v
    passes, lines, numbers = {}, [], {"margin": T.MEMORY_MARGIN, "configurations": {}}
    for _, s in df.groupby([*_series_keys(df), "time_steps", "micro"], dropna=False):
        ff, bptt, others = (s[s["family"] == name] for name in ("ff", "bp", "other"))
        if len(ff) == 0 or len(bptt) == 0:
            continue
        f, b = (part.loc[part[TRAIN_PEAK].astype("float64").idxmin()] for part in (ff, bptt))
        ratio = num(f[TRAIN_PEAK]) / num(b[TRAIN_PEAK])
        key = label(f)
        passes[key] = ratio < 1 - T.MEMORY_MARGIN
        everyone = {r["variant"]: int(num(r[TRAIN_PEAK])) for _, r in s.iterrows()}
        beside = {r["variant"]: num(r[TRAIN_PEAK]) / num(b[TRAIN_PEAK]) for _, r in others.iterrows()}
        numbers["configurations"][key] = {"ff_best": f["variant"], "bptt_best": b["variant"], "ratio": ratio,
                                          "time_steps": int(f["time_steps"]), "bytes": everyone,
                                          "others_over_bptt": beside}  # fmt: skip
        named = "; beside FF: " + ", ".join(f"{t} {x:.2f}" for t, x in beside.items()) if beside else ""
        lines.append(f"{key}: {f['variant']} {num(f[TRAIN_PEAK]) / 2**20:.2f} MiB / {b['variant']} "
                     f"{num(b[TRAIN_PEAK]) / 2**20:.2f} MiB = {ratio:.2f}{named}")  # fmt: skip
    if not passes:
        v.verdict = not_evaluated("no recurrent configuration measured for FF and a BPTT variant")
        return v
    cost = truncation_cost(runs)
    v.verdict, v.numbers = verdict_from(passes), {**numbers, "truncated_bptt_accuracy": cost}
    v.detail = "training-step peak, best FF / best BPTT: " + "; ".join(lines) + f". Truncated BPTT: {cost}."
    ratios = [c["ratio"] for c in numbers["configurations"].values()]
    v.summary = (f"recurrent: {ratio_words(ratios, whom='full BPTT')} at its best, over "
                 f"{len(ratios)} configurations (T {', '.join(sorted({str(c['time_steps']) for c in numbers['configurations'].values()}, key=int))})")  # fmt: skip
    return v


BOX_TRAINERS = ("ff", "bp", "bp-ste")


def black_box_table(runs):
    """Per black-box setting trained with the box (dataset, architecture, depth, width, time
    steps, epochs, box after layer k): mean test accuracy and seeds of ff, bp and bp-ste with
    the box and without one (the same setting, no box), and the parameters plain bp left at
    their initial values. A list of dicts."""
    if runs is None or len(runs) == 0 or "black_box" not in runs.columns:
        return []
    train = runs[(runs["kind"] == "train") & runs["test_accuracy"].notna()]
    keys = ["dataset", "arch", "depth", "width", "time_steps", "epochs"]
    out = []
    for values, _ in train[train["black_box"].notna()].groupby([*keys, "black_box"]):
        same = train
        for col, value in zip(keys, values):
            same = same[same[col] == value]
        dataset, arch, depth, width, steps, epochs, box = values
        where = f"{arch} T{int(steps)}" if arch == "recurrent" else arch
        row = {
            "setting": f"{dataset} {where} d{int(depth)} w{int(width)} {int(epochs)} epochs, box after layer {int(box)}"
        }
        if "bptt_window" in same.columns:
            same = same[same["bptt_window"].isna()]  # truncated BPTT is another trainer
        for trainer in BOX_TRAINERS:
            for with_box, value in (("with", box), ("without", None)):
                acc, seeds = _accuracy_of(same, trainer=trainer, black_box=value)
                row[f"{trainer} {with_box}"], row[f"{trainer} {with_box} seeds"] = acc, seeds
        frozen = same[(same["trainer"] == "bp") & (same["black_box"] == box)]
        names = frozen["black_box_frozen"] if "black_box_frozen" in frozen.columns else []
        row["bp frozen"] = sorted({f for v in names if isinstance(v, str) for f in v.split(", ") if f})
        out.append(row)
    return out


def _points(x: float) -> str:
    return "–" if math.isnan(x) else f"{100 * x:.2f} %"


def _change(row: dict, trainer: str, without: str | None = None) -> tuple[float, int]:
    """`trainer`'s mean test accuracy with the box minus `without`'s (default: the same
    trainer's) without it, and the fewer of the two seed counts (0: one side missing)."""
    without = without or trainer
    seeds = min(row[f"{trainer} with seeds"], row[f"{without} without seeds"])
    return (row[f"{trainer} with"] - row[f"{without} without"] if seeds else math.nan), seeds


def _box_line(row: dict) -> str:
    (ff, n_ff), (bp, n_bp), (ste, n_ste) = (
        _change(row, "ff"),
        _change(row, "bp"),
        _change(row, "bp-ste", "bp"),
    )
    frozen = ", ".join(row["bp frozen"]) or "none"
    return (f"{row['setting']}: ff {_points(row['ff without'])} without, {_points(row['ff with'])} with "
            f"({_signed(ff)}, {n_ff} seeds); bp {_points(row['bp without'])} without, {_points(row['bp with'])} "
            f"with ({_signed(bp)}, {n_bp} seeds; never updated: {frozen}); bp-ste {_points(row['bp-ste with'])} "
            f"with ({_signed(ste)} against bp without, {n_ste} seeds)")  # fmt: skip


def _signed(change: float) -> str:
    return "–" if math.isnan(change) else f"{100 * change:+.2f} points"


@claim("finding", figure="black_box", thresholds=("BLACK_BOX_POINTS", "MIN_SEEDS"), evidence="accuracy")
def ff_learns_through_a_black_box(runs, epochs=None, maxbatch=None) -> Verdict:
    """A black box in the forward pass does not alter FF's learning, where it alters backprop's.

    Test: for each black-box setting (train records; the box: 2-bit NumPy quantisation of
    layer k's RMS-normalised output, outside autograd) trained by `ff` and by plain `bp`, each
    with and without the box, at least MIN_SEEDS seeds each: FF's change (mean test accuracy
    with the box minus without) and BP's. The setting passes where FF's change is within
    BLACK_BOX_POINTS percentage points and BP's is not: the box must matter to backprop there
    (no gradient reaches the layers below it, which keep their initial weights: listed), or
    the setting cannot tell FF from BP and fails (a wide first layer, even random, still
    serves MNIST: BP then loses under half a point). The declared setting is a narrow one
    (MNIST, 2 x 32, box after layer 1: a random 32-unit layer is a bottleneck BP cannot train
    around). Backprop with a straight-through estimator (bp-ste) is reported beside, never
    deciding. A setting with fewer seeds, or without bp on both sides, is listed, not decided.
    """
    v = Verdict()
    table = black_box_table(runs)
    tol, passes, short = T.BLACK_BOX_POINTS / 100, {}, []
    for row in table:
        (ff, n_ff), (bp, n_bp) = _change(row, "ff"), _change(row, "bp")
        if min(n_ff, n_bp) < T.MIN_SEEDS:
            short.append(f"{row['setting']} (ff {n_ff}, bp {n_bp} seeds with and without the box)")
            continue
        passes[row["setting"]] = abs(ff) <= tol < abs(bp)
    v.numbers = {"settings": table, "points": T.BLACK_BOX_POINTS, "min_seeds": T.MIN_SEEDS}
    v.detail = "; ".join(_box_line(row) for row in table)
    if not passes:
        why = "; ".join(short) or "no train records with --black-box"
        v.verdict = not_evaluated(f"needs ff and bp with and without --black-box at one setting, "
                                  f">= {T.MIN_SEEDS} seeds each: {why}")  # fmt: skip
        return v
    v.verdict = verdict_from(passes)
    blind = [r["setting"] for r in table if r["setting"] in passes and abs(_change(r, "bp")[0]) <= tol]
    if blind:
        v.detail += (f". The box barely moves bp at {'; '.join(blind)} (within {T.BLACK_BOX_POINTS} points): "
                     "that setting cannot tell FF from BP")  # fmt: skip
    if short:
        v.detail += f". Not decided (fewer than {T.MIN_SEEDS} seeds): {'; '.join(short)}"
    v.summary = "; ".join(
        f"{r['setting']}: ff {_signed(_change(r, 'ff')[0])}, bp {_signed(_change(r, 'bp')[0])} with the box"
        + (" (cannot tell FF from BP)" if r["setting"] in blind else "")
        for r in table
        if r["setting"] in passes
    )
    return v
