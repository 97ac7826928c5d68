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


def test_what_changed_lists_each_configuration_value_once_in_numeric_order():
    from ffbench.analysis.compare import _values

    # the configuration table's cells already list values per part of a run; one run's row
    frame = pd.DataFrame(
        {"sweep": ["1024, 64", "bp, ff"], "train": ["64, 100", "bp"]}, index=["batch_size", "trainer"]
    )
    assert _values(frame, split=True) == {"batch_size": "64, 100, 1024", "trainer": "bp, ff"}


def test_a_claim_is_one_row_of_what_changed_whichever_architecture_decided_it():
    from types import SimpleNamespace

    from ffbench.analysis.claims import Verdict
    from ffbench.analysis.claims.registered import all_claims
    from ffbench.analysis.compare import _verdicts

    fn = all_claims()[0]
    one = Verdict(f"{fn.claim_sentence} (decided on the mlp network alone)", "does not hold", key=fn.__name__)
    both = Verdict(fn.claim_sentence, "holds", key=fn.__name__)
    assert _verdicts(SimpleNamespace(verdicts=[one])) == {
        fn.claim_sentence: "does not hold (decided on the mlp network alone)"
    }
    assert _verdicts(SimpleNamespace(verdicts=[both])) == {fn.claim_sentence: "holds"}
