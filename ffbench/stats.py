"""Summary statistics of timed steps (torch-free: the results loader uses them too)."""

from __future__ import annotations

import statistics


def timing_spread(times: list[float]) -> dict:
    """Median, quartiles, interquartile range, minimum and count of timed step seconds
    (quartiles by linear interpolation, `statistics.quantiles(method="inclusive")`); {}
    without times. The IQR of fewer than 5 steps says little: the report flags it."""
    if not times:
        return {}
    q1, median, q3 = statistics.quantiles(times, n=4, method="inclusive") if len(times) > 1 else times * 3
    return {
        "step_seconds_median": median,
        "step_seconds_q1": q1,
        "step_seconds_q3": q3,
        "step_seconds_iqr": q3 - q1,
        "step_seconds_min": min(times),
        "timed_steps": len(times),
    }


def number_or_nan(value) -> float:
    """`value` as a float; NaN for anything that is not a number (None, text, missing)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
