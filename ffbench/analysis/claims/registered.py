"""Every registered claim: importing this module imports the claim modules (each registers
its claims with `@claim` in the package), and `evaluate` decides them. Above the claim
modules, so the package itself imports none of them."""

from __future__ import annotations

from collections.abc import Callable

from . import CLAIMS, Verdict, checks, findings, frontier, how_tested, not_evaluated, recurrent  # noqa: F401
from .tables import ClaimDataError


def evaluate(runs, epochs=None, maxbatch=None, claims: list[Callable] | None = None) -> list[Verdict]:
    """Every registered claim's verdict. A claim whose data is unusable (a `ClaimDataError`,
    e.g. two measurements of one configuration in one group) is reported as not evaluated
    with the reason; any other exception is a bug and propagates."""
    out = []
    for fn in claims or CLAIMS:
        try:
            v = fn(runs, epochs, maxbatch)
        except ClaimDataError as exc:
            v = Verdict(fn.claim_sentence, verdict=not_evaluated(str(exc)))
        v.key, v.group = fn.__name__, fn.claim_group
        archs = v.numbers.get("architectures") if isinstance(v.numbers, dict) else None
        if archs and len(archs) == 1:  # a general claim that one architecture decided says so
            v.claim += f" (decided on the {archs[0]} network alone)"
        v.figure = v.figure or fn.claim_figure
        v.thresholds = fn.claim_thresholds
        v.evidence = fn.claim_evidence
        v.test = v.test or how_tested(fn)
        v.eval_chunk = v.eval_chunk or "n/a"
        out.append(v)
    return out


def all_claims() -> list[Callable]:

    return list(CLAIMS)
