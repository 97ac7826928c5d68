"""Ledgers of the Forward-Forward trainers `ff` and `ff-summed` (ffbench/trainers/ff.py):
negatives, label embedding, normalisation, goodness, the layer loss (both row-block passes),
and the label-scoring passes (evaluation, and `ff_negatives="hard"`): the label loop and
the replicated pass.

Closed forms (steady state, Adam single-tensor; notation in the package docstring)
---------------------------------------------------------------------------------
ff:   per layer j (in_j = I for j = 0 else W) the optimizer peak is
      start + 8B (negative labels) + 4 (`total`) + s*R*in_j (layer input h)
      + s*R*W (layer output, kept as next h) + s*R + s (goodness g, loss)
      + s*(|W_j| + W) (this layer's gradients) + 2*s*|W_j| (Adam temporaries);
      the backward peak has s*R*in_j (normalised input saved by addmm) and
      2 x s*R*W (goodness backward h * grad, then threshold_backward) on top of h and o.
ff, sequential: the same ledger on B rows per block, both embedded inputs made up front,
      and an AccumulateGrad temporary s*(|W_j| + W) for the negative block.
ff-summed: every layer's normalised input and ReLU output stay saved until the one
      backward; all gradients are alive when the first optimizer steps.
label loop, per chunk of n: scores (4*n*C) + value (s*n) + one label's largest layer,
      s*n*(2*in_j + W) (input, normalised copy, pre-activation), independent of C;
      replicated: C*n rows through every layer.
ff with --micro-batch (`_micro_step`, both schedules, random negatives): per micro-batch of r
      rows the layer ledger above on 2r rows plus the loss share's mul (s) and its backward
      (s); a later micro-batch's gradients are added in place (temporaries); micro-batch-major
      holds every layer's gradients until the steps at the end, layer-major the whole batch's
      outputs of one layer (2 x B x W).
FF's `total` is float32 whatever the model dtype; evaluation copies each bfloat16
goodness to float32 (`.float()`, C*chunk*4 bytes).
"""

from __future__ import annotations

from ..config import RunConfig
from . import optim
from .ledger import BOOL, F32, I64, Ledger, Params, accumulated
from .registry import TrainerLedger, register


def _ff_params(cfg: RunConfig, I: int, C: int) -> list[Params]:
    """FF parameters, one list (one optimizer) per layer: (weight W x in_j, bias W)."""
    W = cfg.width
    return [[(f"W{j}", W * (I if j == 0 else W)), (f"b{j}", W)] for j in range(cfg.depth)]


def _check(cfg: RunConfig, I: int, C: int) -> None:
    if I <= C:
        raise ValueError("FF needs more inputs than classes to embed the label")


def _notes(cfg: RunConfig) -> tuple[str, ...]:
    if cfg.ff_negatives != "random" or cfg.ff_norm != "rms" or cfg.ff_goodness != "mean":
        return ("non-default FF options: best effort",)
    return ()


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------
def _embed(L: Ledger, rows: int, I: int, s: int, out: str, op: str) -> None:
    """`embed_label(x, labels, C)` on `rows` rows (all labels known):
    out = x.clone() (rows*I*s, kept); value = amax (rows*s); `out[:, :C] = 0` lifts a
    0-dim scalar of the model dtype (s B, dies at once); known = labels >= 0 (bool); rows = arange (int64);
    value[known], rows[known], labels[known] (index: s, 8, 8 per row; die after
    index_put_); (~known) (bool) and .any() (1 B) die; value, known, rows die at return."""
    L.alloc(out, rows * I * s, "other", f"{op}: clone")
    L.alloc(out + ":value", rows * s, "other", f"{op}: amax")
    L.free(L.alloc(out + ":zero", s, "other", f"{op}: lift 0"))
    L.alloc(out + ":known", rows * BOOL, "other", f"{op}: ge")
    L.alloc(out + ":rows", rows * I64, "other", f"{op}: arange")
    t = [
        L.alloc(out + ":i1", rows * s, "other", f"{op}: index"),
        L.alloc(out + ":i2", rows * I64, "other", f"{op}: index"),
        L.alloc(out + ":i3", rows * I64, "other", f"{op}: index"),
    ]
    L.free(*t)
    L.alloc(out + ":not", rows * BOOL, "other", f"{op}: bitwise_not")
    L.alloc(out + ":any", BOOL, "other", f"{op}: any")
    L.free(out + ":not", out + ":any")
    L.free(out + ":value", out + ":known", out + ":rows")


def _normalise(L: Ledger, cfg: RunConfig, rows: int, fan_in: int, s: int, out: str, cat: str) -> None:
    """`normalise(x)`: rms: x.pow(2) (rows*in*s) -> mean (rows*s; pow dies) -> + EPS
    (rows*s; mean dies) -> sqrt (rows*s; add dies) -> x / sqrt (rows*in*s; sqrt dies).
    l2: x.norm (rows*s) -> + EPS (rows*s; norm dies) -> x / (...) (rows*in*s).
    Nothing in it requires grad (the input is detached); the quotient is what addmm
    saves (mat1)."""
    div = (rows * fan_in * s, "normalise: div")
    if cfg.ff_norm == "rms":
        pow_ = (rows * fan_in * s, "normalise: pow")
        L.chain(
            pow_,
            (rows * s, "normalise: mean"),
            (rows * s, "normalise: add eps"),
            (rows * s, "normalise: sqrt"),
            div,
            out=out,
            cat=cat,
        )
    else:
        L.chain((rows * s, "normalise: norm"), (rows * s, "normalise: add eps"), div, out=out, cat=cat)


def _goodness(L: Ledger, rows: int, s: int, out: str, where: str) -> None:
    """`goodness(h)` (_SquaredNorm.forward): linalg_vector_norm over units (rows*s, the
    reduction happens inside one kernel: no rows x units temporary) -> square (rows*s;
    the norm dies) -> * scale (rows*s; the square dies). Saves h, which is alive anyway."""
    L.chain(
        (rows * s, f"goodness norm {where}"),
        (rows * s, f"goodness square {where}"),
        (rows * s, f"goodness scale {where}"),
        out=out,
    )


# --------------------------------------------------------------------------------------
# One layer: forward + loss, backward
# --------------------------------------------------------------------------------------
def _layer_forward(
    L: Ledger, cfg: RunConfig, j: int, fan_in: int, s: int, drop_input: str | None = None
) -> None:
    """FFLayer j forward + goodness + loss. Leaves alive: n{j} (normalised input, saved
    by addmm), o{j} (ReLU output, saved by relu and goodness), g{j} (goodness, rows*s),
    sp{j}a/b (softplus inputs, B*s each, saved), loss{j} (s). `drop_input`: the layer
    input, released by `del h` right after the layer's forward (only its normalised
    copy is needed for backward) unless a live graph still holds it."""
    B, W = cfg.batch_size, cfg.width
    R = 2 * B
    _normalise(L, cfg, R, fan_in, s, f"n{j}", "activations")
    L.alloc(f"a{j}", R * W * s, "other", f"addmm layer {j + 1}")
    L.alloc(f"o{j}", R * W * s, "activations", f"relu layer {j + 1}")
    L.free(f"a{j}")
    if drop_input:
        L.free(drop_input)
    _goodness(L, R, s, f"g{j}", f"layer {j + 1}")
    ff_loss_forward(L, B, s, j)


def ff_loss_forward(L: Ledger, B: int, s: int, j) -> None:
    """`ff_loss(g[:B], g[B:])`: rsub (theta - g_pos), softplus, sub (g_neg - theta), softplus,
    add, mean -> "loss{j}". The rsub and sub outputs (sp{j}a/b) are saved by softplus."""
    L.alloc(f"sp{j}a", B * s, "activations", "rsub")
    t1 = L.alloc(L.tmp(), B * s, "other", "softplus")
    L.alloc(f"sp{j}b", B * s, "activations", "sub")
    t2 = L.alloc(L.tmp(), B * s, "other", "softplus")
    t3 = L.alloc(L.tmp(), B * s, "other", "add")
    L.free(t1, t2)
    L.alloc(f"loss{j}", s, "other", "mean (layer loss)")
    L.free(t3)


def loss_backward(L: Ledger, B: int, s: int, j, upstream: str | None = None) -> str:
    """From the layer loss to its goodness: mean backward (B*s), two softplus_backward
    (B*s), each dying with its saved input; neg (rsub backward); slice_backward x 2
    (R*s each) and their sum (R*s). Returns the name of the goodness's gradient.
    `upstream`: the loss's incoming gradient when it is not the root (a scaled loss's
    DivBackward output), released once the mean's backward ran."""
    R = 2 * B
    d = L.alloc(L.tmp(), B * s, "other", "loss mean backward")
    if upstream:
        L.free(upstream)
    sb1 = L.alloc(L.tmp(), B * s, "other", "softplus_backward")
    L.free(d)  # (the grad for the first branch dies)
    sb2 = L.alloc(L.tmp(), B * s, "other", "softplus_backward")
    L.free(f"sp{j}a", f"sp{j}b")
    ng = L.alloc(L.tmp(), B * s, "other", "neg (rsub backward)")
    L.free(sb1)
    s1 = L.alloc(L.tmp(), R * s, "other", "slice_backward")
    L.free(ng)
    s2 = L.alloc(L.tmp(), R * s, "other", "slice_backward")
    L.free(sb2)
    gg = L.alloc(L.tmp(), R * s, "other", "add (grad of g)")
    L.free(s1, s2)
    return gg


def _layer_backward(
    L: Ledger,
    cfg: RunConfig,
    j: int,
    fan_in: int,
    s: int,
    last_keeps_output: bool,
    upstream: str | None = None,
    fresh: bool = True,
) -> None:
    """Autograd through one FF layer's loss (grad of its loss scalar already alive;
    `upstream`: a scaled loss's gradient, see `loss_backward`). fresh: the gradients become
    p.grad; else (a later micro-batch) AccumulateGrad adds them in place and they die."""
    B, W = cfg.batch_size, cfg.width
    R = 2 * B
    L.phase = f"backward (layer {j + 1})" if not cfg.trainer == "ff-summed" else "backward"
    gg = loss_backward(L, B, s, j, upstream)
    # goodness backward (_SquaredNorm.backward): grad * (2 * scale) (R*s), unsqueeze
    # (a view), h * that (R*W*s); the small factor dies, then the incoming grad
    t = L.alloc(L.tmp(), R * s, "other", f"goodness backward: grad * 2scale layer {j + 1}")
    go = L.alloc(L.tmp(), R * W * s, "other", f"goodness backward: h * grad layer {j + 1}")
    L.free(t)
    L.free(gg)
    # threshold_backward (R*W*s); then the grad of o dies
    ga = L.alloc(L.tmp(), R * W * s, "other", f"threshold_backward layer {j + 1}")
    L.free(go)
    if not last_keeps_output:
        L.free(f"o{j}")  # ff-summed: saved ReLU output of a non-last layer dies here
    # addmm backward: only grad weight (mm) and grad bias (sum): the input is detached
    pre = "grad" if fresh else "new"
    L.alloc(f"{pre}:W{j}", W * fan_in * s, "other", f"grad weight layer {j + 1}")
    L.alloc(f"{pre}:b{j}", W * s, "other", f"grad bias layer {j + 1}")
    L.free(ga)
    if fresh:
        accumulated(L, f"grad:W{j}", f"grad:b{j}")
    else:
        L.free(f"new:W{j}", f"new:b{j}")
    L.free(f"n{j}")


# --------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------
def _negatives(L: Ledger, cfg: RunConfig, I: int, C: int, s: int) -> None:
    """`y_neg` (B int64). random: randint (B int64), y + shift (B), % C (B); randint and
    the sum die. hard: the label-scoring pass on the batch (`replicated_scores`), then a few
    B x C tensors (masking, softmax, multinomial) approximated by the result."""
    B = cfg.batch_size
    L.phase = "negatives"
    if cfg.ff_negatives == "random":
        r = L.alloc(L.tmp(), B * I64, "other", "randint")
        a = L.alloc(L.tmp(), B * I64, "other", "add")
        L.alloc("y_neg", B * I64, "other", "remainder")
        L.free(r, a)
    else:
        _score_chunk(L, cfg, I, C, s, B, prefix="hard:")
        L.alloc("y_neg", B * I64, "other", "multinomial (approx.)")
        L.free("hard:argmax")


def _embed_batch(L: Ledger, cfg: RunConfig, I: int, s: int) -> None:
    """Positives and negatives embedded (B rows each), then `cat` (R rows) -> "h_in";
    `total` = torch.zeros(()) (float32)."""
    B = cfg.batch_size
    L.phase = "embed"
    _embed(L, B, I, s, "xp", "embed_label(pos)")
    _embed(L, B, I, s, "xn", "embed_label(neg)")
    L.alloc("h_in", 2 * B * I * s, "other", "cat(pos, neg)")
    L.free("xp", "xn")
    L.alloc("total", F32, "other", "torch.zeros(())")


def _layerwise_layer(
    L: Ledger, cfg: RunConfig, params: Params, j: int, fan_in: int, s: int, first: bool
) -> None:
    """`ff`: layer j's forward, backward and optimizer step before the next layer's."""
    L.phase = f"backward (layer {j + 1})"
    one = L.alloc(L.tmp(), s, "other", "ones_like(loss)")
    _layer_backward(L, cfg, j, fan_in, s, last_keeps_output=True)
    L.free(one)
    L.phase = f"optimizer (layer {j + 1})"
    optim.step(L, cfg, params, s, first, tag=str(j))


def _summed_backward(L: Ledger, cfg: RunConfig, I: int, s: int, groups: list[Params], first: bool) -> None:
    """`ff-summed`: `torch.stack(losses).sum().backward()` through every layer (last
    first), then each layer's optimizer step."""
    D, W = cfg.depth, cfg.width
    L.phase = "backward"
    st = L.alloc(L.tmp(), D * s, "other", "stack(losses)")
    sm = L.alloc(L.tmp(), s, "other", "sum")
    L.free(st)
    one = L.alloc(L.tmp(), s, "other", "ones_like")
    for j in range(D - 1, -1, -1):
        _layer_backward(L, cfg, j, I if j == 0 else W, s, last_keeps_output=(j == D - 1))
    L.free(one, sm, *[f"loss{j}" for j in range(D)])
    for j in range(D):
        L.phase = f"optimizer (layer {j + 1})"
        optim.step(L, cfg, groups[j], s, first, tag=str(j))


def effective_pass(cfg: RunConfig) -> str:
    """The row-block pass a trainer runs (`ff_pass`, else the trainer's default;
    ff-summed always forwards both blocks together)."""
    if cfg.trainer == "ff-summed":
        return "together"
    return cfg.ff_pass or ("sequential" if cfg.trainer == "ff-frugal" else "together")


def _ff_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`FFTrainer.train_step` / `FFSummedTrainer.train_step`."""
    if effective_pass(cfg) == "sequential":
        _sequential_step(L, cfg, I, C, s, first)
        return
    summed = cfg.trainer == "ff-summed"
    groups = _ff_params(cfg, I, C)
    _negatives(L, cfg, I, C, s)
    _embed_batch(L, cfg, I, s)
    h = "h_in"
    for j in range(cfg.depth):
        fan_in = I if j == 0 else cfg.width
        L.phase = f"forward (layer {j + 1})"
        # `del h` after the layer's forward: the previous h dies unless a live graph saved
        # it (ff-summed: o{j-1} is saved by layer j-1's relu/goodness until backward)
        _layer_forward(L, cfg, j, fan_in, s, drop_input=h if (h == "h_in" or not summed) else None)
        if not summed:
            _layerwise_layer(L, cfg, groups[j], j, fan_in, s, first)
        h = f"o{j}"  # h = out.detach()
        L.free(f"g{j}")  # del g (nothing saved it)
        if not summed:
            L.free(f"loss{j}")  # del loss
    if summed:
        _summed_backward(L, cfg, I, s, groups, first)
    L.phase = "end"


# --------------------------------------------------------------------------------------
# ff with --micro-batch (`FFTrainer._train_step_micro`)
# --------------------------------------------------------------------------------------
def _micro_layer(
    L: Ledger, cfg: RunConfig, j: int, fan_in: int, s: int, inp: str, fresh: bool, keep: bool, tag: str
) -> str | None:
    """`FFTrainer._micro_layer` on cfg.batch_size = r real rows (2r rows): the layer's forward
    (`_layer_forward`; its input dies after it), the loss times its share (mul, s: the layer
    loss dies, MulBackward0 saves only the scalar), backward: ones_like (s, alive until
    backward returns), mul backward (s, the upstream of `loss_backward`), the layer's
    backward (`fresh`: its gradients become p.grad, else added in place); then g and the
    scaled loss die, and the output lives on as the next layer's input (renamed with `tag`)
    or dies."""
    L.phase = f"forward (layer {j + 1})"
    _layer_forward(L, cfg, j, fan_in, s, drop_input=inp)
    L.alloc(f"scaled{j}", s, "other", "mul (loss share)")
    L.free(f"loss{j}")
    L.phase = f"backward (layer {j + 1})"
    one = L.alloc(L.tmp(), s, "other", "ones_like(loss)")
    up = L.alloc(L.tmp(), s, "other", "mul backward (grad * share)")
    _layer_backward(L, cfg, j, fan_in, s, last_keeps_output=True, upstream=up, fresh=fresh)
    L.free(one, f"g{j}", f"scaled{j}")
    if not keep:
        L.free(f"o{j}")
        return None
    L.live[f"o{j}{tag}"] = L.live.pop(f"o{j}")  # out.detach(): the same storage
    return f"o{j}{tag}"


def _micro_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`FFTrainer._train_step_micro`: y_neg for the whole batch (`_negatives`), total
    (float32); per micro-batch of r rows its input (`embed_label` of its positives and of its
    negatives, r rows each, then `cat`, 2r*I*s) made just before its first layer; each layer
    `_micro_layer`; in the schedule's order (micro-batch-major: each micro-batch through every
    layer, then every layer's step; layer-major: each layer over every micro-batch, its
    outputs kept, then its step)."""
    if cfg.ff_negatives != "random":
        raise NotImplementedError("the micro-batched ff ledger models random negatives")
    B, W, D, m = cfg.batch_size, cfg.width, cfg.depth, cfg.micro
    groups = _ff_params(cfg, I, C)
    sizes = optim.micro_sizes(B, m)
    rows_cfg = {r: cfg.replace(batch_size=r, micro_batch=None) for r in set(sizes)}
    _negatives(L, cfg, I, C, s)
    L.alloc("total", F32, "other", "torch.zeros(())")

    def embed(i: int) -> str:
        L.phase = "embed"
        _embed(L, sizes[i], I, s, "xp", "embed_label(pos)")
        _embed(L, sizes[i], I, s, "xn", "embed_label(neg)")
        L.alloc(f"h_in.{i}", 2 * sizes[i] * I * s, "other", "cat(pos, neg)")
        L.free("xp", "xn")
        return f"h_in.{i}"

    def layer(j: int, i: int, inp: str) -> str | None:
        fan_in = I if j == 0 else W
        return _micro_layer(L, rows_cfg[sizes[i]], j, fan_in, s, inp, i == 0, j < D - 1, f".{i}")

    optim.micro_schedule(L, cfg, groups, s, first, sizes, embed, layer)
    L.phase = "end"


# --------------------------------------------------------------------------------------
# ff with ff_pass="sequential": FFLayer's own code on B rows at a time (autograd)
# --------------------------------------------------------------------------------------
def _sequential_block(L: Ledger, cfg: RunConfig, j: int, k: int, fan_in: int, s: int, inp: str) -> str:
    """`FFTrainer._train_step_sequential`, one block (k = 0 positives, 1 negatives).

    forward: normalise (`_normalise`; the quotient is saved by addmm), addmm (B*W*s, dies
    after relu), relu (saved), the input block dies (`blocks[k] = None`), goodness (g,
    B*s), rsub (k = 0) or sub (k = 1) (B*s, saved by softplus), softplus (B*s, dies after
    mean), mean (the loss, s). backward: ones_like (s), mean backward (B*s), softplus_backward
    (B*s; the mean's grad dies, then the saved z), neg (k = 0 only: rsub backward), goodness
    backward (mul B*s, mul B*W*s), threshold_backward (B*W*s), addmm backward: grad weight
    (mm) and bias (sum); the saved normalised input dies; the first block's gradients are
    stolen by AccumulateGrad, the second block's are added in place and die. Then
    `del out, g, loss`: g and the loss die; the output lives on (detached) as the next input."""
    B, W = cfg.batch_size, cfg.width
    L.phase = f"forward (layer {j + 1})"
    _normalise(L, cfg, B, fan_in, s, f"n{j}.{k}", "activations")
    a = L.alloc(L.tmp(), B * W * s, "other", f"addmm layer {j + 1}")
    o = L.alloc(f"o{j}.{k}", B * W * s, "activations", f"relu layer {j + 1}")
    L.free(a, inp)
    g = L.tmp()
    _goodness(L, B, s, g, f"layer {j + 1}")
    z = L.alloc(L.tmp(), B * s, "activations", "rsub" if k == 0 else "sub")
    sp = L.alloc(L.tmp(), B * s, "other", "softplus")
    loss = L.alloc(L.tmp(), s, "other", "mean (loss)")
    L.free(sp)
    L.phase = f"backward (layer {j + 1})"
    one = L.alloc(L.tmp(), s, "other", "ones_like(loss)")
    d = L.alloc(L.tmp(), B * s, "other", "mean backward")
    gg = L.alloc(L.tmp(), B * s, "other", "softplus_backward")
    L.free(d, z)
    if k == 0:
        ng = L.alloc(L.tmp(), B * s, "other", "neg (rsub backward)")
        L.free(gg)
        gg = ng
    t = L.alloc(L.tmp(), B * s, "other", f"goodness backward: grad * 2scale layer {j + 1}")
    go = L.alloc(L.tmp(), B * W * s, "other", f"goodness backward: h * grad layer {j + 1}")
    L.free(t, gg)
    ga = L.alloc(L.tmp(), B * W * s, "other", f"threshold_backward layer {j + 1}")
    L.free(go)
    gname = "grad" if k == 0 else "new"
    L.alloc(f"{gname}:W{j}", W * fan_in * s, "other", f"grad weight layer {j + 1}")
    L.alloc(f"{gname}:b{j}", W * s, "other", f"grad bias layer {j + 1}")
    L.free(ga)
    if k == 0:
        accumulated(L, f"grad:W{j}", f"grad:b{j}")
    else:
        L.free(f"new:W{j}", f"new:b{j}")  # AccumulateGrad: p.grad += new (in place)
    L.free(f"n{j}.{k}", one)
    L.free(g, loss)
    return o


def _sequential_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """Both blocks embedded up front (B rows each), `total`; per layer the two blocks, then
    the layer's optimizer step; the outputs are the next layer's blocks."""
    B, W = cfg.batch_size, cfg.width
    groups = _ff_params(cfg, I, C)
    _negatives(L, cfg, I, C, s)
    L.phase = "embed"
    _embed(L, B, I, s, "xp", "embed_label(pos)")
    _embed(L, B, I, s, "xn", "embed_label(neg)")
    L.alloc("total", F32, "other", "torch.zeros(())")
    blocks = ["xp", "xn"]
    for j in range(cfg.depth):
        fan_in = I if j == 0 else W
        blocks = [_sequential_block(L, cfg, j, k, fan_in, s, inp) for k, inp in enumerate(blocks)]
        L.phase = f"optimizer (layer {j + 1})"
        optim.step(L, cfg, groups[j], s, first, tag=str(j))
    L.phase = "end"


# --------------------------------------------------------------------------------------
# Scoring every label (evaluation, hard negatives)
# --------------------------------------------------------------------------------------
def _scoring_forward(L: Ledger, cfg: RunConfig, rows: int, j: int, fan_in: int, s: int) -> str:
    """FFLayer's own ops on `rows` rows: normalise (`_normalise`), addmm (rows*W*s; the
    normalised input dies), relu (rows*W*s; the addmm output dies). Returns the output."""
    W = cfg.width
    q = L.tmp()
    _normalise(L, cfg, rows, fan_in, s, q, "other")
    a = L.alloc(L.tmp(), rows * W * s, "other", f"addmm layer {j + 1}")
    L.free(q)
    o = L.alloc(L.tmp(), rows * W * s, "other", f"relu layer {j + 1}")
    L.free(a)
    return o


def _score_layer(L: Ledger, cfg: RunConfig, rows: int, j: int, fan_in: int, s: int, h: str) -> str:
    """normalise (pow rows*in*s ...), addmm (rows*W*s; the normalised input dies), relu
    (the addmm output dies), old h dies; goodness for evaluation layers (`_goodness`,
    rows*s), `.float()` (rows*4; only when the model dtype is not float32), `scores +=`
    in place. Returns the new h."""
    o = _scoring_forward(L, cfg, rows, j, fan_in, s)
    L.free(h)
    if j in cfg.eval_layer_indices():
        g = L.tmp()
        _goodness(L, rows, s, g, "(eval)")
        if s != F32:
            # `.float()` copies a bfloat16 goodness to float32 (a no-op for float32)
            f = L.alloc(L.tmp(), rows * F32, "other", "goodness .float()")
            L.free(g, f)  # `scores += ...` is in place
        else:
            L.free(g)  # `scores += g` is in place
    return o


def replicated_scores(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str = "") -> None:
    """`labelreplicated_scores(x)` under no_grad on n examples: C*n rows.

    labels = arange(C) (C int64) .repeat_interleave(n) (C*n int64 clone; arange dies);
    x.repeat(C, 1) (C*n*I*s) then embed_label (clone C*n*I*s, dies: the repeat);
    scores = zeros(C*n) float32; per layer `_score_layer`; argmax (n int64) survives.
    """
    rows = C * n
    ar = L.alloc(prefix + "arange", C * I64, "other", "arange(C)")
    L.alloc(prefix + "labels", rows * I64, "other", "repeat_interleave")
    L.free(ar)
    rep = L.alloc(prefix + "rep", rows * I * s, "other", "x.repeat(C, 1)")
    _embed(L, rows, I, s, prefix + "h", "embed_label(C x chunk)")
    L.free(rep)
    L.alloc(prefix + "scores", rows * F32, "other", "zeros (scores)")
    h = prefix + "h"
    for j in range(cfg.depth):
        what = "negatives" if prefix.startswith("hard") else "eval"
        L.phase = f"{what} (layer {j + 1})"
        h = _score_layer(L, cfg, rows, j, I if j == 0 else cfg.width, s, h)
    L.free(prefix + "labels", h)
    L.alloc(prefix + "argmax", n * I64, "other", "argmax")
    L.free(prefix + "scores")


def label_loop(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str, inplace: bool) -> None:
    """`_label_scores_loop` on n rows, then argmax (n int64; the scores die).

    scores = zeros(n, C) float32; value = amax (n*s). Per label: x.clone() (n*I*s; the label
    inputs written in place); per layer, in place (ff-frugal): normalise_ (vector_norm n*s,
    dies), addmm (n*W*s, relu_ in place); FFLayer's own ops (ff): normalise (`_normalise`),
    addmm (n*W*s), the quotient dies, relu (n*W*s), the addmm output dies; then the layer
    input dies (rebinding h); an evaluation layer's goodness (n*s) is added in place into
    the float32 scores column and dies. The last output dies before the next label
    (`del h`); value dies when the function returns."""
    W = cfg.width
    evl = set(cfg.eval_layer_indices())
    L.alloc(prefix + "scores", n * C * F32, "other", "zeros (scores)")
    L.alloc(prefix + "value", n * s, "other", "amax (label value)")
    what = "negatives" if prefix.startswith("hard") else "eval"
    for _label in range(C):
        h = L.alloc(L.tmp(), n * I * s, "other", "x.clone() (one label)")
        for j in range(cfg.depth):
            L.phase = f"{what} (layer {j + 1})"
            h = _loop_layer(L, cfg, n, j, I if j == 0 else W, s, h, inplace)
            if j in evl:
                if inplace:
                    L.free(L.alloc(L.tmp(), n * s, "other", "goodness_"))
                else:
                    g = L.tmp()
                    _goodness(L, n, s, g, "(eval)")
                    L.free(g)  # added in place into the float32 scores column
        L.free(h)
    L.free(prefix + "value")
    L.alloc(prefix + "argmax", n * I64, "other", "argmax")
    L.free(prefix + "scores")


def _loop_layer(L: Ledger, cfg: RunConfig, n: int, j: int, fan_in: int, s: int, h: str, inplace: bool) -> str:
    """One layer of one label in the label loop (see `label_loop`); returns the new h."""
    W = cfg.width
    if inplace:
        L.free(L.alloc(L.tmp(), n * s, "other", "normalise_: vector_norm"))
        o = L.alloc(L.tmp(), n * W * s, "other", f"addmm layer {j + 1}")
    else:
        o = _scoring_forward(L, cfg, n, j, fan_in, s)
    L.free(h)
    return o


def _score_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> None:
    """`label_scores` on n rows and its argmax: the label loop or the replicated pass."""
    if cfg.ff_eval == "replicated":
        replicated_scores(L, cfg, I, C, s, n, prefix=prefix)
    else:
        label_loop(L, cfg, I, C, s, n, prefix, inplace=False)


def _eval_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> str:
    """`trainer.predict` on one chunk: score every label, keep the argmax."""
    _score_chunk(L, cfg, I, C, s, n, prefix)
    return prefix + "argmax"


register(TrainerLedger(_ff_params, _ff_step, _eval_chunk, check=_check, notes=_notes), "ff", "ff-summed")
register(TrainerLedger(_ff_params, _micro_step, _eval_chunk, check=_check, notes=_notes), "ff", micro=True)
