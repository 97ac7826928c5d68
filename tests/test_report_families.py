"""Issue 22 (analysis) and issue 26 (figures): families by update, best against best at equal
micro-batch with the crossover depth per architecture, the frontier claims, the closed
division, one ratio colour scale and one trainer style map -- all from constructed records."""

from __future__ import annotations

import json

import matplotlib.lines
import pytest

from ffbench.analysis import plots
from ffbench.analysis.claims.tables import ratio_words
from ffbench.analysis.divisions import closed_division_table
from ffbench.analysis.families import BUILT_IN, family_of
from ffbench.analysis.report import analyse, load_runs
from ffbench.config import RunConfig
from ffbench.trainers import registry

MiB = 2**20


PROTOCOL_TIMING = {
    "protocol": "ffbench-timing/1",
    "job": "j1",
    "allocator_setting": "glibc malloc, default thresholds",
}


def record(
    trainer, peak, *, depth=2, width=64, batch=64, micro=None, arch="mlp", seconds=None, window=None,
    timing=PROTOCOL_TIMING, steps=5, load=0.5, **kw,
):  # fmt: skip
    """A measure record with one training-step peak (bytes) and, optionally, a median step time
    taken by the timing protocol (`timing`; None: a record made before it) from `steps` steps
    under a 1-minute load average `load` on 2 cores."""
    opts = {"channels": "4"} if arch == "conv" else {}
    cfg = RunConfig(trainer="bp", arch=arch, depth=depth, width=width, batch_size=batch, dataset="synthetic",
                    **({"time_steps": 4} if arch == "recurrent" else {}), **opts, **kw).to_dict()  # fmt: skip
    cfg.update(trainer=trainer, micro_batch=micro, bptt_window=window)  # FF micro-batching: another branch
    metrics = {
        "tensor_peak_bytes": peak,
        "tensor_first_step_peak_bytes": peak,
        "tensor_train_peak_bytes": peak,
        "tensor_peak_activations_bytes": peak // 2,
    }
    out = {"kind": "measure", "status": "ok", "config": cfg, "metrics": metrics}
    if seconds is not None:
        metrics.update(step_seconds_median=seconds, step_seconds_iqr=seconds / 20, timed_steps=steps)
        if timing is not None:
            metrics.update(timing_load_before=load, timing_load_after=load, timing_cores=2)
            out["timing"] = timing
    return out


def write(folder, records, maxbatch=None):
    folder.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(records):
        (folder / f"r{i}.json").write_text(json.dumps(r))
    if maxbatch is not None:
        (folder / "maxbatch.json").write_text(json.dumps(maxbatch))
    return folder


def verdicts(folder):
    return {v.key: v for v in analyse([folder]).verdicts}


BEST = "best_ff_needs_less_memory_than_best_bp"


# -- families ------------------------------------------------------------------------------


def test_the_upgrade_agrees_with_the_registry_for_every_built_in_trainer():
    names = registry.trainer_names()
    assert set(BUILT_IN) == set(names)  # a new built-in trainer must be filed here too
    for name in names:
        for arch in registry.architectures(name):
            assert family_of(name, arch) == registry.family(name, arch), (name, arch)
            assert family_of(name, arch, 4) == registry.family(name, arch, 4) == "other"
    assert family_of("someone-elses-trainer") == "other"


def test_records_carry_their_family_and_old_ones_get_it_on_read(tmp_path):
    from ffbench.data import load_dataset
    from ffbench.run.harness import HarnessSettings, run_one

    cfg = RunConfig(trainer="bp-local", depth=1, width=8, batch_size=4, dataset="synthetic", eval_chunk=4)
    fast = HarnessSettings(timing_steps=1, timeline=False, compare_allocator=False, evaluate=False)
    measured = run_one(cfg, fast, dataset=load_dataset("synthetic", val_size=0))
    assert measured.family == "other"
    old = record("bp-accum", 100)
    recorded = {**record("bp", 100, depth=3), "family": "other"}  # a record's own word wins
    runs = load_runs(write(tmp_path / "r", [old, recorded, record("bp", 1, window=2, arch="recurrent")]))
    assert sorted(zip(runs["trainer"], runs["family"], runs["micro"])) == [
        ("bp", "other", 64), ("bp", "other", 64), ("bp-accum", "bp", 16)
    ]  # fmt: skip


# -- best against best -----------------------------------------------------------------------


def others_smallest():
    """Every other rule smaller than any exact BP, at one MLP and one recurrent configuration."""
    return [
        record("ff", 90 * MiB, seconds=0.02),
        record("bp", 100 * MiB, seconds=0.01),
        record("bp-local", 10 * MiB, seconds=0.001),
        record("bp-ste", 11 * MiB, seconds=0.001, black_box=1),
        record("ff", 90 * MiB, arch="recurrent"),
        record("bp", 100 * MiB, arch="recurrent"),
        record("bp", 5 * MiB, arch="recurrent", window=2),
        record("bp-ce", 4 * MiB, arch="recurrent"),
    ]


def maxbatch(results, budget=128 * MiB):
    return {"budget_bytes": budget, "budget_kind": "tensor", "criterion": "tensor_train_peak_bytes",
            "results": [{"trainer": t, "depth": 2, "width": 64, "max_batch_size": b, "capped": False,
                         "probes": [], **extra} for t, b, extra in results]}  # fmt: skip


def test_no_trainer_outside_the_exact_bp_family_is_ever_bps_best(tmp_path):
    mb = maxbatch([("ff", 1000, {}), ("bp", 900, {}), ("bp-local", 5000, {})])
    found = verdicts(write(tmp_path / "o", others_smallest(), mb))
    exact = {"bp", "bp-checkpoint", "bp-accum", "bp-inbackward"}
    seen = []
    for v in found.values():
        for c in (v.numbers.get("configurations") or {}).values():
            for key in ("bp_best", "bptt_best"):
                if isinstance(c, dict) and key in c:
                    seen.append(c[key])
    assert seen and set(seen) <= exact
    best = found[BEST].numbers["configurations"]
    assert {c["bp_best"] for c in best.values()} == {"bp"} and len(best) == 2
    assert best["w64 d2 b64"]["others_over_bp"]["bp-local"] == pytest.approx(0.1)
    assert found[BEST].verdict == "holds"  # 90 against bp's 100, though bp-local needs 10
    assert "bp-local" not in found["best_ff_fits_a_larger_batch"].summary
    assert found["best_ff_fits_a_larger_batch"].verdict == "holds"  # 1000 against bp's 900
    assert found["ff_is_slower_per_step"].numbers["ratio"] == {"w64 d2 b64": pytest.approx(2.0)}


def test_best_against_best_compares_at_equal_micro_batch(tmp_path):
    # bp-accum (micro 16 of 64) needs far less than FF at the whole batch: never compared with it
    runs = [record("ff", 90, seconds=1), record("bp", 100, seconds=1), record("bp-accum", 30, seconds=1)]
    v = verdicts(write(tmp_path / "a", runs))[BEST]
    assert v.verdict == "holds" and list(v.numbers["configurations"]) == ["w64 d2 b64"]
    # a micro-batched FF at 16 rows meets bp-accum there, and loses: the verdict can fail
    v = verdicts(write(tmp_path / "b", [*runs, record("ff", 40, micro="1/4", seconds=1)]))[BEST]
    quarter = v.numbers["configurations"]["w64 d2 b64 micro 16"]
    assert (quarter["ff_best"], quarter["bp_best"], quarter["micro"]) == (
        "ff[micro_batch=1/4]",
        "bp-accum",
        16,
    )
    assert quarter["side"] == "BP less" and v.verdict == "holds only where w64 d2 b64"
    v = verdicts(write(tmp_path / "c", [runs[1], record("ff", 120, seconds=1)]))[BEST]  # FF above bp
    assert v.verdict == "does not hold"


def depth_records(ratios, arch="mlp", width=64):
    out = []
    for depth, ratio in ratios.items():
        out += [
            record("ff", int(1000 * ratio), depth=depth, arch=arch, width=width),
            record("bp", 1000, depth=depth, arch=arch, width=width),
        ]
    return out


def test_crossover_depth_per_architecture_one_summary_line_each(tmp_path):
    found = verdicts(write(tmp_path / "x", depth_records({2: 1.2, 4: 0.9, 8: 0.8})
                           + depth_records({2: 1.3, 4: 0.9, 8: 1.1}, arch="conv")))[BEST]  # fmt: skip
    cross = found.numbers["crossover"]
    assert [s["crossover"] for s in cross["mlp"].values()] == [4]
    assert [s["crossover"] for s in cross["conv"].values()] == [None]  # FF above BP again at d8
    lines = found.summary.split("\n")
    assert sorted(line.split(":")[0] for line in lines) == ["conv", "mlp"]
    mlp, conv = sorted(lines, key=lambda line: not line.startswith("mlp"))
    assert "FF/BP over depth: w64 b64 d2 1.20, d4 0.90, d8 0.80 (crossover depth 4)" in mlp
    assert "(no crossover in depth 2-8)" in conv
    assert "FF needs from 1.25x less to 1.20x more than BP" in mlp
    assert "decided on" not in found.claim  # two architectures
    one = verdicts(write(tmp_path / "y", depth_records({2: 1.2, 4: 0.9})))[BEST]
    assert one.claim.endswith("(decided on the mlp network alone)")


def test_rows_sharing_a_label_keep_their_own_verdicts_and_crossover(tmp_path):
    """Two folders of one grid (a comparison report): the same words label different rows,
    yet each row is judged by its own ratio (found by review: the crossover read the other
    folder's verdict)."""
    a = write(tmp_path / "a", depth_records({2: 0.5, 4: 0.5}))
    b = write(tmp_path / "b", depth_records({2: 1.5, 4: 0.5}))
    found = {v.key: v for v in analyse([a, b]).verdicts}[BEST]
    configs = found.numbers["configurations"]
    assert len(configs) == 4 and sum(c["side"] == "FF less" for c in configs.values()) == 3
    crossings = sorted(s["crossover"] for s in found.numbers["crossover"]["mlp"].values())
    assert crossings == [2, 4]
    assert "FF less at 3" in found.summary


def test_ratio_headlines_say_the_direction_in_words():
    assert ratio_words([1.8, 3.0]) == "FF needs 1.80-3.00x more than BP"
    assert ratio_words([0.5, 0.8]) == "FF needs 1.25-2.00x less than BP"
    assert ratio_words([0.5]) == "FF needs 2.00x less than BP"
    assert (
        ratio_words([1.2, 1.4], "longer", "less time", verb="takes") == "FF takes 1.20-1.40x longer than BP"
    )


def test_the_largest_batch_compares_like_with_like_and_can_fail(tmp_path):
    # bp-accum (1/4) fits the largest batch, but FF searched without micro-batching meets bp only
    mb = maxbatch([("ff", 1000, {}), ("bp", 900, {}), ("bp-accum", 3000, {})])
    v = verdicts(write(tmp_path / "a", [record("ff", 1)], mb))["best_ff_fits_a_larger_batch"]
    assert v.verdict == "holds" and "micro-batch 1/4: bp-accum only" in v.detail
    mb = maxbatch(
        [("ff", 1000, {}), ("bp", 900, {}), ("bp-accum", 3000, {}), ("ff", 2000, {"micro_batch": "1/4"})]
    )
    v = verdicts(write(tmp_path / "b", [record("ff", 1)], mb))["best_ff_fits_a_larger_batch"]
    assert v.verdict == "holds only where tensor budget 128 MiB w64 d2 micro-batch none"


def test_time_claim_can_fail(tmp_path):
    fast = [record("ff", 90, seconds=0.5), record("bp", 100, seconds=1.0)]
    assert verdicts(write(tmp_path / "f", fast))["ff_is_slower_per_step"].verdict == "does not hold"


def test_time_claim_is_not_evaluated_on_few_flagged_or_old_samples(tmp_path):
    """The step-time claim holds on fit times; the same times from 4 steps, with a wide IQR,
    under load, from the RSS-tuned process or from before the protocol: not evaluated."""
    key = "ff_is_slower_per_step"
    assert (
        verdicts(write(tmp_path / "ok", [record("ff", 90, seconds=2.0), record("bp", 100, seconds=1.0)]))[
            key
        ].verdict
        == "holds"
    )
    cases = {
        "few": (dict(steps=4), "4 timed steps"),
        "old": (dict(timing=None), "timing protocol"),
        "load": (dict(load=2.5), "load average 2.5 on 2 cores"),
        "rss": (dict(timing={**PROTOCOL_TIMING, "allocator_setting": "M_MMAP_THRESHOLD=65536"}), "RSS"),
    }
    for name, (kw, why) in cases.items():
        runs = [record("ff", 90, seconds=2.0), record("bp", 100, seconds=1.0, **kw)]
        v = verdicts(write(tmp_path / name, runs))[key]
        assert v.status == "not evaluated" and why in v.verdict, (name, v.verdict)
    noisy = [record("ff", 90, seconds=2.0), record("bp", 100, seconds=1.0)]
    noisy[0]["metrics"]["step_seconds_iqr"] = 1.5  # 75 % of the median
    assert verdicts(write(tmp_path / "noisy", noisy))[key].status == "not evaluated"
    # one configuration fit, one not: decided on the fit one, the other listed
    mixed = [*noisy, record("ff", 90, seconds=2.0, width=128), record("bp", 100, seconds=1.0, width=128)]
    v = verdicts(write(tmp_path / "mixed", mixed))[key]
    assert v.verdict == "holds" and "Not evaluated (unfit step times): w64 d2 b64" in v.detail


# -- the frontier ------------------------------------------------------------------------------


def frontier_records(ff_peak):
    """bp: fast and big (b256) or slow and small (b32); ff: one point between them."""
    return [
        record("bp", 100 * MiB, batch=256, seconds=256e-6),  # 1 us per example
        record("bp", 20 * MiB, batch=32, seconds=32 * 4e-6),  # 4 us per example
        record("bp-accum", 60 * MiB, batch=256, seconds=256 * 2.5e-6),  # 2.5 us: dominated by nothing
        record("ff", ff_peak, batch=256, seconds=256 * 2e-6),  # 2 us per example
        record("ff", 200 * MiB, batch=64, seconds=64 * 8e-6),  # dominated: slower and bigger
    ]


FRONTIER = ("frontier_ff_needs_less_memory_at_equal_time", "frontier_ff_trains_faster_at_equal_memory")


def test_frontier_claims_are_not_evaluated_on_times_taken_before_the_protocol(tmp_path):
    old = [{**r, "timing": None} for r in frontier_records(50 * MiB)]
    found = verdicts(write(tmp_path / "n", old))
    for key in FRONTIER:
        assert found[key].status == "not evaluated" and "timing protocol" in found[key].verdict
        assert found[key].numbers["points"] == 1  # computed all the same


def test_frontier_claims_are_not_evaluated_on_flagged_times(tmp_path):
    """The same points that hold (below) are not evaluated when one step time is flagged."""
    for name, change in {
        "few": {"timed_steps": 4},
        "noisy": {"step_seconds_iqr": 1.0},
        "load": {"timing_load_before": 2.5},
    }.items():
        records = frontier_records(50 * MiB)
        records[0]["metrics"].update(change)
        found = verdicts(write(tmp_path / name, records))
        for key in FRONTIER:
            assert found[key].status == "not evaluated", (name, found[key].verdict)
    rss = frontier_records(50 * MiB)
    rss[1] = {
        **rss[1],
        "timing": {**PROTOCOL_TIMING, "allocator_setting": "glibc malloc, M_MMAP_THRESHOLD=65536"},
    }
    found = verdicts(write(tmp_path / "rss", rss))
    assert all(found[key].status == "not evaluated" for key in FRONTIER)
    assert "tuned for RSS" in found[FRONTIER[0]].verdict


def test_frontier_claims_flip_with_the_records(tmp_path):
    good = verdicts(write(tmp_path / "g", frontier_records(50 * MiB)))
    # at 2 us FF needs 50 MiB; BP no slower: 100 MiB (b256) -> FF less; at 50 MiB BP's fastest
    # within it: 4 us (b32) -> FF faster
    assert [good[k].verdict for k in FRONTIER] == ["holds", "holds"]
    assert "vs BP bp b256" in good[FRONTIER[0]].detail and "vs BP bp b32" in good[FRONTIER[1]].detail
    bad = verdicts(write(tmp_path / "b", frontier_records(110 * MiB)))
    # 110 MiB > 100 MiB; within 110 MiB BP's fastest is 1 us -> FF slower: both fail
    assert [bad[k].verdict for k in FRONTIER] == ["does not hold", "does not hold"]
    from ffbench.analysis.claims.frontier import frontier_points

    points = frontier_points(load_runs(tmp_path / "g"))
    assert sorted(points[points["on_frontier"]]["variant"]) == ["bp", "bp", "bp-accum", "ff"]


# -- the closed division -------------------------------------------------------------------------


def test_closed_division_lists_each_familys_techniques(tmp_path):
    runs = load_runs(write(tmp_path / "d", [*others_smallest(), record("bp-accum", 1), record("bp-checkpoint", 1),
                                            record("ff", 1, micro=16, optimizer_impl="foreach")]))  # fmt: skip
    table = closed_division_table(runs).set_index("technique")
    assert table.loc["micro-batching", "FF family"] == "ff (micro 16-16 of batch 64-64)"
    assert table.loc["micro-batching", "exact-BP family"] == "bp-accum (micro 16-16 of batch 64-64)"
    assert table.loc["checkpointing", "exact-BP family"] == "bp-checkpoint"
    assert table.loc["checkpointing", "FF family"].startswith("n/a")
    assert table.loc["in-backward stepping", "exact-BP family"] == "offered, not measured"
    assert table.loc["optimizer implementation", "FF family"] == "foreach, single-tensor"
    assert "bp-ce, bp-local, bp-ste" in table.loc["open division (other rules)", "FF family"]


# -- figures -----------------------------------------------------------------------------------------


def figure_records():
    out = frontier_records(50 * MiB) + depth_records({2: 1.2, 4: 0.9}, width=32)
    out += depth_records({2: 0.5}, arch="conv")
    for steps in (2, 4):
        for t, peak, window in (("ff", 40, None), ("bp", 80, None), ("bp", 60, 2)):
            r = record(t, peak, arch="recurrent", window=window)
            r["config"]["time_steps"] = steps
            r["metrics"]["tensor_transient_bytes"] = peak
            out.append(r)
    return out


def drawn(runs):
    out = {}
    for fn in plots.FIGURES:
        made = fn(plots.runs_for(fn, runs), epochs=None, timelines=None, maxbatch=None)
        for p in made if isinstance(made, list) else [made]:
            if p.figure is not None:
                out[p.name] = p.figure
    return out


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    figs = drawn(load_runs(write(tmp_path_factory.mktemp("figs") / "runs", figure_records())))
    yield figs
    import matplotlib.pyplot as plt

    for f in figs.values():
        plt.close(f)


def test_every_ratio_view_shares_one_colour_norm_recurrent_included(figures):
    norms = []
    for name in ("best_ff_vs_best_bp", "ff_bp_time_ratio", "crossover"):
        for ax in figures[name].axes:
            for artist in ax.collections:
                if artist.get_array() is not None and artist.cmap.name == plots.RATIO_CMAP:
                    norms.append((name, type(artist.norm).__name__, artist.norm.vmin, artist.norm.vmax))
    assert {n[0] for n in norms} == {"best_ff_vs_best_bp", "ff_bp_time_ratio", "crossover"}
    assert {n[1:] for n in norms} == {("LogNorm", *plots.RATIO_LIMITS)}
    titles = " ".join(ax.get_title() for ax in figures["best_ff_vs_best_bp"].axes)
    assert "recurrent" in titles and "conv channels 4 k3 s1" in titles and "mlp width 32" in titles


def _dash(ls):
    return matplotlib.lines.Line2D([], [], ls=ls)._unscaled_dash_pattern


def test_every_figure_draws_a_trainer_with_one_colour_marker_and_dash(figures):
    import matplotlib.colors as mcolors

    checked = set()
    for name, fig in figures.items():
        for ax in fig.axes:
            for line in ax.get_lines():
                label = line.get_label()
                if label.startswith("_") or label not in {*plots.KNOWN, "bp[bptt_window=2]"}:
                    continue
                style = plots.trainer_style(label)
                assert mcolors.to_hex(line.get_color()) == mcolors.to_hex(style["color"]), (name, label)
                assert line.get_marker() == style["marker"], (name, label)
                if line.get_linewidth() > 0 and len(line.get_xdata()) > 1:
                    assert line._unscaled_dash_pattern == _dash(style["ls"]), (name, label)
                checked.add((name, label))
    assert {"memory_vs_time", "frontier", "peak_vs_depth"} <= {n for n, _ in checked}
    assert ("memory_vs_time", "bp[bptt_window=2]") in checked
    # the map is the trainer's alone: the same whoever else is drawn
    assert plots.line_styles(["ff"])["ff"] == plots.line_styles(["bp", "ff", "x-plugin"])["ff"]
