"""Findings: what the measurements say about Forward-Forward against backprop."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from statistics import mean

import pandas as pd

from ...config import ACCUM_DEFAULT
from .. import thresholds as T
from ..families import family_of
from ..target import outcomes, welch_interval
from ..timing import summary as timing_summary
from . import DOES_NOT_HOLD, HOLDS, Verdict, claim, not_evaluated, verdict_from
from .tables import (
    TRAIN_PEAK,
    best_of_families,
    chunks,
    depth_series,
    is_ff,
    label,
    num,
    ok_runs,
    pair_key,
    ratio_words,
    with_train_peak,
)


def _side(ratio: float, margin: float) -> str:
    if ratio < 1 - margin:
        return "FF less"
    if ratio > 1 + margin:
        return "BP less"
    return "level"


@claim(
    "finding",
    figure="best_ff_vs_best_bp",
    thresholds=("MEMORY_MARGIN", "ACTIVATION_DOMINATED_RATIO"),
)
def best_ff_needs_less_memory_than_best_bp(runs, epochs=None, maxbatch=None) -> Verdict:
    """The most frugal FF trains with less memory than the most frugal exact backprop, at equal micro-batch.

    Test: at every configuration (group, architecture, width or channels, depth, batch,
    optimizer, dtype) and micro-batch (real examples per micro-batch; FF forwards as many
    negatives beside them) measured for at least one FF trainer and one exact-backprop
    trainer (family bp: bp, bp-checkpoint, bp-accum, bp-inbackward, full BPTT), take the
    smallest training-step tensor-level peak of each family (`tensor_train_peak_bytes`:
    first and steady step, evaluation excluded). FF passes where its best is below
    (1 - MEMORY_MARGIN) x BP's best; BP wins where FF's best is above (1 + MEMORY_MARGIN) x;
    otherwise the two are level. Holds where FF passes (listed). Per architecture: the FF/BP
    ratio against depth and the crossover depth (the smallest depth from which FF passes at
    every deeper depth measured), or none in the measured range. Other rules (bp-local,
    bp-ste, bp-ce, truncated BPTT) are listed beside FF, never BP's best.
    """
    v = Verdict()
    table = best_of_families(with_train_peak(runs), TRAIN_PEAK)
    if len(table) == 0:
        v.verdict = not_evaluated(
            "no configuration measured for an FF and an exact-BP trainer at one micro-batch"
        )
        return v
    passes, lines, numbers = {}, [], {"margin": T.MEMORY_MARGIN, "configurations": {}}
    for _, r in table.iterrows():
        key, side = unique_label(r, passes), _side(r["ratio"], T.MEMORY_MARGIN)
        passes[key] = side == "FF less"
        others = {t: b / r["bp_bytes"] for t, b in r["others"].items()}
        numbers["configurations"][key] = {
            "arch": _arch(r), "depth": int(r["depth"]), "micro": int(r["micro"]),
            "ff_best": r["ff_best"], "ff_bytes": int(r["ff_bytes"]), "bp_best": r["bp_best"],
            "bp_bytes": int(r["bp_bytes"]), "ratio": r["ratio"], "side": side, "others_over_bp": others,
            "activation_dominated": _activation_dominated(r),
            "bp_activation_share": None if pd.isna(r["bp_activation_share"]) else float(r["bp_activation_share"]),
        }  # fmt: skip
        beside = "; beside FF: " + ", ".join(f"{t} {x:.2f}" for t, x in others.items()) if others else ""
        lines.append(f"{key}: {r['ff_best']} / {r['bp_best']} {r['ratio']:.2f} ({side}{beside})")
    dominated = sum(c["activation_dominated"] for c in numbers["configurations"].values())
    per_arch = crossover_lines(table, T.MEMORY_MARGIN)
    numbers["per_architecture"], numbers["crossover"] = per_arch["lines"], per_arch["crossover"]
    numbers["architectures"] = sorted(per_arch["crossover"])
    v.summary = "\n".join(per_arch["lines"])  # one line per architecture
    v.verdict = verdict_from(passes)
    v.numbers = numbers
    v.detail = (
        f"best FF / best exact-BP training-step peak at equal micro-batch: {'; '.join(lines)}. FF less at "
        f"{sum(passes.values())} of {len(passes)} configurations; {dominated} activation-dominated (batch >= "
        f"{T.ACTIVATION_DOMINATED_RATIO} x width for an MLP, saved activations >= half of bp's peak for "
        f"conv/local). Per architecture: {' | '.join(per_arch['lines'])}. FF/BP over depth: "
        f"{' | '.join(per_arch['over_depth'])}."
    )
    return v


def _arch(r) -> str:
    arch = r.get("arch")
    return arch if isinstance(arch, str) else "mlp"


def unique_label(row, taken) -> str:
    """`label(row)`, made unique among `taken` (rows of two folders, or differing in a field
    the label leaves out, never share an entry): the folder's name, then a count."""
    key = label(row)
    if key in taken:
        key = f"{key} [{Path(row['group_folder']).name}]"
    base, n = key, 2
    while key in taken:
        key, n = f"{base} #{n}", n + 1
    return key


def crossover_lines(table, margin: float) -> dict:
    """Per architecture: one line (the ratio in words, FF/BP against depth, the crossover
    depth or none) and the series {label: {depths, ratios, crossover}}; each row is judged
    by its own ratio (FF less below 1 - margin)."""
    lines, crossover, ratios = [], {}, []
    archs = [_arch(r) for _, r in table.iterrows()]
    for arch in dict.fromkeys(archs):
        part = table[[a == arch for a in archs]]
        series, axis = {}, "depth"
        if arch == "recurrent" and not depth_series(part) and "time_steps" in part.columns:
            axis = "time_steps"  # FF in time: the unrolled depth is the number of time steps
        for name, s in depth_series(part, axis):
            s = s.sort_values(axis)
            ok = [_side(x, margin) == "FF less" for x in s["ratio"]]
            depths = [int(d) for d in s[axis]]
            cross = next((d for i, d in enumerate(depths) if all(ok[i:])), None)
            series[name] = {
                "axis": axis,
                "depths": depths,
                "ratios": [float(x) for x in s["ratio"]],
                "crossover": cross,
            }
        crossover[arch] = series
        n_less = sum(_side(x, margin) == "FF less" for x in part["ratio"])
        text = f"{arch}: {ratio_words(list(part['ratio']))} ({len(part)} configurations, FF less at {n_less})"
        word = "depth" if axis == "depth" else "T"
        if series:
            text += f"; FF/BP over {word}: " + "; ".join(
                f"{name} " + ", ".join(f"{word[0]}{d} {x:.2f}" for d, x in zip(s["depths"], s["ratios"]))
                + (f" (crossover {word} {s['crossover']})" if s["crossover"] is not None
                   else f" (no crossover in {word} {min(s['depths'])}-{max(s['depths'])})")
                for name, s in series.items()
            )  # fmt: skip
        else:
            text += "; one depth per configuration: no crossover can be read"
        lines.append(text)
        ratios.append(f"{arch}: " + "; ".join(
            f"{name} " + ", ".join(f"{word[0]}{d} {x:.2f}" for d, x in zip(s["depths"], s["ratios"]))
            for name, s in series.items()
        ))  # fmt: skip
    return {"lines": lines, "crossover": crossover, "over_depth": ratios}


def _activation_dominated(r) -> bool:
    """MLP: batch >= ACTIVATION_DOMINATED_RATIO x width; any other body (conv, local,
    recurrent): bp's saved activations are at least half of its steady-step peak."""
    arch = r.get("arch")
    if isinstance(arch, str) and arch != "mlp":
        share = r.get("bp_activation_share")
        return bool(share is not None and not pd.isna(share) and share >= 0.5)
    return int(r["batch_size"]) >= T.ACTIVATION_DOMINATED_RATIO * int(r["width"])


def _accuracy_groups(runs):
    """Train rows by (dataset, architecture): {trainer: rows} for FF and BP trainers."""
    acc = (
        runs[runs["test_accuracy"].notna() & (runs["status"] == "ok")]
        if runs is not None and len(runs)
        else None
    )
    for other in ("black_box", "bptt_window"):  # the black box, truncated BPTT: other claims
        if acc is not None and other in acc.columns:
            acc = acc[acc[other].isna()]
    if acc is None or len(acc) == 0:
        return {}
    keys = [c for c in ("dataset", "arch", "depth", "width") if c in acc.columns]
    if "epochs" in acc.columns:
        # a trainer's accuracy is its longest training: shorter runs of the same network (the
        # black box's short controls) are other experiments, never seeds to average in
        longest = acc.groupby([*keys, "trainer"], dropna=False)["epochs"].transform("max")
        acc = acc[acc["epochs"] == longest]
    return {k: dict(tuple(s.groupby("trainer"))) for k, s in acc.groupby(keys, dropna=False)}


def _mean_error(rows) -> float:
    return float(1 - rows["test_accuracy"].astype("float64").mean())


def _values(column) -> list[float]:
    return [float(x) for x in column if x is not None and not pd.isna(x)]


def _interval(
    ff: list[float], bp: list[float], margin: float, scale: float = 100, unit: str = " points"
) -> dict:
    """The ACCURACY_CONFIDENCE Welch t-interval of mean(FF) - mean(BP): `decision` True where
    it lies at or below `margin`, False where above it, None where it straddles it (said in
    `unit`s of the values x `scale`)."""
    d, lo, hi = welch_interval(ff, bp, T.ACCURACY_CONFIDENCE)
    decision = True if hi <= margin else False if lo > margin else None
    ends = sorted((scale * lo, scale * hi))
    why = "" if decision is not None else (f"FF - BP {scale * d:+.2f}{unit}, interval [{ends[0]:+.2f}, "
                                           f"{ends[1]:+.2f}] straddles {scale * margin:+.2f}")  # fmt: skip
    return {"difference": d, "interval": [lo, hi], "margin": margin, "decision": decision, "why": why}


def _error_comparison(where: str, ff, bp) -> dict:
    """Test error of FF's runs against BP's (rows of `target.outcomes`) at the target (the
    first epoch whose validation accuracy reached it) or at the cap (runs that trained every
    epoch of their cap); FF passes where its error is confidently within the tolerance."""
    a, b = _values(ff[f"{where}_error"]), _values(bp[f"{where}_error"])
    out = {"ff_errors": a, "bp_errors": b, "ff_runs": len(ff), "bp_runs": len(bp)}
    if where == "target" and not a and len(ff) >= T.MIN_SEEDS and len(b) >= T.MIN_SEEDS:
        return {**out, "decision": False, "why": f"FF never reached the target in {len(ff)} runs"}
    if min(len(a), len(b)) < T.MIN_SEEDS:
        did = "reached the target" if where == "target" else "ran to their cap"
        return {
            **out,
            "decision": None,
            "why": f"{len(a)} FF and {len(b)} BP runs {did} (< {T.MIN_SEEDS} each)",
        }
    return {**out, **_interval(a, b, T.ACCURACY_REL_TOLERANCE * mean(b))}


@claim(
    "finding",
    figure="memory_at_target",
    thresholds=("ACCURACY_REL_TOLERANCE", "MIN_SEEDS", "TARGET_ACCURACY", "ACCURACY_CONFIDENCE"),
    evidence="accuracy",
)
def ff_reaches_bp_accuracy_at_equal_architecture(runs, epochs=None, maxbatch=None) -> Verdict:
    """FF reaches backprop's accuracy with the same network.

    Test: for each dataset and architecture (depth x width) trained by an FF trainer and by
    `bp` with at least MIN_SEEDS runs each, test error is compared twice: at the target (the
    first epoch whose validation accuracy reached TARGET_ACCURACY of the dataset and
    architecture) and at the cap (runs that trained every epoch of their cap). Each passes
    where the two-sided ACCURACY_CONFIDENCE Welch t-interval of FF's mean test error minus
    BP's lies at or below ACCURACY_REL_TOLERANCE x BP's mean, and fails where it lies above
    it; an interval straddling that line, or fewer than MIN_SEEDS runs on a side, decides
    nothing (FF never reaching the target where BP's runs did fails). Each trainer's accuracy
    is its longest training on that network (shorter runs, e.g. black-box controls, are not
    averaged in). Reported beside it: the training-step memory of each at that configuration
    (the analytic `analytic_train_peak_bytes` of the train record) and the epochs and CPU
    seconds to the target.
    """
    v = Verdict()
    oc = outcomes(runs, epochs)
    passes, lines, undecided = {}, [], []
    numbers = {"tolerance": T.ACCURACY_REL_TOLERANCE, "confidence": T.ACCURACY_CONFIDENCE,
               "interval": "two-sided Welch t-interval of the difference of mean test errors (FF - BP)",
               "configurations": {}}  # fmt: skip
    for key, by_trainer in _accuracy_groups(runs).items():
        if "bp" not in by_trainer:
            continue
        bp = by_trainer["bp"]
        for trainer, ff in by_trainer.items():
            if not is_ff(trainer):
                continue
            if min(len(ff), len(bp)) < T.MIN_SEEDS:
                undecided.append(
                    f"{'/'.join(map(str, key))} {trainer}: {len(ff)} and {len(bp)} seeds (< {T.MIN_SEEDS})"
                )
                continue
            entry = _compare_accuracy(key, trainer, ff, bp, oc)
            name = f"{entry['dataset']} {entry['architecture']} {trainer}"
            numbers["configurations"][name] = entry
            for where in ("target", "cap"):
                c = entry[f"at_{where}"]
                if c["decision"] is None:
                    undecided.append(f"{name} at the {where}: {c['why']}")
                else:
                    passes[f"{name} at the {where}"] = c["decision"]
            lines.append(_accuracy_line(name, entry))
    v.numbers = numbers
    v.eval_chunk = chunks(runs[runs["test_accuracy"].notna()]) if runs is not None and len(runs) else "n/a"
    open_ = f"; undecided: {'; '.join(undecided)}" if undecided else ""
    v.detail = "; ".join(lines) + open_
    if not passes:
        v.verdict = not_evaluated(
            f"no comparison decided: {'; '.join(undecided)}"
            if undecided
            else f"needs train records of an FF trainer and bp at one architecture, >= {T.MIN_SEEDS} seeds each"
        )
        return v
    v.verdict = verdict_from(passes)
    v.summary = "; ".join(
        f"{name}: test error FF {100 * e['ff_error']:.2f} % vs BP {100 * e['bp_error']:.2f} % "
        f"({e['ff_seeds']} seeds)"
        for name, e in numbers["configurations"].items()
    )
    return v


def _mean_or_nan(values) -> float:
    values = _values(values)
    return mean(values) if values else math.nan


def _compare_accuracy(key, trainer, ff, bp, oc) -> dict:
    dataset = key[0] if isinstance(key, tuple) else key
    ff_o, bp_o = oc[oc["path"].isin(list(ff["path"]))], oc[oc["path"].isin(list(bp["path"]))]
    mem = {
        name: num(rows["analytic_train_peak_bytes"].iloc[0])
        if "analytic_train_peak_bytes" in rows
        else math.nan
        for name, rows in (("ff", ff), ("bp", bp))
    }
    reached = {n: o[o["reached"] == True] for n, o in (("ff", ff_o), ("bp", bp_o))}  # noqa: E712
    return {
        "dataset": str(dataset), "architecture": f"{int(ff['depth'].iloc[0])}x{int(ff['width'].iloc[0])}",
        "ff_error": _mean_error(ff), "bp_error": _mean_error(bp), "ff_seeds": len(ff), "bp_seeds": len(bp),
        "ff_train_peak_bytes": mem["ff"], "bp_train_peak_bytes": mem["bp"],
        "target_accuracy": float(oc["target"].iloc[0]) if len(ff_o) else T.target_accuracy(dataset),
        "ff_reached": len(reached["ff"]), "bp_reached": len(reached["bp"]),
        "ff_epochs_to_target": _mean_or_nan(reached["ff"]["target_epoch"]),
        "bp_epochs_to_target": _mean_or_nan(reached["bp"]["target_epoch"]),
        "ff_seconds_to_target": _mean_or_nan(reached["ff"]["unflagged_cpu_seconds"]),
        "bp_seconds_to_target": _mean_or_nan(reached["bp"]["unflagged_cpu_seconds"]),
        "at_target": _error_comparison("target", ff_o, bp_o), "at_cap": _error_comparison("cap", ff_o, bp_o),
        "recipes": {n: _recipe(rows) for n, rows in (("ff", ff), ("bp", bp))},
    }  # fmt: skip


def _recipe(rows) -> dict:
    """A trainer's recipe over its runs, and the tuning that chose it (None: not recorded)."""
    r = rows.iloc[0]
    out = {"lr": num(r["lr"])}
    if is_ff(r["trainer"]):
        out["ff_threshold"] = num(r["ff_threshold"])
    for key in ("tuning_record", "tuning_trials"):
        value = r.get(key)
        out[key] = (
            None if value is None or pd.isna(value) else (value if key == "tuning_record" else int(value))
        )
    return out


def _recipe_text(e: dict) -> str:
    def one(name, r):
        theta = f" theta {r['ff_threshold']:g}" if "ff_threshold" in r else ""
        return f"{name} lr {r['lr']:g}{theta}"

    ff, bp = e["recipes"]["ff"], e["recipes"]["bp"]
    text = f"recipes {one('FF', ff)}, {one('BP', bp)}"
    if ff["tuning_trials"] and bp["tuning_trials"]:
        return text + (f" (tuned on validation: {ff['tuning_trials']} and {bp['tuning_trials']} trials, "
                       f"{ff['tuning_record']})")  # fmt: skip
    return text + " (no tuning recorded)"


def _accuracy_line(name: str, e: dict) -> str:
    def fmt(x, spec):
        return "never" if math.isnan(x) else format(x, spec)

    def secs(side):
        if math.isnan(e[f"{side}_epochs_to_target"]):
            return "never"
        x = e[f"{side}_seconds_to_target"]
        return "every epoch flagged" if math.isnan(x) else f"{x:.0f} unflagged CPU s"

    def at(where):
        c = e[f"at_{where}"]
        if "interval" not in c:
            return f"at the {where}: {c['why']}"
        lo, hi = (100 * x for x in c["interval"])
        return (f"at the {where}: FF - BP test error {100 * c['difference']:+.2f} points "
                f"[{lo:+.2f}, {hi:+.2f}] against +{100 * c['margin']:.2f}")  # fmt: skip

    memory = ""
    if not math.isnan(e["ff_train_peak_bytes"]) and not math.isnan(e["bp_train_peak_bytes"]):
        memory = f", training peak FF/BP {e['ff_train_peak_bytes'] / e['bp_train_peak_bytes']:.2f}"
    return (
        f"{name}: test error FF {100 * e['ff_error']:.2f} % vs BP {100 * e['bp_error']:.2f} % "
        f"({e['ff_seeds']}/{e['bp_seeds']} seeds){memory}; {_recipe_text(e)}; {at('target')}; {at('cap')}; to "
        f"{100 * e['target_accuracy']:.0f} % validation (reached by {e['ff_reached']}/{e['ff_seeds']} FF, "
        f"{e['bp_reached']}/{e['bp_seeds']} BP): FF {fmt(e['ff_epochs_to_target'], '.1f')} epochs "
        f"({secs('ff')}), BP {fmt(e['bp_epochs_to_target'], '.1f')} epochs ({secs('bp')})"
    )


def _usable_time(o) -> str:
    """Why a run's time to the target cannot be used ('' when it can)."""
    if o["device"] is not None and not pd.isna(o["device"]) and not str(o["device"]).startswith("cpu"):
        return "not on a CPU"
    if pd.isna(o["threads"]) or int(o["threads"]) != 1:
        return "not at one thread"
    if o["unflagged_cpu_seconds"] is None or pd.isna(o["unflagged_cpu_seconds"]):
        return "every epoch flagged"
    if o["unflagged_share"] < T.MIN_UNFLAGGED_SHARE:
        return f"flagged epochs {o['flagged_epochs']}"
    return ""


def _time_comparison(ff_o, bp_o) -> dict:
    """FF's CPU seconds to the target against BP's (see the claim's test)."""
    ff_r, bp_r = ff_o[ff_o["reached"] == True], bp_o[bp_o["reached"] == True]  # noqa: E712
    why = {n: [_usable_time(o) for _, o in r.iterrows()] for n, r in (("ff", ff_r), ("bp", bp_r))}
    a = [float(x) for x, w in zip(ff_r["unflagged_cpu_seconds"], why["ff"]) if not w]
    b = [float(x) for x, w in zip(bp_r["unflagged_cpu_seconds"], why["bp"]) if not w]
    out = {"ff_seconds": a, "bp_seconds": b, "ff_runs": len(ff_o), "bp_runs": len(bp_o),
           "unusable": {n: [w for w in ws if w] for n, ws in why.items()}}  # fmt: skip
    if len(ff_r) == 0 and len(ff_o) >= T.MIN_SEEDS and len(b) >= T.MIN_SEEDS:
        return {**out, "decision": True, "why": f"FF never reached the target in {len(ff_o)} runs"}
    if min(len(a), len(b)) < T.MIN_SEEDS:
        bad = "; ".join(f"{n}: " + ", ".join(f"{k} x {w}" for w, k in Counter(ws).items())
                        for n, ws in out["unusable"].items() if ws)  # fmt: skip
        return {**out, "decision": None,
                "why": f"{len(a)} FF and {len(b)} BP usable times (< {T.MIN_SEEDS} each){f'; {bad}' if bad else ''}"}  # fmt: skip
    c = _interval(b, a, 0.0, scale=-1, unit=" CPU s")  # BP - FF <= 0: FF takes longer
    return {**out, **c, "difference": -c["difference"], "interval": [-c["interval"][1], -c["interval"][0]],
            "ratio": mean(a) / mean(b)}  # fmt: skip


@claim(
    "finding",
    figure="accuracy_vs_time",
    thresholds=(
        "TARGET_ACCURACY",
        "MIN_SEEDS",
        "EPOCH_OUTLIER_FACTOR",
        "TIMING_MAX_LOAD_PER_CORE",
        "MIN_UNFLAGGED_SHARE",
        "ACCURACY_CONFIDENCE",
    ),
    evidence="accuracy",
)
def ff_needs_more_time_to_reach_the_target(runs, epochs=None, maxbatch=None) -> Verdict:
    """FF needs more CPU time than backprop to reach the target accuracy.

    Test: for each dataset and architecture trained by an FF trainer and by `bp`, each run's
    time to the target (the first epoch whose validation accuracy reached TARGET_ACCURACY) is
    read in CPU seconds of training at one thread on a CPU, from unflagged epochs only: their
    mean x the epochs to the target. An epoch is flagged when the 1-minute load average at
    its end exceeded TIMING_MAX_LOAD_PER_CORE x the cores or it took more than EPOCH_OUTLIER_FACTOR x the run's median
    epoch; a run with under MIN_UNFLAGGED_SHARE of its epochs to the target unflagged, not
    at one thread, or not on a CPU has no usable time. With at least MIN_SEEDS usable runs a
    side: holds where the two-sided ACCURACY_CONFIDENCE Welch t-interval of FF's mean
    seconds minus BP's lies above 0, does not hold where it lies below 0, an interval
    containing 0 decides nothing; FF never reaching the target where BP did holds.
    """
    v = Verdict()
    oc = outcomes(runs, epochs)
    passes, lines, undecided, numbers = {}, [], [], {"configurations": {}}
    for key, by_trainer in _accuracy_groups(runs).items():
        if "bp" not in by_trainer:
            continue
        bp_o = oc[oc["path"].isin(list(by_trainer["bp"]["path"]))]
        for trainer, ff in by_trainer.items():
            if not is_ff(trainer):
                continue
            ff_o = oc[oc["path"].isin(list(ff["path"]))]
            name = f"{key[0]} {int(ff['depth'].iloc[0])}x{int(ff['width'].iloc[0])} {trainer}"
            c = numbers["configurations"][name] = _time_comparison(ff_o, bp_o)
            if c["decision"] is None:
                undecided.append(f"{name}: {c['why']}")
                continue
            passes[name] = c["decision"]
            if "interval" in c:
                lo, hi = c["interval"]
                lines.append(f"{name}: FF {mean(c['ff_seconds']):.1f} vs BP {mean(c['bp_seconds']):.1f} CPU s "
                             f"to the target ({len(c['ff_seconds'])}/{len(c['bp_seconds'])} runs; FF/BP "
                             f"{c['ratio']:.2f}; FF - BP {c['difference']:+.1f} s [{lo:+.1f}, {hi:+.1f}])")  # fmt: skip
            else:
                lines.append(f"{name}: {c['why']}")
    v.numbers = numbers
    open_ = f"; undecided: {'; '.join(undecided)}" if undecided else ""
    if not passes:
        v.verdict = not_evaluated(
            f"no comparison decided: {'; '.join(undecided)}"
            if undecided
            else "needs train records of an FF trainer and bp at one architecture"
        )
        return v
    v.verdict = verdict_from(passes)
    v.summary = "; ".join(lines)
    v.detail = v.summary + open_
    return v


@claim(
    "finding",
    figure="ff_bp_time_ratio",
    thresholds=("ARITHMETIC_FLOOR", "MIN_TIMED_STEPS", "TIMING_MAX_IQR_RATIO", "TIMING_MAX_LOAD_PER_CORE"),
    evidence="time",
)
def ff_is_slower_per_step(runs, epochs=None, maxbatch=None) -> Verdict:
    """An FF step takes longer than an exact-BP step.

    Test: at every configuration and micro-batch measured for both families in one group
    (same device, same results folder), the fastest FF trainer's median step time over the
    fastest exact-BP trainer's (family bp; other rules never count); FF passes where the
    ratio is above 1. A configuration where either family has a step time unfit for a
    verdict (not taken by the timing protocol, fewer than MIN_TIMED_STEPS steps, IQR above
    TIMING_MAX_IQR_RATIO x the median, load above TIMING_MAX_LOAD_PER_CORE x the cores) is
    not evaluated. The arithmetic floor for an MLP (FF: 2B rows through forward and
    weight-gradient matmuls, 4 units; BP: 3) is reported, never deciding it.
    """
    v = Verdict()
    table = best_of_families(ok_runs(runs), "step_seconds_median")
    if len(table) == 0:
        v.verdict = not_evaluated("no step times of both families at one configuration")
        return v
    keys: dict[str, float] = {}
    for _, r in table.iterrows():
        keys[unique_label(r, keys)] = r["ratio"]
    unfit = _unfit_pairs(runs, table, list(keys))
    passes = {key: ratio > 1 for key, ratio in keys.items() if key not in unfit}
    above = int((table["ratio"] >= T.ARITHMETIC_FLOOR).sum())
    v.verdict = (
        verdict_from(passes)
        if passes
        else not_evaluated(
            f"no configuration whose step times are fit for a verdict: {timing_summary(unfit)}"
        )
    )
    v.numbers = {
        "ratio": keys,
        "median": float(table["ratio"].median()),
        "architectures": sorted({_arch(r) for _, r in table.iterrows()}),
    }
    v.detail = (
        "fastest FF / fastest exact-BP step time: "
        + ", ".join(
            f"{key} {r['ff_best']}/{r['bp_best']} {r['ratio']:.2f}"
            for key, (_, r) in zip(keys, table.iterrows())
        )
        + f" (median {table['ratio'].median():.2f}; {above} of {len(table)} at or above the 4/3 floor)"
        + (f". Not evaluated (unfit step times): {timing_summary(unfit)}" if unfit else "")
    )
    archs = [_arch(r) for _, r in table.iterrows()]
    v.summary = "\n".join(
        f"{arch}: {ratio_words(list(table[[a == arch for a in archs]]['ratio']), 'longer', 'less time', verb='takes')} "
        f"per step (median {table[[a == arch for a in archs]]['ratio'].median():.2f})"
        for arch in dict.fromkeys(archs)
    )
    return v


def _unfit_pairs(runs, table, labels: list[str]) -> dict[str, str]:
    """label -> why, for each configuration of `table` (in `labels`' order) where a step time
    of either family is unfit for a verdict (analysis/timing.py)."""
    from ..timing import _key, unfit

    df = ok_runs(runs)
    df = df[df["step_seconds_median"].notna()]
    keys = [*pair_key(df), "micro"]
    bad = unfit(df, keys)
    out = {}
    for label_, (_, r) in zip(labels, table.iterrows()):
        why = bad.get(tuple(_key(r.get(k)) for k in keys))
        if why is not None:
            out[label_] = why
    return out


def _fraction(r) -> str:
    """The micro-batch of a maxbatch search as a fraction of the batch ("none": the whole batch)."""
    spec = r.get("micro_batch")
    if isinstance(spec, str) and spec:
        return spec
    if spec is not None and not pd.isna(spec):
        return f"{int(spec)} rows"
    return ACCUM_DEFAULT if r.get("trainer") == "bp-accum" else "none"


@claim("finding", figure="max_batch", thresholds=("BATCH_MARGIN",), evidence="maxbatch")
def best_ff_fits_a_larger_batch(runs, epochs=None, maxbatch=None) -> Verdict:
    """Under the same memory budget and micro-batch, the best FF trains a larger batch than the best exact BP.

    Test: from `ffbench maxbatch` searches (one budget, one width), at each depth, budget
    kind and micro-batch fraction (none, or e.g. 1/4: micro-batching on both sides, like
    with like) searched for both families: the largest batch found for any FF trainer
    against the largest for any exact-BP trainer (family bp); FF passes where its batch is
    more than (1 + BATCH_MARGIN) x BP's. The budget (bytes, and whether tensor-level or
    process) is printed beside it. A fraction searched for one family only is listed.
    """
    v = Verdict()
    if maxbatch is None or len(maxbatch) == 0:
        v.verdict = not_evaluated("no maxbatch results")
        return v
    mb = maxbatch.assign(
        family=[family_of(t) for t in maxbatch["trainer"]],
        fraction=[_fraction(r) for _, r in maxbatch.iterrows()],
    )
    passes, lines, alone = {}, [], []
    keys = [
        c for c in ("group", "budget_bytes", "budget_kind", "width", "depth", "fraction") if c in mb.columns
    ]
    for values, s in mb.groupby(keys, dropna=False):
        r = dict(zip(keys, values))
        ff, bp = s[s["family"] == "ff"], s[s["family"] == "bp"]
        kind = r.get("budget_kind", "process")
        name = (f"{kind} budget {num(r['budget_bytes']) / 2**20:.0f} MiB w{int(r['width'])} d{int(r['depth'])}"
                f" micro-batch {r['fraction']}")  # fmt: skip
        if len(ff) == 0 or len(bp) == 0:
            alone.append(f"{name}: {', '.join(s['trainer'])} only")
            continue
        f, b = ff.loc[ff["max_batch_size"].idxmax()], bp.loc[bp["max_batch_size"].idxmax()]
        passes[name] = f["max_batch_size"] > (1 + T.BATCH_MARGIN) * b["max_batch_size"]
        lines.append(
            f"{name}: {f['trainer']} {int(f['max_batch_size'])} vs {b['trainer']} {int(b['max_batch_size'])}"
        )
    if not passes:
        v.verdict = not_evaluated(
            "no depth and micro-batch searched for both an FF and an exact-BP trainer"
            + (f" ({'; '.join(alone)})" if alone else "")
        )
        return v
    v.verdict = verdict_from(passes)
    v.summary = "; ".join(lines)
    v.detail = v.summary + (f". Searched for one family only: {'; '.join(alone)}" if alone else "")
    return v


__all__ = ["DOES_NOT_HOLD", "HOLDS"]
