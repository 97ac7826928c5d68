"""Checks of the instrument: each says whether the measurement behaves as the code it
measures must behave. A failing check means ffbench is wrong, not that FF is."""

from __future__ import annotations

import math

from .. import thresholds as T
from . import Verdict, claim, not_evaluated, verdict_from
from .tables import chunks, depth_series, label, num, ok_runs, paired, variant, with_analytic


def _variant_series(rows):
    """`depth_series` of each variant of a trainer apart (ff micro-batch-major and layer-major,
    ff's two passes: one series is one schedule), the variant named where it is not the plain one."""
    named = rows.assign(_variant=[variant(r) for _, r in rows.iterrows()])
    for name, part in named.groupby("_variant", sort=False):
        for key, s in depth_series(part):
            yield (key if "[" not in name else f"{key} {name[name.index('[') :]}"), s


@claim("check", figure="activations_vs_depth", thresholds=("FLAT_TOLERANCE", "MIN_DEPTH"))
def ff_activations_flat_in_depth(runs, epochs=None, maxbatch=None) -> Verdict:
    """FF's memory held for backward does not grow with depth.

    Test: for trainer `ff` (each variant apart: a micro-batch schedule, a pass), at each fixed
    configuration but the depth (group, architecture,
    width or channels, batch, optimizer, ...) measured at two or more depths >= MIN_DEPTH, the most bytes saved for backward alive at once
    (`tensor_saved_activations_bytes`) over depth; flat when (max - min) / min <=
    FLAT_TOLERANCE. Depth 1 is listed, not tested: its only layer is in_features -> width.
    """
    v = Verdict()
    df = ok_runs(runs)
    ff = df[df["trainer"] == "ff"] if df is not None and len(df) else None
    metric = "tensor_saved_activations_bytes"
    if ff is None or len(ff) == 0 or ff[metric].isna().all():
        v.verdict = not_evaluated("no ff measurement with saved-activation bytes")
        return v
    v.eval_chunk = chunks(ff)
    passes, lines, series = {}, [], {}
    for key, s in _variant_series(ff):
        every = s.dropna(subset=[metric]).groupby("depth")[metric].mean().astype("float64")
        deep = every[every.index >= T.MIN_DEPTH]
        if len(deep) < 2:
            continue
        spread = (deep.max() - deep.min()) / deep.min() if deep.min() > 0 else math.inf
        passes[key] = spread <= T.FLAT_TOLERANCE
        series[key] = {
            "depths": [int(d) for d in every.index],
            "bytes": [int(x) for x in every],
            "spread": spread,
        }
        lines.append(f"{key}: " + ", ".join(f"d{int(d)} {x / 2**20:.3f} MiB" for d, x in every.items())
                     + f" (spread over d>={T.MIN_DEPTH} {100 * spread:.2f} %)")  # fmt: skip
    if not passes:
        v.verdict = not_evaluated("ff measured at one depth >= 2 only")
        return v
    v.verdict, v.numbers = verdict_from(passes), {"series": series}
    v.detail = f"{metric} of ff over depth: " + "; ".join(lines)
    return v


@claim("check", figure="activations_vs_depth", thresholds=("GROWTH_THRESHOLD",))
def ff_summed_transient_grows_with_depth(runs, epochs=None, maxbatch=None) -> Verdict:
    """Summed-loss FF holds more as the net deepens.

    Summed-loss FF runs one backward through every layer.

    Test: for `ff-summed` at each fixed configuration but the depth measured at two or more
    depths, `tensor_transient_bytes` is non-decreasing in depth and the deepest exceeds the
    shallowest by more than GROWTH_THRESHOLD, and at every depth >= 2 it exceeds `ff`'s at
    the same configuration (at depth 1 the two are the same computation).
    """
    v = Verdict()
    pairs = paired(runs, "ff-summed", "ff", "tensor_transient_bytes")
    if len(pairs) == 0:
        v.verdict = not_evaluated("needs ff and ff-summed at one configuration")
        return v
    passes, lines = {}, []
    for key, s in depth_series(pairs):
        s = s.sort_values("depth")
        if len(s) < 2:
            continue
        summed = s["ff-summed"].to_numpy()
        growth = summed[-1] / summed[0] - 1
        grows = bool((summed[1:] >= summed[:-1]).all() and growth > T.GROWTH_THRESHOLD)
        deep = s[s["depth"] >= 2]
        exceeds = bool(len(deep) > 0 and (deep["ff-summed"] > deep["ff"]).all())
        passes[key] = grows and exceeds
        lines.append(f"{key}: ff-summed/ff " + ", ".join(f"d{int(r.depth)} {r.ratio:.2f}" for r in s.itertuples())
                     + f"; grows {100 * growth:.0f} %")  # fmt: skip
    if not passes:
        v.verdict = not_evaluated("ff and ff-summed not both measured at two or more depths")
        return v
    v.verdict, v.detail = verdict_from(passes), "tensor_transient_bytes: " + "; ".join(lines)
    return v


def _eval_rise(row) -> float:
    return num(row["tensor_eval_peak_bytes"]) - num(row["tensor_eval_start_bytes"])


@claim("check", figure="eval_vs_train", thresholds=("EVAL_REPLICATION_FACTOR",))
def replicated_evaluation_costs_classes_times_rows(runs, epochs=None, maxbatch=None) -> Verdict:
    """FF's replicated evaluation costs about num_classes x the label loop.

    The replicated evaluation scores every label at once.

    Test: at each FF configuration measured with both `ff_eval` settings at one evaluation
    chunk, the replicated pass's evaluation rise (eval peak - eval start) is at least
    EVAL_REPLICATION_FACTOR x num_classes x the label loop's.
    """
    v = Verdict()
    df = ok_runs(runs)
    if df is None or len(df) == 0 or "ff_eval" not in df.columns:
        v.verdict = not_evaluated("no FF measurement with an evaluation setting")
        return v
    ff = df[df["trainer"].str.startswith("ff") & df["tensor_eval_peak_bytes"].notna()]
    passes, lines = {}, []
    keys = ["group", "trainer", "width", "depth", "batch_size", "eval_chunk"]
    for values, s in ff.groupby(keys, dropna=False):
        by_eval = {e: rows.iloc[0] for e, rows in s.groupby("ff_eval")}
        if {"label-loop", "replicated"} - set(by_eval):
            continue
        loop, rep = by_eval["label-loop"], by_eval["replicated"]
        classes = num(loop.get("num_classes", 10))
        classes = 10.0 if math.isnan(classes) else classes
        factor = _eval_rise(rep) / _eval_rise(loop)
        key = f"{values[1]} {label(loop)} chunk {int(values[5])}"
        passes[key] = factor >= T.EVAL_REPLICATION_FACTOR * classes
        lines.append(f"{key}: replicated rise {_eval_rise(rep) / 2**20:.2f} MiB = {factor:.2f} x the loop's "
                     f"{_eval_rise(loop) / 2**20:.2f} MiB ({int(classes)} classes)")  # fmt: skip
    if not passes:
        v.verdict = not_evaluated("no FF configuration measured with both ff_eval settings")
        return v
    v.verdict, v.detail, v.eval_chunk = verdict_from(passes), "; ".join(lines), chunks(ff)
    return v


@claim("check", figure="eval_vs_train", thresholds=("WHOLE_RUN_OVER_TRAINING",))
def ff_default_evaluation_stays_within_training(runs, epochs=None, maxbatch=None) -> Verdict:
    """With its default evaluation, FF's whole run needs no more than its training step.

    Test: at every FF configuration measured with the default evaluation (label loop) whose
    training rows alive at once (the batch, or its micro-batch) are at least the evaluation
    chunk, `tensor_whole_run_peak_bytes` <=
    WHOLE_RUN_OVER_TRAINING x the training-step peak (first and steady step). Evaluation must
    not decide a training-memory verdict. Smaller batches are listed with their ratio (an
    evaluation chunk larger than the batch can exceed a tiny training step).
    """
    v = Verdict()
    df = ok_runs(runs)
    if df is None or len(df) == 0 or "ff_eval" not in df.columns:
        v.verdict = not_evaluated("no FF measurement with an evaluation setting")
        return v
    ff = df[df["trainer"].str.startswith("ff") & (df["ff_eval"] == "label-loop")]
    if len(ff) == 0:
        v.verdict = not_evaluated("no FF measurement with the label-loop evaluation")
        return v
    passes, ratios, small = {}, {}, {}
    for _, r in ff.iterrows():
        train = max(num(r["tensor_peak_bytes"]), num(r["tensor_first_step_peak_bytes"]))
        ratio = num(r["tensor_whole_run_peak_bytes"]) / train
        chunk = num(r["eval_chunk"])
        if math.isnan(chunk) or math.isnan(ratio):
            continue  # a record without its evaluation chunk or figures decides nothing
        key = f"{r['trainer']} {label(r)} chunk {int(chunk)}"
        rows = num(r["micro"]) if "micro" in r and not math.isnan(num(r["micro"])) else num(r["batch_size"])
        if rows >= chunk:
            passes[key], ratios[key] = ratio <= T.WHOLE_RUN_OVER_TRAINING, ratio
        else:
            small[key] = ratio
    v.numbers, v.eval_chunk = {"whole_run_over_training": ratios, "batch_below_chunk": small}, chunks(ff)
    below = (
        "; batches (or micro-batches) below the chunk: " + ", ".join(f"{k} {x:.2f}" for k, x in small.items())
        if small
        else ""
    )
    if not passes:
        v.verdict = not_evaluated("no FF configuration with a batch at least the evaluation chunk" + below)
        return v
    worst = max(ratios, key=ratios.get)
    v.verdict = verdict_from(passes)
    v.detail = f"whole-run / training peak at {len(ratios)} FF configurations: largest {ratios[worst]:.3f} ({worst}){below}"
    return v


@claim("check", figure="measured_vs_analytic", thresholds=("ANALYTIC_TOLERANCE_BYTES",))
def analytic_model_equals_tracker(runs, epochs=None, maxbatch=None) -> Verdict:
    """The analytic memory model predicts the measured tensor-level peak to the byte.

    Test: at every `ok` measure run carrying `analytic_peak_bytes`, |analytic - measured| of
    the steady-step peak (`tensor_peak_bytes`), the first step's and the evaluation's is at
    most ANALYTIC_TOLERANCE_BYTES. Holds where it does (listed by trainer).
    """
    v = Verdict()
    df = with_analytic(runs)
    if df is None:
        v.verdict = not_evaluated("no analytic_peak_bytes in the records")
        return v
    pairs = [("analytic_peak_bytes", "tensor_peak_bytes"), ("analytic_first_step_peak_bytes", "tensor_first_step_peak_bytes"),
             ("analytic_eval_peak_bytes", "tensor_eval_peak_bytes")]  # fmt: skip
    off = sum(
        (df[a].astype("float64") - df[m].astype("float64")).abs() for a, m in pairs if a in df and m in df
    )
    df = df.assign(_off=off)
    passes = {t: bool((s["_off"] <= T.ANALYTIC_TOLERANCE_BYTES).all()) for t, s in df.groupby("trainer")}
    worst = {t: float(s["_off"].max()) for t, s in df.groupby("trainer")}
    v.verdict, v.numbers, v.eval_chunk = verdict_from(passes), {"largest_bytes_off": worst}, chunks(df)
    v.detail = (
        f"{len(df)} runs; largest difference (steady + first step + evaluation) per trainer: "
        + ", ".join(f"{t} {int(b)} B" for t, b in worst.items())
    )
    return v
