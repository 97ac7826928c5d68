"""Helpers over the runs table that the claims and the figures share: which rows count,
which rows are the same configuration, and the best of each family."""

from __future__ import annotations

import math
from pathlib import Path

from ...arch import is_image
from ...config import config_keys, unpaired_keys, variant_keys
from ..families import with_family

# Rows that differ only in these fields are the same configuration for a comparison
# (RunConfig's `paired=False` fields).
NOT_PAIRED = unpaired_keys()


class ClaimDataError(ValueError):
    """The runs cannot decide a claim (e.g. one configuration measured twice in one group)."""


def is_ff(trainer) -> bool:
    return str(trainer).startswith("ff")


def ok_runs(runs):
    """Measure rows that finished (status ok) with a tensor-level peak, each with its
    `family` and `micro` (real examples per micro-batch; `families.with_family`)."""
    if runs is None or len(runs) == 0:
        return runs
    df = runs[(runs["kind"] == "measure") & (runs["status"] == "ok")]
    return with_family(df[df["tensor_peak_bytes"].notna()])


def with_analytic(runs):
    """ok_runs that carry the analytic model's prediction (`analytic_peak_bytes`); None
    where there are none."""
    df = ok_runs(runs)
    if df is None or len(df) == 0 or "analytic_peak_bytes" not in df.columns:
        return None
    df = df[df["analytic_peak_bytes"].notna()]
    return df if len(df) else None


TRAIN_PEAK = "tensor_train_peak_bytes"  # max(first step, steady step): the training budget


def with_train_peak(runs):
    """ok_runs with `tensor_train_peak_bytes` as floats (records measured before the column
    existed have it filled on read: `ffbench.record.upgrade_train_peak`)."""
    df = ok_runs(runs)
    if df is None or len(df) == 0:
        return df
    if TRAIN_PEAK not in df.columns:
        df = df.assign(**{TRAIN_PEAK: float("nan")})
    return df.assign(**{TRAIN_PEAK: df[TRAIN_PEAK].astype("float64")})


def has(runs, trainer: str) -> bool:
    return runs is not None and len(runs) > 0 and bool((runs["trainer"] == trainer).any())


def num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def pair_key(df) -> list[str]:
    """The columns that identify one configuration across trainers, within one group (its key
    and, where the table has them, its two parts)."""
    where = ["group", *(c for c in GROUP_COLUMNS if c in df.columns)]
    return where + [c for c in config_keys() if c in df.columns and c not in NOT_PAIRED]


# Where a run was measured, in two columns beside `group`, the one key pandas groups by:
# the results folder (resolved) and the device. Ratios never cross groups.
GROUP_COLUMNS = ("group_folder", "group_device")


def group_columns(folder: Path, device_name) -> dict[str, str]:
    """A run's `group` (the key) and GROUP_COLUMNS, from its folder and device."""
    where, device = str(Path(folder).resolve()), device_name or "unknown device"
    return {"group": f"{where}|{device}", "group_folder": where, "group_device": device}


def group_key(folder: Path, device_name) -> str:
    """The `group` of a run measured in `folder` on `device_name` (`group_columns`)."""
    return group_columns(folder, device_name)["group"]


def group_name(row) -> str:
    """A group in words: its results folder's name and device, e.g. "quick (cpu)"."""
    return f"{Path(row['group_folder']).name} ({row['group_device']})"


def group_names(df) -> dict[str, str]:
    """`group` -> `group_name`, for the groups of a table that has GROUP_COLUMNS."""
    return {r["group"]: group_name(r) for _, r in df.drop_duplicates("group").iterrows()}


def depth_series(df, axis: str = "depth"):
    """(label, rows) of each configuration measured at two or more depths (or values of
    another `axis`, e.g. time_steps): every pair-key column but the axis fixed; the label
    says it in words (with the results folder's name where two groups share one)."""
    keys = [k for k in pair_key(df) if k != axis] + (["micro"] if "micro" in df.columns else [])
    out, seen = [], set()
    for _, rows in df.groupby(keys, dropna=False):
        if rows[axis].nunique() < 2:
            continue
        first = rows.iloc[0]
        name = label(first, depth=False)
        if axis != "depth":
            name = f"{label(first, depth=False, steps=False)} d{int(first['depth'])}"
        if name in seen:  # two groups share it: the results folder's name says which
            name = f"{Path(first['group_folder']).name}: {name}"
        seen.add(name)
        out.append((name, rows))
    return out


def variant(row) -> str:
    """The trainer, with the implementation options (RunConfig's `variant` role) that differ
    from the defaults. Evaluation settings (ff_eval, eval_chunk) change no training figure, so
    they make no variant."""
    from ...config import config_defaults

    defaults = config_defaults()
    opts = [f"{f}={row[f]}" for f in variant_keys() if f in row and _set(row[f]) and row[f] != defaults[f]]
    return row["trainer"] + (f"[{', '.join(opts)}]" if opts else "")


def _set(value) -> bool:
    """A value is given (not None, NaN or pandas' NA)."""
    import pandas as pd

    return isinstance(value, str) or not pd.isna(value)


def with_variants(df):
    """`df` with a `variant` column, one row per configuration and variant in a group. Rows
    that differ only in evaluation settings train alike: the first (by config_hash) stands for
    them. ClaimDataError when one configuration was measured twice in one group (never averaged)."""
    if len(df) == 0:
        return df.assign(variant=[])
    df = df.assign(variant=[variant(r) for _, r in df.iterrows()])
    check_unique(df, [*pair_key(df), "config_hash"], by="variant")
    return df.sort_values("config_hash").drop_duplicates([*pair_key(df), "variant"]).sort_index()


def check_unique(df, key: list[str], by: str = "trainer") -> None:
    """Two rows of one trainer (or variant) and configuration in one group are never averaged."""
    dup = df[df.duplicated(subset=[*key, by], keep=False)]
    if len(dup):
        r = dup.iloc[0]
        raise ClaimDataError(
            f"{len(dup)} measurements of {r[by]} {label(r)} in one group; measure each "
            f"configuration once per results folder (or report the runs separately)"
        )


def label(row, depth: bool = True, batch: bool = True, steps: bool = True) -> str:
    """A configuration in words: width, depth, batch, and what differs from the usual. The one
    words formatter of a configuration: `depth`, `batch`, `steps` False leave out the depth (a
    series over depth), the batch (a network over batches) or the recurrent network's time
    steps (a series over them)."""
    arch = row.get("arch")
    image = is_image(arch) and _set(row.get("channels"))
    size = (
        f"c{row['channels']} k{row.get('kernel')} s{row.get('stride')}" if image else f"w{int(row['width'])}"
    )
    at_depth = f" d{int(row['depth'])}" if depth else ""
    parts = [f"{size}{at_depth}" + (f" b{int(row['batch_size'])}" if batch else "")]
    if (
        row.get("optimizer", "adam") != "adam"
        or row.get("optimizer_impl", "single-tensor") != "single-tensor"
    ):
        parts.append(f"{row.get('optimizer')}/{row.get('optimizer_impl')}")
    if row.get("dtype", "float32") not in ("float32", None):
        parts.append(str(row["dtype"]))
    if isinstance(arch, str) and arch != "mlp":
        parts.insert(0, arch)
    if arch == "recurrent" and steps and _set(row.get("time_steps")):
        parts.append(f"T{int(row['time_steps'])}")
    micro = row.get("micro")
    if _set(micro) and int(micro) < int(row["batch_size"]):
        parts.append(f"micro {int(micro)}")  # real examples per micro-batch
    return " ".join(parts)


def ratio_words(ratios, more="more", less="less", whom="BP", verb="needs") -> str:
    """FF/BP ratios in words with their direction: "FF needs 1.80-3.00x more than BP",
    "... 1.25x less ...", or "from 1.25x less to 1.19x more" when they straddle 1."""
    lo, hi = min(ratios), max(ratios)

    def span(a: float, b: float) -> str:
        return f"{a:.2f}x" if f"{a:.2f}" == f"{b:.2f}" else f"{a:.2f}-{b:.2f}x"

    if lo >= 1:
        return f"FF {verb} {span(lo, hi)} {more} than {whom}"
    if hi <= 1:
        return f"FF {verb} {span(1 / hi, 1 / lo)} {less} than {whom}"
    return f"FF {verb} from {1 / lo:.2f}x {less} to {hi:.2f}x {more} than {whom}"


def paired(runs, a: str, b: str, metric: str):
    """Rows of trainer `a` and `b` measured in one group at one configuration: the key
    columns, `a`, `b` and ratio = a / b. Duplicates raise ClaimDataError."""
    import pandas as pd

    df = ok_runs(runs)
    if df is None or len(df) == 0 or metric not in df.columns:
        return pd.DataFrame(columns=["group", "width", "depth", "batch_size", a, b, "ratio"])
    key = pair_key(df)
    sub = with_variants(df[df["trainer"].isin([a, b]) & df[metric].notna()])
    sub = sub[sub["variant"] == sub["trainer"]]  # each trainer with its default options
    wide = sub.assign(_v=sub[metric].astype("float64")).pivot(index=key, columns="trainer", values="_v")
    if a not in wide.columns or b not in wide.columns:
        return pd.DataFrame(columns=[*key, a, b, "ratio"])
    wide = wide[[a, b]].dropna().reset_index()
    wide.columns.name = None
    wide["ratio"] = wide[a] / wide[b]
    return wide.sort_values(key).reset_index(drop=True)


def best_of_families(runs, metric: str):
    """Per configuration measured for both families, at one effective batch and one micro-batch
    (`micro`: real examples per micro-batch; FF forwards as many negatives beside them): the
    smallest `metric` of the FF family and of the exact-backprop family (`family` "bp": bp,
    bp-checkpoint, bp-accum, bp-inbackward, full BPTT), and which variant it is. Trainers of
    another rule (`family` "other": bp-local, bp-ste, bp-ce, truncated BPTT) are never either
    side: they are listed in `others`, named alternatives beside FF. Columns: the key, micro,
    ff_best, ff_bytes, bp_best, bp_bytes, ratio (= ff / bp), ff_all, bp_all, others."""
    import pandas as pd

    df = ok_runs(runs)
    cols = ["micro", "ff_best", "ff_bytes", "bp_best", "bp_bytes", "ratio", "ff_all", "bp_all", "others"]
    if df is None or len(df) == 0 or metric not in df.columns:
        return pd.DataFrame(columns=["group", *cols])
    key = pair_key(df)
    df = with_variants(df[df[metric].notna()])
    rows = []
    for values, s in df.groupby([*key, "micro"], dropna=False, sort=True):
        fam = {name: s[s["family"] == name] for name in ("ff", "bp", "other")}
        if len(fam["ff"]) == 0 or len(fam["bp"]) == 0:
            continue
        row = dict(zip([*key, "micro"], values if isinstance(values, tuple) else (values,)))
        for name in ("ff", "bp"):
            part = fam[name]
            best = part.loc[part[metric].astype("float64").idxmin()]
            row[f"{name}_best"], row[f"{name}_bytes"] = best["variant"], float(best[metric])
            row[f"{name}_all"] = {t: float(v) for t, v in zip(part["variant"], part[metric])}
        row["others"] = {t: float(v) for t, v in zip(fam["other"]["variant"], fam["other"][metric])}
        row["ratio"] = row["ff_bytes"] / row["bp_bytes"]
        row["bp_activation_share"] = _activation_share(fam["bp"])
        rows.append(row)
    return pd.DataFrame(rows, columns=[*key, *cols, "bp_activation_share"])


def _activation_share(bp_rows) -> float:
    """Saved activations / steady-step peak of plain `bp` at one configuration (NaN without
    it): how activation-dominated the configuration is for backprop."""
    plain = bp_rows[bp_rows["variant"] == "bp"]
    cols = ("tensor_peak_activations_bytes", "tensor_peak_bytes")
    if len(plain) == 0 or any(c not in plain.columns for c in cols):
        return math.nan
    r = plain.iloc[0]
    return num(r[cols[0]]) / num(r[cols[1]]) if num(r[cols[1]]) else math.nan


def chunks(rows) -> str:
    """The evaluation chunk sizes of the rows, for the verdict's record."""
    if rows is None or len(rows) == 0 or "eval_chunk" not in rows.columns:
        return "n/a"
    values = sorted({int(v) for v in rows["eval_chunk"].dropna()})
    return ", ".join(str(v) for v in values) if values else "n/a"
