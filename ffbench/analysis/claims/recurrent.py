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
    return label(row).replace(f" T{int(row['time_steps'])}", "")


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
    v = Verdict(claim="FF in time holds no more memory for more time steps")
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
    """FF in time trains with less memory than the most frugal backpropagation through time.

    Test: at every recurrent configuration (group, width, depth, batch, T, optimizer,
    dtype) measured for an FF trainer and a BPTT variant (bp: full BPTT, bp with
    bptt_window: truncated, bp-checkpoint, bp-ste) at one micro-batch, the smallest
    training-step peak (`tensor_train_peak_bytes`) of FF and of exact BPTT (family bp: full
    BPTT, checkpointed); FF passes where its best is below (1 - MEMORY_MARGIN) x the best
    exact BPTT's. Other rules (truncated BPTT, bp-ste, the cross-entropy read-out bp-ce) are
    listed beside FF, never deciding it; truncated BPTT's accuracy against full BPTT's (train
    records) is reported beside it.
    """
    v = Verdict(claim="FF in time trains with less memory than the most frugal exact BPTT")
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


@claim("finding", figure="black_box", thresholds=("BLACK_BOX_POINTS",))
def ff_learns_through_a_black_box(runs, epochs=None, maxbatch=None) -> Verdict:
    """A black box in the forward pass does not alter FF's learning.

    Test: for each black-box setting trained by `ff` with and without the box (train records;
    the box: 2-bit NumPy quantisation of layer k's RMS-normalised output, outside autograd),
    FF passes where its mean test accuracy with the box is within BLACK_BOX_POINTS
    percentage points of its mean without. Reported beside it, never deciding it: plain
    backprop with and without the box (with it, no gradient reaches the layers below: the
    parameters it left at their initial values are listed) and backprop with a
    straight-through estimator (bp-ste).
    """
    v = Verdict(claim="A black box in the forward pass does not alter FF's learning")
    table = black_box_table(runs)
    passes, lines = {}, []
    for row in table:
        drop = row["ff without"] - row["ff with"]
        frozen = ", ".join(row["bp frozen"]) or "none"
        lines.append(
            f"{row['setting']}: ff {_points(row['ff without'])} without, {_points(row['ff with'])} with "
            f"({row['ff with seeds']} seeds); bp {_points(row['bp without'])} without, {_points(row['bp with'])} "
            f"with (never updated: {frozen}); bp-ste {_points(row['bp-ste with'])} with"
        )
        if row["ff with seeds"] and row["ff without seeds"]:
            passes[row["setting"]] = abs(drop) <= T.BLACK_BOX_POINTS / 100
    v.numbers = {"settings": table, "points": T.BLACK_BOX_POINTS}
    if not passes:
        v.verdict = not_evaluated("needs train records of ff with and without --black-box at one setting")
        v.detail = "; ".join(lines)
        return v
    v.verdict, v.detail = verdict_from(passes), "; ".join(lines)
    v.summary = "; ".join(
        f"{r['setting']}: ff {100 * (r['ff with'] - r['ff without']):+.2f} points with the box, "
        f"bp {_points(r['bp with'])} ({'frozen: ' + ', '.join(r['bp frozen']) if r['bp frozen'] else 'nothing frozen'}), "
        f"bp-ste {_points(r['bp-ste with'])}"
        for r in table
        if r["ff with seeds"] and r["ff without seeds"]
    )
    return v
