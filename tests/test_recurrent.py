"""The recurrent network (--arch recurrent): FF in time against BPTT, exact equivalences,
negatives, evaluation, and memory that does (BPTT) or does not (FF) grow with T."""

import gc

import pytest
import torch

from ffbench.config import RunConfig
from ffbench.errors import ConfigError
from ffbench.measure import TensorTracker
from ffbench.trainers import architectures, build_trainer

CPU = torch.device("cpu")
RECURRENT = ("ff", "bp", "bp-checkpoint", "bp-ce")


def make(trainer, **kw):
    fields = {"depth": 2, "width": 24, "batch_size": 12, "time_steps": 4, **kw}
    cfg = RunConfig(trainer=trainer, arch="recurrent", device="cpu", **fields)
    return build_trainer(cfg, 40, 10, CPU)


def batch(n=12, d=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g), torch.randint(0, 10, (n,), generator=g)


def params(t):
    return [p.detach().clone() for p in t.model.parameters()]


def test_every_recurrent_trainer_is_registered():
    for name in (*RECURRENT, "bp-ste"):
        assert "recurrent" in architectures(name)
    assert "recurrent" not in architectures("ff-frugal")  # not written for this network


@pytest.mark.parametrize("trainer", RECURRENT)
def test_same_seed_same_steps_and_gradients_freed(trainer):
    x, y = batch()
    twice = [make(trainer, seed=3) for _ in range(2)]
    after = []
    for t in twice:
        losses = [t.train_step(x, y) for _ in range(2)]
        after.append((losses, params(t)))
    assert after[0][0] == after[1][0] and all(map(torch.equal, after[0][1], after[1][1]))
    assert all(p.grad is None for p in twice[0].model.parameters())
    assert not all(map(torch.equal, after[0][1], params(make(trainer, seed=3))))  # it learnt


def test_ff_and_bptt_share_the_network_and_its_initial_weights():
    ff, bp = make("ff"), make("bp")
    assert [n for n, _ in ff.model.named_parameters()] == [n for n, _ in bp.model.named_parameters()]
    assert all(torch.equal(p, q) for p, q in zip(params(ff), params(bp)))


def test_checkpointed_bptt_gives_full_bptt_update():
    x, y = batch(seed=1)
    full, ckpt = make("bp", time_steps=5), make("bp-checkpoint", time_steps=5)
    assert torch.equal(full.train_step(x, y), ckpt.train_step(x, y))
    for p, q in zip(params(full), params(ckpt)):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def _grads_after_one_step(trainer):
    """The summed gradient of one train_step, caught before the optimizer uses it."""
    grads = {}
    for opt in trainer.optimizers():
        opt.step = lambda *a, **k: None  # keep the weights; read .grad instead
        opt.zero_grad = lambda *a, opt=opt, **k: grads.update(
            {id(p): p.grad.clone() for g in opt.param_groups for p in g["params"] if p.grad is not None}
        )
    return grads


def test_truncated_bptt_with_a_window_of_t_steps_is_full_bptt_and_a_shorter_one_is_not():
    x, y = batch(seed=2)
    results = {}
    for key, window in (("full", None), ("k=T", 4), ("k=2", 2)):
        t = make("bp", bptt_window=window)
        grads = _grads_after_one_step(t)
        t.train_step(x, y)
        results[key] = [grads[id(p)] for p in t.model.parameters()]
    for g, h in zip(results["full"], results["k=T"]):
        torch.testing.assert_close(g, h, rtol=0, atol=0)
    assert any(not torch.allclose(g, h) for g, h in zip(results["full"], results["k=2"]))


def test_ff_equals_bptt_where_no_gradient_can_cross_time_or_layers():
    """Depth 1, one time step: the local FF gradient is the whole gradient."""
    x, y = batch(seed=4)
    ff, bp = make("ff", depth=1, time_steps=1), make("bp", depth=1, time_steps=1)
    gf, gb = _grads_after_one_step(ff), _grads_after_one_step(bp)
    torch.testing.assert_close(ff.train_step(x, y), bp.train_step(x, y))
    for p, q in zip(ff.model.parameters(), bp.model.parameters()):
        torch.testing.assert_close(gf[id(p)], gb[id(q)])


def test_ff_gradient_is_the_sum_of_detached_layer_step_gradients():
    """FF in time = the BPTT loss with every layer's inputs detached (checked by autograd)."""
    x, y = batch(seed=5)
    ff = make("ff", ff_negatives="random", time_steps=3)
    grads = _grads_after_one_step(ff)
    gen_state = ff.generator.get_state()
    ff.train_step(x, y)
    ref = make("ff", ff_negatives="random", time_steps=3)
    ref.generator.set_state(gen_state)
    xn, lab = ref.batch_inputs(x, y)
    states, total = None, 0
    for _ in range(3):
        new = []
        for i in range(2):
            d = [s.detach() for s in (states or [])]
            if states is None:
                below = xn if i == 0 else ref.seen(0, new[0].detach())
                h = ref_layer(ref, i, below, lab if i == 1 else None, None)
            else:
                below = xn if i == 0 else ref.seen(0, d[0])
                h = ref_layer(ref, i, below, lab if i == 1 else ref.seen(1, d[1]), d[i])
            total = total + ref.layer_loss(h, len(x))
            new.append(h)
        states = new
    total.backward()
    for p, q in zip(ff.model.parameters(), ref.model.parameters()):
        torch.testing.assert_close(grads[id(p)], q.grad)


def ref_layer(t, i, below, above, prev):
    from ffbench.trainers.recurrent import layer_update

    return layer_update(t.net, i, below, above, prev)


@pytest.mark.parametrize("kind", ["random", "hard"])
def test_negatives_are_never_the_true_label(kind):
    t = make("ff", ff_negatives=kind)
    x, y = batch(n=200, seed=6)
    for _ in range(3):
        neg = t.negative_labels(x, y)
        assert not (neg == y).any() and neg.min() >= 0 and neg.max() < 10


def test_label_loop_scores_are_the_goodness_of_each_clamped_label():
    t = make("ff", time_steps=6, eval_steps="2,4", ff_eval_layers="2")
    x, _ = batch(n=7, seed=7)
    t.train_step(*batch(seed=8))
    with torch.no_grad():
        scores = t.label_scores(x)
        from ffbench.trainers.ff import goodness, normalise

        for label in (0, 3, 9):
            states, want = None, torch.zeros(7)
            for step in range(4):
                lab = t.labels_in(torch.full((7,), label))
                states = t.step(normalise(x, "rms"), lab, states)
                if step in (1, 3):
                    want += goodness(states[1], "mean")
            torch.testing.assert_close(scores[:, label], want)


def test_evaluation_steps_are_one_based_and_clipped_to_the_run():
    assert RunConfig(time_steps=8).eval_step_indices() == [2, 3, 4]
    assert RunConfig(time_steps=4, eval_steps="3-5").eval_step_indices() == [2, 3]
    assert RunConfig(time_steps=2, eval_steps="3-5").eval_step_indices() == [1]
    with pytest.raises(ConfigError):
        RunConfig(eval_steps="0-2")


def test_prediction_does_not_depend_on_the_chunk():
    x, _ = batch(n=30, seed=9)
    a, b = make("ff", eval_chunk=7), make("ff", eval_chunk=30)
    assert torch.equal(a.predict(x), b.predict(x))


def test_options_that_do_not_apply_are_refused():
    with pytest.raises(ConfigError, match="bptt-window"):
        RunConfig(trainer="ff", arch="recurrent", bptt_window=2)
    with pytest.raises(ConfigError, match="bptt-window"):
        RunConfig(trainer="bp", bptt_window=2)  # an MLP has no time
    with pytest.raises(ConfigError, match="no --arch recurrent"):
        RunConfig(trainer="ff-frugal", arch="recurrent")
    with pytest.raises(ConfigError, match="label loop"):
        make("ff", ff_eval="replicated")


def transient(trainer, steps, **kw):
    t = make(trainer, time_steps=steps, width=64, batch_size=32, **kw)
    x, y = batch(n=32)
    t.train_step(x, y)
    gc.collect()
    with TensorTracker(t.model.parameters(), t.optimizers(), inputs=(x, y)) as tracker:
        t.train_step(x, y)
    return tracker.result().transient_bytes


def test_ff_memory_is_flat_in_time_to_the_byte_and_bptt_grows():
    ff = {T: transient("ff", T) for T in (2, 5, 9)}
    assert len(set(ff.values())) == 1
    full = [transient("bp", T) for T in (2, 5, 9)]
    assert full[0] < full[1] < full[2]
    # full BPTT keeps every step: the growth per step is the same
    assert full[2] - full[1] == (full[1] - full[0]) * 4 // 3
    ckpt = [transient("bp-checkpoint", T) for T in (5, 9)]
    assert ckpt[0] < ckpt[1] and ckpt[1] - ckpt[0] < full[2] - full[1]
    truncated = [transient("bp", T, bptt_window=2) for T in (4, 9)]
    assert truncated[0] == truncated[1]
    assert ff[9] < min(full[2], ckpt[1], truncated[1])
