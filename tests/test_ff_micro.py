"""Micro-batched FF and BPTT (`--micro-batch`, issue 22): every FF trainer that micro-batches
(ff, ff-frugal; MLP, conv, local, recurrent) makes `ff`'s update with either schedule, and
micro-batched BPTT makes BPTT's (parameter for parameter, to float tolerance); ff-summed and
recurrent layer-major refuse in one line."""

from __future__ import annotations

import pytest
import torch

from ffbench.config import RunConfig
from ffbench.errors import ConfigError
from ffbench.trainers import build_trainer

CPU = torch.device("cpu")
SCHEDULES = ("micro-batch-major", "layer-major")
SHAPE, IMAGE_IN = "3x8x8", 192

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(trainer, arch="mlp", in_features=64, **kw):
    if arch in ("conv", "local"):
        fields = dict(depth=2, channels="6,8", kernel=3, stride="1,2", image_shape=SHAPE, ff_loss="symba")
    elif arch == "recurrent":
        fields = dict(depth=2, width=24, time_steps=3)
    else:
        fields = dict(depth=3, width=40)
    fields = {**fields, "batch_size": 20, "lr": 5e-3, "device": "cpu", "seed": 3, **kw}
    trainer = build_trainer(RunConfig(trainer=trainer, arch=arch, **fields), in_features, 10, CPU)
    if arch in ("conv", "local"):  # the same non-zero label biases (E = 0: SymBa's gradients ~ 0)
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for layer in trainer.net.layers:
                layer.label.copy_(torch.randn(layer.label.shape, generator=g) * 0.1)
    return trainer


def batches(d, n=20, steps=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, d, generator=g), torch.randint(0, 10, (n,), generator=g)) for _ in range(steps)]


def assert_same_update(ref, other, data, atol=2e-5, rtol=1e-4):
    before = [p.detach().clone() for p in ref.model.parameters()]
    losses = [(ref.train_step(x, y), other.train_step(x, y)) for x, y in data]
    for pa, pb in zip(ref.model.parameters(), other.model.parameters(), strict=True):
        torch.testing.assert_close(pb, pa, atol=atol, rtol=rtol)
    for la, lb in losses:
        torch.testing.assert_close(lb, la, atol=1e-5, rtol=1e-4)
    # the steps moved every parameter tensor (a test that cannot fail is no test)
    assert all(not torch.equal(p, q) for p, q in zip(before, ref.model.parameters()))


MLP_OPTIONS = [
    {},
    {"optimizer": "sgd", "lr": 0.05},
    {"ff_negatives": "hard"},
    {"ff_pass": "together"},
    {"ff_norm": "l2", "ff_goodness": "sum", "ff_threshold": 2.0, "depth": 1},
]


@pytest.mark.parametrize("trainer", ["ff", "ff-frugal"])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("options", MLP_OPTIONS, ids=["adam", "sgd", "hard", "together", "l2-sum-d1"])
def test_micro_batched_mlp_ff_makes_ffs_update(trainer, schedule, options):
    ref = make("ff", **options)
    # 20 rows in micro-batches of 6: 6 + 6 + 6 + 2 (an uneven last micro-batch)
    micro = make(trainer, micro_batch=6, ff_micro_schedule=schedule, **options)
    assert micro.config.micro == 6 and micro.config.micro_batching
    assert_same_update(ref, micro, batches(64))


IMAGE_OPTIONS = [
    {},
    {"ff_goodness_scope": "position"},
    {"ff_loss": "threshold", "ff_threshold": 1.0},
    {"ff_loss": "threshold", "ff_goodness_scope": "position", "optimizer": "sgd", "lr": 0.05},
    {"ff_negatives": "hard"},
]
IMAGE_IDS = ["symba-layer", "symba-position", "threshold-layer", "threshold-position-sgd", "hard"]


@pytest.mark.parametrize("arch", ["conv", "local"])
@pytest.mark.parametrize("trainer", ["ff", "ff-frugal"])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("options", IMAGE_OPTIONS, ids=IMAGE_IDS)
def test_micro_batched_image_ff_makes_ffs_update(arch, trainer, schedule, options):
    ref = make("ff", arch, IMAGE_IN, **options)
    micro = make(trainer, arch, IMAGE_IN, micro_batch="1/4", ff_micro_schedule=schedule, **options)
    assert micro.config.micro == 5
    assert_same_update(ref, micro, batches(IMAGE_IN))


@pytest.mark.parametrize("options", [{}, {"optimizer": "sgd", "lr": 0.05}, {"ff_negatives": "hard"}])
def test_micro_batched_recurrent_ff_makes_ffs_update(options):
    ref = make("ff", "recurrent", 40, **options)
    assert_same_update(ref, make("ff", "recurrent", 40, micro_batch=6, **options), batches(40))


@pytest.mark.parametrize("trainer", ["bp", "bp-checkpoint"])
@pytest.mark.parametrize("options", [{}, {"optimizer": "sgd", "lr": 0.05}])
def test_micro_batched_bptt_makes_bptts_update(trainer, options):
    ref = make("bp", "recurrent", 40, **options)
    assert_same_update(ref, make(trainer, "recurrent", 40, micro_batch=6, **options), batches(40))


@pytest.mark.parametrize("arch", ["mlp", "conv", "local"])
def test_ff_summed_refuses_a_micro_batch(arch):
    with pytest.raises(ConfigError, match="--micro-batch does not apply to ff-summed"):
        RunConfig(trainer="ff-summed", arch=arch, micro_batch=4)


def test_recurrent_ff_refuses_the_layer_major_schedule():
    with pytest.raises(ConfigError, match="micro-batch-major only"):
        make("ff", "recurrent", 40, micro_batch=6, ff_micro_schedule="layer-major")


def test_without_a_micro_batch_the_step_is_unchanged():
    """--micro-batch equal to the batch runs the micro-batch loop once: ff's update again."""
    assert_same_update(make("ff-frugal"), make("ff-frugal", micro_batch=20), batches(64))
