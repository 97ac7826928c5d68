"""Time to a target accuracy, read from a run's epochs, and the interval its claims use.

One home for the rules `fit` writes into a train record and the claims read back (so a
record written before the rules existed is judged by the same ones):

- `flag_epochs`: an epoch's time is not the algorithm's alone when the 1-minute load
  average at its end exceeded the cores ("load") or its training took more than
  EPOCH_OUTLIER_FACTOR x the run's median epoch, wall or CPU seconds ("outlier");
- `time_to_target`: the first epoch whose validation accuracy reaches the target, its
  cumulative training seconds (wall and CPU, evaluation excluded), and the CPU seconds read
  from unflagged epochs only (their mean x the epochs to the target);
- `welch_interval`: the two-sided Welch t-interval of a difference of two means.
"""

from __future__ import annotations

import math
from statistics import mean, median, variance

from .thresholds import EPOCH_OUTLIER_FACTOR, TIMING_MAX_LOAD_PER_CORE


def _seconds(e: dict, key: str) -> float | None:
    x = e.get(key)
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def flag_epochs(epochs: list[dict], cores: int | None) -> None:
    """Set each epoch's flags (`flag_load`, `flag_outlier`: 1 or 0, numbers as every epoch
    field of a record is) and its cumulative training
    seconds (`cumulative_train_seconds`, `cumulative_train_cpu_seconds`; None once an epoch
    lacks the figure), in place."""
    mid = {}
    for key in ("train_seconds", "train_cpu_seconds"):
        values = [x for x in (_seconds(e, key) for e in epochs) if x is not None]
        mid[key] = median(values) if values else None
    total = {"train_seconds": 0.0, "train_cpu_seconds": 0.0}
    for e in epochs:
        for key in total:
            x = _seconds(e, key)
            total[key] = None if x is None or total[key] is None else total[key] + x
        e["cumulative_train_seconds"] = total["train_seconds"]
        e["cumulative_train_cpu_seconds"] = total["train_cpu_seconds"]
        load = _seconds(e, "load_average")
        seconds = {k: _seconds(e, k) for k in mid}
        slow = any(m is not None and seconds[k] is not None and seconds[k] > EPOCH_OUTLIER_FACTOR * m
                   for k, m in mid.items())  # fmt: skip
        # the timing protocol's load rule (analysis.timing), one threshold for steps and epochs
        e["flag_load"] = int(bool(cores and load is not None and load > TIMING_MAX_LOAD_PER_CORE * cores))
        e["flag_outlier"] = int(slow)


def flagged(e: dict) -> bool:
    """Whether `flag_epochs` flagged epoch `e` (load or outlier)."""
    return bool(e.get("flag_load") or e.get("flag_outlier"))


def time_to_target(epochs: list[dict], target: float, cap: int | None) -> dict:
    """When validation accuracy first reached `target` in `epochs` (flagged by
    `flag_epochs`): epoch, wall and CPU seconds, unflagged CPU seconds (None when every epoch
    to it is flagged), its validation and test accuracy; or, unreached, whether the run hit
    its cap of `cap` epochs."""
    hit = next((e for e in epochs if (_seconds(e, "val_accuracy") or 0.0) >= target), None)
    out = {"target": target, "split": "validation", "epoch_cap": cap, "reached": hit is not None}
    if hit is None:
        last = int(epochs[-1]["epoch"]) if epochs else 0
        out["note"] = (f"the epoch cap ({cap}) was hit without reaching it" if cap is not None and last >= cap
                       else f"not reached in the {last} epochs run")  # fmt: skip
        return out
    upto = [e for e in epochs if int(e["epoch"]) <= int(hit["epoch"])]
    clean = [_seconds(e, "train_cpu_seconds") for e in upto if not flagged(e)]
    clean = [x for x in clean if x is not None]
    out.update(
        epoch=int(hit["epoch"]),
        wall_seconds=hit["cumulative_train_seconds"],
        cpu_seconds=hit["cumulative_train_cpu_seconds"],
        unflagged_epochs=len(clean),
        flagged_epochs=[int(e["epoch"]) for e in upto if flagged(e)],
        unflagged_cpu_seconds=mean(clean) * len(upto) if clean else None,
        val_accuracy=_seconds(hit, "val_accuracy"),
        test_accuracy=_seconds(hit, "test_accuracy"),
    )
    return out


def _t_cdf(x: float, df: float) -> float:
    """Student's t distribution function (Simpson's rule on the density; x >= 0)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    n = 2000
    h = x / n
    s = sum((1 if i in (0, n) else 4 if i % 2 else 2) * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2)
            for i in range(n + 1))  # fmt: skip
    return 0.5 + c * s * h / 3


def t_quantile(p: float, df: float) -> float:
    """The `p` quantile (p > 0.5) of Student's t with `df` degrees of freedom (bisection)."""
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2
    for _ in range(60):
        m = (lo + hi) / 2
        lo, hi = (m, hi) if _t_cdf(m, df) < p else (lo, m)
    return (lo + hi) / 2


def welch_interval(a: list[float], b: list[float], confidence: float) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its two-sided Welch t-interval at `confidence` (needs >= 2 of
    each); a zero spread on both sides gives the point itself."""
    d = mean(a) - mean(b)
    va, vb = variance(a) / len(a), variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(1 - (1 - confidence) / 2, df) * se
    return d, d - half, d + half


def run_epochs(epochs, path) -> list[dict]:
    """The epoch rows (`report.load_epochs`) of one run, in order, as dicts."""
    rows = epochs[epochs["path"] == path].sort_values("epoch")
    return [{k: (None if _missing(v) else v) for k, v in r.items()} for r in rows.to_dict("records")]


def _missing(v) -> bool:
    import pandas as pd

    return v is None or bool(pd.isna(v)) if not isinstance(v, (list, tuple, dict)) else False


def outcomes(runs, epochs):
    """One row per train run (the `runs` rows of kind train, joined to their `epochs`):
    its target (`thresholds.target_accuracy` of its dataset and architecture), whether and
    when it reached it, test error there and at its cap (a run whose last epoch is its
    configured `epochs`), CPU seconds to it (all, and from unflagged epochs), and the share of
    its epochs to the target that are unflagged. Empty without train rows."""
    import pandas as pd

    from .thresholds import target_accuracy

    out = []
    if runs is None or len(runs) == 0 or epochs is None or len(epochs) == 0:
        return pd.DataFrame(out, columns=OUTCOME_COLUMNS)
    train = runs[(runs["kind"] == "train") & runs["test_accuracy"].notna()]
    for _, r in train.iterrows():
        rows = run_epochs(epochs, r["path"])
        if not rows:
            continue
        cores = None if _missing(r.get("cores")) else int(r["cores"])
        flag_epochs(rows, cores)
        cap = None if _missing(r.get("epochs")) else int(r["epochs"])
        arch = r.get("arch") if isinstance(r.get("arch"), str) else "mlp"
        t = time_to_target(rows, target_accuracy(r["dataset"], arch), cap)
        last = rows[-1]
        at_cap = cap is not None and int(last["epoch"]) >= cap
        out.append({
            "path": r["path"], "trainer": r["trainer"], "dataset": r["dataset"], "arch": arch,
            "depth": r["depth"], "width": r["width"], "seed": r["seed"], "cap": cap,
            "threads": r.get("threads"), "device": r.get("device"), "target": t["target"],
            "reached": t["reached"], "target_epoch": t.get("epoch"),
            "target_error": None if t.get("test_accuracy") is None else 1 - t["test_accuracy"],
            "cap_error": 1 - last["test_accuracy"] if at_cap and last.get("test_accuracy") is not None else None,
            "cpu_seconds": t.get("cpu_seconds"), "wall_seconds": t.get("wall_seconds"),
            "unflagged_cpu_seconds": t.get("unflagged_cpu_seconds"),
            "unflagged_share": t["unflagged_epochs"] / t["epoch"] if t["reached"] else None,
            "flagged_epochs": t.get("flagged_epochs", []),
            "train_peak_bytes": r.get("analytic_train_peak_bytes"),
        })  # fmt: skip
    return pd.DataFrame(out, columns=OUTCOME_COLUMNS)


OUTCOME_COLUMNS = ("path", "trainer", "dataset", "arch", "depth", "width", "seed", "cap", "threads", "device",
                   "target", "reached", "target_epoch", "target_error", "cap_error", "cpu_seconds",
                   "wall_seconds", "unflagged_cpu_seconds", "unflagged_share", "flagged_epochs",
                   "train_peak_bytes")  # fmt: skip
