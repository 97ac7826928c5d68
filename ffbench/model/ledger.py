"""The allocation ledger every trainer's model is written in, its byte sizes and the result.

A `Ledger` is a list of "+ this tensor" / "- that tensor" lines in program order, each
allocation citing the op that produces it; its peak is the running maximum of the live
sum, with the per-category breakdown and the op at that instant (see the package
docstring for how the lines are derived). Byte sizes are exact: a storage holds
numel x element size bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cuda_allocator import RoundedLive

CATEGORIES = ("parameters", "gradients", "optimizer_state", "activations", "inputs", "other")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2}
I64 = 8  # int64 labels / indices
F32 = 4  # float32 scalars that do not follow the model dtype (Adam step, FF `total`)
BOOL = 1

# parameters as (name, numel) in the order their optimizer holds them
Params = list[tuple[str, int]]


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
    # Predicted CUDA allocator peak of the steady step (ffbench.cuda_allocator: 512 B blocks,
    # host-resident Adam steps left out, cuBLAS workspaces added): a prediction, a lower bound.
    cuda_allocated_predicted_bytes: int = 0

    @property
    def whole_run_peak_bytes(self) -> int:
        return max(self.peak_bytes, self.first_step_peak_bytes, self.eval_peak_bytes or 0)

    @property
    def train_peak_bytes(self) -> int:
        """The training steps' peak (first and steady step), evaluation excluded."""
        return max(self.peak_bytes, self.first_step_peak_bytes)


class Ledger:
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
        self.rounded = RoundedLive()  # the same lines with every storage in 512 B blocks

    def begin(self) -> None:
        """Everything allocated so far is the state at the start of the measured block."""
        self.start = self.total
        self._record("start")

    def alloc(self, name: str, nbytes: int, cat: str = "other", op: str = "") -> str:
        if name in self.live:
            raise AssertionError(f"ledger: {name} allocated twice")
        self.live[name] = (int(nbytes), cat)
        self.total += int(nbytes)
        self.rounded.add(nbytes)
        if self.total > self.peak:
            self._record(f"{self.phase}: {op or name}")
        return name

    def free(self, *names: str) -> None:
        for name in names:
            nbytes, _ = self.live.pop(name)
            self.total -= nbytes
            self.rounded.remove(nbytes)

    def chain(self, *steps: tuple[int, str], out: str | None = None, cat: str = "other") -> str:
        """Ops applied one after the other, each consuming the previous result, which
        dies as soon as its successor exists: `steps` are (bytes, op). The last result
        stays alive, named `out` (category `cat`) if given; returns its name."""
        prev = None
        for i, (nbytes, op) in enumerate(steps):
            last = i == len(steps) - 1
            name = self.alloc(out if last and out else self.tmp(), nbytes, cat if last else "other", op)
            if prev:
                self.free(prev)
            prev = name
        assert prev is not None
        return prev

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


def accumulated(L: Ledger, *names: str) -> None:
    """AccumulateGrad stores a node's weight/bias gradients in `p.grad` only after the
    node returned and its incoming gradient was released. Until then they are plain
    outputs; the tracker classifies a peak at the first free after it, so a peak
    reached inside the node (its `mm`/`sum`) still sees them as "other"."""
    for name in names:
        L.recategorise(name, "gradients")
