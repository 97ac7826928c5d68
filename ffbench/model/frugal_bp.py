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

from collections.abc import Callable
from dataclasses import dataclass

from ..config import RunConfig
from . import optim
from .bp import (
    BP_LEDGER,
    FRESH,
    MLP,
    BPNet,
    GradSink,
    cross_entropy_backward,
    cross_entropy_forward,
    head_backward,
    net_pass,
)
from .ledger import F32, I64, Ledger, Params, accumulated
from .registry import TrainerLedger, register

Step = Callable[[Ledger, RunConfig, int, int, int, bool], None]


# --------------------------------------------------------------------------------------
# bp-accum
# --------------------------------------------------------------------------------------
def _add_in_place(L: Ledger, produced: Params) -> None:
    """`p.grad` exists and grad mode is off in backward -> `p.grad += new` (in place,
    accumulate_grad.h); the new gradient dies with the node's buffer."""
    L.free(*[f"new:{name}" for name, _ in produced])


ACCUMULATE = GradSink("new", _add_in_place)


def accum_step(net: BPNet, checkpointed: bool = False) -> Step:
    """`BPTrainer`'s micro-batched step (`bp --micro-batch`, `bp-accum`; checkpointed: each
    micro-batch's body in `cfg.segments` segments) on `net`: total = torch.zeros(()) (float32, alive to the
    end: returned); per micro-batch x[i:i+micro], y[...] are views (no storage), BP's pass
    with the loss scaled by the micro-batch's share, the first stealing the gradients, the
    later ones adding into them; `total += loss.detach()` is in place; `del loss` frees the
    (scaled) loss scalar. Then one step."""

    def step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
        n, micro = cfg.batch_size, cfg.micro
        L.phase = "forward"
        L.alloc("total", F32, "other", "torch.zeros(()) (total)")
        for idx, i in enumerate(range(0, n, micro)):
            sink = FRESH if idx == 0 else ACCUMULATE
            segments = cfg.segments if checkpointed else None
            net_pass(L, net, cfg, I, C, s, min(micro, n - i), segments, sink=sink, scaled=True)
            L.free("loss")
        L.phase = "optimizer"
        optim.step(L, cfg, net.params(cfg, I, C), s, first)
        L.phase = "end"

    return step


# --------------------------------------------------------------------------------------
# bp-inbackward
# --------------------------------------------------------------------------------------
def inbackward_step(net: BPNet) -> Step:
    """`BPInBackwardTrainer.train_step` on `net`: BP's pass in which each gradient is
    stolen into `p.grad`, then the post-accumulate-grad hook runs that parameter's own
    optimizer step and `zero_grad(set_to_none=True)`; the storage dies when
    AccumulateGrad::apply returns (its input still held it). bp-inbackward's per-parameter
    optimizers hold the same state as one optimizer over all of them (`net.param_groups`)."""

    def step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
        def step_now(L: Ledger, produced: Params) -> None:
            for name, n in produced:
                accumulated(L, f"grad:{name}")
                optim.step(L, cfg, [(name, n)], s, first, tag=f"[{name}]")

        net_pass(L, net, cfg, I, C, s, cfg.batch_size, sink=GradSink("grad", step_now))
        L.phase = "end"

    return step


register(TrainerLedger(MLP.param_groups, accum_step(MLP), BP_LEDGER.eval_chunk), "bp", "bp-accum", micro=True)
register(
    TrainerLedger(MLP.param_groups, accum_step(MLP, checkpointed=True), BP_LEDGER.eval_chunk),
    "bp-checkpoint",
    micro=True,
)
register(TrainerLedger(MLP.param_groups, inbackward_step(MLP), BP_LEDGER.eval_chunk), "bp-inbackward")


# --------------------------------------------------------------------------------------
# bp-local (greedy layer-wise backprop)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalLayer:
    """One layer of a bp-local network: features per row of its output (its head's
    input), its weight's and bias's sizes, its forward op and the labels of its weight
    and bias gradients."""

    out: int
    nW: int
    nb: int
    op: str
    grads: tuple[str, str]


@dataclass(frozen=True)
class LocalNet:
    """layers(cfg, I); image(cfg, I): the first layer starts with an input copy (B*I*s,
    saved by layer 1, dying with its node: the conv body's ToImage)."""

    layers: Callable[[RunConfig, int], list[LocalLayer]]
    image: Callable[[RunConfig, int], bool] = lambda cfg, I: False

    def param_groups(self, cfg: RunConfig, I: int, C: int) -> list[Params]:
        """One list (one optimizer) per layer, in the optimizer's order:
        `list(layer.parameters()) + list(head.parameters())` = (W_j, b_j, Wh_j, bh_j)."""
        return [
            [(f"W{j}", ly.nW), (f"b{j}", ly.nb), (f"Wh{j}", C * ly.out), (f"bh{j}", C)]
            for j, ly in enumerate(self.layers(cfg, I))
        ]


def _local_layer(
    L: Ledger, cfg: RunConfig, I: int, C: int, s: int, j: int, ly: LocalLayer, image: bool
) -> None:
    """Layer j: [the input copy], its op (B*out*s; saved by nobody, dies after relu), relu
    `out` (B*out*s; saved by relu, kept by `out` and then by `h` until the next layer's
    output replaces it), the layer's head and cross-entropy; backward: the head addmm
    backward gives the grad of out (B*out*s), grad Wh, grad bh; threshold_backward
    (B*out*s); the layer's backward computes only the weight and bias gradients (its
    input is x, the image or detached)."""
    B = cfg.batch_size
    act = B * ly.out * s
    L.phase = f"forward (layer {j + 1})"
    if image:
        L.alloc("img", B * I * s, "activations", "ToImage channels_last copy")
    L.alloc(f"a{j}", act, "other", ly.op)
    L.alloc(f"o{j}", act, "activations", f"relu layer {j + 1}")
    L.free(f"a{j}")
    cross_entropy_forward(L, B, C, s, f"head {j + 1}", (f"lsm{j}", f"loss{j}", f"tw{j}"))
    L.phase = f"backward (layer {j + 1})"
    cross_entropy_backward(L, B, C, s, f"lsm{j}", f"tw{j}")
    head_backward(L, B, ly.out, C, s, f"head {j + 1}", "g_o", (f"grad:Wh{j}", f"grad:bh{j}"))
    accumulated(L, f"grad:Wh{j}", f"grad:bh{j}")
    L.alloc("g_a", act, "other", f"threshold_backward layer {j + 1}")
    L.free("g_o")  # the ReLU output stays: `out` still refers to it
    L.alloc(f"grad:W{j}", ly.nW * s, "other", ly.grads[0])
    L.alloc(f"grad:b{j}", ly.nb * s, "other", ly.grads[1])
    L.free("g_a")
    if image:
        L.free("img")  # layer 1 was its last holder
    accumulated(L, f"grad:W{j}", f"grad:b{j}")
    L.free("ones")


def _local_step(net: LocalNet) -> Step:
    """`BPLocalTrainer.train_step`: per layer j, forward (the layer + ReLU, then the layer's
    head and cross-entropy), backward, step over (W_j, b_j, Wh_j, bh_j) and zero_grad,
    then `h = out.detach()`; `del out, loss` frees the loss. Alive through the step:
    x, y, `total` (float32 zeros(()), `+=` in place)."""

    def step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
        groups, image = net.param_groups(cfg, I, C), net.image(cfg, I)
        L.phase = "forward (layer 1)"
        L.alloc("total", F32, "other", "torch.zeros(()) (total)")
        h = None
        for j, ly in enumerate(net.layers(cfg, I)):
            _local_layer(L, cfg, I, C, s, j, ly, image and j == 0)
            L.phase = f"optimizer (layer {j + 1})"
            optim.step(L, cfg, groups[j], s, first, tag=str(j))
            if h:
                L.free(h)  # h = out.detach(): the previous layer's output dies
            h = f"o{j}"
            L.free(f"loss{j}")  # del out, loss
        L.phase = "end"

    return step


def _local_eval(net: LocalNet) -> Callable[[Ledger, RunConfig, int, int, int, int, str], str]:
    """`h = F.relu(layer(h))` (layer 1 from the input copy, if any: it dies when layer 1
    returns): the layer's op (n*out*s), relu (n*out*s), the op's output dies, then
    rebinding h frees the previous output; the last head's logits (n*C*s), argmax
    (n int64), the logits die, h dies when predict_chunk returns."""

    def eval_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> str:
        L.phase = "eval"
        prev = None
        for k, ly in enumerate(net.layers(cfg, I)):
            img = (
                L.alloc(L.tmp(), n * I * s, "other", "eval ToImage copy")
                if k == 0 and net.image(cfg, I)
                else None
            )
            a = L.alloc(L.tmp(), n * ly.out * s, "other", f"eval {ly.op}")
            if img:
                L.free(img)
            r = L.alloc(L.tmp(), n * ly.out * s, "other", f"eval relu layer {k + 1}")
            L.free(a)
            if prev:
                L.free(prev)
            prev = r
        z = L.alloc(L.tmp(), n * C * s, "other", "eval head addmm")
        L.alloc(prefix + "argmax", n * I64, "other", "eval argmax")
        L.free(z, prev)
        return prefix + "argmax"

    return eval_chunk


def local_ledger(net: LocalNet, check: Callable[[RunConfig, int, int], None] | None = None) -> TrainerLedger:
    """bp-local's ledger on `net`."""
    return TrainerLedger(net.param_groups, _local_step(net), _local_eval(net), check)


def _mlp_local_layers(cfg: RunConfig, I: int) -> list[LocalLayer]:
    W = cfg.width
    return [
        LocalLayer(
            W,
            W * (I if j == 0 else W),
            W,
            f"addmm layer {j + 1}",
            (f"grad weight layer {j + 1}", f"grad bias layer {j + 1}"),
        )
        for j in range(cfg.depth)
    ]


register(local_ledger(LocalNet(_mlp_local_layers)), "bp-local")
