"""Tensor-level memory: bytes of live tensor storages, counted op by op.

What is measured
----------------
`TensorTracker` runs the code inside its ``with`` block under a
``TorchDispatchMode``. Every tensor an aten op returns is looked up by its
*storage* (``tensor.untyped_storage()``): a storage seen for the first time is
added to the live total with ``storage.nbytes()`` and weak-referenced; when the
storage dies, a weakref callback subtracts it again. Views and in-place ops
return an already-known storage, so they cost nothing; a storage that grows or
shrinks (``out=`` ops resize their outputs) is re-read whenever an op returns it.

At ``__enter__`` the tracker also registers the storages it is *told* about and
that already exist: parameters, their ``.grad``, optimizer state tensors (every
tensor in ``opt.state``) and inputs. Their sum is ``start_bytes``.

The figure is the sum of storage sizes the program holds: exact and
deterministic (the same program gives the same bytes every run), independent of
the allocator (no caching, no rounding, no fragmentation, no malloc arenas).
It is *not* the process RSS nor the CUDA allocator's figure; see
``process.py`` and ``cuda.py`` for those.

Blind spots (documented, by design):
  * scratch memory a kernel allocates and frees inside one op (e.g. a BLAS
    workspace) is never returned to Python and is not seen;
  * a storage that already existed at ``__enter__`` and was not passed in is
    invisible, unless an op returns a view of it or modifies it in place: it is
    then *discovered* and counted as if it had been alive from the start
    (``start_bytes``, the peak, phases and the timeline are all raised by its
    size; ``discovered_bytes`` says how much of ``start_bytes`` came this way);
  * outputs without a plain storage (sparse, some tensor subclasses) are skipped
    and counted in ``untracked_outputs``;
  * tensors kept alive only by a reference cycle die when Python's cyclic GC
    runs, which makes the end of their life depend on GC timing. Call
    ``gc.collect()`` before entering (and consider ``gc.disable()``) for
    bit-for-bit repeatable numbers.

Peak breakdown
--------------
A storage's death callback only notes the free; the bytes are subtracted at the
next safe point (the next op, a phase event, exit), before anything new is added,
so peaks are exact. (Reading tensors inside a storage destructor can crash, e.g.
while ``p.grad = None`` is tearing the old gradient down.) When a new peak is
reached it is marked "to be classified"; it is classified at the first safe point
that has frees to apply, or at exit, before those frees are applied. The live set
is then exactly the set at the peak, and ownership attached right after an
allocation (``p.grad = g``, ``state["exp_avg"] = zeros_like(p)``) is already
visible. The state at ``__enter__`` is classified at once (it is the first peak).
Each live storage gets the first matching category, in this order:

  parameters       storage of a tracked parameter
  gradients        storage of a tracked parameter's current ``.grad``
  optimizer_state  storage of a tensor in a tracked optimizer's ``state``
  inputs           storage of a tensor passed as ``inputs``
  activations      storage that autograd saved for backward (pack hook of
                   ``torch.autograd.graph.saved_tensors_hooks``) at some time
                   while it was alive, e.g. a layer output kept for backward
  other            everything else: temporaries, outputs, discovered storages

The categories sum exactly to ``peak_bytes``.

The pack hook returns ``tensor.detach()`` (same storage, no copy) rather than
the tensor itself: the hook receives graph outputs *with* their ``grad_fn``, and
storing that tensor in the graph forms a C++ reference cycle that is never freed
when backward does not run (pytorch/pytorch#189025). Autograd restores the
``grad_fn`` on unpack, so gradients are unchanged.

Per phase
---------
The tracker listens to :mod:`ffbench.phases`; for each phase occurrence it
records the live bytes at its start and the peak inside it (``PhasePeak``).

Rounded peak (a prediction, not a measurement)
----------------------------------------------
Beside the exact sum, the tracker keeps the same births and deaths with every storage
rounded up to the CUDA caching allocator's 512 B block (`ffbench.cuda_allocator`) and
reports that sum's peak as ``rounded_peak_bytes``: the tensor part of a *predicted*
``torch.cuda.max_memory_allocated``. It changes no tensor-level figure.

Who holds the peak
------------------
With ``sites=N`` (off by default: it walks the Python stack at every new storage) each
new storage remembers where it was allocated: the innermost frames outside torch and
this package as ``file:line`` (``sites.py``), the module whose forward was running (or
the innermost phase, e.g. in backward). At the peak the tracker keeps the N largest
live storages (``peak_holders``) and the peak's bytes summed per allocation site
(``peak_sites``; storages alive before the block are filed under ``(before the block:
<category>)``).

Timeline
--------
With ``timeline=True`` the live total is sampled after every op as
``(op_index, live_bytes)``; op 0 is the state at enter. When more than
``MAX_TIMELINE_POINTS`` points accumulate, neighbouring points are merged
keeping the maximum, so every point is the highest value within a bucket of
consecutive ops and the timeline's maximum equals the peak.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .. import phases as _phases
from ..cuda_allocator import RoundedLive
from ..schema import CATEGORIES
from . import sites as _sites

METHOD = "torch_dispatch storage tracking"
MAX_TIMELINE_POINTS = 2000

# Ops whose output aliases an input that was built outside the dispatcher
# (``torch.tensor(...)`` creates the data, then calls ``lift_fresh``): new storage.
_LIFT_OPS = frozenset(
    getattr(torch.ops.aten, name).default
    for name in ("lift_fresh", "lift_fresh_copy", "lift")
    if hasattr(torch.ops.aten, name)
)


@dataclass(frozen=True)
class PhasePeak:
    """One occurrence of a phase: live bytes when it began and the most inside it."""

    name: str
    layer: int | None
    start_bytes: int
    peak_bytes: int
    # op indices (as in the timeline) when the phase began and ended: where it lies in time
    start_op: int | None = field(default=None, compare=False)
    end_op: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TensorMemory:
    """Result of a TensorTracker. All sizes in bytes (sum of tensor storage sizes).

    transient_bytes = peak_bytes - start_bytes. discovered_bytes is the part of
    start_bytes found late (pre-existing storages not passed in). op_count counts
    aten ops seen; untracked_outputs counts outputs without a trackable storage.
    device is the device filter ("all" when every device was counted together).
    """

    method: str
    start_bytes: int
    peak_bytes: int
    end_bytes: int
    transient_bytes: int
    peak_breakdown: dict[str, int]
    phases: list[PhasePeak]
    timeline: list[tuple[int, int]] | None
    discovered_bytes: int = 0
    untracked_outputs: int = 0
    op_count: int = 0
    device: str = "all"
    # Most bytes of storages saved for backward alive at the same time during the block
    # (the activation memory of the step, whether or not it coincides with the peak).
    peak_saved_bytes: int = 0
    # Peak of the live bytes with every storage rounded up to the CUDA caching allocator's
    # 512 B block (ffbench.cuda_allocator): the tensor part of a predicted allocator peak.
    rounded_peak_bytes: int = 0
    # With sites=N: the N largest storages alive at the peak (bytes, category, site, where)
    # and the peak's bytes per allocation site; None when sites were not asked for.
    peak_holders: list[dict] | None = None
    peak_sites: dict[str, int] | None = None


@dataclass
class _OpenPhase:
    name: str
    layer: int | None
    start: int
    peak: int
    start_op: int = 0
    end_op: int | None = None


def _identity(x: Any) -> Any:
    return x


_preservation_checked = False


def _check_storage_preservation() -> None:
    """The tracker needs a storage's Python object to live as long as the storage
    (PyTorch preserves it; torch >= 2.1). Verify once instead of silently reading 0."""
    global _preservation_checked
    if _preservation_checked:
        return
    t = torch.empty(1)
    s = t.untyped_storage()
    ref = weakref.ref(s)
    del s
    alive = ref() is not None and ref() is t.untyped_storage()
    del t
    if not alive:
        raise RuntimeError(
            "TensorTracker needs storage PyObject preservation (torch >= 2.1); "
            f"torch {torch.__version__} drops the Python storage object early"
        )
    _preservation_checked = True


class _Mode(TorchDispatchMode):
    def __init__(self, tracker: TensorTracker) -> None:
        super().__init__()
        self._tracker = tracker

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: D401
        out = func(*args, **(kwargs or {}))
        tracker = self._tracker
        if not tracker._suspended:
            tracker._on_op(func, out)
        return out


class TensorTracker:
    """Context manager: live tensor-storage bytes, their peak and what the peak holds.

    Args:
        params: parameters (also every parameter in ``optimizers``' param_groups).
        optimizers: their ``state`` tensors count as optimizer state.
        inputs: tensors of the step's data (batch, labels, ...).
        timeline: also record (op_index, live_bytes) samples.
        device: count only storages on this device ("cuda:0"; "cuda" = any CUDA
            device). None = every device summed: fine on a CPU-only run, but on a
            GPU run pass the device (Adam keeps its `step` counters on the CPU).
        sites: > 0: keep the N largest storages at the peak with their allocation sites
            and the peak's bytes per site (a stack walk per new storage; see above).
        module_names: id(module) -> qualified name, to label sites by module.

    Use ``with TensorTracker(...) as t: step()`` then ``t.result()``.
    Single-threaded use; the tracker can be entered again for a new measurement.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] = (),
        optimizers: Iterable[torch.optim.Optimizer] = (),
        inputs: Iterable[torch.Tensor] = (),
        *,
        timeline: bool = False,
        device: torch.device | str | None = None,
        sites: int = 0,
        module_names: dict[int, str] | None = None,
    ) -> None:
        self._sites = _sites.SiteRecorder(module_names) if sites > 0 else None
        self._top = sites
        self._optimizers = list(optimizers)
        params = list(params)
        seen = {id(p) for p in params}
        for opt in self._optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) not in seen:
                        seen.add(id(p))
                        params.append(p)
        self._params = params
        self._inputs = [t for t in inputs if t is not None]
        self._want_timeline = timeline
        self._device = torch.device(device) if device is not None else None
        self._active = False
        self._result: TensorMemory | None = None
        self._suspended = 0
        self._reset()

    # -- state ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self._live: dict[int, list] = {}  # id(storage) -> [weakref, nbytes]
        self._live_bytes = 0
        self._peak = 0
        self._rounded = RoundedLive()
        self._start = 0
        self._discovered = 0
        self._untracked = 0
        self._ops = 0
        self._dirty = True  # live set == peak set, not yet classified
        self._pending: list[tuple[int, weakref.ref]] = []  # frees not yet applied
        self._breakdown: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        self._saved: set[int] = set()
        self._saved_bytes = 0
        self._saved_peak = 0
        self._preexisting: set[int] = set()
        self._input_keys: set[int] = set()
        self._phase_log: list[_OpenPhase] = []
        self._open: list[_OpenPhase] = []
        self._tl: list[tuple[int, int]] | None = [] if self._want_timeline else None
        self._tl_stride = 1
        self._holders: list[dict] = []
        self._site_bytes: dict[str, int] = {}

    # -- context manager -----------------------------------------------------------------
    def __enter__(self) -> TensorTracker:
        if self._active:
            raise RuntimeError("TensorTracker is already active")
        _check_storage_preservation()
        self._reset()
        self._result = None
        for t in self._known_tensors():
            self._register_known(t)
        for t in self._inputs:
            key = self._register_known(t)
            if key is not None:
                self._input_keys.add(key)
        self._start = self._peak = self._live_bytes
        # Storages alive before the block (parameters, inputs, ...) are not activations
        # even when autograd saves them (a Linear saves its weight and input).
        self._preexisting = set(self._live)
        self._classify()
        if self._tl is not None:
            self._tl.append((0, self._live_bytes))
        self._active = True
        _phases.add_listener(self._on_phase)
        if self._sites is not None:
            self._sites.start()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _identity)
        self._hooks.__enter__()
        self._mode = _Mode(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._mode.__exit__(*exc)
        finally:
            self._hooks.__exit__(*exc)
            _phases.remove_listener(self._on_phase)
            if self._sites is not None:
                self._sites.stop()
            self._flush()
            if self._dirty:
                self._classify()
            end = self._live_bytes
            self._open = []  # a phase still open ends here with what it saw
            self._result = TensorMemory(
                method=METHOD,
                start_bytes=self._start,
                peak_bytes=self._peak,
                end_bytes=end,
                transient_bytes=self._peak - self._start,
                peak_breakdown=dict(self._breakdown),
                phases=[
                    PhasePeak(
                        r.name,
                        r.layer,
                        r.start,
                        r.peak,
                        r.start_op,
                        self._ops if r.end_op is None else r.end_op,
                    )
                    for r in self._phase_log
                ],
                timeline=list(self._tl) if self._tl is not None else None,
                discovered_bytes=self._discovered,
                untracked_outputs=self._untracked,
                op_count=self._ops,
                device=str(self._device) if self._device is not None else "all",
                peak_saved_bytes=self._saved_peak,
                rounded_peak_bytes=self._rounded.peak,
                peak_holders=list(self._holders) if self._sites is not None else None,
                peak_sites=dict(self._site_bytes) if self._sites is not None else None,
            )
            self._active = False
            # Dropping the weakrefs also cancels their callbacks.
            self._live = {}
            self._saved = set()
            self._input_keys = set()

    def result(self) -> TensorMemory:
        if self._result is None:
            raise RuntimeError("TensorTracker.result() is available after the with-block ends")
        return self._result

    @property
    def live_bytes(self) -> int:
        """Current live total (for checks while the tracker is active)."""
        self._flush()
        return self._live_bytes

    # -- what it is told about -----------------------------------------------------------
    def _known_tensors(self) -> Iterable[torch.Tensor]:
        for p in self._params:
            yield p
            if p.grad is not None:
                yield p.grad
        yield from self._state_tensors()

    def _state_tensors(self) -> Iterable[torch.Tensor]:
        for opt in self._optimizers:
            for state in list(opt.state.values()):
                if not isinstance(state, dict):
                    continue
                for value in list(state.values()):
                    if isinstance(value, torch.Tensor):
                        yield value
                    elif isinstance(value, (list, tuple)):
                        yield from (v for v in value if isinstance(v, torch.Tensor))

    def _storage(self, t: torch.Tensor):
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError, TypeError):
            return None
        return st if self._wanted(st.device) else None

    def _wanted(self, device: torch.device) -> bool:
        want = self._device
        if device.type == "meta":
            return False
        if want is None:
            return True
        # "cuda" without an index matches any CUDA device.
        return device.type == want.type and (want.index is None or device.index == want.index)

    def _register_known(self, t: torch.Tensor) -> int | None:
        st = self._storage(t)
        if st is None:
            return None
        key = id(st)
        if key not in self._live:
            n = st.nbytes()
            if self._register(st, key, n):
                self._live_bytes += n
                self._rounded.add(n)
        return key

    def _register(self, st, key: int, nbytes: int) -> bool:
        """Remember a storage; the caller adds its bytes to the totals."""
        try:
            ref = weakref.ref(st, partial(self._on_free, key))
        except TypeError:  # a storage type without weakref support
            self._untracked += 1
            return False
        self._live[key] = [ref, nbytes]
        return True

    # -- events --------------------------------------------------------------------------
    def _on_op(self, func, out: Any) -> None:
        self._ops += 1
        if self._pending:
            self._flush()
        if isinstance(out, torch.Tensor):
            self._see(func, out)
        elif isinstance(out, (tuple, list)):
            self._see_all(func, out)
        if self._tl is not None:
            self._sample(self._ops, self._live_bytes)

    def _see_all(self, func, outs) -> None:
        for o in outs:
            if isinstance(o, torch.Tensor):
                self._see(func, o)
            elif isinstance(o, (tuple, list)):
                self._see_all(func, o)

    def _see(self, func, t: torch.Tensor) -> None:
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError, TypeError):
            self._untracked += 1
            return
        key = id(st)
        rec = self._live.get(key)
        if rec is not None:
            n = st.nbytes()
            if n != rec[1]:  # resized (e.g. an out= op)
                delta = n - rec[1]
                if delta < 0 and self._dirty:
                    self._classify()
                    # (the storage keeps its key; only its size changes)
                self._rounded.remove(rec[1])
                self._rounded.add(n)
                rec[1] = n
                self._change(delta)
            return
        if not self._wanted(st.device):
            return
        n = st.nbytes()
        if not self._register(st, key, n):
            return
        if func not in _LIFT_OPS and _returns_alias(func):
            # A view of / in-place result on a storage we never saw: it predates us.
            self._preexisting.add(key)
            self._discover(n)
            self._rounded.backdate(n)
        else:
            if self._sites is not None:
                self._sites.allocated(key, self._open[-1] if self._open else None)
            self._change(n)
            self._rounded.add(n)

    def _change(self, delta: int) -> None:
        live = self._live_bytes + delta
        self._live_bytes = live
        if delta <= 0:
            return
        if live > self._peak:
            self._peak = live
            self._dirty = True
        open_ = self._open
        if open_ and live > open_[-1].peak:
            for rec in reversed(open_):
                if live > rec.peak:
                    rec.peak = live
                else:
                    break

    def _discover(self, n: int) -> None:
        """A pre-existing storage found late: it was alive all along, raise the past too."""
        self._discovered += n
        self._start += n
        self._live_bytes += n
        self._peak += n
        if not self._dirty:
            self._breakdown["other"] += n
            if self._sites is not None:
                site = _sites.before("other")
                self._site_bytes[site] = self._site_bytes.get(site, 0) + n
        for rec in self._phase_log:
            rec.start += n
            rec.peak += n
        if self._tl is not None:
            self._tl[:] = [(i, b + n) for i, b in self._tl]

    def _on_free(self, key: int, ref: weakref.ref) -> None:
        # Runs inside a storage's destructor, possibly while the tensor that owned it
        # (e.g. a ``p.grad`` being set to None) is half torn down: touching tensors
        # here can crash. Only note the key; _flush() does the accounting at the
        # next safe point (next op, phase event, exit), before anything new is added.
        if self._active:
            self._pending.append((key, ref))

    def _flush(self) -> None:
        """Apply the frees noted since the last safe point."""
        pending = self._pending
        if not pending:
            return
        if self._dirty:
            # The live set still equals the peak set (nothing was subtracted yet).
            self._classify()
        self._pending = []
        live = self._live
        for key, ref in pending:
            rec = live.get(key)
            if rec is None or rec[0] is not ref:
                continue
            del live[key]
            self._preexisting.discard(key)  # the id may be reused by a new storage
            if key in self._saved:
                self._saved.discard(key)
                self._saved_bytes -= rec[1]
            self._input_keys.discard(key)
            if self._sites is not None:
                self._sites.freed(key)
            self._live_bytes -= rec[1]
            self._rounded.remove(rec[1])

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        self._suspended += 1
        try:
            packed = t.detach()
        finally:
            self._suspended -= 1
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError, TypeError):
            return packed
        key = id(st)
        rec = self._live.get(key)
        # rec[0]() is st: the record is this storage's, not a dead one's whose id was reused
        # (its free may still be pending until the next safe point).
        if rec is not None and rec[0]() is st and key not in self._saved and key not in self._preexisting:
            self._saved.add(key)
            self._saved_bytes += rec[1]
            self._saved_peak = max(self._saved_peak, self._saved_bytes)
        return packed

    def _on_phase(self, event: str, name: str, layer: int | None) -> None:
        self._flush()
        if event == "enter":
            rec = _OpenPhase(name, layer, self._live_bytes, self._live_bytes, self._ops)
            self._phase_log.append(rec)
            self._open.append(rec)
        elif event == "exit":
            for i in range(len(self._open) - 1, -1, -1):
                rec = self._open[i]
                if rec.name == name and rec.layer == layer:
                    rec.end_op = self._ops
                    del self._open[i]
                    break

    # -- peak classification -------------------------------------------------------------
    def _keys(self, tensors: Iterable[torch.Tensor]) -> set[int]:
        keys = set()
        for t in tensors:
            try:
                keys.add(id(t.untyped_storage()))
            except (RuntimeError, NotImplementedError, TypeError):
                pass
        return keys

    def _classify(self) -> None:
        self._suspended += 1
        try:
            params = self._keys(self._params)
            grads = self._keys(p.grad for p in self._params if p.grad is not None)
            state = self._keys(self._state_tensors())
            inputs, saved = self._input_keys, self._saved
            breakdown = dict.fromkeys(CATEGORIES, 0)
            categories: dict[int, str] = {}
            for key, rec in list(self._live.items()):
                if key in params:
                    cat = "parameters"
                elif key in grads:
                    cat = "gradients"
                elif key in state:
                    cat = "optimizer_state"
                elif key in inputs:
                    cat = "inputs"
                elif key in saved:
                    cat = "activations"
                else:
                    cat = "other"
                breakdown[cat] += rec[1]
                categories[key] = cat
            self._breakdown = breakdown
            if self._sites is not None:
                self._holders, self._site_bytes = self._sites.at_peak(self._live, categories, self._top)
            self._dirty = False
        finally:
            self._suspended -= 1

    # -- timeline ------------------------------------------------------------------------
    def _sample(self, op: int, live: int) -> None:
        tl = self._tl
        stride = self._tl_stride
        if tl and tl[-1][0] // stride == op // stride:
            if live > tl[-1][1]:
                tl[-1] = (op, live)
            return
        tl.append((op, live))
        if len(tl) > MAX_TIMELINE_POINTS:
            stride *= 2
            merged: list[tuple[int, int]] = []
            for point in tl:
                if merged and merged[-1][0] // stride == point[0] // stride:
                    if point[1] > merged[-1][1]:
                        merged[-1] = point
                else:
                    merged.append(point)
            tl[:] = merged
            self._tl_stride = stride


_alias_cache: dict[Any, bool] = {}


def _returns_alias(func) -> bool:
    """True when the op's schema says some output aliases an input (views, in-place, out=)."""
    cached = _alias_cache.get(func)
    if cached is None:
        try:
            cached = any(r.alias_info is not None for r in func._schema.returns)
        except AttributeError:
            cached = False
        _alias_cache[func] = cached
    return cached
