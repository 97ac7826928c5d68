"""Trainer behaviour: registry, seeding, schedules, exact equivalences, negatives."""

import pytest
import torch

from ffbench import phases
from ffbench.config import RunConfig
from ffbench.trainers import build_trainer, trainer_names
from ffbench.trainers.ff import embed_label, random_wrong_labels
from ffbench.trainers.registry import DISPLAY_ORDER, display_order, grid_trainers

CPU = torch.device("cpu")


def make(trainer, **kw):
    cfg = RunConfig(trainer=trainer, device="cpu", **{"depth": 3, "width": 32, "batch_size": 16, **kw})
    return build_trainer(cfg, 64, 10, CPU)


def batch(n=16, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), torch.randint(0, 10, (n,), generator=g)


TRAINERS = grid_trainers()


def test_registry_matches_config_choices():
    assert set(trainer_names()) == set(DISPLAY_ORDER)  # every built-in trainer has its place
    assert TRAINERS == DISPLAY_ORDER[:8]  # bp-ste needs a black box, bp-ce the recurrent net
    assert display_order(["my-plugin", "bp-ce", "ff", "a-plugin", "bp"]) == [
        "bp",
        "ff",
        "bp-ce",
        "a-plugin",
        "my-plugin",
    ]


def test_a_built_in_trainer_without_a_place_is_refused():
    from ffbench.trainers.bp import BPTrainer
    from ffbench.trainers.registry import register_trainer

    unplaced = type("Unplaced", (BPTrainer,), {"name": "bp-unplaced", "__module__": "ffbench.trainers.bp"})
    with pytest.raises(TypeError, match="DISPLAY_ORDER"):
        register_trainer(unplaced)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_state_dict_holds_every_layer(trainer):
    t = make(trainer, depth=4)
    # BP variants have one classifier head, bp-local one per layer, FF none
    linears = {"ff": 4, "ff-frugal": 4, "ff-summed": 4, "bp-local": 8}.get(trainer, 5)
    assert len(t.model.state_dict()) == 2 * linears
    assert sum(p.numel() for p in t.model.parameters()) == t.parameter_count()


@pytest.mark.parametrize("trainer", TRAINERS)
def test_same_seed_same_weights_and_steps(trainer):
    x, y = batch()
    a, b = make(trainer, seed=3), make(trainer, seed=3)
    for t in (a, b):
        t.train_step(x, y)
        t.train_step(x, y)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    c = make(trainer, seed=4)
    assert not torch.equal(next(iter(a.model.parameters())), next(iter(c.model.parameters())))


@pytest.mark.parametrize("trainer", TRAINERS)
def test_gradients_are_freed_after_each_step(trainer):
    t = make(trainer)
    t.train_step(*batch())
    assert all(p.grad is None for p in t.model.parameters())


def test_ff_and_ff_summed_give_the_same_update():
    x, y = batch(seed=1)
    per_layer, summed = make("ff"), make("ff-summed")
    for t in (per_layer, summed):
        t.train_step(x, y)
    for pa, pb in zip(per_layer.model.parameters(), summed.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6)
    # ...and the update is not trivially zero
    fresh = make("ff")
    assert any(not torch.equal(p, q) for p, q in zip(per_layer.model.parameters(), fresh.model.parameters()))


def test_bp_checkpoint_gives_the_same_gradients_as_bp():
    x, y = batch(seed=2)
    grads = {}
    for name in ("bp", "bp-checkpoint"):
        t = make(name, depth=5)
        assert (t.checkpoint_segments > 0) == (name == "bp-checkpoint")
        loss = torch.nn.functional.cross_entropy(t.model(x, t.checkpoint_segments), y)
        loss.backward()
        grads[name] = [p.grad.clone() for p in t.model.parameters()]
    for ga, gb in zip(grads["bp"], grads["bp-checkpoint"]):
        torch.testing.assert_close(ga, gb)


def record_phases(trainer):
    events = []

    def listener(event, name, layer):
        if event == "enter":
            events.append((name, layer))

    phases.add_listener(listener)
    try:
        trainer.train_step(*batch())
    finally:
        phases.remove_listener(listener)
    return events


def test_ff_steps_each_layer_before_the_next_forward():
    events = record_phases(make("ff", depth=3))
    expected = [(p, i) for i in range(3) for p in ("forward", "backward", "optimizer")]
    assert events == expected


def test_ff_summed_runs_one_backward_after_all_forwards():
    events = record_phases(make("ff-summed", depth=3))
    assert events == [("forward", 0), ("forward", 1), ("forward", 2), ("backward", None), ("optimizer", None)]


def test_random_negatives_are_never_the_true_label_and_cover_all_wrong_ones():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat(2000)
    neg = random_wrong_labels(y, 10, g)
    assert not (neg == y).any()
    counts = torch.zeros(10, 10)
    counts.index_put_((y, neg), torch.ones(len(y)), accumulate=True)
    off_diag = counts[~torch.eye(10, dtype=torch.bool)]
    assert off_diag.min() > 0.5 * off_diag.mean()  # every wrong label is drawn, roughly uniformly


def test_hard_negatives_are_never_the_true_label():
    t = make("ff", ff_negatives="hard")
    x, y = batch(n=200)
    neg = t.negative_labels(x, y)
    assert not (neg == y).any()
    t.train_step(x, y)  # the hard schedule trains too


def test_embed_label_writes_one_hot_with_image_max():
    x = torch.rand(5, 64)
    y = torch.tensor([0, 3, 9, -1, 5])
    e = embed_label(x, y, 10)
    assert torch.equal(e[:, 10:], x[:, 10:])
    vmax = x[:, 10:].amax(dim=1)
    for row, label in enumerate(y.tolist()):
        if label >= 0:
            expected = torch.zeros(10)
            expected[label] = vmax[row]
        else:
            expected = torch.full((10,), vmax[row].item() / 10)
        torch.testing.assert_close(e[row, :10], expected)


@pytest.mark.parametrize("trainer", TRAINERS)
def test_prediction_does_not_depend_on_chunk_size(trainer):
    x, _ = batch(n=50)
    small = make(trainer, eval_chunk=7)
    large = make(trainer, eval_chunk=1000)
    assert torch.equal(small.predict(x), large.predict(x))


def test_ff_eval_layers_choice_changes_scores():
    x, _ = batch(n=20)
    all_layers = make("ff", ff_eval_layers="all")
    first = make("ff", ff_eval_layers="1")
    assert first.eval_layers == [0] and all_layers.eval_layers == [0, 1, 2]
    assert not torch.allclose(all_layers.label_scores(x), first.label_scores(x))


@pytest.mark.parametrize(
    "variant, knobs",
    [
        ("bp-accum", {}),
        ("bp-accum", {"micro_batch": 4}),
        ("bp-inbackward", {}),
        ("bp", {"micro_batch": 4}),
        ("bp", {"micro_batch": 3}),  # a short last micro-batch: weighted by its share
        ("bp", {"micro_batch": "1/4"}),
        ("bp-checkpoint", {"micro_batch": 4}),
    ],
)
def test_frugal_bp_variants_give_the_same_update_as_bp(variant, knobs):
    """Every exact-BP technique (micro-batching, checkpointing, in-backward stepping) makes
    plain bp's update."""
    x, y = batch(n=16, seed=5)
    ref, other = make("bp"), make(variant, **knobs)
    for t in (ref, other):
        t.train_step(x, y)
    for pa, pb in zip(ref.model.parameters(), other.model.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "trainer, knobs", [("bp-accum", {}), ("bp", {"micro_batch": "1/4"}), ("bp", {"micro_batch": 4})]
)
def test_bp_micro_batching_splits_the_batch_into_micro_batches(trainer, knobs):
    events = record_phases(make(trainer, **knobs))  # batch 16 -> 4 micro-batches of 4
    assert events.count(("backward", None)) == 4 and events[-1] == ("optimizer", None)


def test_plain_bp_runs_one_backward():
    events = record_phases(make("bp"))
    assert events.count(("backward", None)) == 1


def test_bp_local_steps_each_layer_before_the_next_forward_and_learns_its_heads():
    t = make("bp-local", depth=3)
    events = record_phases(t)
    assert events == [(p, i) for i in range(3) for p in ("forward", "backward", "optimizer")]
