"""Ledgers of the recurrent trainers (ffbench/trainers/recurrent.py, `--arch recurrent`).

Notation as in the package docstring, plus T = time_steps, R = 2B rows (positives and
negatives), S = s*R*W (one state: a hidden layer's activity on R rows).

Closed forms (steady state, Adam single-tensor)
-----------------------------------------------
ff:  nothing crosses a step but the D detached states and, from step 1 on, their D
     normalised copies; one layer-step's graph at a time; `.grad` accumulates. The peak
     does not depend on T. For D = 2 it is reached in layer 1's weight gradients at any
     step t >= 1: start + xn (s*R*I) + lab (s*R*C) + 2 old states + 2 normalised states +
     the new state + threshold_backward's output (S each) + layer 1's three gradient
     temporaries, beside the gradients accumulated so far.
bp (full BPTT): every step's graph is alive until the one backward: per step the D new
     states, their normalised copies, the ReLU outputs, the damping products and the
     loss's small tensors -- about 6 S per step for D = 2 (exactly, see `_bptt_step`).
bp --bptt-window k: the graph of at most k steps.
bp-checkpoint: per step only the states that enter it (D x S) and the step's outputs.
The ledgers below are exact (tests/test_memory_model.py): every storage in program order.
"""

from __future__ import annotations

from ..config import RunConfig
from . import optim
from .ff import _goodness, _normalise, ff_loss_forward, loss_backward
from .ledger import F32, I64, Ledger, Params, accumulated
from .registry import TrainerLedger, register


def _layer_params(cfg: RunConfig, I: int, C: int, i: int) -> Params:
    """Layer i's parameters in `RecurrentNet.layer_params` order: U_i, b_i, V_i."""
    W = cfg.width
    above = W if i < cfg.depth - 1 else C
    return [(f"U{i}", W * (I if i == 0 else W)), (f"b{i}", W), (f"V{i}", W * above)]


def ff_params(cfg: RunConfig, I: int, C: int) -> list[Params]:
    """One optimizer per layer."""
    return [_layer_params(cfg, I, C, i) for i in range(cfg.depth)]


def _check(cfg: RunConfig, I: int, C: int) -> None:
    if cfg.ff_negatives != "random":
        raise NotImplementedError("the recurrent ledgers do not model hard negatives (ff_negatives='hard')")
    if cfg.time_steps == 1 and cfg.depth > 1:
        raise NotImplementedError(
            "time_steps=1: the top-down weights below the top layer are never used, so the "
            "optimizer keeps no state for them; the ledgers assume every parameter learns"
        )


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------
def one_hot(L: Ledger, rows: int, C: int, s: int, out: str) -> None:
    """`label_input`: F.one_hot (aminmax: 2 int64 scalars, then zeros rows x C int64, scatter
    in place), `.to(dtype)` (rows*C*s; the int64 one-hot dies), `mul_` in place."""
    L.free(L.alloc(L.tmp(), 2 * I64, "other", "one_hot: aminmax"))
    z = L.alloc(L.tmp(), rows * C * I64, "other", "one_hot: zeros")
    L.alloc(out, rows * C * s, "other", "one_hot .to(dtype)")
    L.free(z)


def _batch_inputs(L: Ledger, cfg: RunConfig, I: int, C: int, s: int) -> None:
    """y_neg (randint, add: die; remainder), the normalised batch (B rows) repeated to 2B
    rows -> "xn" (the B-row copy dies), torch.cat([y, y_neg]) (2B int64) -> one-hot "lab";
    the cat and y_neg die; `total` (float32)."""
    B = cfg.batch_size
    L.phase = "negatives"
    r = L.alloc(L.tmp(), B * I64, "other", "randint")
    a = L.alloc(L.tmp(), B * I64, "other", "add")
    L.alloc("y_neg", B * I64, "other", "remainder")
    L.free(r, a)
    L.phase = "inputs"
    _normalise(L, cfg, B, I, s, "xn1", "other")
    L.alloc("xn", 2 * B * I * s, "other", "repeat(2, 1)")
    L.free("xn1")
    L.alloc("labels", 2 * B * I64, "other", "cat(y, y_neg)")
    one_hot(L, 2 * B, C, s, "lab")
    L.free("labels", "y_neg")
    L.alloc("total", F32, "other", "torch.zeros(())")


def _update(
    L: Ledger, rows: int, W: int, s: int, below: str, above: str | None, damped: bool, key: str, grad: bool
):
    """`layer_update`: addmm (rows*W*s) [+ mm (top-down) + add; both die], relu, the
    pre-activation dies; damped: new * 0.7 then add (prev) -> the state, the product dies.
    With grad: addmm and mm save their inputs (activations), relu its output. Returns
    (relu output, state) names (the same name when undamped)."""
    act = "activations" if grad else "other"
    S = rows * W * s
    if grad:
        L.recategorise(below, "activations")
    a = L.alloc(L.tmp(), S, "other", "addmm (bottom-up)")
    if above is not None:
        if grad:
            L.recategorise(above, "activations")
        m = L.alloc(L.tmp(), S, "other", "mm (top-down)")
        a2 = L.alloc(L.tmp(), S, "other", "add")
        L.free(a, m)
        a = a2
    r = L.alloc(f"r{key}", S, act, "relu")
    L.free(a)
    if not damped:
        return r, r
    m = L.alloc(L.tmp(), S, "other", "mul (1 - damping)")
    h = L.alloc(f"h{key}", S, act, "add (damping)")
    L.free(m)
    if not grad:
        L.free(r)  # `new` dies when layer_update returns
    return r, h


def _layer_loss(L: Ledger, cfg: RunConfig, s: int, h: str, key: str) -> str:
    """`layer_loss(h)`: goodness (R*s; saves h), `ff_loss` on its halves, `/ T` (s); the
    mean and the goodness die. Returns the loss's name."""
    B = cfg.batch_size
    g = L.tmp()
    _goodness(L, 2 * B, s, g, "")
    ff_loss_forward(L, B, s, key)
    loss = L.alloc(f"lossT{key}", s, "other", "/ T")
    L.free(f"loss{key}", g)
    return loss


def _settle(L: Ledger, name: str, numel: int, s: int, op: str) -> None:
    """A parameter's gradient from one backward: stolen into `.grad` when it has none
    (AccumulateGrad keeps the tensor), else added in place and freed."""
    if L.has(f"grad:{name}"):
        L.free(L.alloc(L.tmp(), numel * s, "other", op))
    else:
        L.alloc(f"grad:{name}", numel * s, "other", op)
        accumulated(L, f"grad:{name}")


def _weight_grads(L: Ledger, params: Params, s: int, ga: str, top_down: bool) -> None:
    """Linear backward from the pre-activation's gradient `ga`: the top-down weight's (mm
    backward runs first: its node is the newer; its AccumulateGrad runs at once), then the
    bottom-up weight's and bias's (addmm backward; both exist before either is settled,
    `ga` dies first)."""
    (u, nu), (b, nb), (v, nv) = params
    if top_down:
        _settle(L, v, nv, s, f"grad {v} (mm)")
    fresh = [(p, n) for p, n in ((u, nu), (b, nb)) if not L.has(f"grad:{p}")]
    temps = []
    for p, n in ((u, nu), (b, nb)):
        name = f"grad:{p}" if (p, n) in fresh else L.tmp()
        temps.append(L.alloc(name, n * s, "other", f"grad {p}"))
    L.free(ga)
    for name in temps:
        if name.startswith("grad:"):
            accumulated(L, name)
        else:
            L.free(name)


# --------------------------------------------------------------------------------------
# ff: one layer-step's graph at a time
# --------------------------------------------------------------------------------------
def _ff_layer_step(
    L: Ledger, cfg: RunConfig, s: int, t: int, i: int, params: Params, seen: list, new: list
) -> None:
    """`RecurrentFFTrainer.train_step`'s inner loop: layer i at step t, forward, the loss's
    backward into `.grad`, the new state kept (detached: the same storage)."""
    B, W, D = cfg.batch_size, cfg.width, cfg.depth
    R, key, top = 2 * B, f"{t}.{i}", i == D - 1
    L.phase = f"forward (layer {i + 1})"
    below_tmp = None
    if t == 0:  # the bottom-up pass: the layer below's new state, normalised here
        if i > 0:
            below_tmp = f"b{key}"
            _normalise(L, cfg, R, W, s, below_tmp, "other")
        below, above = below_tmp or "xn", "lab" if top else None
    else:
        below, above = "xn" if i == 0 else seen[i - 1], "lab" if top else seen[i + 1]
    r, h = _update(L, R, W, s, below, above, damped=t > 0, key=key, grad=True)
    loss = _layer_loss(L, cfg, s, h, key)
    L.phase = f"backward (layer {i + 1})"
    one = L.alloc(L.tmp(), s, "other", "ones_like(loss)")
    dv = L.alloc(L.tmp(), s, "other", "div backward (/ T)")
    gg = loss_backward(L, B, s, key, upstream=dv)
    t1 = L.alloc(L.tmp(), R * s, "other", "goodness backward: grad * 2scale")
    go = L.alloc(L.tmp(), R * W * s, "other", "goodness backward: h * grad")
    L.free(t1, gg)
    if t > 0:
        gm = L.alloc(L.tmp(), R * W * s, "other", "mul backward (damping)")
        L.free(go)
        ga = L.alloc(L.tmp(), R * W * s, "other", "threshold_backward")
        L.free(gm, r)
    else:
        ga = L.alloc(L.tmp(), R * W * s, "other", "threshold_backward")
        L.free(go)
    _weight_grads(L, params, s, ga, top_down=above is not None)
    L.free(one, loss)
    if below_tmp:
        L.free(below_tmp)
    new.append(h)


def _ff_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """Inputs; per step: the previous states normalised ("seen"), each layer-step; the seen
    copies and the previous states die; after T steps each layer's optimizer step; the last
    states, xn and lab die when train_step returns."""
    R, W = 2 * cfg.batch_size, cfg.width
    groups = ff_params(cfg, I, C)
    _batch_inputs(L, cfg, I, C, s)
    states: list[str] = []
    for t in range(cfg.time_steps):
        seen = []
        for i in range(cfg.depth if t else 0):
            L.phase = "forward"
            seen.append(f"n{t}.{i}")
            _normalise(L, cfg, R, W, s, seen[-1], "other")
        new: list[str] = []
        for i in range(cfg.depth):
            _ff_layer_step(L, cfg, s, t, i, groups[i], seen, new)
        L.free(*seen, *states)
        states = new
    L.phase = "optimizer"
    for i, params in enumerate(groups):
        optim.step(L, cfg, params, s, first, tag=str(i))
    L.free(*states, "xn", "lab")
    L.phase = "end"


# --------------------------------------------------------------------------------------
# Evaluation: the label loop (every recurrent goodness trainer)
# --------------------------------------------------------------------------------------
def _run_step(
    L: Ledger, cfg: RunConfig, s: int, n: int, t: int, states: list[str], lab: str, prefix: str
) -> list[str]:
    """`RecurrentBase.step` under no_grad on n rows: step 0 normalises each new state for
    the layer above (alive until `below` is rebound or the step returns); later steps
    normalise every previous state first ("seen", dying when the step returns)."""
    W, D = cfg.width, cfg.depth
    new: list[str] = []
    held: list[str] = []
    for i in range(D):
        if t == 0:
            below = "xn" if i == 0 else f"{prefix}b{t}.{i}"
            if i > 0:
                _normalise(L, cfg, n, W, s, below, "other")
                L.free(*held)  # the previous `below` is rebound
                held = [below]
            above = lab if i == D - 1 else None
        else:
            if i == 0:
                held = [f"{prefix}n{t}.{j}" for j in range(D)]
                for name in held:
                    _normalise(L, cfg, n, W, s, name, "other")
            below, above = "xn" if i == 0 else held[i - 1], lab if i == D - 1 else held[i + 1]
        _, h = _update(L, n, W, s, below, above, damped=t > 0, key=f"{prefix}{t}.{i}", grad=False)
        new.append(h)
    L.free(*held)
    return new


def _eval_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> str:
    """`RecurrentBase.label_scores` then argmax: scores (n*C float32), the normalised chunk;
    per label its one-hot (`torch.full` n int64, dying once the label layer is made), the
    run for the last evaluation step + 1 steps (the previous states die when a step
    returns), each evaluation layer's goodness at each evaluation step added in place;
    the states and label die; the normalised chunk dies at return, argmax (n int64)."""
    L.phase = "eval"
    L.alloc(prefix + "scores", n * C * F32, "other", "zeros (scores)")
    _normalise(L, cfg, n, I, s, "xn", "other")
    steps, layers = cfg.eval_step_indices(), cfg.eval_layer_indices()
    for label in range(C):
        full = L.alloc(L.tmp(), n * I64, "other", "torch.full (label)")
        one_hot(L, n, C, s, f"{prefix}lab{label}")
        L.free(full)
        states: list[str] = []
        for t in range(max(steps) + 1):
            new = _run_step(L, cfg, s, n, t, states, f"{prefix}lab{label}", f"{prefix}{label}:")
            L.free(*states)
            states = new
            for _layer in layers if t in steps else ():
                g = L.tmp()
                _goodness(L, n, s, g, "(eval)")
                L.free(g)  # added in place into the scores column
        L.free(*states, f"{prefix}lab{label}")
    L.free("xn")
    L.alloc(prefix + "argmax", n * I64, "other", "argmax")
    L.free(prefix + "scores")
    return prefix + "argmax"


register(TrainerLedger(ff_params, _ff_step, _eval_chunk, check=_check), "ff", arch="recurrent")


def _bptt_not_modelled(cfg: RunConfig, I: int, C: int) -> None:
    raise NotImplementedError(
        f"no exact memory ledger for {cfg.trainer} with --arch recurrent yet (backpropagation "
        "through the normalisation and time is measured, not modelled)"
    )


def _unmodelled(cfg: RunConfig, *_) -> None:
    _bptt_not_modelled(cfg, 0, 0)


_UNMODELLED = TrainerLedger(_unmodelled, _unmodelled, _unmodelled, check=_bptt_not_modelled)
register(_UNMODELLED, "bp", "bp-checkpoint", "bp-ste", "bp-ce", arch="recurrent")
