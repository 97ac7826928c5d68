"""Memory budgets of a worker: what is charged, how it is enforced, and whether a run fit.

Two kinds (`ffbench maxbatch --budget tensor|process`):

- ``tensor``: decided by the tensor-level peak, the algorithm's own bytes, the same on every
  machine. Nothing is enforced: the run is measured and fits when its training-step peak
  (`tensor_train_peak_bytes`: first and steady step; `tensor_whole_run_peak_bytes` with
  evaluation, `include_eval`) is within the budget.
- ``process``: decided by the process, enforced for real. On CPU ``RLIMIT_DATA`` is set to the
  worker's *baseline* VmData + the budget, so an allocation over it fails and the run is
  ``oom``; everything the process allocates counts (allocator slack, thread stacks, a
  kernel's scratch memory the tensor tracker cannot see). On CUDA the caching allocator is
  capped with `torch.cuda.set_per_process_memory_fraction` and the allocator's peak is
  compared with the budget. Evaluation runs under the budget only with `include_eval`.

The baseline: before any budget is applied, the worker warms every code path the run will
take -- a throwaway step and prediction of a tiny network of the same trainer, optimizer and
dtype, so torch's lazily imported modules (about 79 MiB at the first optimizer step here)
are loaded -- and then records VmData, RSS (and the CUDA allocator's bytes). A budget
charges the run, not torch's imports.
"""

from __future__ import annotations

import gc
import resource
from dataclasses import asdict, dataclass

from ..proc import read_status
from ..record import Record


@dataclass(frozen=True)
class Budget:
    bytes: int
    kind: str = "process"
    include_eval: bool = False

    @classmethod
    def from_spec(cls, spec: dict) -> Budget | None:
        raw = spec.get("budget")
        return None if raw is None else cls(**raw)

    def to_dict(self) -> dict:
        return asdict(self)

    def criterion(self, device_type: str) -> str:
        """The record metric the budget is compared with."""
        scope = "whole_run" if self.include_eval else "train"
        if self.kind == "tensor":
            return f"tensor_{scope}_peak_bytes"
        if device_type == "cuda":
            return f"cuda_{scope}_peak_allocated_bytes"
        return "process: no allocation failed under RLIMIT_DATA"


def warm_baseline(config, data, device) -> dict:
    """Run a tiny network of the same trainer, optimizer and dtype once (a step, another step,
    a prediction), free it, and return the process's baseline figures in bytes."""
    import torch

    from ..trainers import build_trainer

    tiny = config.replace(depth=1, width=8, batch_size=2, eval_chunk=2, seed=0)
    trainer = build_trainer(tiny, data.in_features, data.num_classes, device)
    x = data.train_x[:2].to(device, trainer.dtype, copy=True)
    y = data.train_y[:2].to(device, copy=True)
    for _ in range(2):
        trainer.train_step(x, y)
    trainer.predict(x)
    del trainer, x, y
    gc.collect()
    out = {
        "warmed": f"{config.trainer}, {config.optimizer}/{config.optimizer_impl}, {config.dtype}: 2 steps and a prediction of a 1 x 8 net"
    }
    status = read_status("VmData", "VmRSS")
    if status is not None:
        out.update(vm_data_bytes=status["VmData"], rss_bytes=status["VmRSS"])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        out.update(cuda_allocated_bytes=torch.cuda.memory_allocated(device),
                   cuda_reserved_bytes=torch.cuda.memory_reserved(device))  # fmt: skip
    return out


def enforce(budget: Budget, config, data, device, baseline: dict) -> dict:
    """Apply a process budget (a tensor budget enforces nothing); returns how."""
    if budget.kind == "tensor":
        return {"mechanism": "none: the tensor-level peak is compared with the budget after the run"}
    if device.type == "cuda":
        import torch

        total = torch.cuda.get_device_properties(device).total_memory
        if budget.bytes < total:
            torch.cuda.set_per_process_memory_fraction(budget.bytes / total, device)
        return {
            "mechanism": "torch.cuda.set_per_process_memory_fraction",
            "fraction": min(1.0, budget.bytes / total),
        }
    # the harness repeats the training set when one batch is larger than it: part of the
    # data, not of the training footprint
    n = len(data.train_x)
    repeat = 0 if config.batch_size <= n else -(-config.batch_size // n) * n * (data.in_features * 4 + 8)
    limit = baseline["vm_data_bytes"] + budget.bytes + repeat
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
    return {"mechanism": "RLIMIT_DATA", "baseline_vm_data_bytes": baseline["vm_data_bytes"],
            "allowance_bytes": repeat, "limit_bytes": limit}  # fmt: skip


def lift() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def judge(budget: Budget, record: Record, device_type: str) -> dict:
    """The budget part of a finished record: criterion, the measured figure and whether the
    run fit. A process budget on CPU fits when no allocation failed (the run finished)."""
    criterion = budget.criterion(device_type)
    metrics = record.metrics or {}
    if criterion.startswith("process"):
        measured, fits = None, record.status == "ok"
    else:
        measured = metrics.get(criterion)
        if measured is None and criterion.startswith("cuda_train"):
            measured = max(
                metrics.get("cuda_peak_allocated_bytes", 0),
                metrics.get("cuda_first_step_peak_allocated_bytes", 0),
            )
        fits = record.status == "ok" and measured is not None and measured <= budget.bytes
    return {**budget.to_dict(), "criterion": criterion, "measured_bytes": measured, "fits": bool(fits)}
