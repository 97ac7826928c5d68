"""Claims about Forward-Forward, each decided by one function with its thresholds in
`ffbench/analysis/thresholds.py`, written before the run.

Two groups, rendered apart:

- **findings** (`findings.py`): statements about the algorithms (best FF against best BP
  in memory, accuracy at equal architecture, step time, the largest batch a budget fits);
- **checks** (`checks.py`): consistency checks of the instrument (FF's flat activations,
  summed-loss growth, the cost of label replication, analytic = measured). A check that
  fails says the measurement is wrong, not that FF is.

Every claim is a function `(runs, epochs, maxbatch) -> Verdict` registered with `@claim`:
`runs` is `ffbench.analysis.report.load_runs(paths)` (one row per run, plus `group`: the
results folder and device a row was measured in; ratios are never taken across groups),
`epochs` one row per epoch of each `train` record, `maxbatch` the rows of maxbatch.json.
The first paragraph of its docstring is the claim, written there only (`@claim` sets it on
the verdict the function returns), the "Test:" paragraph how it is decided.
A verdict is ``holds``, ``does not hold``, ``holds only where <where>`` or ``not evaluated
(<why>)``. Adding a claim = one decorated function.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from ...config import BATCH_CONVENTION

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
GROUPS = {"finding": "Findings about the algorithms", "check": "Checks of the instrument"}


@dataclass
class Verdict:
    claim: str = ""  # the claim, one sentence (set by @claim from the docstring)
    verdict: str = ""  # holds / does not hold / holds only where ... / not evaluated (...)
    detail: str = ""  # the numbers behind it, in words
    summary: str = ""  # one short sentence with the key number (the README's verdict lines)
    numbers: dict = field(default_factory=dict)
    figure: str | None = None  # name of the report figure that shows it
    key: str = ""  # the function's name
    group: str = "finding"  # "finding" or "check"
    test: str = ""  # the test and threshold (from the docstring)
    thresholds: tuple[str, ...] = ()  # names in thresholds.py the verdict depends on
    eval_chunk: str = ""  # evaluation chunk size(s) of the runs evaluated
    batch_convention: str = BATCH_CONVENTION
    evidence: str = "memory"  # what it is decided on: memory, time, accuracy or maxbatch
    caveats: list[str] = field(default_factory=list)  # warnings about the runs (report/caveats.py)

    @property
    def status(self) -> str:
        """'holds', 'partial', 'does not hold' or 'not evaluated' (for colouring)."""
        if self.verdict == HOLDS:
            return "holds"
        if self.verdict.startswith("holds only"):
            return "partial"
        if self.verdict.startswith("not evaluated"):
            return "not evaluated"
        return "does not hold"


def not_evaluated(why: str) -> str:
    return f"not evaluated ({why})"


def verdict_from(passes: dict[str, bool]) -> str:
    """holds / does not hold / holds only where <the passing keys>."""
    if not passes:
        return not_evaluated("no configuration to compare")
    good = [k for k, ok in passes.items() if ok]
    if len(good) == len(passes):
        return HOLDS
    if not good:
        return DOES_NOT_HOLD
    return f"holds only where {'; '.join(good)}"


CLAIMS: list[Callable] = []  # in report order: findings first, then checks
# within a group, by module in this order (whichever was imported first), then as defined
MODULES = ("findings", "frontier", "checks", "recurrent")


def _report_order(fn: Callable) -> tuple[int, int, int]:
    module = fn.__module__.rsplit(".", 1)[-1]
    rank = MODULES.index(module) if module in MODULES else len(MODULES)
    return list(GROUPS).index(fn.claim_group), rank, inspect.unwrap(fn).__code__.co_firstlineno


def sentence(fn: Callable) -> str:
    """The claim a function decides: its docstring's first paragraph, without the full stop."""
    first = (inspect.getdoc(fn) or fn.__name__).split("\n\n")[0]
    return " ".join(first.split()).removesuffix(".")


def claim(group: str, figure: str | None = None, thresholds: tuple[str, ...] = (), evidence: str = "memory"):
    """Register a claim function (see the module docstring); the verdict it returns carries
    its sentence. `evidence`: the kind of runs it is decided on (memory or time of measure
    runs, accuracy of train runs, maxbatch searches), which says which warnings about those
    runs go beside its verdict."""

    def register(fn: Callable) -> Callable:
        said = sentence(fn)

        @functools.wraps(fn)
        def decide(*args, **kwargs) -> Verdict:
            v = fn(*args, **kwargs)
            v.claim = said
            return v

        decide.claim_sentence, decide.claim_group, decide.claim_figure = said, group, figure
        decide.claim_thresholds, decide.claim_evidence = thresholds, evidence
        CLAIMS.append(decide)
        CLAIMS.sort(key=_report_order)
        return decide

    return register


def how_tested(fn: Callable) -> str:
    """The 'Test:' paragraph of a claim function's docstring (how it is decided)."""
    doc = inspect.getdoc(fn) or ""
    paras = [" ".join(p.split()) for p in doc.split("\n\n")]
    for p in paras:
        if p.startswith("Test:"):
            return p[len("Test:") :].strip()
    return paras[1] if len(paras) > 1 else ""
