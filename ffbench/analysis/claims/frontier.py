"""The memory-time frontier of each family (issue 22): every knob setting measured of one
network (trainer variant, batch, micro-batch, optimizer implementation) is a point
(time per real example, training-step peak); a family's Pareto-optimal points are its
frontier. Two claims read it: at equal time per example FF needs less memory, at equal
memory FF trains faster. A network with a step time unfit for a verdict (taken before the
timing protocol, too few steps, noisy, under load: `analysis/timing.py`) is not evaluated."""

from __future__ import annotations

import math

from .. import thresholds as T
from ..timing import flags as timing_flags
from ..timing import summary as timing_summary
from . import Verdict, claim, not_evaluated, verdict_from
from .tables import TRAIN_PEAK, label, num, pair_key, with_train_peak, with_variants

TIME = "seconds_per_example"  # step_seconds_median / batch_size: per real example
# Knobs a frontier ranges over (every other configuration field fixes the network)
FREE = ("batch_size", "optimizer_impl")


def network(row) -> str:
    """A network in words: the configuration label without its batch, micro-batch and
    optimizer implementation."""
    plain = {**dict(row), "micro": None, "optimizer_impl": "single-tensor"}
    return label(plain, batch=False)


def frontier_points(runs):
    """One row per measured point of the FF and the exact-BP family (other rules are never
    on a frontier): group, network, arch, family, variant, batch_size, micro, seconds per
    example, peak and `on_frontier` (Pareto-optimal within its family and network)."""
    import pandas as pd

    cols = [
        "group",
        "network",
        "arch",
        "family",
        "variant",
        "batch_size",
        "micro",
        TIME,
        "peak",
        "on_frontier",
    ]
    df = with_train_peak(runs)
    if df is None or len(df) == 0 or "step_seconds_median" not in df.columns:
        return pd.DataFrame(columns=cols)
    df = df[df["family"].isin(["ff", "bp"]) & df["step_seconds_median"].notna() & df[TRAIN_PEAK].notna()]
    if len(df) == 0:
        return pd.DataFrame(columns=cols)
    df = with_variants(df)
    keys = [k for k in pair_key(df) if k not in FREE]
    rows = []
    for _, s in df.groupby(keys, dropna=False, sort=True):
        name = network(s.iloc[0])
        for (_, r), why in zip(s.iterrows(), timing_flags(s)):
            arch = r.get("arch")
            rows.append({"group": r["group"], "network": name, "arch": arch if isinstance(arch, str) else "mlp",
                         "family": r["family"], "variant": r["variant"], "batch_size": int(r["batch_size"]),
                         "micro": int(r["micro"]), TIME: num(r["step_seconds_median"]) / int(r["batch_size"]),
                         "peak": num(r[TRAIN_PEAK]), "unfit": why and f"{r['variant']}: {why}"})  # fmt: skip
    out = pd.DataFrame(rows, columns=[*cols[:-1], "unfit"])
    out["on_frontier"] = False
    for _, s in out.groupby(["group", "network", "family"], sort=False):
        out.loc[pareto(s), "on_frontier"] = True
    return out


def pareto(points) -> list:
    """Index labels of the points no other point beats in both time and peak (ties kept once)."""
    best, keep = math.inf, []
    for i, r in points.sort_values([TIME, "peak"]).iterrows():
        if r["peak"] < best:
            best = r["peak"]
            keep.append(i)
    return keep


def comparisons(points, along: str) -> list[dict]:
    """Each FF frontier point against the best exact BP at its time (along="time": the
    smallest BP peak among BP points no slower) or at its memory (along="memory": the
    fastest BP among BP points needing no more). FF points with no such BP point are left out."""
    out = []
    for (_, name), s in points.groupby(["group", "network"], sort=True):
        ff, bp = s[(s["family"] == "ff") & s["on_frontier"]], s[s["family"] == "bp"]
        unfit = next((w for w in s["unfit"] if isinstance(w, str)), None) if "unfit" in s else None
        for _, f in ff.sort_values(TIME).iterrows():
            if along == "time":
                rivals = bp[bp[TIME] <= f[TIME]]
                b = rivals.loc[rivals["peak"].idxmin()] if len(rivals) else None
                ok = b is not None and f["peak"] < (1 - T.FRONTIER_MEMORY_MARGIN) * b["peak"]
            else:
                rivals = bp[bp["peak"] <= f["peak"]]
                b = rivals.loc[rivals[TIME].idxmin()] if len(rivals) else None
                ok = b is not None and f[TIME] < (1 - T.FRONTIER_TIME_MARGIN) * b[TIME]
            if b is not None:
                out.append(
                    {"network": name, "arch": f["arch"], "ff": f, "bp": b, "passes": bool(ok), "unfit": unfit}
                )
    return out


def _point(r) -> str:
    return f"{r['variant']} b{int(r['batch_size'])} ({1e6 * r[TIME]:.1f} us/example, {r['peak'] / 2**20:.2f} MiB)"


def _frontier_verdict(v: Verdict, runs, along: str) -> Verdict:
    found = comparisons(frontier_points(runs), along)
    if not found:
        v.verdict = not_evaluated("no network with an FF frontier point and an exact-BP point to compare")
        return v
    passes = {f"{c['network']} at {_point(c['ff'])}": c["passes"] for c in found if not c["unfit"]}
    unfit = {c["network"]: c["unfit"] for c in found if c["unfit"]}
    v.detail = "; ".join(
        f"{c['network']}: FF {_point(c['ff'])} vs BP {_point(c['bp'])} -> {'FF' if c['passes'] else 'not FF'}"
        for c in found
    )
    archs = sorted({c["arch"] for c in found})
    v.numbers = {"points": len(found), "passing": sum(c["passes"] for c in found), "architectures": archs}
    passing = sum(c["passes"] for c in found)
    v.summary = f"FF better at {passing} of {len(found)} frontier points ({', '.join(archs)})"
    if unfit:
        v.detail += f". Not evaluated (unfit step times): {timing_summary(unfit)}"
    if not passes:
        v.verdict = not_evaluated(
            "computed, not decided: no network whose step times are fit for a verdict (timing "
            f"protocol, >= {T.MIN_TIMED_STEPS} steps, IQR and load within limits): " + timing_summary(unfit)
        )
        return v
    v.verdict = verdict_from(passes)
    return v


@claim(
    "finding",
    figure="frontier",
    thresholds=(
        "FRONTIER_MEMORY_MARGIN",
        "MIN_TIMED_STEPS",
        "TIMING_MAX_IQR_RATIO",
        "TIMING_MAX_LOAD_PER_CORE",
    ),
    evidence="time",
)
def frontier_ff_needs_less_memory_at_equal_time(runs, epochs=None, maxbatch=None) -> Verdict:
    """At equal time per example, the best FF needs less memory than the best exact BP.

    Test: per network (everything but the batch, micro-batch, trainer variant and optimizer
    implementation fixed), every measured point (x = median step time / batch size, y =
    training-step peak) of FF and of exact BP (family bp); each FF point on FF's Pareto
    frontier is compared with the smallest BP peak among BP points no slower; it passes
    where FF's peak is below (1 - FRONTIER_MEMORY_MARGIN) x that. Holds where it passes
    (listed by point). A network with a step time unfit for a verdict is not evaluated.
    """
    v = Verdict()
    return _frontier_verdict(v, runs, "time")


@claim(
    "finding",
    figure="frontier",
    thresholds=(
        "FRONTIER_TIME_MARGIN",
        "MIN_TIMED_STEPS",
        "TIMING_MAX_IQR_RATIO",
        "TIMING_MAX_LOAD_PER_CORE",
    ),
    evidence="time",
)
def frontier_ff_trains_faster_at_equal_memory(runs, epochs=None, maxbatch=None) -> Verdict:
    """At equal memory, the best FF trains faster than the best exact BP.

    Test: on the same points as the claim above, each FF frontier point is compared with the
    fastest BP point (time per real example) among BP points whose peak is no larger; it
    passes where FF's time per example is below (1 - FRONTIER_TIME_MARGIN) x that. Holds
    where it passes (listed by point). A network with a step time unfit for a verdict is not evaluated.
    """
    v = Verdict()
    return _frontier_verdict(v, runs, "memory")
