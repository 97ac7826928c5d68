"""Committed runs written by different versions compare: what an older record lacks is filled
on read (ffbench.record.upgrade), so only what really differs keeps configurations apart; and
evaluation settings, which change no training figure, never keep a configuration's training
figures from being compared (only its evaluation and whole-run figures)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ffbench.analysis.compare import EVALUATION_DIFFERS, _keyed, compare
from ffbench.analysis.report import _analyses

RESULTS = Path(__file__).resolve().parents[1] / "results"
WHOLE_RUN = "Δ whole-run peak (B)"


def _pair(a: str, b: str):
    paths = [RESULTS / a, RESULTS / b]
    return _analyses(paths, paths[0])


def _compared(a: str, b: str):
    analyses, labels = _pair(a, b)
    old, new = (_keyed(x) for x in analyses)
    return old, new, compare(analyses, labels)


def test_quick_runs_of_two_versions_match_their_common_configurations():
    # 2026-11-28 predates ff_micro_schedule (and was written by another commit than 2026-12-06)
    old, new, result = _compared("2026-11-28-cpu-quick", "2026-12-06-cpu-quick")
    matched = result.deltas[result.deltas["status"] == "ok"]
    assert len(matched) > 150
    assert result.counts["only in baseline"] < 30
    # where both evaluated alike, the whole-run peak is compared
    alike = matched[matched["not compared"].isna()] if "not compared" in matched else matched
    measured = alike[alike["peak, baseline (MiB)"].notna()]
    assert len(measured) > 100 and measured[WHOLE_RUN].notna().all()


def test_the_oldest_quick_run_matches_every_configuration_trained_alike():
    """2026-11-27 evaluated in chunks of the batch size and FF with every label at once; 2026-11-28
    in chunks of 256, one label at a time. Training is the same: every configuration trained in
    both is matched, its training figures compared, its evaluation figures withheld."""
    old, new, result = _compared("2026-11-27-cpu-quick", "2026-11-28-cpu-quick")
    common = set(old["key"]) & set(new["key"])  # same part, kind and training fields
    matched = result.deltas[result.deltas["status"] == "ok"]
    assert len(common) > 50 and len(matched) == len(common)
    assert result.counts["only in baseline"] == len(old) - len(common)
    assert result.counts["only in 2026-11-28-cpu-quick"] == len(new) - len(common)
    # evaluation differed for every one of them: said, and the evaluation deltas withheld
    assert matched["not compared"].str.contains(EVALUATION_DIFFERS).all()
    assert matched["not compared"].str.contains("eval_chunk").all()
    measured = matched[matched["peak, baseline (MiB)"].notna()]
    assert len(measured) > 50 and measured[WHOLE_RUN].isna().all()
    assert measured["Δ peak (B)"].notna().all() and measured["step ratio"].notna().all()
    trained = matched[matched["peak, baseline (MiB)"].isna()]
    assert len(trained) >= 1 and trained["Δ test acc. (pp)"].isna().all()


def test_a_configuration_evaluated_twice_in_one_run_is_matched_with_its_own_evaluation():
    # 2026-11-28's evaluation/ part measures one training at several chunk sizes: each row is
    # matched with the row of the same chunk size in 2026-12-06, never with another
    old, new, result = _compared("2026-11-28-cpu-quick", "2026-12-06-cpu-quick")
    part = old[old["part"] == "evaluation"]
    assert part["key"].duplicated().any()  # the same training, evaluated differently
    rows = result.deltas[result.deltas["configuration"].str.startswith("evaluation: ")]
    assert len(rows) == len(part)
    if "not compared" in rows:
        assert rows["not compared"].isna().all()
    assert pd.Series(rows[WHOLE_RUN]).notna().all()
