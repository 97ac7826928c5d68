"""Image trainers (`--arch conv|local`): every trainer steps; the frugal variants make their
counterpart's update (ff-frugal = ff, ff-summed = ff, bp-checkpoint/accum/inbackward = bp);
negatives never carry the true label; the label loop predicts like the replicated pass;
the layer geometry and the label embedding are as documented."""

from __future__ import annotations

import pytest
import torch

from ffbench.arch import layer_specs
from ffbench.config import RunConfig
from ffbench.errors import ConfigError
from ffbench.trainers import build_trainer
from ffbench.trainers.conv import FFConvTrainer
from ffbench.trainers.ff_frugal import wrong_labels

CPU = torch.device("cpu")
SHAPE = "3x8x8"  # small CIFAR-like images: 192 inputs
IN = 192
TRAINERS = ("bp", "bp-checkpoint", "bp-accum", "bp-inbackward", "bp-local", "ff", "ff-summed", "ff-frugal")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make(trainer, arch="conv", **kw):
    fields = dict(depth=2, channels="6,8", kernel=3, stride="1,2", batch_size=16, lr=5e-3, device="cpu")
    fields.update(kw)
    cfg = RunConfig(trainer=trainer, arch=arch, image_shape=SHAPE, seed=3, **fields)
    return build_trainer(cfg, IN, 10, CPU)


def label_bias_set(*trainers):
    """The same non-zero label biases in every trainer. At E = 0 (the initial state) a positive
    and its negative are the same forward, so SymBa's weight gradients are 0 up to rounding,
    and Adam turns rounding noise into lr-sized steps that differ between implementations."""
    for t in trainers:
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for layer in t.net.layers:
                layer.label.copy_(torch.randn(layer.label.shape, generator=g) * 0.1)
    return trainers


def batches(n=16, steps=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, IN, generator=g), torch.randint(0, 10, (n,), generator=g)) for _ in range(steps)]


def params(t):
    return [p.detach().clone() for p in t.model.parameters()]


def assert_same_update(a, b, data, atol=2e-5, rtol=1e-4):
    before = params(a)
    losses = [(a.train_step(x, y), b.train_step(x, y)) for x, y in data]
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        torch.testing.assert_close(pa, pb, atol=atol, rtol=rtol)
    for la, lb in losses:
        torch.testing.assert_close(la, lb, atol=1e-5, rtol=1e-4)
    assert any(not torch.equal(p, q) for p, q in zip(a.model.parameters(), before))


@pytest.mark.parametrize("arch", ["conv", "local"])
@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_steps_and_predicts(trainer, arch):
    kw = {"ff_loss": "symba"} if trainer.startswith("ff") else {}
    t = make(trainer, arch, **kw)
    before = params(t)
    for x, y in batches():
        loss = t.train_step(x, y)
        assert torch.isfinite(loss)
    assert all(p.grad is None for p in t.model.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(t.model.parameters(), before))
    x, y = batches(n=20, steps=1, seed=9)[0]
    pred = t.predict(x)
    assert pred.shape == (20,) and pred.dtype == torch.long and 0 <= int(pred.min()) and int(pred.max()) < 10
    assert 0.0 <= t.accuracy(x, y) <= 1.0


FF_OPTIONS = [
    {"ff_loss": "symba"},
    {"ff_loss": "symba", "ff_goodness_scope": "position"},
    {"ff_loss": "threshold", "ff_pass": "together"},
    {"ff_loss": "threshold", "ff_goodness_scope": "position", "ff_pass": "together"},
    {"ff_loss": "symba", "memory_format": "contiguous"},
    {"ff_loss": "symba", "optimizer": "sgd", "lr": 0.05},
]


@pytest.mark.parametrize("arch", ["conv", "local"])
@pytest.mark.parametrize("options", FF_OPTIONS, ids=[str(i) for i in range(len(FF_OPTIONS))])
def test_ff_frugal_makes_ffs_update(options, arch):
    if arch == "local" and "memory_format" in options:
        pytest.skip("memory format is a conv option")
    a, b = label_bias_set(make("ff", arch, **options), make("ff-frugal", arch, **options))
    assert_same_update(a, b, batches())


def test_ff_frugal_sequential_threshold_pass_makes_ffs_update():
    opts = {"ff_loss": "threshold"}
    frugal = make("ff-frugal", **opts)
    assert frugal.ff_pass == "sequential"
    assert_same_update(*label_bias_set(make("ff", **opts), frugal), batches(seed=2))


@pytest.mark.parametrize("loss", ["symba", "threshold"])
def test_ff_summed_makes_ffs_update(loss):
    assert_same_update(
        *label_bias_set(make("ff", ff_loss=loss), make("ff-summed", ff_loss=loss)), batches(seed=4)
    )


@pytest.mark.parametrize("variant", ["bp-checkpoint", "bp-accum", "bp-inbackward"])
def test_frugal_bp_variants_make_bps_update(variant):
    assert_same_update(make("bp", depth=3, channels="6,8,8", stride="1,2,1"),
                       make(variant, depth=3, channels="6,8,8", stride="1,2,1"), batches(seed=5))  # fmt: skip


def test_symba_refuses_the_sequential_pass():
    with pytest.raises(ConfigError, match="sequential"):
        make("ff-frugal", ff_loss="symba", ff_pass="sequential")
    with pytest.raises(ConfigError):
        make("ff", ff_pass="sequential")


def test_negatives_never_carry_the_true_label():
    y = torch.arange(10).repeat(300)
    t = make("ff", ff_loss="symba")
    for _ in range(3):
        neg = t.negative_labels(torch.rand(len(y), IN), y)
        assert not (neg == y).any() and set(neg.tolist()) == set(range(10))
    for seed in range(3):
        neg = wrong_labels(y.clone(), 10, torch.Generator().manual_seed(seed))
        assert not (neg == y).any()
    hard = make("ff", ff_loss="symba", ff_negatives="hard")
    y = torch.arange(10).repeat(20)
    assert not (hard.negative_labels(torch.rand(len(y), IN), y) == y).any()


def test_the_negative_rows_carry_the_negative_labels(monkeypatch):
    """The step's second block of rows is labelled with the negatives (never y)."""
    t = make("ff", ff_loss="symba")
    seen = []
    layer = t.net.layers[0]
    orig = type(layer).forward

    def spy(self, x, labels):
        seen.append(labels.clone())
        return orig(self, x, labels)

    monkeypatch.setattr(type(layer), "forward", spy)
    x, y = batches(steps=1)[0]
    t.train_step(x, y)
    labels = seen[0]
    assert torch.equal(labels[: len(y)], y) and not (labels[len(y) :] == y).any()


@pytest.mark.parametrize("trainer", ["ff", "ff-frugal"])
@pytest.mark.parametrize("scope", ["layer", "position"])
def test_the_label_loop_predicts_like_the_replicated_pass(trainer, scope):
    loop = make(trainer, ff_loss="symba", ff_goodness_scope=scope, ff_eval="label-loop")
    rep = make(trainer, ff_loss="symba", ff_goodness_scope=scope, ff_eval="replicated")
    for x, y in batches(seed=6):
        loop.train_step(x, y)
        rep.train_step(x, y)
    x = batches(n=40, steps=1, seed=7)[0][0]
    torch.testing.assert_close(loop.label_scores(x), rep.label_scores(x), atol=1e-4, rtol=1e-4)


def test_label_bias_changes_every_layer():
    t = make("ff", ff_loss="symba")
    assert isinstance(t, FFConvTrainer)
    with torch.no_grad():
        for layer in t.net.layers:
            layer.label.normal_()
    x = torch.rand(4, IN)
    img = t.net.image(x)
    a = t.net.layers[0](img, torch.zeros(4, dtype=torch.long))
    b = t.net.layers[0](img, torch.ones(4, dtype=torch.long))
    assert not torch.equal(a, b)


def test_layer_geometry():
    cfg = RunConfig(trainer="bp", arch="conv", depth=3, channels="32,64,128", kernel="7,5,5", stride="2,2,1",
                    image_shape="1x28x28")  # fmt: skip
    specs = layer_specs(cfg, 784)
    assert [(s.out_c, s.ho, s.wo) for s in specs] == [(32, 14, 14), (64, 7, 7), (128, 7, 7)]
    with pytest.raises(ConfigError):
        RunConfig(trainer="bp", arch="conv", depth=2, channels="8,8,8")
