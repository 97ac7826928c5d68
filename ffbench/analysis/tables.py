"""The report's short tables, read before the long ones: the training-step peak as a pivot
(one row per configuration, one column per trainer, the smallest in each row marked) and the
environment as one value per key plus where it differs; and the tables both a report and a
comparison (`compare.py`) read: the environment and the configuration values per results
folder."""

from __future__ import annotations

from pathlib import Path

from ..config import shown_keys
from ..trainers.registry import display_order
from ..units import MiB
from .claims.tables import (
    TRAIN_PEAK,
    ClaimDataError,
    group_name,
    group_names,
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
            name = f"{Path(first['group_folder']).name}: {name}"
        rows[name] = {v: float(b) / MiB for v, b in zip(s["variant"], s[TRAIN_PEAK])}
    columns = display_order(df["variant"])
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


def dataset_of(doc: dict) -> dict:
    """The dataset description of a record (of a pytest-benchmark file: its first benchmark's)."""
    ds = doc.get("dataset")
    if ds is None and isinstance(doc.get("benchmarks"), list) and doc["benchmarks"]:
        ds = ((doc["benchmarks"][0] or {}).get("extra_info") or {}).get("dataset")
    return ds if isinstance(ds, dict) else {}


ENV_KEYS = (
    "ffbench",
    "python",
    "torch",
    "cuda",
    "device",
    "device_name",
    "cpu_model",
    "cores",
    "threads",
    "threads_requested",
    "platform",
    "git_revision",
    "hostname",
    "allocator_setting",
    "isolation",
    "created",
)


def environment_table(inp, runs):
    """One column per group (results folder and device), one row per environment key, from
    the documents `inp` (a report.Inputs) read."""
    import pandas as pd

    envs: dict[str, dict] = {}
    for folder, _manifest, env in inp.folders:
        for g in runs.loc[runs["group_folder"] == str(folder.resolve()), "group"].unique():
            envs.setdefault(g, {}).update(env)
    for _path, doc, group in inp.records:
        env = doc.get("environment") or (doc.get("machine_info") or {}).get("ffbench") or {}
        target = envs.setdefault(group, {})
        for k, v in env.items():
            target.setdefault(k, v)
        if dataset_of(doc):
            target.setdefault("dataset", dataset_of(doc))
    data = {}
    for g, env in envs.items():
        col = {}
        for k in ENV_KEYS:
            if k in env:
                col[k] = env[k]
        ds = env.get("dataset")
        if isinstance(ds, dict):
            col["dataset"] = f"{ds.get('name')} ({ds.get('source')})"
        data[group_name(inp.groups[g])] = {k: ("" if v is None else str(v)) for k, v in col.items()}
    return pd.DataFrame(data)


# The configuration table: every field marked `shown` in RunConfig, then the sweep settings.
CONFIG_SHOWN = (*shown_keys(), "timing_steps", "memory_limit_bytes", "timeout_seconds")


def configuration_table(runs):
    """The values each configuration field takes, per group and record kind."""
    import pandas as pd

    data, names = {}, group_names(runs)
    for (group, kind), s in runs.groupby(["group", "kind"], dropna=False):
        col = {}
        for c in CONFIG_SHOWN:
            vals = s[c].dropna().unique() if c in s.columns else []
            try:
                vals = sorted(vals)
            except TypeError:
                vals = list(vals)
            col[c] = ", ".join(str(v) for v in vals) if len(vals) else "default"
        col["runs"] = str(len(s))
        data[f"{names[group]} [{kind}]"] = col
    return pd.DataFrame(data)
