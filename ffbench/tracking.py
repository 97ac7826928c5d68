"""`ffbench.track`: the harness's tensor-level instrument around any training step you write.

    import ffbench
    with ffbench.track(model=net, optimizers=[opt], inputs=(x, y)) as t:
        step(x, y)
    t.result()            # TensorMemory: peak, categories, phases, timeline (bytes)
    t.record()            # its Record (kind "track": a measure record's tensor_* columns; .to_dict())
    t.save("step.json")   # written atomically; ffbench.results.load and `ffbench diff` read it

or as a decorator (the tensors among the call's arguments count as its inputs)::

    @ffbench.track(model=net, optimizers=[opt])
    def step(x, y): ...
    step(x, y); step.tracker.result()

The same `TensorTracker` the harness runs (``ffbench.run.harness``), told about the same
things: the model's parameters (their ``.grad``), the optimizers' state, the inputs; so the
categories (parameters, gradients, optimizer_state, inputs, activations, other) mean the same.
Mark your own phases with ``ffbench.phases.phase("forward", layer=i)``. ``sites=N`` adds the
N largest storages at the peak with the file:line that allocated each (a stack walk per new
storage: off by default). Like the harness, ``gc.collect()`` runs before the block. No
analytic model: only what ran is measured.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .record import Record

METHOD_NOTE = "ffbench.track around a user's step (tensor-level tracker of the harness)"


class track:  # noqa: N801 - used like a function: `with ffbench.track(...)`
    """Measure the tensor-level memory of the block (or of each call of a decorated function).

    Args:
        model: an ``nn.Module`` (its parameters count as parameters; its module names label sites).
        optimizers: optimizers (their state counts as optimizer state; their params as parameters).
        inputs: tensors of the step's data.
        params: further parameters outside ``model``.
        timeline: record (op index, live bytes) after every op (default on).
        sites: keep the N largest storages at the peak with their allocation sites (0: off).
        device: count only storages on this device (default: every device).
        name: a label written into the record.
    """

    def __init__(
        self,
        model: Any = None,
        optimizers: Iterable[Any] = (),
        inputs: Iterable[Any] = (),
        *,
        params: Iterable[Any] = (),
        timeline: bool = True,
        sites: int = 0,
        device: Any = None,
        name: str = "step",
    ) -> None:
        if isinstance(sites, bool) or not isinstance(sites, int) or sites < 0:
            raise ValueError(f"sites={sites!r}: give a whole number >= 0 (0: no allocation sites)")
        self.model = model
        self.optimizers = list(optimizers) if optimizers is not None else []
        self.inputs = list(inputs) if inputs is not None else []
        self.params = list(params)
        self.timeline = timeline
        self.sites = sites
        self.device = device
        self.name = name
        self._tracker = None
        self.tracker: track | None = None  # the last call's, when used as a decorator

    def _new_tracker(self, extra_inputs: Iterable[Any] = ()):
        from .measure import TensorTracker

        params = list(self.model.parameters()) if self.model is not None else []
        names = None
        if self.sites and self.model is not None:
            names = {id(m): name for name, m in self.model.named_modules() if name}
        return TensorTracker(
            params + self.params,
            self.optimizers,
            inputs=[*self.inputs, *extra_inputs],
            timeline=self.timeline,
            device=self.device,
            sites=self.sites,
            module_names=names,
        )

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> track:
        gc.collect()  # as the harness: reference cycles would otherwise die at an arbitrary point
        self._tracker = self._new_tracker()
        self._tracker.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._tracker.__exit__(*exc)

    # -- decorator -----------------------------------------------------------------------------
    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            import torch

            tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
            t = track(
                self.model,
                self.optimizers,
                [*self.inputs, *tensors],
                params=self.params,
                timeline=self.timeline,
                sites=self.sites,
                device=self.device,
                name=self.name,
            )
            with t:
                out = fn(*args, **kwargs)
            wrapper.tracker = t
            return out

        wrapper.tracker = None
        return wrapper

    # -- results -------------------------------------------------------------------------------
    def result(self):
        """The block's `TensorMemory` (bytes)."""
        if self._tracker is None:
            raise RuntimeError("ffbench.track: result() is available after the with-block ends")
        return self._tracker.result()

    def record(self) -> Record:
        """The block's record, with the harness's column names (`tensor_peak_bytes`, ...);
        `record().to_dict()` is its JSON."""
        from dataclasses import asdict

        import torch

        from .environment import environment
        from .record import Record
        from .run.harness import peak_holders, tensor_fields

        mem = self.result()
        device = torch.device(self.device) if self.device is not None else torch.device("cpu")
        return Record.build(
            kind="track",
            source="track",
            status="ok",
            name=self.name,
            config={},
            metrics={**tensor_fields("tensor", mem), "tensor_op_count": mem.op_count},
            phases=[asdict(p) for p in mem.phases],
            timeline=mem.timeline,
            **peak_holders(mem),
            methods={"tensor": mem.method, "track": METHOD_NOTE},
            environment=environment(device),
        )

    def save(self, path) -> None:
        """Write `record()` to `path` (atomically)."""
        from .results.store import write_json_atomic

        write_json_atomic(path, self.record().to_dict())
