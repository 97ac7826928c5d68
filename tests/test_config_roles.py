"""Each RunConfig field says what it is to a comparison (its role) and, where the results
table fixes one, its column's dtype: the lists the analysis reads are derived from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ffbench.config import (
    ROLES,
    column_dtypes,
    config_fields,
    config_keys,
    evaluation_keys,
    option,
    role_keys,
    training_keys,
    unpaired_keys,
    variant_keys,
)
from ffbench.results import load

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_every_field_has_one_role_and_the_roles_cover_every_field():
    by_role = {role: set(role_keys(role)) for role in ROLES}
    assert sum(len(keys) for keys in by_role.values()) == len(config_keys())
    assert set().union(*by_role.values()) == set(config_keys())
    assert set(training_keys()) == by_role["identity"] | by_role["variant"]


def test_evaluation_and_place_never_identify_a_training():
    assert {"eval_chunk", "ff_eval"} <= set(evaluation_keys())
    assert not set(training_keys()) & ({"device", "threads", "data_dir"} | set(evaluation_keys()))
    assert {"trainer", "depth", "width", "batch_size", "seed"} <= set(training_keys())


def test_a_variant_is_a_trainers_knob_never_the_network():
    assert set(variant_keys()) <= unpaired_keys()  # rows differing only there are paired
    assert {"ff_pass", "micro_batch", "checkpoint_segments"} <= set(variant_keys())


def test_an_integer_column_belongs_to_an_integer_field():
    kinds = {f.name: f.metadata["kind"] for f in config_fields()}
    for name, dtype in column_dtypes().items():
        expected = {"Int64": ("int", "int0"), "float64": ("float", "float0"), "object": ("micro",)}[dtype]
        assert kinds[name] in expected, name


def test_the_results_table_takes_the_dtypes_of_the_metadata():
    df = load(RESULTS / "2026-12-06-cpu-quick-protocol")  # bptt_window given for some rows only
    for name, dtype in column_dtypes().items():
        assert str(df[name].dtype) == dtype, name
    assert set(df["bptt_window"].dropna()) == {4}  # a whole number, not 4.0
    assert {type(v) for v in df["micro_batch"]} == {type(None), str}  # as given ('1/4'), never NaN


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="role"):
        option(1, "x", group="model", kind="int", role="nonsense")
