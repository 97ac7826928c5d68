"""The report across architectures: the best-vs-best claim per architecture (conv labelled by its
layers, activation-dominated by bp's saved share), the crossover figure, heatmap panels per body,
MLP-only figures unchanged; the dry-run estimate counts a conv net's multiply-adds."""

from __future__ import annotations

import pytest
from test_report import make_sweep

from ffbench.analysis.report import build_report
from ffbench.analysis.thresholds import MIN_TIMED_STEPS
from ffbench.config import RunConfig
from ffbench.run.estimate import macs, step_gflop
from ffbench.run.reproduce import FULL, QUICK

CONV_GRID = {"trainers": ["bp", "bp-accum", "ff", "ff-frugal"], "depths": [2], "widths": [32],
             "batch_sizes": [16], "channels": ["4", "8"]}  # fmt: skip
MLP_GRID = {"trainers": ["bp", "ff-frugal"], "depths": [2], "widths": [32], "batch_sizes": [64]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv-report")
    conv = make_sweep(root / "conv", CONV_GRID, arch="conv", image_shape="3x8x8", ff_loss="symba")
    mlp = make_sweep(root / "mlp", MLP_GRID)
    return build_report([conv, mlp], root / "r.html")


def _verdict(report, key):
    return next(v for v in report.verdicts if v.key == key)


def test_best_vs_best_is_per_architecture_and_labels_conv_by_its_layers(report):
    v = _verdict(report, "best_ff_needs_less_memory_than_best_bp")
    configs = v.numbers["configurations"]
    assert {"conv c4 k3 s1 d2 b16", "conv c8 k3 s1 d2 b16", "w32 d2 b64"} <= set(configs)
    conv = configs["conv c8 k3 s1 d2 b16"]
    # at FF's micro-batch (the whole batch): bp-accum's quarter is compared with FF's quarter only
    assert conv["ff_best"] in ("ff", "ff-frugal") and conv["bp_best"] in (
        "bp",
        "bp-checkpoint",
        "bp-inbackward",
    )
    assert 0 < conv["bp_activation_share"] < 1
    assert conv["activation_dominated"] == (conv["bp_activation_share"] >= 0.5)
    assert [line.split(":")[0] for line in v.numbers["per_architecture"]] == ["conv", "mlp"]
    assert [line.split(":")[0] for line in v.summary.split("\n")] == ["conv", "mlp"]  # one line each


def test_crossover_and_heatmap_draw_every_architecture(report):
    figs = {f.name: f for f in report.figures}
    assert figs["crossover"].file is not None and "conv" in figs["crossover"].svg
    assert "mlp" in figs["crossover"].svg
    heat = figs["best_ff_vs_best_bp"].svg
    assert "conv channels 4 k3 s1" in heat and "conv channels 8 k3 s1" in heat and "width 32" in heat


def test_mlp_figures_see_mlp_runs_only(report):
    figs = {f.name: f for f in report.figures}
    # the depth figures are drawn from the MLP sweep alone: one panel (batch 64, width 32)
    assert figs["peak_vs_depth"].svg is not None and "batch 16" not in figs["peak_vs_depth"].svg


def test_estimate_counts_conv_multiply_adds():
    cfg = RunConfig(trainer="bp", arch="conv", channels="64", depth=4, batch_size=256, dataset="synthetic")
    # 3->64 over 32x32 (27 per output), then 3 x (64->64, 576 per output), head 65536 -> 10
    assert macs(cfg) == 65536 * 27 + 3 * 65536 * 576 + 65536 * 10
    assert step_gflop(cfg.replace(trainer="ff")) == pytest.approx(2 * step_gflop(cfg))
    mnist = RunConfig(trainer="bp", arch="conv", channels="8", depth=1, dataset="mnist")
    assert macs(mnist) == 8 * 28 * 28 * 9 + 8 * 28 * 28 * 10


def _folder(profile, name):
    """Every grid a profile runs into one results folder."""
    return [s for s in profile.sweeps if s.name == name]


def _union(grids, axis):
    return {v for s in grids for v in s.grid[axis]}


def test_profiles_hold_the_cifar_shaped_conv_grid():
    conv = _folder(QUICK, "conv")
    assert all(s.config["arch"] == "conv" and s.config["image_shape"] == "3x32x32" for s in conv)
    # timed at the timing protocol's minimum: a time verdict needs 5 steps
    assert all(s.steps == MIN_TIMED_STEPS for s in conv) and _union(conv, "channels") == {"16"}
    assert _union(conv, "depths") == {2, 4, 8}  # depth 8 at 16 channels: the crossover's deep point
    assert _union(_folder(QUICK, "conv-batch"), "batch_sizes") == {256}
    # every conv grid is measured with and without micro-batches, on both families
    plain = [s for s in conv if "micro_batches" not in s.grid]
    micro = [s for s in conv if "micro_batches" in s.grid]
    assert plain and micro and {"ff", "ff-frugal", "bp", "bp-checkpoint"} <= _union(micro, "trainers")
    full = _folder(FULL, "conv")
    assert max(map(int, _union(full, "channels"))) == 256 and max(_union(full, "depths")) == 8
    assert {"16", "64"} <= _union(full, "channels")
    assert max(_union(full, "batch_sizes")) == 1024


def test_series_over_depth_keep_architectures_and_optimizers_apart():
    """An instrument check over depth never mixes a conv net into an MLP's width, nor two
    optimizers into one series (each depth listed once per series)."""
    import pandas as pd

    from ffbench.analysis.claims.tables import depth_series

    rows = []
    for depth in (2, 4):
        for arch, channels, optimizer in (("mlp", None, "adam"), ("mlp", None, "sgd"), ("conv", "16", "adam"),
                                          ("conv", "64", "adam")):  # fmt: skip
            rows.append({"group": "g|cpu", "trainer": "ff", "arch": arch, "channels": channels, "kernel": "3",
                         "stride": "1", "width": 500, "depth": depth, "batch_size": 64, "optimizer": optimizer,
                         "optimizer_impl": "single-tensor"})  # fmt: skip
    rows.append({**rows[0], "depth": 2, "batch_size": 8})  # one depth only: no series
    series = dict(depth_series(pd.DataFrame(rows)))
    assert sorted(series) == [
        "conv c16 k3 s1 b64",
        "conv c64 k3 s1 b64",
        "w500 b64",
        "w500 b64 sgd/single-tensor",
    ]
    assert all(sorted(s["depth"]) == [2, 4] for s in series.values())
