"""A comparison that finds no configuration in common says which fields kept the runs apart."""

import pandas as pd

from ffbench.analysis.compare import kept_apart, no_common_configuration


def _keyed(**columns):
    n = len(next(iter(columns.values())))
    base = {"kind": ["measure"] * n, "part": ["."] * n, "threads": [1] * n}
    return pd.DataFrame({**base, **columns})


def test_disjoint_fields_are_named_with_their_values():
    a = _keyed(trainer=["bp", "ff"], depth=[2, 2], width=[64, 64], seed=[0, 0])
    b = _keyed(trainer=["bp", "ff"], depth=[3, 3], width=[64, 128], seed=[0, 0])
    assert kept_apart(a, b) == ["depth (2 vs 3)"]  # width overlaps (64): it alone keeps nothing apart
    note = no_common_configuration([a, b])
    assert note == "no configuration measured in both runs: kept apart by depth (2 vs 3)"


def test_without_a_disjoint_field_every_differing_field_is_named():
    a = _keyed(trainer=["bp", "ff"], depth=[2, 3])
    b = _keyed(trainer=["bp", "ff"], depth=[3, 2])
    assert kept_apart(a, b) == ["the combination of trainer, depth"]  # every value in both runs
    a2 = _keyed(trainer=["bp", "ff"], depth=[2, 3])
    b2 = _keyed(trainer=["ff", "bp"], depth=[2, 4])
    assert kept_apart(a2, b2) == ["depth (2, 3 vs 2, 4)"]


def test_threads_and_device_never_keep_runs_apart():
    a = _keyed(trainer=["bp"], depth=[2])
    b = _keyed(trainer=["bp"], depth=[2]).assign(threads=[4])
    assert kept_apart(a, b) == []
    assert no_common_configuration([a, b]) == "no configuration measured in both runs"
