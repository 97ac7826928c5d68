"""Committed runs written by different versions compare: what an older record lacks is filled
on read (ffbench.record.upgrade), so only what really differs keeps configurations apart."""

from __future__ import annotations

from pathlib import Path

from ffbench.analysis.compare import NOT_KEYED, _keyed, compare
from ffbench.analysis.report import _analyses
from ffbench.config import config_keys

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _pair(a: str, b: str):
    paths = [RESULTS / a, RESULTS / b]
    return _analyses(paths, paths[0])


def test_quick_runs_of_two_versions_match_their_common_configurations():
    # 2026-11-28 predates ff_micro_schedule (and was written by another commit than 2026-12-06)
    analyses, labels = _pair("2026-11-28-cpu-quick", "2026-12-06-cpu-quick")
    result = compare(analyses, labels)
    matched = [r for _, r in result.deltas.iterrows() if r.get("status") == "ok"]
    assert len(matched) > 150
    assert result.counts["only in baseline"] < 30


def test_what_keeps_the_oldest_quick_run_apart_is_what_ran_differently():
    """2026-11-27 lacks 18 configuration fields; filled, its configurations differ from
    2026-11-28's only in how evaluation ran (chunks of the batch size; FF every label at once)."""
    analyses, _ = _pair("2026-11-27-cpu-quick", "2026-11-28-cpu-quick")
    old, new = (_keyed(a) for a in analyses)
    cols = ["kind", "part", *(c for c in config_keys() if c in old.columns and c not in NOT_KEYED)]
    for key, part in zip(old["key"], old["part"]):
        if part != "sweep":
            continue
        candidates = [k.split("|") for k, p in zip(new["key"], new["part"]) if p == part]
        fewest = min(candidates, key=lambda k: sum(x != y for x, y in zip(key.split("|"), k)))
        differ = {c for c, x, y in zip(cols, key.split("|"), fewest) if x != y}
        assert differ and differ <= {"eval_chunk", "ff_eval"}, (key, differ)
