"""One search for "the largest size that fits": gallop, then bisect.

Used by the analytic model (`ffbench.model.max_batch_size`: an exact predicate,
tolerance 0) and by the measured search (`ffbench.run.maxbatch`: every probe is a
worker run, which may be inconclusive, bracketed to a relative tolerance). Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable

SEED_STEP = 0.05  # first step away from a seeded start, as a fraction of it


def search(
    fits: Callable[[int], bool | None],
    *,
    start: int,
    cap: int,
    tolerance: float = 0.0,
    seeded: bool = False,
    seed_step: float = SEED_STEP,
) -> tuple[int, int | None, bool]:
    """Largest b in [1, cap] with fits(b), for a predicate monotone in b (true up to
    some b, false after). Returns (largest fitting, smallest failing, capped):
    (0, 1, False) when even 1 does not fit; (cap, None, True) when cap still fits.

    Gallop from `start` (clipped to [1, cap]): up with steps that double, or down with
    steps that double, until the answer is bracketed; then bisect until the bracket is
    no wider than max(1, floor(lo * tolerance)) -- tolerance 0 gives the exact answer.
    `seeded`: start is a good guess (e.g. a prediction), so the first step is
    `seed_step` x start instead of start (up) or start / 2 (down).
    fits may return None (inconclusive: a probe that neither fitted nor failed); the
    search stops there and returns what it has bracketed so far."""
    start = max(1, min(start, cap))
    first_step = max(1, math.ceil(start * seed_step)) if seeded else None
    ok = fits(start)
    if ok is None:
        return 0, None, False
    if ok:
        lo, hi, capped = _gallop_up(fits, start, first_step or start, cap)
        if hi is None:
            return lo, None, capped
    else:
        lo, hi = _gallop_down(fits, start, first_step or max(1, start // 2))
        if lo == 0:
            return 0, hi, False
    lo, hi = _bisect(fits, lo, hi, tolerance)
    return lo, hi, False


def _gallop_up(
    fits: Callable[[int], bool | None], lo: int, step: int, cap: int
) -> tuple[int, int | None, bool]:
    """lo fits: probe lo + step, doubling the step, until a probe fails (-> bracket),
    the cap fits (-> capped) or a probe is inconclusive (-> no bracket)."""
    while True:
        nxt = min(lo + step, cap)
        if nxt == lo:
            return lo, None, True
        res = fits(nxt)
        if res is None:
            return lo, None, False
        if not res:
            return lo, nxt, False
        lo, step = nxt, step * 2


def _gallop_down(fits: Callable[[int], bool | None], hi: int, step: int) -> tuple[int, int]:
    """hi fails: probe hi - step, doubling the step, until a probe fits (-> bracket),
    1 fails or a probe is inconclusive (-> lo = 0)."""
    while hi > 1:
        nxt = max(1, hi - step)
        res = fits(nxt)
        if res is None:
            return 0, hi
        if res:
            return nxt, hi
        hi, step = nxt, step * 2
    return 0, hi


def _bisect(fits: Callable[[int], bool | None], lo: int, hi: int, tolerance: float) -> tuple[int, int]:
    """lo fits, hi fails: halve the bracket until it is no wider than
    max(1, floor(lo * tolerance)) or a probe is inconclusive."""
    while hi - lo > max(1, math.floor(lo * tolerance)):
        mid = (lo + hi) // 2
        res = fits(mid)
        if res is None:
            break
        if res:
            lo = mid
        else:
            hi = mid
    return lo, hi
