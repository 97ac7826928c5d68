"""maxbatch: the search on its own (exact, monotone oracle) and one real end-to-end run."""

import json

import pytest

from ffbench import results
from ffbench.cli import main
from ffbench.config import RunConfig
from ffbench.model import max_batch_size
from ffbench.run.maxbatch import MaxBatch, analytic_seed, table
from ffbench.search import search


def oracle(limit, calls):
    def fits(b):
        calls.append(b)
        return b <= limit

    return fits


@pytest.mark.parametrize("limit", [1, 7, 16, 1000, 123457])
@pytest.mark.parametrize("seeded,start", [(False, 16), (True, 900), (True, 200000)])
def test_exact_search_finds_the_largest_fitting_batch(limit, seeded, start):
    calls = []
    lo, hi, capped = search(oracle(limit, calls), start=start, seeded=seeded, cap=2**22, tolerance=0)
    assert (lo, hi, capped) == (limit, limit + 1, False)
    assert len(calls) == len(set(calls)) and len(calls) < 50


def test_a_good_seed_needs_few_probes():
    calls = []
    search(oracle(10_000, calls), start=9_900, seeded=True, cap=2**22, tolerance=0.02)
    assert len(calls) <= 5


def test_nothing_fits_and_cap_reached():
    assert search(lambda b: False, start=16, seeded=False, cap=1000, tolerance=0) == (0, 1, False)
    assert search(lambda b: True, start=16, seeded=False, cap=100, tolerance=0) == (100, None, True)
    assert search(lambda b: None, start=16, seeded=False, cap=100, tolerance=0) == (0, None, False)


def test_tolerance_brackets_the_answer():
    calls = []
    lo, hi, _ = search(oracle(5000, calls), start=16, seeded=False, cap=2**22, tolerance=0.05)
    assert lo <= 5000 < hi and hi - lo <= max(1, 0.05 * lo)


def test_maxbatch_end_to_end_real_probes(tmp_path, capsys):
    out = tmp_path / "mb"
    code = main(
        [
            "maxbatch",
            "--memory-limit",
            "1GiB",
            "--trainers",
            "bp",
            "--depths",
            "1",
            "--width",
            "16",
            "--dataset",
            "synthetic",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--max-batch",
            "32",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "with a 1.00 GiB tensor budget (depth 1, width 16): bp fits batch >=32" in text
    summary = json.loads((out / "maxbatch.json").read_text())
    assert summary["results"][0]["capped"] and summary["results"][0]["max_batch_size"] == 32
    df = results.load(out)
    assert set(df.source) == {"maxbatch"} and set(df.status) == {"ok"}
    assert max(df.batch_size) == 32 and len(df) == len(summary["results"][0]["probes"])
    # resume: the probes are records, nothing runs again
    before = sorted(p.name for p in (out / "records").iterdir())
    assert (
        main(
            [
                "maxbatch",
                "--memory-limit",
                "1GiB",
                "--trainers",
                "bp",
                "--depths",
                "1",
                "--width",
                "16",
                "--dataset",
                "synthetic",
                "--device",
                "cpu",
                "--threads",
                "1",
                "--max-batch",
                "32",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (out / "records").iterdir()) == before


def test_maxbatch_bad_budget_writes_nothing(tmp_path, capsys):
    out = tmp_path / "mb"
    assert main(["maxbatch", "--memory-limit", "0MiB", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ffbench: error:") and len(err.splitlines()) == 1
    assert not out.exists()


def test_the_seed_is_the_models_prediction_or_says_why_there_is_none():
    cfg = RunConfig(trainer="bp", depth=2, width=64)
    assert analytic_seed(cfg, 2**26, 784, 10) == (max_batch_size(cfg, 2**26), "memory_model")
    assert analytic_seed(cfg, 1) == (
        None,
        "default start (no seed: the model predicts that not even batch 1 fits)",
    )
    object.__setattr__(cfg, "trainer", "no-such-trainer")  # RunConfig would refuse the name
    seed, source = analytic_seed(cfg, 2**26)
    assert (
        seed is None and source == "default start (no seed: no memory ledger for trainer 'no-such-trainer')"
    )


def test_table_sentence():
    r = [
        MaxBatch("bp", 2, 500, 8 * 2**30, 1000, 1010, False, None, "default start"),
        MaxBatch("ff", 2, 500, 8 * 2**30, 2000, 2040, False, 1900, "memory_model"),
    ]
    assert (
        "with a 8.00 GiB tensor budget (depth 2, width 500): bp fits batch 1000, ff fits batch 2000"
        in table(r)
    )
