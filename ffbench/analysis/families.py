"""Which family a run's update belongs to, and how many real examples each micro-batch held,
read from its record (no torch: the analysis never imports the trainers).

A record written since the harness recorded it carries `family` ("ff", "bp" = backprop's
exact gradient, "other" = another learning rule; `ffbench.trainers.registry.family`).
Records written before that (the committed results folders) get it here, from the built-in
trainers' names as they were then: `family_of` is the one upgrade, tested to agree with the
registry for every built-in trainer. A name it does not know is "other": a plugin's trainer
is never FF's opponent unless its record says it is exact backprop.
"""

from __future__ import annotations

import math

from ..config import micro_rows

FAMILIES = ("ff", "bp", "other")

# The built-in trainers before records carried their family: name -> family (every
# architecture it builds makes the same update). Truncated BPTT (bp with a bptt_window) is
# "other" whatever the name.
BUILT_IN = {
    "ff": "ff",
    "ff-frugal": "ff",
    "ff-summed": "ff",
    "bp": "bp",
    "bp-checkpoint": "bp",
    "bp-accum": "bp",
    "bp-inbackward": "bp",
    "bp-local": "other",
    "bp-ste": "other",
    "bp-ce": "other",
}


def _given(value) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def family_of(trainer, arch="mlp", bptt_window=None) -> str:
    """The family of a record that does not say it (see the module docstring)."""
    if _given(bptt_window):
        return "other"  # truncated BPTT: an approximation of backprop's gradient
    return BUILT_IN.get(str(trainer), "other")


def micro_of(batch_size, micro_batch, trainer):
    """Real examples per micro-batch of a record (`RunConfig.micro`); None without a batch."""
    if not _given(batch_size):
        return None
    spec = micro_batch if _given(micro_batch) else None
    if isinstance(spec, float):
        spec = int(spec)
    return micro_rows(int(batch_size), spec, str(trainer))


def with_family(df):
    """`df` with `family` and `micro` columns, filled where a row lacks them (frames built
    by hand or from records that predate the fields)."""
    if df is None or len(df) == 0:
        return df
    given = df["family"] if "family" in df.columns else None
    fam = [
        g if isinstance(g, str) and g in FAMILIES else family_of(t, a, w)
        for g, t, a, w in zip(
            given if given is not None else [None] * len(df),
            df["trainer"],
            df["arch"] if "arch" in df.columns else ["mlp"] * len(df),
            df["bptt_window"] if "bptt_window" in df.columns else [None] * len(df),
        )
    ]
    micro = [
        micro_of(b, m, t)
        for b, m, t in zip(
            df["batch_size"],
            df["micro_batch"] if "micro_batch" in df.columns else [None] * len(df),
            df["trainer"],
        )
    ]
    return df.assign(family=fam, micro=micro)
