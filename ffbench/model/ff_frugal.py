"""Ledger of `ff-frugal` (ffbench/trainers/ff_frugal.py): every storage its step creates or
releases, in program order (notation in the package docstring).

Closed forms (steady state, Adam single-tensor), sequential pass (r = B rows per block):
  per layer j < D-1, the larger of
    negative block:  start + 4 [total] + s*B*in_j (the block's input, normalised in place)
                     + 2*s*B*W (both outputs) + s*(|W_j| + W) (gradients) + s*(r + 1) [g, loss]
    optimizer:       start + 4 + 2*s*B*W (next layer's input) + s*(|W_j| + W) + 2*s*|W_j| (Adam)
  the last layer's outputs die before its optimizer step.
Together pass: one block of R = 2B rows: s*R*in_j + s*R*W + gradients.
Nothing is saved for backward (no autograd graph): the block inputs and outputs are "other".

Micro-batched (`--micro-batch m`, `_micro_step`): y_neg, value and total as above, alive to the
end; every micro-batch's blocks are the blocks above on m rows (the last micro-batch B mod m),
each layer's gradients created by its first block and accumulated in place after.
  micro-batch-major: per micro-batch, the blocks through every layer; all D layers' gradients
    alive from the first micro-batch on; then the D optimizer steps.
  layer-major: per layer, every micro-batch's blocks (the outputs of all of them, 2 x B x W,
    kept for the next layer), then the layer's optimizer step.
"""

from __future__ import annotations

from ..config import RunConfig
from . import optim
from .ff import _check, _ff_params, effective_pass, label_loop, replicated_scores
from .ledger import F32, I64, Ledger
from .registry import TrainerLedger, register


def _block(
    L: Ledger,
    cfg: RunConfig,
    j: int,
    k: int,
    fan_in: int,
    rows: int,
    s: int,
    inp: str | None,
    keep: bool,
    new_grads: bool | None = None,
    tag: str = "",
) -> str | None:
    """One row block through layer j (`FFFrugalTrainer.train_step`'s inner loop).

    forward: the first layer's negatives embedded late (`embed_`: x.clone(), rows*in*s;
    y_neg and value die); normalise_ (vector_norm rows*s, dies; the input divided in place),
    addmm (rows*W*s; relu_ in place: the block's output), goodness_ (vector_norm rows*s,
    squared and scaled in place: g). backward: loss_coefficients_ (softplus rows*s, its
    .sum() s -- the loss, divided in place -- then the softplus dies; c in g's storage),
    accumulate_grads_ (the input scaled in place; the first block creates W.grad = mm
    (W*in*s) and b.grad = mv (W*s), the second adds in place); the input and g die, the
    loss dies after `total += loss`; the output dies too unless a next layer needs it.
    Micro-batched (`tag` names the micro-batch): the gradients are created only when
    `new_grads`, and y_neg and value stay alive (later micro-batches need them)."""
    W = cfg.width
    L.phase = f"forward (layer {j + 1})"
    if inp is None:
        inp = L.alloc("xn" + tag, rows * fan_in * s, "other", "embed_: clone")
        if not tag:
            L.free("y_neg", "value")
    L.free(L.alloc(L.tmp(), rows * s, "other", "normalise_: vector_norm"))
    o = L.alloc(f"o{j}.{k}{tag}", rows * W * s, "other", f"addmm layer {j + 1}")
    g = L.alloc(L.tmp(), rows * s, "other", "goodness_: vector_norm")
    L.phase = f"backward (layer {j + 1})"
    sp = L.alloc(L.tmp(), rows * s, "other", "softplus")
    loss = L.alloc(L.tmp(), s, "other", "softplus .sum() (loss)")
    L.free(sp)
    if k == 0 if new_grads is None else new_grads:
        L.alloc(f"grad:W{j}", W * fan_in * s, "gradients", f"grad weight layer {j + 1} (mm)")
        L.alloc(f"grad:b{j}", W * s, "gradients", f"grad bias layer {j + 1} (mv)")
    L.free(inp, g)
    L.free(loss)
    if keep:
        return o
    L.free(o)
    return None


def _head(L: Ledger, B: int, s: int) -> None:
    """y_neg (randint, add_ and remainder_ in place: B int64), value (amax, B*s), total
    (float32): `train_step`'s first lines."""
    L.phase = "negatives"
    L.alloc("y_neg", B * I64, "other", "randint (add_, remainder_ in place)")
    L.alloc("value", B * s, "other", "amax (label value)")
    L.alloc("total", F32, "other", "torch.zeros(())")


def _micro_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`FFFrugalTrainer._train_step_micro` (module docstring): micro-batch i's first blocks
    (together: x[sl].repeat(2, 1), 2m*I*s; sequential: the positives embedded, m*I*s, the
    negatives when their turn comes), each through the layers (`_block` on m or 2m rows), in
    the schedule's order; one optimizer step per layer once its gradients are complete."""
    if cfg.ff_negatives != "random":
        raise NotImplementedError("the ff-frugal ledger does not model hard negatives")
    B, W, D, m = cfg.batch_size, cfg.width, cfg.depth, cfg.micro
    groups = _ff_params(cfg, I, C)
    together = effective_pass(cfg) == "together"
    sizes = optim.micro_sizes(B, m)
    _head(L, B, s)

    def first_blocks(i: int, r: int) -> list:
        L.phase = "embed"
        if together:
            return [L.alloc(f"h_in.{i}", 2 * r * I * s, "other", "x.repeat(2, 1)")]
        return [L.alloc(f"xp.{i}", r * I * s, "other", "embed_: clone"), None]

    def layer(j: int, i: int, blocks: list) -> list:
        rows = sizes[i] * (2 if together else 1)
        fan_in = I if j == 0 else W
        return [
            _block(L, cfg, j, k, fan_in, rows, s, inp, j < D - 1, new_grads=i == 0 and k == 0, tag=f".{i}")
            for k, inp in enumerate(blocks)
        ]

    optim.micro_schedule(L, cfg, groups, s, first, sizes, lambda i: first_blocks(i, sizes[i]), layer)
    L.phase = "end"


def _step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """y_neg, value, total (`_head`); together: x.repeat(2, 1) (R*I*s; labels scattered in place), y_neg and value
    die; sequential: the positives embedded (B*I*s), the negatives when their turn comes.
    Per layer: each block (`_block`), then the optimizer step."""
    if cfg.ff_negatives != "random":
        raise NotImplementedError("the ff-frugal ledger does not model hard negatives")
    B, W, D = cfg.batch_size, cfg.width, cfg.depth
    groups = _ff_params(cfg, I, C)
    _head(L, B, s)
    L.phase = "embed"
    if effective_pass(cfg) == "together":
        blocks, rows = [L.alloc("h_in", 2 * B * I * s, "other", "x.repeat(2, 1)")], 2 * B
        L.free("y_neg", "value")
    else:
        blocks, rows = [L.alloc("xp", B * I * s, "other", "embed_: clone"), None], B
    for j in range(D):
        fan_in = I if j == 0 else W
        outs = [_block(L, cfg, j, k, fan_in, rows, s, inp, keep=j < D - 1) for k, inp in enumerate(blocks)]
        L.phase = f"optimizer (layer {j + 1})"
        optim.step(L, cfg, groups[j], s, first, tag=str(j))
        blocks = outs
    L.phase = "end"


def _eval_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> str:
    """`predict` on one chunk: the in-place label loop (or the replicated pass), argmax."""
    if cfg.ff_eval == "replicated":
        replicated_scores(L, cfg, I, C, s, n, prefix=prefix)
    else:
        label_loop(L, cfg, I, C, s, n, prefix, inplace=True)
    return prefix + "argmax"


register(TrainerLedger(_ff_params, _step, _eval_chunk, check=_check), "ff-frugal")
register(TrainerLedger(_ff_params, _micro_step, _eval_chunk, check=_check), "ff-frugal", micro=True)
