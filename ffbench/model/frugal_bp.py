"""Ledgers of the frugal backprop baselines `bp-accum`, `bp-inbackward` and `bp-local`
(ffbench/trainers/frugal_bp.py). The first two reuse BP's pass (bp.py) with their own
handling of the parameter gradients; bp-local has a ledger of its own.

Closed forms (steady state, Adam single-tensor; notation in the package docstring)
---------------------------------------------------------------------------------
bp-accum: `bp`'s ledger once per micro-batch (rows = micro), plus a float32 `total`.
      From the second micro-batch on, `p.grad` exists, so each weight/bias gradient is
      a temporary added in place (AccumulateGrad, grad mode off): the full set of
      gradients is alive through every later backward, next to one micro-batch's
      activations and one temporary gradient. The optimizer peak is bp's, so the
      micro-batch only lowers the backward peak (activations ~ micro*W*(D-1)*s).
bp-inbackward: `bp`'s forward/backward; after each node, AccumulateGrad steals the
      gradient into p.grad and the hook runs that parameter's optimizer (bias first:
      the weight's gradient still passes TBackward0), then frees it. The peak is in
      backward: start + saved ReLU outputs below layer k + the grad input of layer k
      + |W_k| gradient + Adam's 2 temporaries for W_k -- no full set of gradients,
      but activations that bp has already freed when its optimizer runs.
bp-local: per layer j: start + 4 (`total`) + s*B*W (previous output, kept as `h`)
      + s*B*W (this output) + this layer's and head's gradients + Adam temporaries;
      independent of depth once D >= 2.
"""

from __future__ import annotations

from ..config import RunConfig
from . import optim
from .bp import (
    FRESH,
    GradSink,
    bp_param_groups,
    bp_params,
    bp_pass,
    cross_entropy_backward,
    cross_entropy_forward,
    head_backward,
    sequential_eval_chunk,
)
from .ledger import F32, I64, Ledger, Params, accumulated
from .registry import TrainerLedger, register


# --------------------------------------------------------------------------------------
# bp-accum
# --------------------------------------------------------------------------------------
def _add_in_place(L: Ledger, produced: Params) -> None:
    """`p.grad` exists and grad mode is off in backward -> `p.grad += new` (in place,
    accumulate_grad.h); the new gradient dies with the node's buffer."""
    L.free(*[f"new:{name}" for name, _ in produced])


ACCUMULATE = GradSink("new", _add_in_place)


def _accum_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`BPAccumTrainer.train_step`: total = torch.zeros(()) (float32, alive to the end:
    returned); per micro-batch x[i:i+micro], y[...] are views (no storage), BP's pass
    with the loss scaled by the micro-batch's share; `total += loss.detach()` is in
    place; `del loss` frees the (scaled) loss scalar. Then one step."""
    n, micro = cfg.batch_size, cfg.micro
    L.phase = "forward"
    L.alloc("total", F32, "other", "torch.zeros(()) (total)")
    for idx, i in enumerate(range(0, n, micro)):
        bp_pass(L, cfg, I, C, s, min(micro, n - i), sink=FRESH if idx == 0 else ACCUMULATE, scaled=True)
        L.free("loss")
    L.phase = "optimizer"
    optim.step(L, cfg, bp_params(cfg, I, C), s, first)
    L.phase = "end"


register(TrainerLedger(bp_param_groups, _accum_step, sequential_eval_chunk), "bp-accum")


# --------------------------------------------------------------------------------------
# bp-inbackward
# --------------------------------------------------------------------------------------
def _inbackward_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`BPInBackwardTrainer.train_step`: BP's pass in which each gradient is stolen into
    `p.grad`, then the post-accumulate-grad hook runs that parameter's own optimizer
    step and `zero_grad(set_to_none=True)`; the storage dies when AccumulateGrad::apply
    returns (its input still held it). bp-inbackward's per-parameter optimizers hold
    the same state as one optimizer over all of them (`bp_param_groups`)."""

    def step_now(L: Ledger, produced: Params) -> None:
        for name, n in produced:
            accumulated(L, f"grad:{name}")
            optim.step(L, cfg, [(name, n)], s, first, tag=f"[{name}]")

    bp_pass(L, cfg, I, C, s, cfg.batch_size, sink=GradSink("grad", step_now))
    L.phase = "end"


register(TrainerLedger(bp_param_groups, _inbackward_step, sequential_eval_chunk), "bp-inbackward")


# --------------------------------------------------------------------------------------
# bp-local (greedy layer-wise backprop)
# --------------------------------------------------------------------------------------
def _local_params(cfg: RunConfig, I: int, C: int) -> list[Params]:
    """bp-local parameters, one list (one optimizer) per layer, in the optimizer's order:
    `list(layer.parameters()) + list(head.parameters())` = (W_j, b_j, Wh_j, bh_j)."""
    W = cfg.width
    return [
        [(f"W{j}", W * (I if j == 0 else W)), (f"b{j}", W), (f"Wh{j}", C * W), (f"bh{j}", C)]
        for j in range(cfg.depth)
    ]


def _local_layer(L: Ledger, cfg: RunConfig, C: int, s: int, j: int, fan_in: int) -> None:
    """Layer j: addmm (B*W*s; saved by nobody, dies after relu), relu `out` (B*W*s;
    saved by relu, kept by `out` and then by `h` until the next layer's output replaces
    it), the layer's head and cross-entropy; backward: the head addmm backward gives
    the grad of out (B*W*s), grad Wh, grad bh; threshold_backward (B*W*s); the layer's
    addmm backward computes only the weight and bias gradients (its input is x or
    detached)."""
    B, W = cfg.batch_size, cfg.width
    act = B * W * s
    L.phase = f"forward (layer {j + 1})"
    L.alloc(f"a{j}", act, "other", f"addmm layer {j + 1}")
    L.alloc(f"o{j}", act, "activations", f"relu layer {j + 1}")
    L.free(f"a{j}")
    cross_entropy_forward(L, B, C, s, f"head {j + 1}", (f"lsm{j}", f"loss{j}", f"tw{j}"))
    L.phase = f"backward (layer {j + 1})"
    cross_entropy_backward(L, B, C, s, f"lsm{j}", f"tw{j}")
    head_backward(L, B, W, C, s, f"head {j + 1}", "g_o", (f"grad:Wh{j}", f"grad:bh{j}"))
    accumulated(L, f"grad:Wh{j}", f"grad:bh{j}")
    L.alloc("g_a", act, "other", f"threshold_backward layer {j + 1}")
    L.free("g_o")  # the ReLU output stays: `out` still refers to it
    L.alloc(f"grad:W{j}", W * fan_in * s, "other", f"grad weight layer {j + 1}")
    L.alloc(f"grad:b{j}", W * s, "other", f"grad bias layer {j + 1}")
    L.free("g_a")
    accumulated(L, f"grad:W{j}", f"grad:b{j}")
    L.free("ones")


def _local_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`BPLocalTrainer.train_step`: per layer j, forward (Linear + ReLU, then the layer's
    head and cross-entropy), backward, step over (W_j, b_j, Wh_j, bh_j) and zero_grad,
    then `h = out.detach()`; `del out, loss` frees the loss. Alive through the step:
    x, y, `total` (float32 zeros(()), `+=` in place)."""
    groups = _local_params(cfg, I, C)
    L.phase = "forward (layer 1)"
    L.alloc("total", F32, "other", "torch.zeros(()) (total)")
    h = "x"
    for j in range(cfg.depth):
        _local_layer(L, cfg, C, s, j, I if j == 0 else cfg.width)
        L.phase = f"optimizer (layer {j + 1})"
        optim.step(L, cfg, groups[j], s, first, tag=str(j))
        if h != "x":
            L.free(h)  # h = out.detach(): the previous layer's output dies
        h = f"o{j}"
        L.free(f"loss{j}")  # del out, loss
    L.phase = "end"


def _local_eval_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> str:
    """`h = F.relu(layer(h))`: addmm (n*W*s), relu (n*W*s), the addmm temporary dies,
    then rebinding h frees the previous output; the last head's logits (n*C*s), argmax
    (n int64), the logits die, h dies when predict_chunk returns."""
    L.phase = "eval"
    act, prev = n * cfg.width * s, None
    for k in range(cfg.depth):
        a = L.alloc(L.tmp(), act, "other", f"eval addmm layer {k + 1}")
        r = L.alloc(L.tmp(), act, "other", f"eval relu layer {k + 1}")
        L.free(a)
        if prev:
            L.free(prev)
        prev = r
    z = L.alloc(L.tmp(), n * C * s, "other", "eval head addmm")
    L.alloc(prefix + "argmax", n * I64, "other", "eval argmax")
    L.free(z, prev)
    return prefix + "argmax"


register(TrainerLedger(_local_params, _local_step, _local_eval_chunk), "bp-local")
