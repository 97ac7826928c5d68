"""Ledgers of the convolutional backprop baselines `bp` and `bp-checkpoint` under `--arch conv`
(ffbench/trainers/conv.py, `ImageNet`: ToImage, depth x (Conv2d + ReLU), flatten + Linear head).

The MLP's pass (bp.py) with an image body: module 2k is conv layer k (its output
B*out_c*Ho*Wo*s), module 2k+1 its ReLU (same size). What differs from the MLP:

* ToImage: with `--memory-format channels_last` and a multi-channel input, the flat rows are
  copied once into NHWC ("img", B*I*s); conv 1 saves that copy (an activation) until its
  backward. Otherwise the image is a view of x.
* convolution_backward returns grad input (unless the input is the image: it does not
  require grad), grad weight and grad bias from one op; then the incoming gradient dies.
* flatten (NHWC: permute + flatten) is a view both ways, so the head sees B x F rows,
  F = out_c*Ho*Wo of the last layer.

Scratch memory inside oneDNN (NCHW weight/activation reorders, `--memory-format contiguous`)
goes through the C++ allocator outside any tensor: neither the tracker nor this ledger sees
it. `ff-frugal` under conv is modelled for its together pass (SymBa's only pass; the threshold
loss with --ff-pass together), layer or position goodness, random negatives and the label-loop
evaluation, plain or micro-batched (`--micro-batch`, both `--ff-micro-schedule` orders:
`_frugal_micro_step`). `ff` and `ff-summed` under conv, ff-frugal's sequential pass, and every `--arch
local` trainer are not modelled (NotImplementedError).
"""

from __future__ import annotations

from ..arch import image_shape, layer_specs
from ..config import RunConfig
from . import optim
from .bp import BPNet, GradSink, _Body, bp_step, free_layer_input, sequential_eval
from .frugal_bp import LocalLayer, LocalNet, accum_step, inbackward_step, local_ledger
from .ledger import F32, I64, Ledger, Params
from .registry import TrainerLedger, register


def img_copy(cfg: RunConfig, I: int) -> bool:
    """ToImage makes an NHWC copy (channels_last and more than one input channel)."""
    return cfg.memory_format == "channels_last" and image_shape(cfg, I)[0] > 1


def conv_params(cfg: RunConfig, I: int, C: int) -> Params:
    """`ImageNet.parameters()` order: body (W_k, b_k) ..., head (W_h, b_h)."""
    specs, ps = layer_specs(cfg, I), []
    for k, sp in enumerate(specs):
        ps += [(f"W{k}", sp.out_c * sp.in_c * sp.k * sp.k), (f"b{k}", sp.out_c)]
    F = specs[-1].out_numel
    ps += [("Wh", C * F), ("bh", C)]
    return ps


class ConvBody(_Body):
    """`_Body` whose module 2k is conv layer k; with an NHWC copy, `image` (B*I*s) is made
    before conv 1 and saved by it (an activation) until its backward."""

    def __init__(self, cfg: RunConfig, I: int, B: int, s: int, segments: int | None) -> None:
        self.specs = layer_specs(cfg, I)
        super().__init__(len(self.specs), 0, segments, self.specs[-1].out_numel)
        self.B, self.s = B, s
        self.copy = img_copy(cfg, I)
        self.image = B * I * s if self.copy else 0

    def size(self, m: int) -> int:
        return self.B * self.specs[m // 2].out_numel * self.s

    @staticmethod
    def op(m: int) -> str:
        return f"{'convolution' if m % 2 == 0 else 'relu'} layer {m // 2 + 1}"

    def in_name(self, m: int) -> str:
        if m == 0:
            return "img" if self.copy else "x"
        return self.out_name(m - 1)

    @staticmethod
    def linear_backward(L: Ledger, cfg: RunConfig, I: int, s: int, body: ConvBody, m: int, sink: GradSink):
        """convolution_backward: grad input (m > 0), grad weight and grad bias in one op; the
        incoming grad dies; the gradients go to `sink`."""
        k = m // 2
        sp = body.specs[k]
        if m > 0:
            L.alloc(f"g_{body.in_name(m)}", body.size(m - 1), "other", f"convolution_backward layer {k + 1}")
        nW = sp.out_c * sp.in_c * sp.k * sp.k
        L.alloc(f"{sink.prefix}:W{k}", nW * s, "other", f"grad weight layer {k + 1}")
        L.alloc(f"{sink.prefix}:b{k}", sp.out_c * s, "other", f"grad bias layer {k + 1}")
        L.free(f"g_{body.out_name(m)}")
        sink.settle(L, [(f"b{k}", sp.out_c), (f"W{k}", nW)])
        if m > 0:
            free_layer_input(L, body, m)
        elif body.copy:
            L.free("img")  # conv 1 was its last holder


# BP's pass, steps and evaluation (bp.py, frugal_bp.py) on the image body
CONV = BPNet(ConvBody, conv_params)


def _local_layers(cfg: RunConfig, I: int) -> list[LocalLayer]:
    """`ImageLocalNet`: per layer j, conv output (dies after relu), relu `out` (kept as `h`
    until the next layer's output replaces it), the layer's head and cross-entropy,
    backward (convolution_backward computes only the weight and bias gradients: its input
    is the image or detached); layer 1 starts with ToImage: its NHWC copy is saved by
    conv 1 and dies with conv 1's node."""
    return [
        LocalLayer(
            sp.out_numel,
            sp.out_c * sp.in_c * sp.k * sp.k,
            sp.out_c,
            f"convolution layer {j + 1}",
            (
                f"convolution_backward layer {j + 1}: grad weight",
                f"convolution_backward layer {j + 1}: grad bias",
            ),
        )
        for j, sp in enumerate(layer_specs(cfg, I))
    ]


def _check(cfg: RunConfig, I: int, C: int) -> None:
    image_shape(cfg, I)  # ConfigError for an input that is no image


_EVAL = sequential_eval(CONV)
register(TrainerLedger(CONV.param_groups, bp_step(CONV), _EVAL, _check), "bp", arch="conv")
register(
    TrainerLedger(CONV.param_groups, bp_step(CONV, checkpointed=True), _EVAL, _check),
    "bp-checkpoint",
    arch="conv",
)
register(
    TrainerLedger(CONV.param_groups, accum_step(CONV), _EVAL, _check),
    "bp",
    "bp-accum",
    arch="conv",
    micro=True,
)
register(
    TrainerLedger(CONV.param_groups, accum_step(CONV, checkpointed=True), _EVAL, _check),
    "bp-checkpoint",
    arch="conv",
    micro=True,
)
register(TrainerLedger(CONV.param_groups, inbackward_step(CONV), _EVAL, _check), "bp-inbackward", arch="conv")
register(local_ledger(LocalNet(_local_layers, img_copy), _check), "bp-local", arch="conv")


# --------------------------------------------------------------------------------------
# ff-frugal under --arch conv (ffbench/trainers/conv_frugal.py), the together pass
# --------------------------------------------------------------------------------------
def _ff_groups(cfg: RunConfig, I: int, C: int) -> list[Params]:
    """One optimizer per `FFImageLayer`: its own `label` (E, C x out) first -- a module's own
    parameters come before its children's -- then the conv's weight and bias."""
    return [
        [(f"E{j}", C * sp.out_c), (f"W{j}", sp.out_c * sp.in_c * sp.k * sp.k), (f"b{j}", sp.out_c)]
        for j, sp in enumerate(layer_specs(cfg, I))
    ]


def _goodness_rows(cfg: RunConfig, sp) -> int:
    """Goodness values per example: one (layer scope) or one per output position."""
    return 1 if cfg.ff_goodness_scope == "layer" else sp.ho * sp.wo


def _frugal_forward(
    L: Ledger, cfg: RunConfig, I: int, s: int, j: int, k: int, sp, inp: str | None, B: int, tag: str = ""
) -> None:
    """`_forward` of one block of B rows: the first layer normalises `img.clone()`, later ones
    their input in place (vector_norm B*s, dies); conv output o (in place: label bias, ReLU);
    the label bias: index (B*out) and its LABEL_SCALE product (B*out), both die after add_;
    goodness g (B*s, or B*Ho*Wo*s with position scope; squared and scaled in place).
    `tag` names a micro-batch's tensors."""
    n = f"n{j}.{k}{tag}"
    if inp is None:
        L.alloc(n, B * I * s, "other", "img.clone() (normalise_ a copy)")
    else:
        L.live[n] = L.live.pop(inp)  # normalised in place: the same storage
    L.free(L.alloc(L.tmp(), B * s, "other", "normalise_: vector_norm"))
    L.alloc(f"o{j}.{k}{tag}", B * sp.out_numel * s, "other", f"convolution layer {j + 1}")
    idx = L.alloc(L.tmp(), B * sp.out_c * s, "other", "label[labels]")
    mul = L.alloc(L.tmp(), B * sp.out_c * s, "other", "label bias * LABEL_SCALE")
    L.free(idx, mul)
    L.alloc(f"g{k}{tag}", B * _goodness_rows(cfg, sp) * s, "other", "goodness_: vector_norm")


def _frugal_backward(
    L: Ledger, cfg: RunConfig, C: int, s: int, j: int, k: int, sp, keep: bool, B: int, fresh: bool
) -> None:
    """`_backward` of one block: the per-example channel sums (B*out); layer scope: the input
    scaled in place, the weight gradient (convolution_backward, weight only), the bias's (mv);
    position scope: dA (o scaled in place, or a new B*out*HW tensor when o is kept), the weight
    gradient, the sums and the bias gradient (their sum); the label gradient (zeros_like,
    index_add_). The layer's first block's gradients (`fresh`) become p.grad, a later block's
    are added in place."""
    nW = sp.out_c * sp.in_c * sp.k * sp.k
    pre = "grad" if fresh else "new"
    names = (f"{pre}:W{j}", f"{pre}:b{j}", f"{pre}:E{j}")
    # the first block's: p.grad is set before the next op frees anything, so a peak among
    # them is classified (by the tracker, at its next free) with them as gradients
    cat = "gradients" if fresh else "other"
    if cfg.ff_goodness_scope == "layer":
        sums = L.alloc(L.tmp(), B * sp.out_c * s, "other", "o.sum(dim=(2, 3))")
        L.alloc(names[0], nW * s, cat, f"convolution_backward (weight) layer {j + 1}")
        L.alloc(names[1], sp.out_c * s, cat, "mv (bias gradient)")
    else:
        d = L.alloc(L.tmp(), B * sp.out_numel * s, "other", "dA = o * c") if keep else None
        # with a new dA, its free is noted before p.grad is set: a peak before it is
        # classified at the next op (zeros_like), the weight and bias gradients as "other"
        early = "other" if d else cat
        L.alloc(names[0], nW * s, early, f"convolution_backward (weight) layer {j + 1}")
        sums = L.alloc(L.tmp(), B * sp.out_c * s, "other", "dA.sum(dim=(2, 3))")
        L.alloc(names[1], sp.out_c * s, early, "sums.sum(0) (bias gradient)")
        if d:
            L.free(d)
            for name in names[:2]:
                L.recategorise(name, cat)
    L.alloc(names[2], C * sp.out_c * s, cat, "zeros_like(label).index_add_")
    L.free(sums)
    if not fresh:
        L.free(*names)  # p.grad.add_(grad); the new gradient dies with the function


def _frugal_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`FFConvFrugalTrainer.train_step`, together pass: y_neg (randint, B int64), the image
    (NHWC copy or a view), total (float32). Per layer: both blocks forward, the loss and its
    coefficients in the goodness storages (SymBa: softplus M*s dies after its sum, the loss s;
    threshold: the same per block, the second loss added into the first and dropped), both
    blocks backward (each input dies after its block; each output stays as the next layer's
    input, or dies on the last layer), the coefficients die, the loss dies after `total +=`;
    the image dies after the first layer; the layer's optimizer step and zero_grad."""
    B = cfg.batch_size
    specs = layer_specs(cfg, I)
    groups = _ff_groups(cfg, I, C)
    L.phase = "forward (layer 1)"
    L.alloc("y_neg", B * I64, "other", "randint (wrong labels, in place)")
    copy = img_copy(cfg, I)
    if copy:
        L.alloc("img", B * I * s, "other", "ToImage channels_last copy")
    L.alloc("total", F32, "other", "torch.zeros(())")
    blocks: list[str | None] = [None, None]
    for j, sp in enumerate(specs):
        blocks = _frugal_layer(L, cfg, I, C, s, j, sp, blocks, B)
        if j == 0 and copy:
            L.free("img")
        L.phase = f"optimizer (layer {j + 1})"
        optim.step(L, cfg, groups[j], s, first, tag=str(j))
    L.free("y_neg")
    L.phase = "end"


def _frugal_layer(
    L: Ledger,
    cfg: RunConfig,
    I: int,
    C: int,
    s: int,
    j: int,
    sp,
    blocks: list,
    B: int,
    tag: str = "",
    fresh: bool = True,
) -> list:
    """`_layer` on blocks of B rows (`tag`: a micro-batch's; `fresh`: its gradients create
    p.grad): both blocks forward, the loss and coefficients, both backward; the outputs."""
    keep = j < cfg.depth - 1
    L.phase = f"forward (layer {j + 1})"
    for k in range(2):
        _frugal_forward(L, cfg, I, s, j, k, sp, blocks[k], B, tag)
    L.phase = f"backward (layer {j + 1})"
    M = B * _goodness_rows(cfg, sp)
    if cfg.ff_loss == "symba":
        sp_ = L.alloc(L.tmp(), M * s, "other", "softplus")
        L.alloc("loss", s, "other", "softplus .sum() (loss)")
        L.free(sp_)
    else:
        for k in range(2):
            sp_ = L.alloc(L.tmp(), M * s, "other", "softplus")
            L.alloc("loss" if k == 0 else "loss1", s, "other", "softplus .sum() (loss)")
            L.free(sp_)
    outs: list[str | None] = []
    for k in range(2):
        _frugal_backward(L, cfg, C, s, j, k, sp, keep, B, fresh and k == 0)
        L.free(f"n{j}.{k}{tag}")
        if keep:
            outs.append(f"o{j}.{k}{tag}")
        else:
            L.free(f"o{j}.{k}{tag}")
            outs.append(None)
    L.free(f"g0{tag}", f"g1{tag}", "loss", *(["loss1"] if L.has("loss1") else []))  # l1: a local of _layer
    return outs


def _frugal_micro_step(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`FFConvFrugalTrainer._train_step_micro`: y_neg (B int64) and total first, alive to the
    end; each micro-batch's image (x[sl]: an NHWC copy of m rows, or a view), dying after its
    first layer, and its two blocks of m rows through `_frugal_layer` in the schedule's order
    (micro-batch-major: each micro-batch through every layer, then every layer's step;
    layer-major: each layer over every micro-batch, its outputs kept, then its step). Only a
    layer's first block creates its gradients; later ones are added in place."""
    B, m = cfg.batch_size, cfg.micro
    specs, groups = layer_specs(cfg, I), _ff_groups(cfg, I, C)
    sizes = optim.micro_sizes(B, m)
    copy = img_copy(cfg, I)
    L.phase = "forward (layer 1)"
    L.alloc("y_neg", B * I64, "other", "randint (wrong labels, in place)")
    L.alloc("total", F32, "other", "torch.zeros(())")

    def layer(j: int, i: int, blocks: list) -> list:
        if j == 0 and copy:
            L.alloc(f"img.{i}", sizes[i] * I * s, "other", "ToImage channels_last copy")
        outs = _frugal_layer(L, cfg, I, C, s, j, specs[j], blocks, sizes[i], f".{i}", fresh=i == 0)
        if j == 0 and copy:
            L.free(f"img.{i}")
        return outs

    optim.micro_schedule(L, cfg, groups, s, first, sizes, lambda i: [None, None], layer)
    L.phase = "end"


def _frugal_eval_chunk(L: Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str) -> str:
    """The in-place label loop: scores (n x C float32), the image (copy or view); per label:
    labels (n int64), per layer the first normalising `img.clone()` and later ones their
    input in place (vector_norm n*s, dies), conv output, label bias (index and product, n*out
    each, die), the previous output dies (rebinding h); an evaluation layer's score (n*s,
    added in place into the scores, dies); argmax (n int64), the scores die."""
    L.phase = "eval"
    evl = set(cfg.eval_layer_indices())
    L.alloc(prefix + "scores", n * C * F32, "other", "zeros (scores)")
    img = L.alloc(L.tmp(), n * I * s, "other", "eval ToImage copy") if img_copy(cfg, I) else None
    specs = layer_specs(cfg, I)
    for _label in range(C):
        labels = L.alloc(L.tmp(), n * I64, "other", "torch.full (labels)")
        h = None
        for j, sp in enumerate(specs):
            inp = h or L.alloc(L.tmp(), n * I * s, "other", "img.clone()")
            L.free(L.alloc(L.tmp(), n * s, "other", "normalise_: vector_norm"))
            o = L.alloc(L.tmp(), n * sp.out_numel * s, "other", f"eval convolution layer {j + 1}")
            idx = L.alloc(L.tmp(), n * sp.out_c * s, "other", "label[labels]")
            mul = L.alloc(L.tmp(), n * sp.out_c * s, "other", "label bias * LABEL_SCALE")
            L.free(idx, mul, inp)
            h = o
            if j in evl:
                L.free(L.alloc(L.tmp(), n * s, "other", "eval_score_"))
        L.free(h, labels)
    if img:
        L.free(img)
    L.alloc(prefix + "argmax", n * I64, "other", "argmax")
    L.free(prefix + "scores")
    return prefix + "argmax"


def _frugal_check(cfg: RunConfig, I: int, C: int) -> None:
    _check(cfg, I, C)
    if cfg.ff_loss == "threshold" and cfg.ff_pass in (None, "sequential"):
        raise NotImplementedError("the conv ff-frugal ledger models the together pass (--ff-pass together)")
    if cfg.ff_negatives != "random" or cfg.ff_eval != "label-loop":
        raise NotImplementedError("the conv ff-frugal ledger models random negatives and the label loop")


register(TrainerLedger(_ff_groups, _frugal_step, _frugal_eval_chunk, _frugal_check), "ff-frugal", arch="conv")
register(
    TrainerLedger(_ff_groups, _frugal_micro_step, _frugal_eval_chunk, _frugal_check),
    "ff-frugal",
    arch="conv",
    micro=True,
)
