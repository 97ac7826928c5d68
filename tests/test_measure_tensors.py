"""TensorTracker: byte-exact checks, every expected value computed from the tensors."""

from __future__ import annotations

import gc
import os

import pytest
import torch
from torch import nn

from ffbench.measure import CATEGORIES, PhasePeak, TensorMemory, TensorTracker
from ffbench.measure.tensors import MAX_TIMELINE_POINTS
from ffbench.phases import phase


def nbytes(tensors) -> int:
    return sum(t.untyped_storage().nbytes() for t in tensors)


def state_bytes(opt: torch.optim.Optimizer) -> int:
    return nbytes(v for s in opt.state.values() for v in s.values() if torch.is_tensor(v))


def make_mlp(seed: int = 0, hidden: int = 256):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    x = torch.randn(64, 784)
    y = torch.randint(0, 10, (64,))
    return model, opt, x, y


def train_step(model, opt, x, y) -> torch.Tensor:
    opt.zero_grad(set_to_none=True)
    with phase("forward"):
        loss = nn.functional.cross_entropy(model(x), y)
    with phase("backward"):
        loss.backward()
    with phase("optimizer"):
        opt.step()
    return loss


def tracked_step(model, opt, x, y, **kw) -> tuple[TensorMemory, torch.Tensor]:
    gc.collect()
    with TensorTracker(model.parameters(), [opt], [x, y], **kw) as tracker:
        loss = train_step(model, opt, x, y)
    return tracker.result(), loss


def assert_consistent(r: TensorMemory) -> None:
    assert set(r.peak_breakdown) == set(CATEGORIES)
    assert sum(r.peak_breakdown.values()) == r.peak_bytes
    assert r.transient_bytes == r.peak_bytes - r.start_bytes
    assert r.start_bytes <= r.peak_bytes and r.end_bytes <= r.peak_bytes
    for p in r.phases:
        assert p.start_bytes <= p.peak_bytes <= r.peak_bytes


def test_first_step_adam_exact_breakdown():
    model, opt, x, y = make_mlp()
    params = list(model.parameters())
    r, loss = tracked_step(model, opt, x, y)
    assert_consistent(r)
    P = nbytes(params)
    assert r.method == "torch_dispatch storage tracking"
    # First step: no grads, no optimizer state yet.
    assert r.start_bytes == P + nbytes([x, y])
    bd = r.peak_breakdown
    assert bd["parameters"] == P
    assert bd["gradients"] == P
    # Adam (single-tensor): exp_avg + exp_avg_sq per parameter, plus a scalar `step`.
    assert bd["optimizer_state"] == state_bytes(opt) == 2 * P + 4 * len(params)
    assert bd["inputs"] == nbytes([x, y])
    assert bd["activations"] == 0  # the graph is freed before opt.step()
    # Peak inside Adam's update of the largest weight: sqrt(v) and sqrt(v)/c both live
    # (two temporaries of that weight's size), plus the still-referenced loss.
    w1 = model[0].weight
    assert bd["other"] == 2 * w1.nbytes + loss.nbytes
    assert [p.name for p in r.phases] == ["forward", "backward", "optimizer"]
    assert r.phases[-1].peak_bytes == r.peak_bytes
    assert r.phases[0].start_bytes == r.start_bytes
    # After the step: params, grads, state, inputs and the loss remain.
    assert r.end_bytes == 2 * P + state_bytes(opt) + nbytes([x, y]) + loss.nbytes


def test_second_step_start_includes_grads_and_state_zero_grad_frees():
    model, opt, x, y = make_mlp()
    loss = train_step(model, opt, x, y)  # warm-up: grads and Adam state exist now
    del loss
    P = nbytes(model.parameters())
    S = state_bytes(opt)
    r, loss = tracked_step(model, opt, x, y)
    assert_consistent(r)
    assert r.start_bytes == P + P + S + nbytes([x, y])
    # zero_grad(set_to_none=True) ran before "forward": the grads are gone at its start.
    assert r.phases[0].name == "forward"
    assert r.phases[0].start_bytes == r.start_bytes - P
    assert r.transient_bytes == 2 * model[0].weight.nbytes + loss.nbytes
    assert r.end_bytes == r.start_bytes + loss.nbytes


def test_forward_only_activations():
    model, _, x, _ = make_mlp()
    P = nbytes(model.parameters())
    with TensorTracker(model.parameters(), inputs=[x]) as t:
        out = model(x)
    r = t.result()
    assert_consistent(r)
    hidden = x.shape[0] * 256 * 4
    # Peak at the ReLU: its input (pre-activation, not saved: ReLU saves its result)
    # and its output (saved for backward) are both alive.
    assert r.peak_breakdown == {
        "parameters": P,
        "gradients": 0,
        "optimizer_state": 0,
        "inputs": x.nbytes,
        "activations": hidden,
        "other": hidden,
    }
    assert r.end_bytes == P + x.nbytes + hidden + out.nbytes


def test_empty_raises_peak_exactly_and_free_returns_to_start():
    N = 12345
    with TensorTracker() as t:
        a = torch.empty(N)
        del a
    r = t.result()
    assert_consistent(r)
    assert (r.start_bytes, r.peak_bytes, r.end_bytes) == (0, N * 4, 0)
    assert r.peak_breakdown["other"] == N * 4


def test_start_counts_given_tensors_once_and_peak_is_additive():
    N = 1000
    base = torch.zeros(N)
    with TensorTracker(inputs=[base, base.view(10, 100)]) as t:  # same storage twice
        a = torch.empty(2 * N, dtype=torch.float64)
        b = torch.empty(3 * N, dtype=torch.int8)
        del a
        c = torch.empty(N)
    r = t.result()
    assert r.start_bytes == N * 4
    assert r.peak_bytes == N * 4 + 2 * N * 8 + 3 * N
    assert r.end_bytes == N * 4 + 3 * N + N * 4
    assert r.peak_breakdown["inputs"] == N * 4
    del b, c


def test_views_and_inplace_share_storage():
    N = 4096
    with TensorTracker() as t:
        a = torch.zeros(N)
        v = a.view(64, 64).t()
        a.add_(1).mul_(2)
        s = a[10:20]
        torch.add(a, 1, out=a)
        del v, s
    r = t.result()
    assert r.peak_bytes == N * 4 and r.end_bytes == N * 4
    del a


def test_out_resize_is_followed():
    with TensorTracker() as t:
        out = torch.empty(0)
        torch.add(torch.ones(10), 1, out=out)  # out grows from 0 to 40 bytes
    r = t.result()
    assert r.peak_bytes == 80 and r.end_bytes == 40
    del out


def test_torch_tensor_literal_counts_as_new():
    with TensorTracker() as t:
        a = torch.tensor([1.0, 2.0, 3.0])
    assert t.result().end_bytes == a.nbytes == 12
    assert t.result().discovered_bytes == 0


def test_preexisting_storage_found_through_view_counts_from_start():
    z = torch.randn(1000)
    with phase("outer"):
        with TensorTracker(timeline=True) as t:
            with phase("forward", layer=0):
                e = torch.empty(500)
                v = z.view(10, 100)  # z predates the tracker and was not passed in
                del e
    r = t.result()
    assert_consistent(r)
    assert r.discovered_bytes == z.nbytes
    assert r.start_bytes == z.nbytes
    assert r.peak_bytes == z.nbytes + 2000
    assert r.end_bytes == z.nbytes
    assert r.phases == [PhasePeak("forward", 0, z.nbytes, z.nbytes + 2000)]
    assert r.timeline[0] == (0, z.nbytes)
    del v


def test_phase_peaks_nested_and_per_layer():
    with TensorTracker() as t:
        with phase("forward", layer=0):
            a = torch.empty(100)  # 400
            with phase("backward", layer=0):
                b = torch.empty(50)  # 200
                del b
            c = torch.empty(300)  # 1200
            del c
        with phase("forward", layer=1):
            d = torch.empty(10)
    r = t.result()
    assert r.phases == [
        PhasePeak("forward", 0, 0, 1600),
        PhasePeak("backward", 0, 400, 600),
        PhasePeak("forward", 1, 400, 440),
    ]
    del a, d


def test_module_run_twice_in_one_step():
    # FF runs a layer on positive and negative data in one step (MemTracker refuses this).
    torch.manual_seed(0)
    layer = nn.Linear(20, 30)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    pos, neg = torch.randn(8, 20), torch.randn(8, 20)
    with TensorTracker(layer.parameters(), [opt], [pos, neg]) as t:
        g_pos = layer(pos).relu().pow(2).mean(1)
        g_neg = layer(neg).relu().pow(2).mean(1)
        loss = nn.functional.softplus(torch.cat([2 - g_pos, g_neg - 2])).mean()
        loss.backward()
        opt.step()
    r = t.result()
    assert_consistent(r)
    assert r.peak_breakdown["activations"] > 0
    assert r.end_bytes == r.start_bytes + nbytes(p.grad for p in layer.parameters()) + nbytes(
        [g_pos, g_neg, loss]
    )


def test_saved_graph_without_backward_is_freed_and_grads_unchanged():
    x = torch.randn(8, 4, requires_grad=True)
    with TensorTracker(inputs=[x]) as t:
        h = x.exp()
        loss = (h * h).sum()
        del h, loss  # never backpropagated: must still be freed
    assert t.result().end_bytes == t.result().start_bytes == x.nbytes
    # Gradients are identical with and without the tracker's saved-tensor hook.
    with TensorTracker(inputs=[x]):
        (x.exp() * x.sin()).sum().backward()
    tracked = x.grad.clone()
    x.grad = None
    (x.exp() * x.sin()).sum().backward()
    assert torch.equal(tracked, x.grad)


def test_timeline_is_downsampled_and_keeps_the_peak():
    with TensorTracker(timeline=True) as t:
        big = torch.empty(1000)
        del big
        a = torch.zeros(4)
        for _ in range(2 * MAX_TIMELINE_POINTS + 100):
            a.add_(1)
    r = t.result()
    tl = r.timeline
    assert 2 <= len(tl) <= MAX_TIMELINE_POINTS
    assert [i for i, _ in tl] == sorted(i for i, _ in tl)
    assert max(b for _, b in tl) == r.peak_bytes == 4000
    # Each point is the maximum of its bucket: the first bucket holds op 0 (enter) and
    # the 4000-byte tensor of op 1.
    assert tl[0] == (1, 4000) and tl[-1][1] == r.end_bytes == 16
    assert r.op_count == 2 * MAX_TIMELINE_POINTS + 102
    del a


def test_timeline_off_by_default():
    with TensorTracker() as t:
        torch.empty(3)
    assert t.result().timeline is None


def test_deterministic():
    def run():
        model, opt, x, y = make_mlp(seed=1, hidden=64)
        train_step(model, opt, x, y)
        r, _ = tracked_step(model, opt, x, y, timeline=True)
        return r

    first, second = run(), run()
    assert first == second


def test_device_filter():
    with TensorTracker(device="cpu") as t:
        a = torch.empty(10)
    assert t.result().peak_bytes == 40 and t.result().device == "cpu"
    for device in ("cuda", "cuda:0"):  # nothing lives there on this run
        with TensorTracker(device=device) as t:
            b = torch.empty(10)
        assert t.result().peak_bytes == 0 and t.result().device == device
    del a, b


def test_result_before_exit_raises_and_tracker_is_reusable():
    tracker = TensorTracker()
    with pytest.raises(RuntimeError):
        tracker.result()
    with tracker:
        a = torch.empty(5)
        with pytest.raises(RuntimeError):
            tracker.result()
        assert tracker.live_bytes == 20
    assert tracker.result().peak_bytes == 20
    with tracker:
        b = torch.empty(2)
    assert tracker.result().peak_bytes == 8 and tracker.result().start_bytes == 0
    del a, b


def test_tracker_off_after_exit():
    with TensorTracker() as t:
        a = torch.empty(10)
    before = t.result()
    del a
    torch.empty(100)
    assert t.result() == before


@pytest.mark.skipif(
    not os.environ.get("FFBENCH_SLOW_TESTS"), reason="~2-5 s on 2 cores; set FFBENCH_SLOW_TESTS=1"
)
def test_reference_bp_adam_784_4x2000_b1024():
    """measurement-facts: BP Adam step 784->4x2000->10, B=1024 peaks at 241.05 MiB."""
    torch.manual_seed(0)
    layers = [nn.Linear(784, 2000), nn.ReLU()]
    for _ in range(3):
        layers += [nn.Linear(2000, 2000), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(2000, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    x, y = torch.randn(1024, 784), torch.randint(0, 10, (1024,))
    r, loss = tracked_step(model, opt, x, y)
    P = nbytes(model.parameters())
    # Peak inside Adam's update of the first 2000x2000 weight: its two temporaries,
    # plus the previous parameter's (bias 0) `denom`, still referenced by the loop.
    temporaries = 2 * model[2].weight.nbytes + model[0].bias.nbytes
    assert r.peak_breakdown["other"] == temporaries + loss.nbytes
    assert (
        r.peak_bytes == 4 * P + 4 * len(list(model.parameters())) + nbytes([x, y]) + temporaries + loss.nbytes
    )
    assert round(r.peak_bytes / 2**20, 2) == 241.05
