"""The report's short tables, read before the long ones: the training-step peak as a pivot
(one row per configuration, one column per trainer, the smallest in each row marked) and the
environment as one value per key plus where it differs."""

from __future__ import annotations

from ..schema import TRAINER_ORDER
from ..units import MiB
from .claims.tables import (
    TRAIN_PEAK,
    ClaimDataError,
    group_folder,
    label,
    pair_key,
    with_train_peak,
    with_variants,
)


def peak_pivot(runs):
    """Configuration x trainer (each trainer with its options), training-step tensor-level
    peak in MiB; the configuration names its results folder where several are shown. Empty
    when no configuration was measured (or one was measured twice in one folder)."""
    import pandas as pd

    df = with_train_peak(runs[runs["kind"] == "measure"]) if len(runs) else None
    if df is None or len(df) == 0:
        return pd.DataFrame()
    try:
        df = with_variants(df[df[TRAIN_PEAK].notna()])
    except ClaimDataError:
        return pd.DataFrame()
    several = df["group"].nunique() > 1
    rows: dict[str, dict] = {}
    order = ["group", "arch", "width", "channels", "batch_size", "depth", "time_steps"]
    df = df.sort_values([c for c in order if c in df.columns], na_position="last")
    for _, s in df.groupby(pair_key(df), dropna=False, sort=False):
        first = s.iloc[0]
        name = label(first)
        if several:
            name = f"{group_folder(first['group']).name}: {name}"
        rows[name] = {v: float(b) / MiB for v, b in zip(s["variant"], s[TRAIN_PEAK])}
    known = [t for t in TRAINER_ORDER if t in df["variant"].values]
    columns = known + sorted(set(df["variant"]) - set(known))
    table = pd.DataFrame.from_dict(rows, orient="index")[columns]
    table.index.name = "configuration"
    return table.round(2)


def environment_summary(env):
    """An environment table (one row per key, one column per results folder) as one value per
    key (the most folders' value) and, in "differs in", every folder whose value is another."""
    import pandas as pd

    rows = {}
    for key, values in env.iterrows():
        given = values.dropna().astype(str)
        given = given[given != ""]
        if len(given) == 0:
            continue
        common = given.value_counts().index[0]
        others = [f"{folder}: {v}" for folder, v in given.items() if v != common]
        rows[key] = {"value": common, "differs in": "; ".join(others)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["value", "differs in"])
