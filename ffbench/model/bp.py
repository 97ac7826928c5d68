"""Ledgers of the backprop baselines `bp` and `bp-checkpoint` (ffbench/trainers/bp.py),
and the BP forward/backward pass the frugal BP trainers reuse (frugal_bp.py).

Closed forms (steady state, Adam single-tensor; notation in the package docstring)
---------------------------------------------------------------------------------
bp:   optimizer peak = start + s*P (all gradients, alive until zero_grad) + small
      + max_i s*(2|p_i| + |p_{i-1}|)   (Adam single-tensor: `exp_avg_sq.sqrt()` and
      its division by bias_correction2_sqrt are alive together, while the previous
      parameter's `denom` is still bound to the local variable);
      backward peak at layer k = start + s*B*W*(k-1) (saved ReLU outputs still
      needed) + 2*s*B*W (incoming grad + threshold_backward output, or grad input
      + grad of pre-activation) + gradients accumulated so far; the larger wins.
bp-checkpoint: same, but only segment boundaries and the un-checkpointed last segment
      are kept; each checkpointed segment is re-run in backward (non-reentrant
      `checkpoint`, early stop: a Linear at the end of a segment saves its inputs
      before it computes, so its output is not recomputed).

Ledger names: body Linear k's output (addmm) is "a{k}", ReLU k's output "h{k}"; the
gradient flowing into tensor t is "g_{t}"; a parameter's gradient is "grad:{p}".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import RunConfig
from . import optim
from .ledger import I64, Ledger, Params, accumulated
from .registry import TrainerLedger, register


def bp_params(cfg: RunConfig, I: int, C: int) -> Params:
    """BP parameters in `net.parameters()` order: body (W_k, b_k) ..., head (W_h, b_h)."""
    W, ps = cfg.width, []
    for k in range(cfg.depth):
        fan_in = I if k == 0 else W
        ps += [(f"W{k}", W * fan_in), (f"b{k}", W)]
    ps += [("Wh", C * W), ("bh", C)]
    return ps


# --------------------------------------------------------------------------------------
# Where a node's parameter gradients go
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GradSink:
    """What happens to the weight/bias gradients a node just produced, after the node
    returned and its incoming gradient was released.

    prefix: ledger name of the tensors the node produces, "{prefix}:{param}".
    settle(L, produced): called with (param, numel) in the order AccumulateGrad runs
    them (the engine runs them first: sequence_nr = UINT64_MAX; the bias's node is
    ready at once, the weight's only after TBackward0, i.e. weight.t()).
    """

    prefix: str
    settle: Callable[[Ledger, Params], None]


def _steal(L: Ledger, produced: Params) -> None:
    """`p.grad` is None -> AccumulateGrad steals the tensor (no copy): it is `p.grad`."""
    accumulated(L, *[f"grad:{name}" for name, _ in produced])


FRESH = GradSink("grad", _steal)


# --------------------------------------------------------------------------------------
# The body: nn.Sequential(Linear, ReLU, ...) and its checkpoint segments
# --------------------------------------------------------------------------------------
def body_segments(n_modules: int, segments: int | None) -> list[tuple[int, int, bool]]:
    """(first module, last module, checkpointed) as in `checkpoint_sequential`:
    segment_size = len(modules) // segments; the first segments-1 segments are
    checkpointed, the remainder (modules end+1 .. last) runs normally. None: no
    checkpointing, one plain segment."""
    if segments is None:
        return [(0, n_modules - 1, False)]
    size = n_modules // segments
    segs, end = [], -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        segs.append((start, end, True))
    segs.append((end + 1, n_modules - 1, False))
    return segs


class _Body:
    """The body on B rows: modules Linear 0, ReLU 0, Linear 1, ... (module m is layer
    m // 2), their segments, and the ledger names of their outputs."""

    linear_backward = None  # a layer's backward (None: `_linear_backward`); other bodies plug theirs

    image = 0  # bytes of an input copy made before the first module (none for the MLP)

    def __init__(self, depth: int, act: int, segments: int | None, features: int) -> None:
        self.n = 2 * depth
        self.act = act  # bytes of one B x W activation
        self.features = features  # features per row of the last output (the head's input)
        self.segs = body_segments(self.n, segments)
        self.seg_of = {m: si for si, (a, b, _) in enumerate(self.segs) for m in range(a, b + 1)}

    def size(self, m: int) -> int:
        """Bytes of module m's output (every module of the MLP's body: one B x W activation)."""
        return self.act

    @staticmethod
    def is_linear(m: int) -> bool:
        return m % 2 == 0

    @staticmethod
    def op(m: int) -> str:
        return f"{'addmm' if m % 2 == 0 else 'relu'} layer {m // 2 + 1}"

    @staticmethod
    def out_name(m: int) -> str:
        return f"{'a' if m % 2 == 0 else 'h'}{m // 2}"

    def in_name(self, m: int) -> str:
        return "x" if m == 0 else self.out_name(m - 1)

    def segment(self, m: int) -> tuple[int, int, bool]:
        """(segment index, its first module, checkpointed) of module m."""
        si = self.seg_of[m]
        return si, self.segs[si][0], self.segs[si][2]

    def holds_boundary_input(self, m: int) -> bool:
        """m starts a segment after the first: its input is a segment boundary."""
        si, a, _ = self.segment(m)
        return m == a and si > 0


# --------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------
# Which module outputs are saved for backward in the ordinary (un-checkpointed) autograd
# graph: ReLU saves its result (threshold_backward needs it); addmm saves mat1 = its
# input (for the weight gradient) -- i.e. the previous ReLU output. addmm outputs
# (pre-activations) are saved by nobody.
def _forward_checkpointed(L: Ledger, body: _Body, m: int) -> None:
    """Module m inside a checkpoint(use_reentrant=False) segment: the segment's own pack
    hook keeps nothing; its input is held by the checkpoint frame for recompute, through
    `_NoopSaveInputs.apply(...)`'s save_for_backward, i.e. it is saved by autograd
    outside the checkpoint hooks (an "activation")."""
    if body.holds_boundary_input(m):
        L.recategorise(body.in_name(m), "activations")
    L.alloc(body.out_name(m), body.size(m), "other", f"{body.op(m)} (checkpointed)")
    if m != body.segment(m)[1]:
        L.free(body.in_name(m))  # intermediate of a checkpointed segment


def _forward_plain(L: Ledger, body: _Body, m: int) -> str | None:
    """Module m outside checkpointing. Returns the segment boundary that
    checkpoint_sequential's local `input` holds until it returns, if m starts from one."""
    relu = not body.is_linear(m)
    L.alloc(body.out_name(m), body.size(m), "activations" if relu else "other", body.op(m))
    inp = body.in_name(m)
    if relu:
        # relu's input (addmm output) is saved by nobody -> dies, unless it is the
        # boundary produced by a checkpointed segment, fed into this normal segment
        # starting with ReLU: nobody saves it, but checkpoint_sequential's local
        # `input` holds it until it returns
        if body.holds_boundary_input(m):
            return inp
        if m != body.segment(m)[1]:
            L.free(inp)
    elif body.holds_boundary_input(m) and L.has(inp):
        # Linear saves its input (mat1): it stays. If the input is the output of a
        # checkpointed segment (boundary), addmm saves it -> activation.
        L.recategorise(inp, "activations")
    return None


def _forward_body(L: Ledger, body: _Body) -> None:
    L.phase = "forward"
    if body.image:
        L.alloc("img", body.image, "activations", "ToImage channels_last copy")
    held_boundary = None
    for m in range(body.n):
        if body.segment(m)[2]:
            _forward_checkpointed(L, body, m)
        else:
            held_boundary = _forward_plain(L, body, m) or held_boundary
    if held_boundary:
        L.free(held_boundary)  # checkpoint_sequential returned


# --------------------------------------------------------------------------------------
# The classifier head and cross-entropy (bp-local runs one per layer: frugal_bp.py)
# --------------------------------------------------------------------------------------
def cross_entropy_forward(
    L: Ledger, rows: int, C: int, s: int, head: str, names: tuple[str, str, str]
) -> None:
    """head addmm -> logits (rows*C*s, saved by nobody: log_softmax saves its result),
    log_softmax (rows*C*s, saved), nll_loss (s) and its total_weight (s, saved); the
    logits die. names: (log_softmax, loss, total_weight)."""
    lsm, loss, tw = names
    z = L.alloc(L.tmp(), rows * C * s, "other", f"addmm {head}")
    L.alloc(lsm, rows * C * s, "activations", "log_softmax")
    L.alloc(loss, s, "other", "nll_loss output")
    L.alloc(tw, s, "activations", "nll_loss total_weight")
    L.free(z)


def cross_entropy_backward(
    L: Ledger, rows: int, C: int, s: int, lsm: str, tw: str, scaled: bool = False
) -> None:
    """`loss.backward()` down to the head: ones_like(loss) (s, alive until backward
    returns: "ones"), [mul backward (s) when the loss was scaled], nll_loss_backward
    (rows*C*s; the node ran: autograd releases its saved total_weight),
    _log_softmax_backward_data (rows*C*s; the nll grad and the saved log_softmax die):
    the logits' gradient "g_z", which `head_backward` consumes."""
    L.alloc("ones", s, "other", "ones_like(loss)")
    if scaled:
        L.alloc("g_ce", s, "other", "mul backward (grad * share)")
    L.alloc("g_lsm", rows * C * s, "other", "nll_loss_backward")
    L.free(tw)
    if scaled:
        L.free("g_ce")
    L.alloc("g_z", rows * C * s, "other", "_log_softmax_backward_data")
    L.free("g_lsm", lsm)


def head_backward(
    L: Ledger, rows: int, W: int, C: int, s: int, head: str, grad_input: str, grads: tuple[str, str]
) -> None:
    """head addmm backward: grad input (mm, rows*W*s), grad weight (mm), grad bias (sum);
    then the logits' gradient "g_z" dies. grads: names of the (weight, bias) gradients."""
    L.alloc(grad_input, rows * W * s, "other", f"{head} addmm backward: grad input")
    L.alloc(grads[0], C * W * s, "other", f"{head} grad weight")
    L.alloc(grads[1], C * s, "other", f"{head} grad bias")
    L.free("g_z")


# --------------------------------------------------------------------------------------
# Backward through the body
# --------------------------------------------------------------------------------------
def _recompute_segment(L: Ledger, body: _Body, si: int) -> None:
    """First unpack inside checkpointed segment si: re-run its modules from the held
    input, keeping what autograd saves (ReLU results, Linear inputs). Early stop: a
    trailing Linear saves its inputs before computing -> no output."""
    a, b, _ = body.segs[si]
    for m in range(a, b + 1):
        if body.is_linear(m) and m == b:
            break
        L.alloc(body.out_name(m), body.size(m), "other", f"recompute {body.op(m)}")
        if not body.is_linear(m) and m != a:
            L.free(body.in_name(m))  # pre-activation saved by nobody


def _relu_backward(L: Ledger, body: _Body, m: int) -> None:
    """threshold_backward(grad, result): new s*B*W; then the incoming grad dies, and the
    ReLU result dies (its other saver, the next Linear, ran already)."""
    o = body.out_name(m)
    L.alloc(f"g_{body.in_name(m)}", body.size(m), "other", f"threshold_backward layer {m // 2 + 1}")
    L.free(f"g_{o}")
    if L.has(o):
        L.free(o)
    if body.segment(m)[2] and body.holds_boundary_input(m):
        L.free(body.in_name(m))  # the checkpoint frame drops the segment input after its last node


def _linear_backward(L: Ledger, cfg: RunConfig, I: int, s: int, body: _Body, m: int, sink: GradSink) -> None:
    """addmm backward: grad input (mm) unless the input is x; grad W (mm); grad b (sum);
    the incoming grad dies; the gradients go to `sink`."""
    k, W = m // 2, cfg.width
    if m > 0:
        L.alloc(f"g_{body.in_name(m)}", body.act, "other", f"addmm backward layer {k + 1}: grad input")
    nW = W * (I if k == 0 else W)
    L.alloc(f"{sink.prefix}:W{k}", nW * s, "other", f"grad weight layer {k + 1}")
    L.alloc(f"{sink.prefix}:b{k}", W * s, "other", f"grad bias layer {k + 1}")
    L.free(f"g_{body.out_name(m)}")
    sink.settle(L, [(f"b{k}", W), (f"W{k}", nW)])
    if m > 0:
        free_layer_input(L, body, m)


def free_layer_input(L: Ledger, body: _Body, m: int) -> None:
    """After layer module m's backward (m > 0): its input dies here if its other holder is
    gone."""
    # a Linear's input dies here if its other holder is gone: in a normal segment the
    # ReLU before it also saved it (freed there); a boundary that is a checkpointed
    # segment's output is held only by this addmm.
    si, a, ck = body.segment(m)
    prev_seg = body.seg_of[m - 1]
    if (prev_seg != si and body.segs[prev_seg][2] and not ck) or (ck and m == a):
        L.free(body.in_name(m))


def _backward_body(L: Ledger, cfg: RunConfig, I: int, s: int, body: _Body, sink: GradSink) -> None:
    recomputed: set[int] = set()
    for m in range(body.n - 1, -1, -1):
        si, _, ck = body.segment(m)
        if ck and si not in recomputed:
            recomputed.add(si)
            _recompute_segment(L, body, si)
        if body.is_linear(m):
            (body.linear_backward or _linear_backward)(L, cfg, I, s, body, m, sink)
        else:
            _relu_backward(L, body, m)


# --------------------------------------------------------------------------------------
# The pass and the trainers
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BPNet:
    """What the BP trainers' ledgers need of a network: its body on B rows,
    body(cfg, I, B, s, segments), and its parameters in `net.parameters()` order."""

    body: Callable[[RunConfig, int, int, int, int | None], _Body]
    params: Callable[[RunConfig, int, int], Params]

    def param_groups(self, cfg: RunConfig, I: int, C: int) -> list[Params]:
        """One optimizer over every parameter."""
        return [self.params(cfg, I, C)]


def net_pass(
    L: Ledger,
    net: BPNet,
    cfg: RunConfig,
    I: int,
    C: int,
    s: int,
    B: int,
    segments: int | None = None,
    sink: GradSink = FRESH,
    scaled: bool = False,
) -> None:
    """Forward + backward of `net` on B rows (checkpointed in `segments` segments, or
    plain). sink: where the parameter gradients go (`FRESH`: no p.grad yet; the frugal
    trainers pass their own). scaled: the loss is `cross_entropy(...) * share`. Leaves
    `loss` (the returned scalar) alive."""
    body = net.body(cfg, I, B, s, segments)
    _forward_body(L, body)
    cross_entropy_forward(L, B, C, s, "head", ("lsm", "ce" if scaled else "loss", "total_weight"))
    if scaled:
        # `* (len(xm) / n)`: mul by a wrapped Python scalar (made outside the
        # dispatcher); MulBackward0 saves only that scalar, so the CE output dies
        L.alloc("loss", s, "other", "mul (loss share)")
        L.free("ce")
    L.phase = "backward"
    cross_entropy_backward(L, B, C, s, "lsm", "total_weight", scaled)
    hD = body.out_name(body.n - 1)  # saved by the head addmm (and by relu D if not checkpointed)
    W = body.features
    head_backward(L, B, W, C, s, "head", f"g_{hD}", (f"{sink.prefix}:Wh", f"{sink.prefix}:bh"))
    sink.settle(L, [("bh", C), ("Wh", C * W)])
    _backward_body(L, cfg, I, s, body, sink)
    L.free("ones")  # the root gradient buffer dies when backward returns


def bp_step(
    net: BPNet, checkpointed: bool = False
) -> Callable[[Ledger, RunConfig, int, int, int, bool], None]:
    """`BPTrainer.train_step` (forward, backward, `opt.step()`, zero_grad) on `net`; with
    `checkpointed`, `BPCheckpointTrainer.train_step`: the body in `cfg.segments` segments."""

    def step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
        net_pass(L, net, cfg, I, C, s, cfg.batch_size, cfg.segments if checkpointed else None)
        L.phase = "optimizer"
        optim.step(L, cfg, net.params(cfg, I, C), s, first)
        L.phase = "end"

    return step


def sequential_eval(net: BPNet) -> Callable[[Ledger, RunConfig, int, int, int, int, str], str]:
    """`net(x).argmax(1)` under no_grad on n examples: the body's input copy (if any) stays
    bound while the body runs; nn.Sequential: a layer's output (n*features*s) while the
    previous ReLU output is alive, relu, then the layer output and the previous output
    die; the input copy dies; head logits (n*C*s); argmax (n int64); the logits die."""

    def eval_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> str:
        body = net.body(cfg, I, n, s, None)
        L.phase = "eval"
        img = L.alloc(L.tmp(), body.image, "other", "eval ToImage copy") if body.image else None
        prev = None
        for m in range(0, body.n, 2):
            a = L.alloc(L.tmp(), body.size(m), "other", f"eval {body.op(m)}")
            if prev:
                L.free(prev)
            prev = L.alloc(L.tmp(), body.size(m + 1), "other", f"eval {body.op(m + 1)}")
            L.free(a)
        if img:
            L.free(img)
        z = L.alloc(L.tmp(), n * C * s, "other", "eval head addmm")
        L.free(prev)
        L.alloc(prefix + "argmax", n * I64, "other", "eval argmax")
        L.free(z)
        return prefix + "argmax"

    return eval_chunk


def _mlp_body(cfg: RunConfig, I: int, B: int, s: int, segments: int | None) -> _Body:
    return _Body(cfg.depth, B * cfg.width * s, segments, cfg.width)


MLP = BPNet(_mlp_body, bp_params)
BP_LEDGER = TrainerLedger(MLP.param_groups, bp_step(MLP), sequential_eval(MLP))

# bp-ste is bp with a straight-through estimator at the black box, which `predict` refuses
register(BP_LEDGER, "bp", "bp-ste")
register(
    TrainerLedger(MLP.param_groups, bp_step(MLP, checkpointed=True), BP_LEDGER.eval_chunk), "bp-checkpoint"
)
