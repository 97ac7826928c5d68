"""The one gallop-and-bisect search (ffbench.search), on exact oracles."""

import pytest

from ffbench.search import search


def oracle(limit, calls, inconclusive=()):
    def fits(b):
        calls.append(b)
        if b in inconclusive:
            return None
        return b <= limit

    return fits


@pytest.mark.parametrize("limit", [1, 2, 3, 63, 64, 65, 999, 4097])
@pytest.mark.parametrize("start,seeded", [(1, False), (16, False), (700, True), (5000, True), (5000, False)])
def test_tolerance_zero_is_exact(limit, start, seeded):
    calls = []
    assert search(oracle(limit, calls), start=start, seeded=seeded, cap=10**6, tolerance=0) == (
        limit,
        limit + 1,
        False,
    )
    assert len(calls) == len(set(calls))  # no batch probed twice


def test_tolerance_stops_early_with_a_bracket():
    exact, loose = [], []
    search(oracle(100_000, exact), start=16, cap=10**7, tolerance=0)
    lo, hi, capped = search(oracle(100_000, loose), start=16, cap=10**7, tolerance=0.1)
    assert lo <= 100_000 < hi and hi - lo <= 0.1 * lo and not capped
    assert len(loose) < len(exact)


def test_seed_steps_are_a_fraction_of_the_seed():
    calls = []
    search(oracle(1000, calls), start=1000, seeded=True, cap=10**6, tolerance=0, seed_step=0.01)
    assert calls[:2] == [1000, 1010]


def test_inconclusive_probes_stop_the_search():
    # at the start: nothing known
    assert search(lambda b: None, start=16, cap=100, tolerance=0) == (0, None, False)
    # galloping up: the last fitting batch, no failing one
    assert search(oracle(1000, [], inconclusive={32}), start=16, cap=10**6, tolerance=0) == (16, None, False)
    # galloping down: nothing fits yet, the smallest failing batch
    assert search(oracle(3, [], inconclusive={8}), start=16, cap=10**6, tolerance=0) == (0, 16, False)
    # bisecting: the bracket reached so far
    lo, hi, capped = search(oracle(40, [], inconclusive={48}), start=16, cap=10**6, tolerance=0)
    assert (lo, hi, capped) == (32, 64, False)


def test_cap():
    assert search(lambda b: True, start=16, cap=100, tolerance=0) == (100, None, True)
    assert search(lambda b: True, start=500, seeded=True, cap=100, tolerance=0) == (100, None, True)
    assert search(oracle(99, []), start=16, cap=100, tolerance=0) == (99, 100, False)
    assert search(lambda b: False, start=16, cap=100, tolerance=0) == (0, 1, False)
