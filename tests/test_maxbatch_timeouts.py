"""A maxbatch answer bounded by timeouts says so in its note and table (issue 24)."""

from types import SimpleNamespace

import ffbench.run.maxbatch as mb
from ffbench.config import RunConfig


def search_with(monkeypatch, outcome) -> mb.MaxBatch:
    """One search whose probes end as `outcome(batch)` says: 'fits', 'over' or 'timeout'."""

    def probe(folder, settings, config, bar, executor):
        what = outcome(config.batch_size)
        if what == "timeout":
            return {"status": "timeout", "error": "no result within 1 s"}
        return {"status": "ok", "budget": {"fits": what == "fits", "measured_bytes": config.batch_size}}

    monkeypatch.setattr(mb, "_probe", probe)
    entry = mb.MaxBatch("bp", 1, 16, 2**30, 0, None, False, None, "default start")
    settings = SimpleNamespace(timeout_seconds=1.0)
    mb._search_one(
        None, settings, RunConfig(trainer="bp", depth=1, width=16), entry, None, None, 16, 2**22, 0.0
    )
    return entry


def test_an_answer_decided_by_timeouts_says_so(monkeypatch):
    entry = search_with(monkeypatch, lambda b: "fits" if b <= 2 else "timeout")
    assert entry.max_batch_size == 2 and entry.first_failing == 3
    assert entry.note.startswith("bounded by timeouts, not memory: batch 3 timed out (--timeout 1 s)")
    text = mb.table([entry])
    assert "3 t/o" in text and "bp fits batch >=2 (bounded by timeouts)" in text


def test_an_answer_decided_by_memory_has_no_timeout_note(monkeypatch):
    entry = search_with(monkeypatch, lambda b: "fits" if b <= 40 else ("over" if b <= 1000 else "timeout"))
    assert entry.max_batch_size == 40 and entry.first_failing == 41 and entry.note is None
    assert "bp fits batch 40" in mb.table([entry]) and "t/o" not in mb.table([entry])
