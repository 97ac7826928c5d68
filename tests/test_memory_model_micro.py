"""Micro-batched FF's memory (`--micro-batch`, issue 22): the ledgers of ff (MLP) and ff-frugal
(MLP: sequential and together pass; conv: SymBa and the threshold loss, layer and position
goodness) equal the tensor-level tracker to the byte for both schedules; what is not modelled raises
NotImplementedError; and each schedule's measured peak obeys its bound:

    micro-batch-major  <= ff-frugal's peak at batch m + every layer's gradient bytes
    layer-major        <= that + one layer's outputs for the whole batch (2 x B x out)

(both sides without the batch itself: its `inputs` bytes, B rows against m rows, and what is
drawn for it once, before it is split: the B negative labels, int64, and for the MLP the B label
values, against m of each at batch m)."""

from __future__ import annotations

import math

import pytest
from test_memory_model import measure
from test_memory_model_conv import assert_exact, features
from test_memory_model_conv import config as conv_config

from ffbench.arch import layer_specs
from ffbench.config import RunConfig
from ffbench.model import predict

SCHEDULES = ("micro-batch-major", "layer-major")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

MLP = [
    dict(depth=3, width=200, batch_size=100, micro_batch=32),  # uneven: 32 + 32 + 32 + 4
    dict(depth=2, width=300, batch_size=128, micro_batch="1/4", ff_pass="together"),
    dict(depth=3, width=200, batch_size=96, micro_batch=24, optimizer="sgd"),
    dict(depth=2, width=256, batch_size=64, micro_batch=16, optimizer_impl="fused", dtype="bfloat16"),
]
CONV = [
    dict(ff_loss="symba", depth=2, channels="4,8", batch_size=10, micro_batch=4),
    dict(ff_loss="symba", ff_goodness_scope="position", depth=3, channels="8,16,16", stride="1,2,1",
         batch_size=16, micro_batch="1/4"),
    dict(ff_loss="threshold", ff_pass="together", depth=2, channels="16", batch_size=32, image_shape="1x28x28",
         micro_batch=12),
    dict(ff_loss="threshold", ff_pass="together", ff_goodness_scope="position", depth=3, channels="8",
         batch_size=32, micro_batch=8),
    dict(ff_loss="symba", depth=2, channels="16", batch_size=32, memory_format="contiguous", micro_batch=8),
]  # fmt: skip


def mlp_config(trainer: str = "ff-frugal", **kw) -> RunConfig:
    return RunConfig(trainer=trainer, dataset="synthetic", threads=1, **kw)


@pytest.mark.parametrize("trainer", ["ff", "ff-frugal"])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("i", range(len(MLP)))
def test_mlp_ff_micro_ledger_exact(trainer, schedule, i):
    cfg = mlp_config(trainer, ff_micro_schedule=schedule, **MLP[i])
    first, steady, _ = measure(cfg, first_tracked=True)
    pred = predict(cfg)
    assert pred.peak_bytes == steady.peak_bytes, (pred.peak_bytes, steady.peak_bytes, pred.where)
    assert pred.start_bytes == steady.start_bytes
    assert pred.breakdown == steady.peak_breakdown
    assert (pred.first_step_peak_bytes, pred.first_step_start_bytes) == (first.peak_bytes, first.start_bytes)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("i", range(len(CONV)))
def test_conv_ff_frugal_micro_ledger_exact(schedule, i):
    assert_exact(conv_config("ff-frugal", ff_micro_schedule=schedule, **CONV[i]))


def test_the_schedules_differ_as_documented():
    """micro-batch-major holds every layer's gradients, layer-major one layer's; at the peak
    layer-major holds the whole batch's outputs of a layer, micro-batch-major a micro-batch's."""
    base = dict(depth=4, width=200, batch_size=256, micro_batch=64)
    major = predict(mlp_config(**base))
    layer = predict(mlp_config(ff_micro_schedule="layer-major", **base))
    grads = [200 * 784 + 200] + [200 * 200 + 200] * 3
    assert major.breakdown["gradients"] == 4 * sum(grads)
    assert layer.breakdown["gradients"] == 4 * grads[0]  # the peak: layer 1's optimizer step
    assert layer.breakdown["other"] > major.breakdown["other"]


NOT_MODELLED = [
    dict(trainer="ff", micro_batch=4, ff_negatives="hard"),
    dict(trainer="ff-frugal", micro_batch=4, ff_negatives="hard"),
    dict(trainer="ff", arch="conv", micro_batch=4),
    dict(trainer="ff-frugal", arch="local", micro_batch=4),
    dict(trainer="ff", arch="recurrent", micro_batch=4),
    dict(trainer="bp", arch="recurrent", micro_batch=4),
]


@pytest.mark.parametrize("spec", NOT_MODELLED, ids=lambda s: "-".join(map(str, s.values())))
def test_what_is_not_modelled_raises(spec):
    with pytest.raises(NotImplementedError):
        predict(RunConfig(batch_size=16, **spec))


# -- the bounds of the "Done when" --------------------------------------------------
def _own(result) -> int:
    """The step's peak without the batch (`inputs`: B rows against m rows)."""
    return result.peak_bytes - result.peak_breakdown["inputs"]


def _check_bounds(cfg: RunConfig, I: int, grad_bytes: int, out_bytes: int, per_row: int) -> None:
    """per_row: bytes drawn once per real example of the whole batch (negative labels, values)."""
    at_m = cfg.replace(batch_size=cfg.micro, micro_batch=None, ff_micro_schedule="micro-batch-major")
    _, frugal_m, _ = measure(at_m, I)
    _, major, _ = measure(cfg, I)
    _, layer, _ = measure(cfg.replace(ff_micro_schedule="layer-major"), I)
    drawn = (cfg.batch_size - cfg.micro) * per_row
    assert _own(major) <= _own(frugal_m) + drawn + grad_bytes
    assert _own(layer) <= _own(frugal_m) + drawn + grad_bytes + out_bytes
    # and neither is free: both hold more than ff-frugal at batch m
    assert _own(frugal_m) < _own(major) and _own(frugal_m) < _own(layer)


@pytest.mark.parametrize(
    "shape", [dict(depth=2, width=500, batch_size=256, micro_batch=64), dict(depth=6, width=256, batch_size=512,
                                                                            micro_batch=128)]
)  # fmt: skip
def test_mlp_micro_peaks_obey_the_bounds(shape):
    cfg = mlp_config(**shape)
    W, D = cfg.width, cfg.depth
    grads = 4 * (W * 784 + W + (D - 1) * (W * W + W))
    _check_bounds(cfg, 784, grads, 2 * cfg.batch_size * W * 4, per_row=8 + 4)


@pytest.mark.parametrize("scope", ["layer", "position"])
def test_conv_micro_peaks_obey_the_bounds(scope):
    cfg = conv_config("ff-frugal", ff_loss="symba", ff_goodness_scope=scope, depth=3, channels="16",
                      batch_size=32, micro_batch=8)  # fmt: skip
    I = features(cfg)
    specs = layer_specs(cfg, I)
    grads = 4 * sum(sp.out_c * sp.in_c * sp.k**2 + sp.out_c + 10 * sp.out_c for sp in specs)
    outs = 2 * cfg.batch_size * 4 * max(sp.out_numel for sp in specs)
    assert math.prod(map(int, cfg.image_shape.split("x"))) == I
    _check_bounds(cfg, I, grads, outs, per_row=8)
