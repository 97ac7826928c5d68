"""The closed division: the declared same-update techniques each family may use, and which of
them the runs measured (the open division: other rules, each beside FF with its accuracy).

Every technique here leaves a family's update exactly as it is (tested in the trainers'
tests); the FF-vs-BP claims take each family's best over whatever of them was measured.
"""

from __future__ import annotations

from .families import with_family

# technique -> (families that may use it, why the others may not or need not)
TECHNIQUES = {
    "micro-batching": (("ff", "bp"), ""),
    "checkpointing": (("bp",), "FF keeps no activations across layers: nothing to recompute"),
    "in-backward stepping": (("bp",), "FF steps each layer after its own backward already"),
    "per-layer stepping": (("ff",), "backprop's update needs every layer's gradient first"),
    "layer-major row blocks": (("ff",), "FF's schedule (ff-frugal); bp's layers wait on the loss"),
    "optimizer implementation": (("ff", "bp"), ""),
}


def _measured(df, technique: str) -> list[str]:
    """What the rows measured of one technique, in words (empty: nothing)."""
    if technique == "micro-batching":
        rows = df[df["micro"].astype("float64") < df["batch_size"].astype("float64")]
        return [
            f"{t} (micro {int(s['micro'].min())}-{int(s['micro'].max())} of batch {int(s['batch_size'].min())}-{int(s['batch_size'].max())})"
            for t, s in rows.groupby("trainer")
        ]
    if technique == "checkpointing":
        return sorted(set(df[df["trainer"] == "bp-checkpoint"]["trainer"]))
    if technique == "in-backward stepping":
        return sorted(set(df[df["trainer"] == "bp-inbackward"]["trainer"]))
    if technique == "per-layer stepping":
        return sorted(set(df[df["trainer"].isin(["ff", "ff-frugal"])]["trainer"]))
    if technique == "layer-major row blocks":
        layer_major = df["ff_micro_schedule"] == "layer-major" if "ff_micro_schedule" in df.columns else False
        return sorted(set(df[(df["trainer"] == "ff-frugal") | layer_major]["trainer"]))
    if "optimizer_impl" not in df.columns:
        return []
    return sorted({str(x) for x in df["optimizer_impl"].dropna()})


def closed_division_table(runs):
    """One row per technique: what the FF and the exact-BP family measured of it ("offered,
    not measured" or "n/a: why" otherwise); then one row naming the open division's trainers."""
    import pandas as pd

    df = runs[runs["kind"] == "measure"] if runs is not None and len(runs) else None
    df = with_family(df) if df is not None and len(df) else None
    rows = []
    for technique, (families, why) in TECHNIQUES.items():
        row = {"technique": technique}
        for fam in ("ff", "bp"):
            if fam not in families:
                row[fam] = f"n/a: {why}"
                continue
            seen = _measured(df[df["family"] == fam], technique) if df is not None else []
            if len(seen) > 6:
                seen = [*seen[:6], f"... {len(seen) - 6} more"]
            row[fam] = ", ".join(seen) if seen else "offered, not measured"
        rows.append(row)
    other = sorted(set(df[df["family"] == "other"]["trainer"])) if df is not None else []
    rows.append({"technique": "open division (other rules)",
                 "ff": f"beside FF as named alternatives: {', '.join(other) or 'none measured'}",
                 "bp": "never BP's best"})  # fmt: skip
    return pd.DataFrame(rows, columns=["technique", "ff", "bp"]).rename(
        columns={"ff": "FF family", "bp": "exact-BP family"}
    )
