"""The black box (--black-box k): a NumPy quantiser outside autograd between two hidden layers.
FF trains through it; plain backprop's gradient stops at it (a result, not a crash);
bp-ste passes the identity through it."""

import numpy as np
import pytest
import torch

from ffbench.blackbox import black_box, quantise_np
from ffbench.config import RunConfig
from ffbench.data import load_dataset
from ffbench.errors import ConfigError
from ffbench.run.fit import fit
from ffbench.trainers import build_trainer

CPU = torch.device("cpu")


def make(trainer, arch="mlp", **kw):
    fields = {"depth": 3, "width": 32, "batch_size": 16, "black_box": 1, **kw}
    if arch == "recurrent":
        fields["time_steps"] = 3
    return build_trainer(RunConfig(trainer=trainer, arch=arch, device="cpu", **fields), 64, 10, CPU)


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_the_box_rounds_the_normalised_output_to_four_levels():
    h = np.array([[0.0, 0.5, 1.0, 2.0, 4.0, 9.0] * 2, [5.0] + [0.0] * 11], dtype=np.float32)
    rms = np.sqrt(np.mean(h * h, axis=1, keepdims=True) + 1e-8)
    q = quantise_np(h)
    assert set(np.unique(q)) <= {0.0, 1.0, 2.0, 3.0}
    assert np.array_equal(q, np.floor(np.clip(h / rms, 0, 3) + 0.5)) and q.dtype == np.float32
    assert q[0, 0] == 0.0 and q[1, 0] == 3.0  # ReLU's zeros stay zero; 5 / rms = 3.46 is clipped


def test_the_box_has_no_autograd_history_unless_straight_through():
    h = torch.rand(4, 8, requires_grad=True)
    q = black_box(h)
    assert q.grad_fn is None and not q.requires_grad
    s = black_box(h, straight_through=True)
    assert torch.equal(s, q)
    s.sum().backward()
    assert torch.equal(h.grad, torch.ones_like(h))  # the identity


def _grads(trainer, x, y):
    loss = torch.nn.functional.cross_entropy(trainer.model(x), y)
    loss.backward()
    return [(name, p.grad) for name, p in trainer.model.named_parameters()]


def test_plain_bp_never_reaches_the_layers_below_the_box():
    x, y = batch()
    grads = dict(_grads(make("bp", black_box=2), x, y))
    assert grads["body.0.weight"] is None and grads["body.2.weight"] is None  # layers 1, 2
    assert grads["body.4.weight"] is not None and grads["head.weight"] is not None
    t = make("bp", black_box=2)
    before = {n: p.detach().clone() for n, p in t.model.named_parameters()}
    for _ in range(3):
        t.train_step(x, y)  # no crash: the layers above the box learn
    after = dict(t.model.named_parameters())
    assert torch.equal(before["body.0.weight"], after["body.0.weight"])
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_bp_ste_passes_the_identity_through_the_box():
    x, y = batch()
    ste, plain = make("bp-ste"), make("bp")
    assert torch.equal(ste.model(x), plain.model(x))  # the same forward value: the box's
    assert all(g is not None for _, g in _grads(ste, x, y))


def test_ff_trains_every_layer_through_the_box_and_the_box_changes_only_what_is_above_it():
    x, y = batch()
    boxed, free = make("ff"), make("ff", black_box=None)
    fresh = make("ff")
    for t in (boxed, free):
        t.train_step(x, y)
    for name, p in boxed.model.named_parameters():
        assert not torch.equal(p, dict(fresh.model.named_parameters())[name]), name
    layer = dict(boxed.model.named_parameters()), dict(free.model.named_parameters())
    assert torch.equal(layer[0]["layers.0.linear.weight"], layer[1]["layers.0.linear.weight"])
    assert not torch.equal(layer[0]["layers.1.linear.weight"], layer[1]["layers.1.linear.weight"])


def test_recurrent_trainers_train_with_the_box():
    x, y = batch()
    for trainer in ("ff", "bp", "bp-ste", "bp-checkpoint"):
        t = make(trainer, arch="recurrent", depth=2)
        assert torch.isfinite(t.train_step(x, y))
        assert t.predict(x).shape == (16,)


def test_black_box_options_are_checked():
    with pytest.raises(ConfigError, match="straight-through"):
        make("bp-ste", black_box=None)
    with pytest.raises(ConfigError, match="no black box"):
        RunConfig(trainer="ff-frugal", black_box=1)
    with pytest.raises(ConfigError, match=r"1\.\.2"):
        RunConfig(trainer="ff", depth=3, black_box=3)


def test_a_train_record_says_which_parameters_the_box_froze():
    data = load_dataset("synthetic", val_size=64, synthetic_train=256, synthetic_test=64)
    cfg = RunConfig(trainer="bp", depth=2, width=16, batch_size=64, black_box=1, dataset="synthetic")
    record = fit(cfg, data, progress=False, echo=lambda s: None)
    box = record.black_box
    assert box["after_layer"] == 1 and box["estimator"] == "none"
    assert box["frozen_parameters"] == ["body.0.weight", "body.0.bias"]
    ste = fit(cfg.replace(trainer="bp-ste"), data, progress=False, echo=lambda s: None).black_box
    assert ste["estimator"] == "straight-through" and ste["frozen_parameters"] == []


def test_linear_learning_rate_decay_reaches_zero_at_the_last_step():
    data = load_dataset("synthetic", val_size=0, synthetic_train=300, synthetic_test=32)
    cfg = RunConfig(trainer="bp", depth=1, width=8, batch_size=100, epochs=2, lr_schedule="linear")
    seen = []
    t = build_trainer(cfg, data.in_features, data.num_classes, CPU)
    from ffbench.run.fit import lr_schedule

    step = lr_schedule(t, cfg, 6)
    for _ in range(6):
        step()
        seen.append(t.optimizers()[0].param_groups[0]["lr"])
    assert seen[0] == cfg.lr and seen[-1] == pytest.approx(cfg.lr / 6)
    assert all(a > b for a, b in zip(seen, seen[1:]))
