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
(`ledger.Ledger`): a list of "+ this tensor" / "- that tensor" lines, each with the op that
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
The closed forms of each trainer's peak are in its family module's docstring.

dtype: every tensor follows the model dtype (s = 2 for bfloat16) except the float32
`step` counters of Adam and FF's float32 `total`; optimizer implementations
(single-tensor exact, foreach/fused/SGD best effort) are described in `optim.py`.

Where each trainer's ledger is (the package mirrors ffbench/trainers/)
---------------------------------------------------------------------
ledger.py     the `Ledger` (allocation ledger), byte sizes, `MemoryPrediction`
optim.py      optimizer state and `step()` (Adam single-tensor/foreach/fused, SGD)
bp.py         bp, bp-checkpoint; the BP pass and cross-entropy head reused below
frugal_bp.py  bp-accum, bp-inbackward, bp-local
ff.py         ff, ff-summed: negatives, embedding, normalisation, goodness, scoring
recurrent.py  --arch recurrent: ff in time (exact); the BPTT trainers refuse (measured only)
conv.py       --arch conv: bp, bp-checkpoint, bp-accum, bp-inbackward, bp-local (the BP pass
              on an image body: ToImage's NHWC copy, convolution_backward). Not modelled:
              ff, ff-summed, ff-frugal under conv, and every --arch local trainer
              (NotImplementedError: measure them with the tracker)
registry.py   trainer name -> ledger: each family module registers its own; other
              packages add theirs through the `ffbench.ledgers` entry-point group.
A trainer with no ledger raises NotImplementedError (no fallback to another's).

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
  to this model alike. RSS and malloc behaviour are not tensor-level quantities and
  are not predicted. The CUDA allocator's allocated peak is *predicted* beside the
  tensor-level figures (`cuda_allocated_predicted_bytes`: 512 B blocks, cuBLAS
  workspaces; see `ffbench.cuda_allocator`), a lower bound; reserved memory is not.
* A Python reference cycle would delay a free; none exists in these trainers.
"""

from __future__ import annotations

from ..config import RunConfig
from ..cuda_allocator import predicted_allocated_bytes, step_workspace_bytes
from ..search import search
from . import optim
from .ledger import DTYPE_BYTES, I64, Ledger, MemoryPrediction
from .registry import ENTRY_POINT_GROUP, TrainerLedger, ledger_for, register

__all__ = [
    "ENTRY_POINT_GROUP",
    "MemoryPrediction",
    "TrainerLedger",
    "ledger_for",
    "max_batch_size",
    "predict",
    "register",
]


def _start_state(L: Ledger, cfg: RunConfig, groups: list, s: int, with_state: bool) -> None:
    """Parameters, then (unless the first step creates it) each optimizer's state."""
    for ps in groups:
        for name, n in ps:
            L.alloc(f"param:{name}", n * s, "parameters")
    if with_state:
        for ps in groups:
            optim.state_steady(L, cfg, ps, s)


def _step_ledger(ledger, cfg: RunConfig, I: int, C: int, first: bool) -> Ledger:
    """One `train_step` from the state before it: parameters, optimizer state (none
    before the first step), the batch x (B*I*s) and y (B int64)."""
    s = DTYPE_BYTES[cfg.dtype]
    L = Ledger()
    _start_state(L, cfg, ledger.param_groups(cfg, I, C), s, with_state=not first)
    L.alloc("x", cfg.batch_size * I * s, "inputs")
    L.alloc("y", cfg.batch_size * I64, "inputs")
    L.begin()
    ledger.step(L, cfg, I, C, s, first)
    return L


def _eval_ledger(ledger, cfg: RunConfig, I: int, C: int, n_eval: int) -> Ledger:
    """`trainer.predict(ex)` under no_grad, in chunks of config.chunk; start = params +
    optimizer state + the evaluation inputs (ex: n*I*s, ey: n*8). Each chunk's
    `x[i:i+chunk].to(...)` is a view (free); its argmax stays until `torch.cat(parts)`."""
    s = DTYPE_BYTES[cfg.dtype]
    L = Ledger()
    _start_state(L, cfg, ledger.param_groups(cfg, I, C), s, with_state=True)
    L.alloc("ex", n_eval * I * s, "inputs")
    L.alloc("ey", n_eval * I64, "inputs")
    L.begin()
    parts = []
    for i, start in enumerate(range(0, n_eval, cfg.chunk)):
        parts.append(ledger.eval_chunk(L, cfg, I, C, s, min(cfg.chunk, n_eval - start), f"c{i}:"))
    L.phase = "eval"
    L.alloc("cat", n_eval * I64, "other", "torch.cat(parts)")
    L.free(*parts)
    return L


def _notes(ledger, config: RunConfig) -> tuple[str, ...]:
    notes = []
    if config.optimizer_impl != "single-tensor":
        notes.append(f"optimizer_impl={config.optimizer_impl}: best effort (derived, lightly checked)")
    trainer_notes = getattr(ledger, "notes", None)
    notes += trainer_notes(config) if trainer_notes else ()
    if config.device == "cuda":
        notes.append("tensor-level bytes; the CUDA allocator rounds blocks to 512 B and caches")
    return tuple(notes)


def refuse_black_box(config: RunConfig) -> None:
    """The black box's NumPy round trip (ffbench/blackbox.py) makes tensors outside the
    dispatcher, which no ledger models."""
    if config.black_box is not None:
        raise NotImplementedError("no memory ledger models the black box (--black-box)")


def predict(
    config: RunConfig, in_features: int = 784, num_classes: int = 10, eval_examples: int | None = None
) -> MemoryPrediction:
    """Predict the tensor-level memory of `config` from shapes alone.

    eval_examples: examples in the evaluation pass (default: one chunk, `config.chunk`),
    as the harness does when the test set holds at least one chunk.
    Raises NotImplementedError for a trainer no ledger models (see `registry`).
    """
    ledger = ledger_for(config.trainer, config.arch, config.micro_batching)
    refuse_black_box(config)
    check = getattr(ledger, "check", None)
    if check:
        check(config, in_features, num_classes)
    steady = _step_ledger(ledger, config, in_features, num_classes, first=False)
    first = _step_ledger(ledger, config, in_features, num_classes, first=True)
    ev = _eval_ledger(ledger, config, in_features, num_classes, eval_examples or config.chunk)
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
        notes=_notes(ledger, config),
        cuda_allocated_predicted_bytes=predicted_allocated_bytes(
            steady.rounded.peak,
            optim.host_scalars(config, ledger.param_groups(config, in_features, num_classes)),
            step_workspace_bytes(config.trainer),
        ),
    )


def max_batch_size(
    config: RunConfig,
    budget_bytes: int,
    in_features: int = 784,
    num_classes: int = 10,
    eval_examples: int | None = None,
    limit: int = 1 << 24,
    include_eval: bool = True,
) -> int:
    """Largest batch_size <= limit whose predicted peak fits `budget_bytes`: the whole run
    (first step, steady step, one evaluation chunk) with include_eval, else the training
    steps alone (`train_peak_bytes`); 0 if even batch 1 does not fit. The peak grows
    monotonically with the batch (every batch-dependent term is a positive multiple of
    B), so a gallop + bisection over the closed-form prediction with tolerance 0
    (`ffbench.search.search`) is exact. Raises NotImplementedError at once for a
    trainer no ledger models."""
    ledger_for(config.trainer, config.arch, config.micro_batching)
    refuse_black_box(config)

    def fits(b: int) -> bool:
        p = predict(config.replace(batch_size=b), in_features, num_classes, eval_examples)
        return (p.whole_run_peak_bytes if include_eval else p.train_peak_bytes) <= budget_bytes

    largest, _, _ = search(fits, start=1, cap=limit, tolerance=0)
    return largest
