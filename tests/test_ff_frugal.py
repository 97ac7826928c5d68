"""Best FF: `ff-frugal` and the sequential pass make FF's update exactly; the label loop
evaluates like the replicated pass; and the frugal step keeps fewer bytes (tracker, exact)."""

import gc

import pytest
import torch

from ffbench.config import RunConfig
from ffbench.errors import ConfigError
from ffbench.measure import TensorTracker
from ffbench.trainers import build_trainer
from ffbench.trainers.ff import FFTrainer
from ffbench.trainers.ff_frugal import wrong_labels

CPU = torch.device("cpu")


def make(trainer, **kw):
    fields = {"depth": 3, "width": 48, "batch_size": 32, "lr": 5e-3, "device": "cpu", **kw}
    return build_trainer(RunConfig(trainer=trainer, **fields), 64, 10, CPU)


def batches(n=32, d=64, steps=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, d, generator=g), torch.randint(0, 10, (n,), generator=g)) for _ in range(steps)]


def assert_same_update(a, b, data, atol=1e-5, rtol=1e-4):
    losses = [(a.train_step(x, y), b.train_step(x, y)) for x, y in data]
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb, atol=atol, rtol=rtol)
    for la, lb in losses:
        torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-4)
    fresh = make("ff")
    assert any(not torch.equal(p, q) for p, q in zip(a.model.parameters(), fresh.model.parameters()))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"ff_pass": "together"},
        {"ff_norm": "l2", "ff_goodness": "sum", "ff_threshold": 2.0},
        {"optimizer": "sgd", "lr": 0.05},
        {"ff_negatives": "hard"},
        {"depth": 1},
    ],
    ids=["default", "together", "l2-sum", "sgd", "hard", "depth1"],
)
def test_ff_frugal_makes_ffs_update(options):
    assert_same_update(make("ff", **options), make("ff-frugal", **options), batches())


def test_the_sequential_pass_makes_the_together_update():
    assert_same_update(make("ff"), make("ff", ff_pass="sequential"), batches(seed=1))


def test_frugal_defaults_to_sequential_and_ff_to_together():
    assert make("ff-frugal").ff_pass == "sequential" and make("ff").ff_pass == "together"


def test_a_loss_that_does_not_separate_refuses_the_sequential_pass():
    class Coupled(FFTrainer):
        name = "ff-coupled-test"

        def layer_loss(self, g_pos, g_neg):
            return torch.nn.functional.softplus(g_neg - g_pos).mean()

    config = RunConfig(trainer="ff", depth=1, width=8, batch_size=4, ff_pass="sequential")
    with pytest.raises(ConfigError, match="--ff-pass sequential needs FF's loss"):
        Coupled(config, 64, 10, CPU)


def test_frugal_negatives_are_never_the_true_label():
    y = torch.arange(10).repeat(200)
    for seed in range(3):
        neg = wrong_labels(y.clone(), 10, torch.Generator().manual_seed(seed))
        assert not (neg == y).any()
        assert set(neg.tolist()) == set(range(10))


@pytest.mark.parametrize("trainer", ["ff", "ff-frugal"])
def test_the_label_loop_predicts_like_the_replicated_pass(trainer):
    t = make(trainer)
    for x, y in batches(steps=20, seed=2):
        t.train_step(x, y)
    x = batches(n=300, seed=3, steps=1)[0][0]
    with torch.no_grad():
        loop = t._label_scores_loop(x)
        replicated = t._label_scores_replicated(x)
    if trainer == "ff":  # the same rows through the same kernels
        assert torch.equal(loop, replicated)
    else:  # in-place normalisation and fused goodness: rounding only
        torch.testing.assert_close(loop, replicated, rtol=1e-5, atol=1e-5)
    assert torch.equal(loop.argmax(1), replicated.argmax(1))


def _step_bytes(trainer, **kw):
    t = make(trainer, **kw)
    x, y = batches(n=kw.get("batch_size", 32), steps=1)[0]
    t.train_step(x, y)  # optimizer state exists
    gc.collect()
    with TensorTracker(t.model.parameters(), t.optimizers(), inputs=(x, y)) as tracker:
        t.train_step(x, y)
    return tracker.result()


def test_the_frugal_step_keeps_fewer_bytes_than_ff():
    shape = {"depth": 2, "width": 256, "batch_size": 512, "optimizer_impl": "fused"}
    ff, seq, frugal = _step_bytes("ff", **shape), _step_bytes("ff", ff_pass="sequential", **shape), None
    frugal = _step_bytes("ff-frugal", **shape)
    assert frugal.transient_bytes < seq.transient_bytes < ff.transient_bytes
    assert frugal.peak_saved_bytes == 0 < seq.peak_saved_bytes < ff.peak_saved_bytes
    assert frugal.start_bytes == ff.start_bytes  # same parameters, state and inputs
