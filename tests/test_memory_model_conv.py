"""The analytic model of the image trainers (`--arch conv`) against the tensor-level tracker.

Every BP variant under --arch conv is an exact ledger (ffbench/model/conv.py): steady step,
first step and one evaluation chunk equal to the byte (TOL 0, as tests/test_memory_model.py
for the MLPs), on CIFAR-shaped (3x32x32, the NHWC copy of ToImage) and MNIST-shaped (1x28x28,
a view) inputs, both memory formats, mixed kernels and strides. ff-frugal's together pass
too (SymBa and threshold, layer and position goodness). What is not modelled (ff and ff-summed
under conv, ff-frugal's sequential pass, every trainer under --arch local) raises
NotImplementedError: never a silent BP fallback.
"""

from __future__ import annotations

import math

import pytest
from test_memory_model import measure

from ffbench.config import RunConfig
from ffbench.model import max_batch_size, predict

TOL = 0
BP_CONV = ("bp", "bp-checkpoint", "bp-accum", "bp-inbackward", "bp-local")
SHAPES = [
    dict(depth=2, channels="16", batch_size=32),
    dict(depth=3, channels="8,16,32", kernel="3,5,3", stride="1,2,2", batch_size=30),
    dict(depth=4, channels="16", batch_size=24, image_shape="1x28x28"),
    dict(depth=3, channels="16", batch_size=32, memory_format="contiguous"),
]
CASES = [(t, i) for t in BP_CONV for i in range(len(SHAPES))]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def config(trainer: str, **kw) -> RunConfig:
    kw.setdefault("image_shape", "3x32x32")
    return RunConfig(trainer=trainer, arch="conv", dataset="synthetic", threads=1, eval_chunk=64, **kw)


def features(cfg: RunConfig) -> int:
    return math.prod(int(d) for d in cfg.image_shape.split("x"))


def assert_exact(cfg: RunConfig) -> None:
    """The ledger's steady step, first step and evaluation equal the tracker's, byte for byte."""
    I = features(cfg)
    first, steady, ev = measure(cfg, I, first_tracked=True, evaluate=True)
    pred = predict(cfg, I, 10, eval_examples=cfg.chunk)
    assert pred.peak_bytes == steady.peak_bytes, (pred.peak_bytes, steady.peak_bytes, pred.where)
    assert pred.start_bytes == steady.start_bytes
    assert pred.breakdown == steady.peak_breakdown
    assert (pred.first_step_peak_bytes, pred.first_step_start_bytes) == (first.peak_bytes, first.start_bytes)
    assert (pred.eval_peak_bytes, pred.eval_start_bytes) == (ev.peak_bytes, ev.start_bytes)


@pytest.mark.parametrize("trainer,i", CASES, ids=[f"{t}-{i}" for t, i in CASES])
def test_conv_bp_exact(trainer, i):
    cfg = config(trainer, **SHAPES[i])
    assert_exact(cfg)


FF_FRUGAL = [
    dict(ff_loss="symba", depth=2, channels="4,8", batch_size=5),
    dict(ff_loss="symba", ff_goodness_scope="position", depth=3, channels="8,16,16", stride="1,2,1", batch_size=16),
    dict(ff_loss="threshold", ff_pass="together", depth=2, channels="16", batch_size=32, image_shape="1x28x28"),
    dict(ff_loss="threshold", ff_pass="together", ff_goodness_scope="position", depth=3, channels="8", batch_size=32),
    dict(ff_loss="symba", depth=2, channels="16", batch_size=32, memory_format="contiguous"),
    dict(ff_loss="symba", ff_goodness_scope="position", depth=2, channels="16,8", kernel="5,3", batch_size=24,
         ff_eval_layers="skip-first"),
]  # fmt: skip


@pytest.mark.parametrize("i", range(len(FF_FRUGAL)))
def test_conv_ff_frugal_exact(i):
    cfg = config("ff-frugal", **FF_FRUGAL[i])
    assert_exact(cfg)


def test_conv_accum_uneven_micro():
    cfg = config("bp-accum", depth=2, channels="8,16", stride="2,1", batch_size=30, micro_batch=7)
    _, steady, _ = measure(cfg, 3072)
    pred = predict(cfg, 3072, 10)
    assert (pred.peak_bytes, pred.breakdown) == (steady.peak_bytes, steady.peak_breakdown)


def test_conv_checkpoint_segments():
    cfg = config("bp-checkpoint", depth=4, channels="16", batch_size=32, checkpoint_segments=2)
    _, steady, _ = measure(cfg, 3072)
    pred = predict(cfg, 3072, 10)
    assert (pred.peak_bytes, pred.breakdown) == (steady.peak_bytes, steady.peak_breakdown)


def test_conv_max_batch_is_exact():
    cfg = config("bp", depth=2, channels="16", batch_size=8)
    budget = predict(cfg.replace(batch_size=40), 3072, 10).whole_run_peak_bytes
    assert max_batch_size(cfg, budget, 3072, 10) == 40


UNMODELLED = [("conv", t) for t in ("ff", "ff-summed")] + [
    ("local", t) for t in BP_CONV + ("ff", "ff-summed", "ff-frugal")
]


@pytest.mark.parametrize("arch,trainer", UNMODELLED, ids=[f"{a}-{t}" for a, t in UNMODELLED])
def test_unmodelled_raise(arch, trainer):
    extra = {"ff_loss": "symba"} if trainer == "ff-frugal" else {}
    cfg = RunConfig(
        trainer=trainer, arch=arch, dataset="synthetic", depth=2, channels="8", batch_size=8, **extra
    )
    with pytest.raises(NotImplementedError, match=arch):
        predict(cfg, 3072, 10)
    with pytest.raises(NotImplementedError):
        max_batch_size(cfg, 1 << 30, 3072, 10)


@pytest.mark.parametrize("extra", [{}, {"ff_negatives": "hard", "ff_loss": "symba"},
                                   {"ff_eval": "replicated", "ff_loss": "symba"}])  # fmt: skip
def test_conv_ff_frugal_outside_the_model_raises(extra):
    """The sequential pass (threshold loss's default), hard negatives, replicated evaluation."""
    cfg = config("ff-frugal", depth=2, channels="8", batch_size=8, **extra)
    with pytest.raises(NotImplementedError):
        predict(cfg, 3072, 10)
