"""Warnings printed beside a verdict: what about the runs it was decided on makes it weak.

Never deciding a verdict, only qualifying it (thresholds in `thresholds.py`, section
"reported beside a verdict"):

- a **toy run**: every width below TOY_WIDTH, or fewer than TOY_CONFIGURATIONS
  configurations (width x depth x batch) -- fixed costs dominate such ratios;
- **synthetic accuracy**: an accuracy verdict on random tensors means nothing;
- **under-sampled timing**: a time verdict on medians of fewer than MIN_TIMED_STEPS steps;
- a **dirty tree**: the code that measured had uncommitted changes (`git_revision` ending
  in `-dirty`), so no commit reproduces it;
- a **threshold set after the run**: a threshold the verdict uses got its present value in a
  commit the run's code did not contain (`provenance.changed_after`).

A verdict that is not evaluated gets no warning: there is nothing to qualify.
"""

from __future__ import annotations

import functools
from pathlib import Path

from . import thresholds as T
from .claims import Verdict
from .claims.tables import ok_runs
from .provenance import changed_after

_changed_after = functools.lru_cache(maxsize=4096)(changed_after)  # one git call per (commit, run)


def evidence_rows(verdict: Verdict, runs, epochs=None, maxbatch=None):
    """The rows a verdict of this kind of evidence is decided on."""
    if verdict.evidence == "maxbatch":
        return maxbatch
    if verdict.evidence == "accuracy":
        return runs[runs["test_accuracy"].notna()] if runs is not None and len(runs) else runs
    rows = ok_runs(runs)
    if verdict.evidence == "time" and rows is not None and len(rows):
        rows = rows[rows["step_seconds_median"].notna()]
    return rows


def toy(rows, count: bool = True) -> list[str]:
    """Widths all below TOY_WIDTH; and (with `count`) fewer than TOY_CONFIGURATIONS
    configurations."""
    if rows is None or len(rows) == 0 or "width" not in rows.columns:
        return []
    out = []
    widest = int(rows["width"].max())
    if widest < T.TOY_WIDTH:
        out.append(f"toy run: widths up to {widest} (< {T.TOY_WIDTH}); fixed costs dominate at this size")
    keys = [c for c in ("width", "depth", "batch_size") if c in rows.columns]
    n = len(rows[keys].drop_duplicates())
    if count and n < T.TOY_CONFIGURATIONS:
        out.append(f"toy run: {n} configuration{'s' if n != 1 else ''} (< {T.TOY_CONFIGURATIONS})")
    return out


def under_sampled(rows) -> list[str]:
    if rows is None or len(rows) == 0 or "timed_steps" not in rows.columns:
        return []
    steps = rows["timed_steps"].dropna()
    if len(steps) and int(steps.min()) < T.MIN_TIMED_STEPS:
        return [
            f"under-sampled timing: medians of {int(steps.min())} timed steps "
            f"(< {T.MIN_TIMED_STEPS}; the interquartile range says little)"
        ]
    return []


def synthetic_accuracy(rows) -> list[str]:
    if rows is None or len(rows) == 0:
        return []
    synthetic = rows["dataset"].astype(str).eq("synthetic") | rows["synthetic"].eq(True)
    if synthetic.any():
        return [f"accuracy on synthetic data ({int(synthetic.sum())} runs): random tensors, nothing to learn"]
    return []


def dirty(revisions) -> list[str]:
    bad = sorted({str(r) for r in revisions if isinstance(r, str) and r.endswith("-dirty")})
    if bad:
        return [f"measured from a modified working tree ({', '.join(bad)}): no commit reproduces it exactly"]
    return []


def thresholds_after(verdict: Verdict, revisions, changes: dict, checkout: Path | None = None) -> list[str]:
    """The thresholds of `verdict` whose present value was set after the code of one of the
    runs (`revisions`) was committed: chosen, perhaps, after its results were seen.
    `checkout`: a folder of the git checkout that holds the commits (this package's)."""
    here = checkout or Path(__file__).parent
    runs = sorted({str(r) for r in revisions if isinstance(r, str) and r})
    late = [f"{name} (set in {changes[name]})" for name in verdict.thresholds
            if name in changes and any(_changed_after(changes[name], r, here) for r in runs)]  # fmt: skip
    if late:
        return [f"threshold set after the run ({', '.join(runs)}): {', '.join(late)}"]
    return []


def caveats(verdict: Verdict, runs, epochs=None, maxbatch=None, revisions=(), changes=None) -> list[str]:
    """The warnings beside `verdict` (empty when it was not evaluated). `revisions`: the git
    revisions of the results folders, for evidence whose rows carry none (maxbatch);
    `changes`: `thresholds.changes()`, where the thresholds' provenance is to be checked."""
    if verdict.status == "not evaluated":
        return []
    rows = evidence_rows(verdict, runs, epochs, maxbatch)
    out = toy(rows, count=verdict.evidence in ("memory", "time"))
    if verdict.evidence == "time":
        out += under_sampled(rows)
    if verdict.evidence == "accuracy":
        out += synthetic_accuracy(rows)
    # records carry their revision; maxbatch rows do not: their folders' environments do
    has_own = rows is not None and "git_revision" in getattr(rows, "columns", ())
    made_by = list(rows["git_revision"]) if has_own else list(revisions)
    return out + dirty(made_by) + (thresholds_after(verdict, made_by, changes) if changes else [])


def attach(verdicts: list[Verdict], runs, epochs=None, maxbatch=None, revisions=()) -> list[Verdict]:
    """Fill every verdict's `caveats`; returns the verdicts."""
    changes = T.changes()
    for v in verdicts:
        v.caveats = caveats(v, runs, epochs, maxbatch, revisions, changes)
    return verdicts
