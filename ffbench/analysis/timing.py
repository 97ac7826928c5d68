"""Whether a step-time figure is fit to decide a verdict (thresholds in `thresholds.py`).

A figure is fit when the timing protocol took it (`ffbench.measure.protocol`: its record
names the protocol) in a process with glibc's default allocator settings, from at least
MIN_TIMED_STEPS steps, with an interquartile range at most TIMING_MAX_IQR_RATIO of its median,
while the 1-minute load average stayed at most TIMING_MAX_LOAD_PER_CORE x the cores. A
comparison that uses an unfit figure is "not evaluated", never "holds": a record made before
the protocol has no protocol fields, so its time verdicts are not evaluated.
"""

from __future__ import annotations

import math

from ..stats import number_or_nan as _num
from . import thresholds as T


def flag(row) -> str | None:
    """Why the step time of a results row is unfit for a verdict; None when it is fit."""
    get = row.get if hasattr(row, "get") else row.__getitem__
    if not isinstance(get("timing_protocol"), str):
        return "not taken by the timing protocol (a record made before it)"
    allocator = get("timing_allocator")
    if isinstance(allocator, str) and "M_MMAP_THRESHOLD" in allocator:
        return "timed in the process tuned for RSS (mmap threshold lowered), not glibc's defaults"
    steps = _num(get("timed_steps"))
    if not steps >= T.MIN_TIMED_STEPS:
        return f"{0 if math.isnan(steps) else int(steps)} timed steps (< {T.MIN_TIMED_STEPS})"
    median, iqr = _num(get("step_seconds_median")), _num(get("step_seconds_iqr"))
    if median > 0 and iqr / median > T.TIMING_MAX_IQR_RATIO:
        return f"IQR {100 * iqr / median:.0f} % of the median (> {100 * T.TIMING_MAX_IQR_RATIO:.0f} %)"
    load = max(_num(get("timing_load_before")), _num(get("timing_load_after")))
    cores = _num(get("timing_cores"))
    if cores > 0 and load > T.TIMING_MAX_LOAD_PER_CORE * cores:
        return f"load average {load:.1f} on {int(cores)} cores while timed"
    return None


def flags(df) -> list[str | None]:
    """`flag` of every row of a results table (columns missing count as missing fields)."""
    return [flag(r) for _, r in df.iterrows()]


def unfit(df, keys: list[str]) -> dict[tuple, str]:
    """key values (in `keys`' order) -> the first reason, for each group of `df` holding an
    unfit step time: a comparison within such a group is not evaluated."""
    out: dict[tuple, str] = {}
    if df is None or len(df) == 0:
        return out
    for (_, r), why in zip(df.iterrows(), flags(df)):
        if why is not None:
            out.setdefault(tuple(_key(r.get(k)) for k in keys), f"{r.get('trainer')}: {why}")
    return out


def _key(value):
    """A key value comparable across frames (NaN and None are one missing value)."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def summary(unfit: dict[str, str]) -> str:
    """`name -> reason` in few words: the reasons, each with how many comparisons it leaves
    out and the first of them (a run made before the protocol would list every one)."""
    by_reason: dict[str, list[str]] = {}
    for name, why in unfit.items():
        by_reason.setdefault(why.split(": ", 1)[-1], []).append(name)
    return "; ".join(
        f"{len(names)} x {why} (e.g. {names[0]})" if len(names) > 1 else f"{names[0]}: {why}"
        for why, names in by_reason.items()
    )
