"""Analytic memory model: predict the tensor-level peak of a training step from shapes.

What it predicts
----------------
`predict(config)` returns, in bytes, what `ffbench.measure.tensors.TensorTracker` reads
for the harness's steady-state step (`peak_bytes`, `start_bytes`, `transient_bytes`,
the per-category `breakdown` at the peak), the first step (optimizer state created
lazily inside it) and an evaluation pass over one chunk (`eval_peak_bytes`).
`max_batch_size(config, budget)` inverts it: the largest batch whose whole-run peak
(first step, steady step, evaluation) fits a budget.

How it is derived (no measured constant, no code shared with the trackers)
--------------------------------------------------------------------------
Every number comes from *how the code computes*: for each line of the trainers and of
`torch.optim` that runs in a step, which tensors it allocates (shape x element size)
and when the last reference to each dies (Python rebinding, autograd releasing a
node's saved tensors after that node ran, `zero_grad(set_to_none=True)`). These
allocations and frees are written down in program order in an *allocation ledger*
(`_Ledger`): a list of "+ this tensor" / "- that tensor" lines, each with the op that
produces it cited next to it. The peak is the running maximum of the ledger's live
sum -- a maximum over a finite, shape-determined list of closed-form partial sums;
nothing is executed, nothing is measured. Byte sizes are exact: a storage holds
numel x element size bytes (no allocator rounding at the tensor level).

Notation used in the comments: B = batch_size, R = 2B (FF rows: positives and
negatives), I = in_features, W = width, C = num_classes, D = depth, s = bytes per
element of the model dtype (4 for float32, 2 for bfloat16), |p| = numel of parameter p.
Integer label tensors are int64 (8 bytes/element); torch's Adam `step` counter is a
0-dim float32 tensor (4 bytes; `_get_scalar_dtype()`), masks are bool (1 byte).

Closed forms of the dominant terms (steady state, Adam single-tensor)
--------------------------------------------------------------------
start = s*P (parameters) + 2*s*P + 4*n_p (exp_avg, exp_avg_sq, step per parameter
        tensor) + s*B*I + 8*B (the batch x and labels y)          [all trainers]
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
ff:   per layer j (in_j = I for j = 0 else W) the optimizer peak is
      start + 8B (negative labels) + 4 (`total`) + s*R*in_j (layer input h)
      + s*R*W (layer output, kept as next h) + s*R + s (goodness g, loss)
      + s*(|W_j| + W) (this layer's gradients) + 2*s*|W_j| (Adam temporaries);
      the backward peak has s*R*in_j (normalised input saved by addmm) and
      2 x s*R*W (goodness backward h * grad, then threshold_backward) on top of h and o.
ff-summed: every layer's normalised input and ReLU output stay saved until the one
      backward; all gradients are alive when the first optimizer steps.
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

dtype: every tensor follows the model dtype (s = 2 for bfloat16): torch.optim.Adam
single-tensor keeps exp_avg/exp_avg_sq as zeros_like(param) and computes its sqrt and
denom temporaries in the parameter's dtype (no float32 master copy); only the `step`
counters (float32) and FF's `total` (float32) do not follow it. FF evaluation copies
each bfloat16 goodness to float32 (`.float()`, C*chunk*4 bytes).

Optimizer implementations
-------------------------
single-tensor (default) is modelled op by op (exact). foreach: `_foreach_sqrt` of all
exp_avg_sq of one optimizer at once (s*P temporaries) plus the 4-byte CPU
`torch.tensor(1.0)` step increment. fused: no parameter-sized temporaries. SGD:
momentum buffers (s*|p|, created by `grad.clone()` in the first step, updated in
place after); `momentum=0` keeps no state. foreach/fused/SGD are best effort:
derived from torch/optim source the same way, checked on a few configurations only.

What it cannot capture (documented limits)
------------------------------------------
* `ff_negatives="hard"` (a no-grad C x B scoring pass inside the step) is modelled
  as that scoring pass (same ledger as evaluation) -- best effort; the masking,
  softmax and multinomial after it are approximated (a few B x C tensors).
* bp-inbackward: the order in which the engine runs two ready AccumulateGrad nodes
  (both have sequence_nr UINT64_MAX) is taken from the graph shape (bias before
  weight) and checked on CPU; a different order moves the peak by one bias (W*s).
* `ff_norm="l2"` (`linalg_vector_norm` instead of pow/mean/sqrt) and
  `ff_goodness="sum"` (no mean-backward division) are derived but not checked on
  the grid.
* Scratch memory inside one kernel (BLAS workspaces) is invisible to the tracker and
  to this model alike. CUDA allocator rounding/caching, RSS and malloc behaviour are
  not tensor-level quantities and are not predicted.
* A Python reference cycle would delay a free; none exists in these trainers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import RunConfig
from ..search import search

CATEGORIES = ("parameters", "gradients", "optimizer_state", "activations", "inputs", "other")
_DTYPE_BYTES = {"float32": 4, "bfloat16": 2}
I64 = 8  # int64 labels / indices
F32 = 4  # float32 scalars that do not follow the model dtype (Adam step, FF `total`)
BOOL = 1


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted tensor-level memory of one configuration, all sizes in bytes."""

    peak_bytes: int  # steady-state step peak
    start_bytes: int  # bytes alive at the steady step's start
    transient_bytes: int  # peak - start
    breakdown: dict[str, int]  # categories at the steady peak (sum = peak_bytes)
    first_step_peak_bytes: int  # first step (optimizer state allocated inside it)
    first_step_start_bytes: int
    eval_peak_bytes: int | None  # evaluation pass over `eval_examples` (None: not modelled)
    eval_start_bytes: int | None
    where: str  # phase (and op) where the steady peak occurs
    first_step_where: str
    eval_where: str | None
    notes: tuple[str, ...] = field(default=())

    @property
    def whole_run_peak_bytes(self) -> int:
        return max(self.peak_bytes, self.first_step_peak_bytes, self.eval_peak_bytes or 0)


# --------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------
class _Ledger:
    """Live tensors in program order; records the running maximum and what made it.

    `alloc` adds a storage (name -> bytes, category); `free` removes it. The peak is
    checked after every alloc (frees never raise it), exactly the instants at which
    a new storage comes into existence.
    """

    def __init__(self) -> None:
        self.live: dict[str, tuple[int, str]] = {}
        self.total = 0
        self.start = 0
        self.peak = 0
        self.peak_breakdown: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        self.where = "start"
        self.phase = "start"
        self._n = 0

    def begin(self) -> None:
        """Everything allocated so far is the state at the start of the measured block."""
        self.start = self.total
        self._record("start")

    def alloc(self, name: str, nbytes: int, cat: str = "other", op: str = "") -> str:
        if name in self.live:
            raise AssertionError(f"ledger: {name} allocated twice")
        self.live[name] = (int(nbytes), cat)
        self.total += int(nbytes)
        if self.total > self.peak:
            self._record(f"{self.phase}: {op or name}")
        return name

    def free(self, *names: str) -> None:
        for name in names:
            nbytes, _ = self.live.pop(name)
            self.total -= nbytes

    def has(self, name: str) -> bool:
        return name in self.live

    def recategorise(self, name: str, cat: str) -> None:
        nbytes, _ = self.live[name]
        self.live[name] = (nbytes, cat)

    def tmp(self) -> str:
        self._n += 1
        return f"_t{self._n}"

    def _record(self, where: str) -> None:
        self.peak = self.total
        bd = dict.fromkeys(CATEGORIES, 0)
        for nbytes, cat in self.live.values():
            bd[cat] += nbytes
        self.peak_breakdown = bd
        self.where = where


# --------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------
def _bp_params(cfg: RunConfig, I: int, C: int) -> list[tuple[str, int]]:
    """BP parameters in `net.parameters()` order: body (W_k, b_k) ..., head (W_h, b_h)."""
    W, ps = cfg.width, []
    for k in range(cfg.depth):
        fan_in = I if k == 0 else W
        ps += [(f"W{k}", W * fan_in), (f"b{k}", W)]
    ps += [("Wh", C * W), ("bh", C)]
    return ps


def _ff_params(cfg: RunConfig, I: int) -> list[list[tuple[str, int]]]:
    """FF parameters, one list (one optimizer) per layer: (weight W x in_j, bias W)."""
    W = cfg.width
    return [[(f"W{j}", W * (I if j == 0 else W)), (f"b{j}", W)] for j in range(cfg.depth)]


def _local_params(cfg: RunConfig, I: int, C: int) -> list[list[tuple[str, int]]]:
    """bp-local parameters, one list (one optimizer) per layer, in the optimizer's order:
    `list(layer.parameters()) + list(head.parameters())` = (W_j, b_j, Wh_j, bh_j)."""
    W = cfg.width
    return [
        [(f"W{j}", W * (I if j == 0 else W)), (f"b{j}", W), (f"Wh{j}", C * W), (f"bh{j}", C)]
        for j in range(cfg.depth)
    ]


def _param_groups(cfg: RunConfig, I: int, C: int) -> list[list[tuple[str, int]]]:
    """Parameters grouped by optimizer (bp-inbackward's per-parameter optimizers hold
    the same state as one optimizer over all of them, so it is one group here)."""
    if cfg.is_ff:
        return _ff_params(cfg, I)
    if cfg.trainer == "bp-local":
        return _local_params(cfg, I, C)
    return [_bp_params(cfg, I, C)]


# --------------------------------------------------------------------------------------
# Optimizer ledger
# --------------------------------------------------------------------------------------
def _opt_state_init(L: _Ledger, cfg: RunConfig, params: list[tuple[str, int]], s: int) -> None:
    """Lazy state creation in the first `step()`.

    Adam `_init_group`, for every parameter with a grad, before any update:
    `state["step"] = torch.tensor(0.0)` (0-dim float32, 4 B; `torch.zeros(())` when
    fused -- also 4 B), `exp_avg = zeros_like(p)`, `exp_avg_sq = zeros_like(p)`.
    SGD with momentum creates `buf = grad.detach().clone()` inside the update loop
    (see `_opt_step`), nothing here.
    """
    if cfg.optimizer != "adam":
        return
    for name, n in params:
        L.alloc(f"step:{name}", F32, "optimizer_state", "Adam state init (step)")
        L.alloc(f"exp_avg:{name}", n * s, "optimizer_state", f"Adam state init exp_avg({name})")
        L.alloc(f"exp_avg_sq:{name}", n * s, "optimizer_state", f"Adam state init exp_avg_sq({name})")


def _opt_state_steady(L: _Ledger, cfg: RunConfig, params: list[tuple[str, int]], s: int) -> None:
    """Optimizer state alive between steps (see `_opt_state_init`)."""
    if cfg.optimizer == "adam":
        _opt_state_init(L, cfg, params, s)
    elif cfg.momentum != 0:
        for name, n in params:
            L.alloc(f"momentum_buffer:{name}", n * s, "optimizer_state")


def _opt_step(
    L: _Ledger, cfg: RunConfig, params: list[tuple[str, int]], s: int, first: bool, tag: str = ""
) -> None:
    """`opt.step()` then `opt.zero_grad(set_to_none=True)`; all grads of `params` alive."""
    if first:
        _opt_state_init(L, cfg, params, s)
    impl = cfg.optimizer_impl
    if cfg.optimizer == "adam":
        if impl == "single-tensor":
            # _single_tensor_adam, per parameter p_i (non-capturable branch):
            #   step_t += 1; exp_avg.lerp_(); exp_avg_sq.mul_().addcmul_()   (in place)
            #   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            #       -> sqrt: s|p_i|, div: s|p_i| (both alive), sqrt dies, add_ in place;
            #          rebinding `denom` only now frees the previous parameter's denom
            #   param.addcdiv_(exp_avg, denom)                                  (in place)
            # The last denom dies when the function returns.
            prev = None
            for name, n in params:
                sq = L.alloc(f"sqrt{tag}:{name}", n * s, "other", f"Adam exp_avg_sq.sqrt() ({name})")
                dn = L.alloc(
                    f"denom{tag}:{name}", n * s, "other", f"Adam sqrt/bias_correction2_sqrt ({name})"
                )
                L.free(sq)
                if prev:
                    L.free(prev)
                prev = dn
            if prev:
                L.free(prev)
        elif impl == "foreach":
            # _multi_tensor_adam: CPU steps are bumped with torch.tensor(1.0) (4 B, lifted);
            # exp_avg_sq_sqrt = _foreach_sqrt(exp_avg_sqs): one s|p| tensor per parameter,
            # alive together; every later op is in place.
            one = L.alloc(L.tmp(), F32, "other", "Adam foreach torch.tensor(1.0)")
            L.free(one)
            names = [
                L.alloc(f"fsqrt{tag}:{name}", n * s, "other", "Adam _foreach_sqrt") for name, n in params
            ]
            L.free(*names)
        # fused: _fused_adam_ updates in place, no parameter-sized temporaries.
    else:
        if cfg.momentum != 0 and first:
            # _single_tensor_sgd / foreach: buf = clone(grad) on the first step -> state
            for name, n in params:
                L.alloc(f"momentum_buffer:{name}", n * s, "optimizer_state", "SGD buf = grad.clone()")
        # steady SGD: buf.mul_().add_(grad); param.add_(buf): in place, no temporaries.
    # zero_grad(set_to_none=True): every gradient of this optimizer dies.
    L.free(*[f"grad:{name}" for name, _ in params])


def _accumulated(L: _Ledger, *names: str) -> None:
    """AccumulateGrad stores a node's weight/bias gradients in `p.grad` only after the
    node returned and its incoming gradient was released. Until then they are plain
    outputs; the tracker classifies a peak at the first free after it, so a peak
    reached inside the node (its `mm`/`sum`) still sees them as "other"."""
    for name in names:
        L.recategorise(name, "gradients")


# --------------------------------------------------------------------------------------
# Backprop trainers
# --------------------------------------------------------------------------------------
def _bp_modules(D: int) -> list[tuple[str, int]]:
    """nn.Sequential body as (kind, layer index): Linear, ReLU, Linear, ReLU, ..."""
    mods = []
    for k in range(D):
        mods += [("L", k), ("R", k)]
    return mods


def _bp_segments(cfg: RunConfig) -> list[tuple[int, int, bool]]:
    """(first module, last module, checkpointed) as in `checkpoint_sequential`:
    segment_size = len(modules) // segments; the first segments-1 segments are
    checkpointed, the remainder (modules end+1 .. last) runs normally."""
    n = 2 * cfg.depth
    if cfg.trainer != "bp-checkpoint":
        return [(0, n - 1, False)]
    S = cfg.segments
    size = n // S
    segs, end = [], -1
    for start in range(0, size * (S - 1), size):
        end = start + size - 1
        segs.append((start, end, True))
    segs.append((end + 1, n - 1, False))
    return segs


def _bp_grads(
    L: _Ledger, cfg: RunConfig, grads: str, produced: list[tuple[str, int]], s: int, first: bool
) -> None:
    """What happens to the weight/bias gradients a node just produced (`new:{p}`
    temporaries for "accum", `grad:{p}` otherwise), after the node returned and its
    incoming gradient was released. `produced` is in the order AccumulateGrad runs.

    fresh: `p.grad` is None -> AccumulateGrad steals the tensor (no copy).
    accum: `p.grad` exists and grad mode is off in backward -> `p.grad += new`
           (in place, accumulate_grad.h); the new gradient dies with the node's buffer.
    hook:  the gradient is stolen into `p.grad`, then the post-accumulate-grad hook runs
           that parameter's own optimizer step and `zero_grad(set_to_none=True)`; the
           storage dies when AccumulateGrad::apply returns (its input still held it).
    """
    if grads == "fresh":
        _accumulated(L, *[f"grad:{name}" for name, _ in produced])
    elif grads == "accum":
        L.free(*[f"new:{name}" for name, _ in produced])
    else:
        for name, n in produced:
            _accumulated(L, f"grad:{name}")
            _opt_step(L, cfg, [(name, n)], s, first, tag=f"[{name}]")


def _bp_step(L: _Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """One train_step of `bp`, `bp-checkpoint`, `bp-accum` or `bp-inbackward`."""
    params = _bp_params(cfg, I, C)
    if cfg.trainer == "bp-accum":
        # total = torch.zeros(()) (float32, alive to the end: returned); per micro-batch
        # x[i:i+micro], y[...] are views (no storage); `total += loss.detach()` is in
        # place; `del loss` frees the (scaled) loss scalar.
        n, micro = cfg.batch_size, cfg.micro
        L.phase = "forward"
        L.alloc("total", F32, "other", "torch.zeros(()) (total)")
        for idx, i in enumerate(range(0, n, micro)):
            _bp_pass(
                L, cfg, I, C, s, first, min(micro, n - i), grads="fresh" if idx == 0 else "accum", scaled=True
            )
            L.free("loss")
        L.phase = "optimizer"
        _opt_step(L, cfg, params, s, first)
    elif cfg.trainer == "bp-inbackward":
        _bp_pass(L, cfg, I, C, s, first, cfg.batch_size, grads="hook")
    else:
        _bp_pass(L, cfg, I, C, s, first, cfg.batch_size)
        L.phase = "optimizer"
        _opt_step(L, cfg, params, s, first)
    L.phase = "end"


def _bp_pass(
    L: _Ledger,
    cfg: RunConfig,
    I: int,
    C: int,
    s: int,
    first: bool,
    B: int,
    grads: str = "fresh",
    scaled: bool = False,
) -> None:
    """Forward + backward of the BP MLP on B rows (plain or checkpointed body).

    grads: "fresh" (no p.grad yet), "accum" (p.grad exists: bp-accum after its first
    micro-batch) or "hook" (bp-inbackward: each parameter stepped as its gradient is
    accumulated), see `_bp_grads`. scaled: the loss is `cross_entropy(...) * share`.
    Leaves `loss` (the returned scalar) alive."""
    W, D = cfg.width, cfg.depth
    gname = "new" if grads == "accum" else "grad"
    act = B * W * s
    mods = _bp_modules(D)
    segs = _bp_segments(cfg)
    seg_of = {}
    for si, (a, b, _) in enumerate(segs):
        for m in range(a, b + 1):
            seg_of[m] = si

    # names of module outputs: Linear k -> "a{k}" (addmm), ReLU k -> "h{k}" (relu)
    def out_name(m: int) -> str:
        kind, k = mods[m]
        return f"a{k}" if kind == "L" else f"h{k}"

    def in_name(m: int) -> str:
        return "x" if m == 0 else out_name(m - 1)

    # Which module outputs are saved for backward in the ordinary (un-checkpointed)
    # autograd graph: ReLU saves its result (threshold_backward needs it); addmm saves
    # mat1 = its input (for the weight gradient) -- i.e. the previous ReLU output.
    # addmm outputs (pre-activations) are saved by nobody.
    # --- forward -------------------------------------------------------------------
    L.phase = "forward"
    held_boundary = None
    for si, (a, b, ck) in enumerate(segs):
        for m in range(a, b + 1):
            kind, k = mods[m]
            o = out_name(m)
            if ck:
                # checkpoint(use_reentrant=False): the segment's own pack hook keeps
                # nothing; its input is held by the checkpoint frame for recompute,
                # through `_NoopSaveInputs.apply(...)`'s save_for_backward, i.e. it is
                # saved by autograd outside the checkpoint hooks (an "activation").
                if m == a and si > 0:
                    L.recategorise(in_name(m), "activations")
                L.alloc(o, act, "other", f"{'addmm' if kind == 'L' else 'relu'} layer {k + 1} (checkpointed)")
                if m != a:
                    L.free(in_name(m))  # intermediate of a checkpointed segment
            else:
                cat = "activations" if kind == "R" else "other"
                L.alloc(o, act, cat, f"{'addmm' if kind == 'L' else 'relu'} layer {k + 1}")
                if kind == "R":
                    # relu's input (addmm output) is saved by nobody -> dies, unless it
                    # is the input held by a checkpoint segment (a boundary) -- which
                    # only a checkpointed segment holds; normal segment: free.
                    if m == a and si > 0:
                        # boundary produced by a checkpointed segment, fed into a normal
                        # segment starting with ReLU: nobody saves it, but
                        # checkpoint_sequential's local `input` holds it until it returns
                        held_boundary = in_name(m)
                    elif m != a:
                        L.free(in_name(m))
                else:
                    # Linear saves its input (mat1): it stays. If the input is the output
                    # of a checkpointed segment (boundary), addmm saves it -> activation.
                    if m == a and si > 0 and L.has(in_name(m)):
                        L.recategorise(in_name(m), "activations")
    if held_boundary:
        L.free(held_boundary)  # checkpoint_sequential returned
    # head: logits = addmm (B x C), saved by nobody (log_softmax saves its result)
    hD = out_name(len(mods) - 1)
    L.alloc("z", B * C * s, "other", "addmm head")
    L.alloc("lsm", B * C * s, "activations", "log_softmax")
    L.alloc("ce" if scaled else "loss", s, "other", "nll_loss output")
    L.alloc("total_weight", s, "activations", "nll_loss total_weight")
    L.free("z")
    if scaled:
        # `* (len(xm) / n)`: mul by a wrapped Python scalar (made outside the
        # dispatcher); MulBackward0 saves only that scalar, so the CE output dies
        L.alloc("loss", s, "other", "mul (loss share)")
        L.free("ce")
    # --- backward ----------------------------------------------------------------------
    L.phase = "backward"
    L.alloc("ones", s, "other", "ones_like(loss)")
    if scaled:
        L.alloc("g_ce", s, "other", "mul backward (grad * share)")
    L.alloc("g_lsm", B * C * s, "other", "nll_loss_backward")
    L.free("total_weight")  # nll node ran: autograd releases its saved total_weight
    if scaled:
        L.free("g_ce")
    L.alloc("g_z", B * C * s, "other", "_log_softmax_backward_data")
    L.free("g_lsm", "lsm")
    # head addmm backward: grad input (mm), grad weight (mm), grad bias (sum)
    L.alloc(f"g_{hD}", act, "other", "head addmm backward: grad input")
    L.alloc(f"{gname}:Wh", C * W * s, "other", "head grad weight")
    L.alloc(f"{gname}:bh", C * s, "other", "head grad bias")
    L.free("g_z")
    # AccumulateGrad order (the engine runs them first: sequence_nr = UINT64_MAX): the
    # bias's node is ready at once, the weight's only after TBackward0 (weight.t())
    _bp_grads(L, cfg, grads, [("bh", C), ("Wh", C * W)], s, first)
    # hD was saved by the head addmm (and by relu D if not checkpointed)

    recomputed: set[int] = set()
    for m in range(len(mods) - 1, -1, -1):
        kind, k = mods[m]
        si = seg_of[m]
        a, b, ck = segs[si]
        o = out_name(m)
        if ck and si not in recomputed:
            # First unpack inside this segment: re-run modules a..b from the held
            # input, keeping what autograd saves (ReLU results, Linear inputs). Early
            # stop: a trailing Linear saves its inputs before computing -> no output.
            recomputed.add(si)
            for mm in range(a, b + 1):
                kk_kind, kk = mods[mm]
                if kk_kind == "L" and mm == b:
                    break
                oo = out_name(mm)
                L.alloc(oo, act, "other", f"recompute {'addmm' if kk_kind == 'L' else 'relu'} layer {kk + 1}")
                if kk_kind == "R" and mm != a:
                    L.free(in_name(mm))  # pre-activation saved by nobody
        if kind == "R":
            # threshold_backward(grad, result): new s*B*W; then the incoming grad dies,
            # and the ReLU result dies (its other saver, the next Linear, ran already)
            L.alloc(f"g_{in_name(m)}", act, "other", f"threshold_backward layer {k + 1}")
            L.free(f"g_{o}")
            if L.has(o):
                L.free(o)
            if ck and m == a and si > 0:
                # the checkpoint frame drops the segment input after its last node
                L.free(in_name(m))
        else:
            # addmm backward: grad input (mm) unless the input is x; grad W (mm); grad b (sum)
            if m > 0:
                L.alloc(f"g_{in_name(m)}", act, "other", f"addmm backward layer {k + 1}: grad input")
            nW = W * (I if k == 0 else W)
            L.alloc(f"{gname}:W{k}", nW * s, "other", f"grad weight layer {k + 1}")
            L.alloc(f"{gname}:b{k}", W * s, "other", f"grad bias layer {k + 1}")
            L.free(f"g_{o}")
            _bp_grads(L, cfg, grads, [(f"b{k}", W), (f"W{k}", nW)], s, first)
            if m > 0:
                inn = in_name(m)
                # a Linear's input dies here if its other holder is gone: in a normal
                # segment the ReLU before it also saved it (freed there); a boundary
                # that is a checkpointed segment's output is held only by this addmm.
                prev_seg = seg_of[m - 1]
                if prev_seg != si and segs[prev_seg][2] and not ck:
                    L.free(inn)
                elif ck and m == a:
                    L.free(inn)
    L.free("ones")  # the root gradient buffer dies when backward returns


# --------------------------------------------------------------------------------------
# Greedy layer-wise backprop (bp-local)
# --------------------------------------------------------------------------------------
def _local_step(L: _Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    """`BPLocalTrainer.train_step`: per layer j, forward (Linear + ReLU, then the layer's
    head and cross-entropy), backward, step, then `h = out.detach()`.

    Alive through the step: x, y, `total` (float32 zeros(()), `+=` in place). Layer j
    (in_j = I for j = 0 else W): addmm (B*W*s; saved by nobody, dies after relu), relu
    `out` (B*W*s; saved by relu, kept by `out` and then by `h` until the next layer's
    output replaces it), head addmm z (B*C*s, dies), log_softmax (B*C*s, saved), loss
    and total_weight (s each). Backward: ones_like(loss), nll_loss_backward (B*C*s),
    log_softmax_backward (B*C*s), head addmm backward: grad of out (B*W*s), grad Wh,
    grad bh; threshold_backward (B*W*s); the layer's addmm backward computes only the
    weight and bias gradients (its input is x or detached). Then the layer's Adam step
    over (W_j, b_j, Wh_j, bh_j) and zero_grad; `del out, loss` frees the loss."""
    B, W, D = cfg.batch_size, cfg.width, cfg.depth
    groups = _local_params(cfg, I, C)
    act = B * W * s
    L.phase = "forward (layer 1)"
    L.alloc("total", F32, "other", "torch.zeros(()) (total)")
    h = "x"
    for j in range(D):
        fan_in = I if j == 0 else W
        L.phase = f"forward (layer {j + 1})"
        L.alloc(f"a{j}", act, "other", f"addmm layer {j + 1}")
        L.alloc(f"o{j}", act, "activations", f"relu layer {j + 1}")
        L.free(f"a{j}")
        L.alloc(f"z{j}", B * C * s, "other", f"addmm head {j + 1}")
        L.alloc(f"lsm{j}", B * C * s, "activations", "log_softmax")
        L.alloc(f"loss{j}", s, "other", "nll_loss output")
        L.alloc(f"tw{j}", s, "activations", "nll_loss total_weight")
        L.free(f"z{j}")
        L.phase = f"backward (layer {j + 1})"
        L.alloc("ones", s, "other", "ones_like(loss)")
        L.alloc("g_lsm", B * C * s, "other", "nll_loss_backward")
        L.free(f"tw{j}")
        L.alloc("g_z", B * C * s, "other", "_log_softmax_backward_data")
        L.free("g_lsm", f"lsm{j}")
        L.alloc("g_o", act, "other", f"head {j + 1} addmm backward: grad input")
        L.alloc(f"grad:Wh{j}", C * W * s, "other", f"head {j + 1} grad weight")
        L.alloc(f"grad:bh{j}", C * s, "other", f"head {j + 1} grad bias")
        L.free("g_z")
        _accumulated(L, f"grad:Wh{j}", f"grad:bh{j}")
        L.alloc("g_a", act, "other", f"threshold_backward layer {j + 1}")
        L.free("g_o")  # the ReLU output stays: `out` still refers to it
        L.alloc(f"grad:W{j}", W * fan_in * s, "other", f"grad weight layer {j + 1}")
        L.alloc(f"grad:b{j}", W * s, "other", f"grad bias layer {j + 1}")
        L.free("g_a")
        _accumulated(L, f"grad:W{j}", f"grad:b{j}")
        L.free("ones")
        L.phase = f"optimizer (layer {j + 1})"
        _opt_step(L, cfg, groups[j], s, first, tag=str(j))
        if h != "x":
            L.free(h)  # h = out.detach(): the previous layer's output dies
        h = f"o{j}"
        L.free(f"loss{j}")  # del out, loss
    L.phase = "end"


# --------------------------------------------------------------------------------------
# Forward-Forward trainers
# --------------------------------------------------------------------------------------
def _embed(L: _Ledger, rows: int, I: int, s: int, out: str, op: str) -> None:
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


def _normalise(
    L: _Ledger, cfg: RunConfig, rows: int, fan_in: int, s: int, out: str, cat: str, src: str | None = None
) -> None:
    """`normalise(x)`: rms: x.pow(2) (rows*in*s) -> mean (rows*s; pow dies) -> + EPS
    (rows*s; mean dies) -> sqrt (rows*s; add dies) -> x / sqrt (rows*in*s; sqrt dies).
    l2: x.norm (rows*s) -> + EPS (rows*s; norm dies) -> x / (...) (rows*in*s).
    Nothing in it requires grad (the input is detached); the quotient is what addmm
    saves (mat1)."""
    if cfg.ff_norm == "rms":
        p = L.alloc(L.tmp(), rows * fan_in * s, "other", "normalise: pow")
        m = L.alloc(L.tmp(), rows * s, "other", "normalise: mean")
        L.free(p)
        e = L.alloc(L.tmp(), rows * s, "other", "normalise: add eps")
        L.free(m)
        q = L.alloc(L.tmp(), rows * s, "other", "normalise: sqrt")
        L.free(e)
    else:
        n = L.alloc(L.tmp(), rows * s, "other", "normalise: norm")
        q = L.alloc(L.tmp(), rows * s, "other", "normalise: add eps")
        L.free(n)
    L.alloc(out, rows * fan_in * s, cat, "normalise: div")
    L.free(q)


def _goodness(L: _Ledger, rows: int, s: int, out: str, where: str) -> None:
    """`goodness(h)` (_SquaredNorm.forward): linalg_vector_norm over units (rows*s, the
    reduction happens inside one kernel: no rows x units temporary) -> square (rows*s;
    the norm dies) -> * scale (rows*s; the square dies). Saves h, which is alive anyway."""
    n = L.alloc(L.tmp(), rows * s, "other", f"goodness norm {where}")
    q = L.alloc(L.tmp(), rows * s, "other", f"goodness square {where}")
    L.free(n)
    L.alloc(out, rows * s, "other", f"goodness scale {where}")
    L.free(q)


def _ff_layer_forward(
    L: _Ledger, cfg: RunConfig, j: int, fan_in: int, s: int, drop_input: str | None = None
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
    # ff_loss: rsub (theta - g_pos), softplus, sub (g_neg - theta), softplus, add, mean
    L.alloc(f"sp{j}a", B * s, "activations", "rsub")
    t1 = L.alloc(L.tmp(), B * s, "other", "softplus")
    L.alloc(f"sp{j}b", B * s, "activations", "sub")
    t2 = L.alloc(L.tmp(), B * s, "other", "softplus")
    t3 = L.alloc(L.tmp(), B * s, "other", "add")
    L.free(t1, t2)
    L.alloc(f"loss{j}", s, "other", "mean (layer loss)")
    L.free(t3)


def _ff_layer_backward(
    L: _Ledger, cfg: RunConfig, j: int, fan_in: int, s: int, last_keeps_output: bool
) -> None:
    """Autograd through one FF layer's loss (grad of its loss scalar already alive)."""
    B, W = cfg.batch_size, cfg.width
    R = 2 * B
    L.phase = f"backward (layer {j + 1})" if not cfg.trainer == "ff-summed" else "backward"
    # mean backward (B*s), two softplus_backward (B*s), each dying with its saved input
    d = L.alloc(L.tmp(), B * s, "other", "loss mean backward")
    sb1 = L.alloc(L.tmp(), B * s, "other", "softplus_backward")
    L.free(d)  # (the grad for the first branch dies)
    sb2 = L.alloc(L.tmp(), B * s, "other", "softplus_backward")
    L.free(f"sp{j}a", f"sp{j}b")
    ng = L.alloc(L.tmp(), B * s, "other", "neg (rsub backward)")
    L.free(sb1)
    # slice_backward x 2 (R*s each) and their sum (R*s)
    s1 = L.alloc(L.tmp(), R * s, "other", "slice_backward")
    L.free(ng)
    s2 = L.alloc(L.tmp(), R * s, "other", "slice_backward")
    L.free(sb2)
    gg = L.alloc(L.tmp(), R * s, "other", "add (grad of g)")
    L.free(s1, s2)
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
    L.alloc(f"grad:W{j}", W * fan_in * s, "other", f"grad weight layer {j + 1}")
    L.alloc(f"grad:b{j}", W * s, "other", f"grad bias layer {j + 1}")
    L.free(ga)
    _accumulated(L, f"grad:W{j}", f"grad:b{j}")
    L.free(f"n{j}")


def _ff_step(L: _Ledger, cfg: RunConfig, I: int, C: int, s: int, first: bool) -> None:
    B, W, D = cfg.batch_size, cfg.width, cfg.depth
    R = 2 * B
    summed = cfg.trainer == "ff-summed"
    params = _ff_params(cfg, I)
    L.phase = "negatives"
    if cfg.ff_negatives == "random":
        # randint (B int64), y + shift (B), % C (B); randint and the sum die
        r = L.alloc(L.tmp(), B * I64, "other", "randint")
        a = L.alloc(L.tmp(), B * I64, "other", "add")
        L.alloc("y_neg", B * I64, "other", "remainder")
        L.free(r, a)
    else:
        _ff_scores(L, cfg, I, C, s, B, prefix="hard:")
        L.alloc("y_neg", B * I64, "other", "multinomial (approx.)")
        L.free("hard:argmax")
    L.phase = "embed"
    _embed(L, B, I, s, "xp", "embed_label(pos)")
    _embed(L, B, I, s, "xn", "embed_label(neg)")
    L.alloc("h_in", R * I * s, "other", "cat(pos, neg)")
    L.free("xp", "xn")
    L.alloc("total", F32, "other", "torch.zeros(())")
    h = "h_in"
    for j in range(D):
        fan_in = I if j == 0 else W
        L.phase = f"forward (layer {j + 1})"
        # `del h` after the layer's forward: the previous h dies unless a live graph saved
        # it (ff-summed: o{j-1} is saved by layer j-1's relu/goodness until backward)
        _ff_layer_forward(L, cfg, j, fan_in, s, drop_input=h if (h == "h_in" or not summed) else None)
        if not summed:
            L.phase = f"backward (layer {j + 1})"
            one = L.alloc(L.tmp(), s, "other", "ones_like(loss)")
            _ff_layer_backward(L, cfg, j, fan_in, s, last_keeps_output=True)
            L.free(one)
            L.phase = f"optimizer (layer {j + 1})"
            _opt_step(L, cfg, params[j], s, first, tag=str(j))
        h = f"o{j}"  # h = out.detach()
        L.free(f"g{j}")  # del g (nothing saved it)
        if not summed:
            L.free(f"loss{j}")  # del loss
    if summed:
        L.phase = "backward"
        st = L.alloc(L.tmp(), D * s, "other", "stack(losses)")
        sm = L.alloc(L.tmp(), s, "other", "sum")
        L.free(st)
        one = L.alloc(L.tmp(), s, "other", "ones_like")
        for j in range(D - 1, -1, -1):
            fan_in = I if j == 0 else W
            _ff_layer_backward(L, cfg, j, fan_in, s, last_keeps_output=(j == D - 1))
        L.free(one, sm, *[f"loss{j}" for j in range(D)])
        for j in range(D):
            L.phase = f"optimizer (layer {j + 1})"
            _opt_step(L, cfg, params[j], s, first, tag=str(j))
    L.phase = "end"


def _ff_scores(L: _Ledger, cfg: RunConfig, I: int, C: int, s: int, n: int, prefix: str = "") -> None:
    """`label_scores(x)` under no_grad on n examples: C*n rows.

    labels = arange(C) (C int64) .repeat_interleave(n) (C*n int64 clone; arange dies);
    x.repeat(C, 1) (C*n*I*s) then embed_label (clone C*n*I*s, dies: the repeat);
    scores = zeros(C*n) float32. Per layer: normalise (pow C*n*in*s ...), addmm
    (C*n*W*s; the normalised input dies), relu (the addmm output dies), old h dies;
    goodness for evaluation layers (`_goodness`, C*n*s), `.float()` (C*n*4; only when the
    model dtype is not float32), `scores +=` in place.
    """
    W, D = cfg.width, cfg.depth
    rows = C * n
    ar = L.alloc(prefix + "arange", C * I64, "other", "arange(C)")
    L.alloc(prefix + "labels", rows * I64, "other", "repeat_interleave")
    L.free(ar)
    rep = L.alloc(prefix + "rep", rows * I * s, "other", "x.repeat(C, 1)")
    _embed(L, rows, I, s, prefix + "h", "embed_label(C x chunk)")
    L.free(rep)
    L.alloc(prefix + "scores", rows * F32, "other", "zeros (scores)")
    h = prefix + "h"
    evl = set(cfg.eval_layer_indices())
    for j in range(D):
        fan_in = I if j == 0 else W
        L.phase = f"negatives (layer {j + 1})" if prefix.startswith("hard") else f"eval (layer {j + 1})"
        nn_ = L.tmp()
        _normalise(L, cfg, rows, fan_in, s, nn_, "other")
        a = L.alloc(L.tmp(), rows * W * s, "other", f"addmm layer {j + 1}")
        L.free(nn_)
        o = L.alloc(L.tmp(), rows * W * s, "other", f"relu layer {j + 1}")
        L.free(a)
        L.free(h)
        h = o
        if j in evl:
            g = L.tmp()
            _goodness(L, rows, s, g, "(eval)")
            if s != F32:
                # `.float()` copies a bfloat16 goodness to float32 (a no-op for float32)
                f = L.alloc(L.tmp(), rows * F32, "other", "goodness .float()")
                L.free(g, f)  # `scores += ...` is in place
            else:
                L.free(g)  # `scores += g` is in place
    L.free(prefix + "labels", h)
    L.alloc(prefix + "argmax", n * I64, "other", "argmax")
    L.free(prefix + "scores")


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
def _eval(cfg: RunConfig, I: int, C: int, s: int, n_eval: int) -> _Ledger:
    """`trainer.predict(ex)` under no_grad, in chunks of config.chunk; start = params +
    optimizer state + the evaluation inputs (ex: n*I*s, ey: n*8)."""
    L = _Ledger()
    for ps in _param_groups(cfg, I, C):
        for name, n in ps:
            L.alloc(f"param:{name}", n * s, "parameters")
        _opt_state_steady(L, cfg, ps, s)
    L.alloc("ex", n_eval * I * s, "inputs")
    L.alloc("ey", n_eval * I64, "inputs")
    L.begin()
    parts = []
    W = cfg.width
    for i, start in enumerate(range(0, n_eval, cfg.chunk)):
        c = min(cfg.chunk, n_eval - start)  # x[i:i+chunk].to(...) is a view: free
        if cfg.is_ff:
            _ff_scores(L, cfg, I, C, s, c, prefix=f"c{i}:")
            L.recategorise(f"c{i}:argmax", "other")
            parts.append(f"c{i}:argmax")
        elif cfg.trainer == "bp-local":
            # `h = F.relu(layer(h))`: addmm (c*W*s), relu (c*W*s), the addmm temporary
            # dies, then rebinding h frees the previous output; the last head's logits
            # (c*C*s), argmax (c int64), the logits die, h dies when predict_chunk returns.
            L.phase = "eval"
            prev = None
            for k in range(cfg.depth):
                a = L.alloc(L.tmp(), c * W * s, "other", f"eval addmm layer {k + 1}")
                r = L.alloc(L.tmp(), c * W * s, "other", f"eval relu layer {k + 1}")
                L.free(a)
                if prev:
                    L.free(prev)
                prev = r
            z = L.alloc(L.tmp(), c * C * s, "other", "eval head addmm")
            L.alloc(f"c{i}:argmax", c * I64, "other", "eval argmax")
            L.free(z, prev)
            parts.append(f"c{i}:argmax")
        else:
            # nn.Sequential: addmm (c*W*s) while the previous ReLU output is alive, relu,
            # then the addmm output and the previous output die; head logits; argmax.
            L.phase = "eval"
            prev = None
            for k in range(cfg.depth):
                a = L.alloc(L.tmp(), c * W * s, "other", f"eval addmm layer {k + 1}")
                if prev:
                    L.free(prev)
                r = L.alloc(L.tmp(), c * W * s, "other", f"eval relu layer {k + 1}")
                L.free(a)
                prev = r
            z = L.alloc(L.tmp(), c * C * s, "other", "eval head addmm")
            L.free(prev)
            L.alloc(f"c{i}:argmax", c * I64, "other", "eval argmax")
            L.free(z)
            parts.append(f"c{i}:argmax")
    L.phase = "eval"
    L.alloc("cat", n_eval * I64, "other", "torch.cat(parts)")
    L.free(*parts)
    return L


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------
def _step_ledger(cfg: RunConfig, I: int, C: int, first: bool) -> _Ledger:
    s = _DTYPE_BYTES[cfg.dtype]
    L = _Ledger()
    groups = _param_groups(cfg, I, C)
    for ps in groups:
        for name, n in ps:
            L.alloc(f"param:{name}", n * s, "parameters")
    if not first:
        for ps in groups:
            _opt_state_steady(L, cfg, ps, s)
    L.alloc("x", cfg.batch_size * I * s, "inputs")
    L.alloc("y", cfg.batch_size * I64, "inputs")
    L.begin()
    if cfg.is_ff:
        _ff_step(L, cfg, I, C, s, first)
    elif cfg.trainer == "bp-local":
        _local_step(L, cfg, I, C, s, first)
    else:
        _bp_step(L, cfg, I, C, s, first)
    return L


def predict(
    config: RunConfig, in_features: int = 784, num_classes: int = 10, eval_examples: int | None = None
) -> MemoryPrediction:
    """Predict the tensor-level memory of `config` from shapes alone.

    eval_examples: examples in the evaluation pass (default: one chunk, `config.chunk`),
    as the harness does when the test set holds at least one chunk.
    """
    if config.is_ff and in_features <= num_classes:
        raise ValueError("FF needs more inputs than classes to embed the label")
    s = _DTYPE_BYTES[config.dtype]
    steady = _step_ledger(config, in_features, num_classes, first=False)
    first = _step_ledger(config, in_features, num_classes, first=True)
    n_eval = eval_examples or config.chunk
    ev = _eval(config, in_features, num_classes, s, n_eval)
    notes = []
    if config.optimizer_impl != "single-tensor":
        notes.append(f"optimizer_impl={config.optimizer_impl}: best effort (derived, lightly checked)")
    if config.is_ff and (
        config.ff_negatives != "random" or config.ff_norm != "rms" or config.ff_goodness != "mean"
    ):
        notes.append("non-default FF options: best effort")
    if config.device == "cuda":
        notes.append("tensor-level bytes; the CUDA allocator rounds blocks to 512 B and caches")
    return MemoryPrediction(
        peak_bytes=steady.peak,
        start_bytes=steady.start,
        transient_bytes=steady.peak - steady.start,
        breakdown=dict(steady.peak_breakdown),
        first_step_peak_bytes=first.peak,
        first_step_start_bytes=first.start,
        eval_peak_bytes=ev.peak,
        eval_start_bytes=ev.start,
        where=steady.where,
        first_step_where=first.where,
        eval_where=ev.where,
        notes=tuple(notes),
    )


def max_batch_size(
    config: RunConfig,
    budget_bytes: int,
    in_features: int = 784,
    num_classes: int = 10,
    eval_examples: int | None = None,
    limit: int = 1 << 24,
) -> int:
    """Largest batch_size <= limit whose predicted whole-run peak (first step, steady
    step, evaluation of one chunk -- the chunk follows batch_size unless eval_chunk is
    set) fits `budget_bytes`; 0 if even batch 1 does not fit. The peak grows
    monotonically with the batch (every batch-dependent term is a positive multiple of
    B), so a gallop + bisection over the closed-form prediction with tolerance 0
    (`ffbench.search.search`) is exact."""

    def fits(b: int) -> bool:
        p = predict(config.replace(batch_size=b), in_features, num_classes, eval_examples)
        return p.whole_run_peak_bytes <= budget_bytes

    largest, _, _ = search(fits, start=1, cap=limit, tolerance=0)
    return largest
