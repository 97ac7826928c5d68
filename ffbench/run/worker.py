"""One configuration in a fresh process: `python -m ffbench.run.worker SPEC_JSON OUT_JSON`.

SPEC_JSON holds {"config": RunConfig dict, "settings": HarnessSettings fields, "budget":
null or {"bytes", "kind": "tensor"|"process", "include_eval"} (see budget.py), "source":
"sweep"|"maxbatch", "parent_pid": int}. The worker always writes a record to OUT_JSON
(atomically) with a `status`:

- ``ok``: measured (with a budget, `record["budget"]["fits"]` says whether it fit);
- ``oom``: an allocation failed (CUDA ``OutOfMemoryError``, ``MemoryError``, or on CPU the
  ``RLIMIT_DATA`` of a process budget made ``DefaultCPUAllocator`` fail; statuses.is_oom);
- ``error``: anything else (the exception's last line is in ``error``, the traceback beside it;
  a full disk or quota is marked ``"fault": "environment"`` and re-measured on resume).
A record it cannot write (disk full) ends it with status 75 and one line (statuses.py).

Before anything is measured the worker lowers glibc's mmap threshold (so RSS and VmData follow
live memory), loads the data and warms the code paths (budget.warm_baseline): the record's
`baseline` holds VmData and RSS after that, and a process budget is applied on top of it. A
fresh process per configuration gives each run a clean allocator and high-water mark.
RLIMIT_AS cannot be used (it breaks `import torch`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback

from ..proc import die_with_parent
from ..record import Record


def _measure(spec: dict, known: dict, budget) -> Record:
    """Load, warm, apply the budget, measure: the harness's record with the worker's fields.
    What is learnt on the way (device type, dataset, baseline, budget enforcement) goes into
    `known` as well: an error record keeps it (the budget is judged after either)."""
    from ..config import RunConfig
    from ..data import load_config_dataset
    from ..device import resolve_device
    from ..proc import MMAP_THRESHOLD, set_malloc_mmap_threshold
    from . import budget as budgets
    from .harness import HarnessSettings, run_one

    config = RunConfig.from_dict(spec["config"])
    settings = HarnessSettings(**spec.get("settings", {}))
    device = resolve_device(config.device)
    known["device_type"] = device.type
    if device.type == "cpu":
        set_malloc_mmap_threshold(MMAP_THRESHOLD)  # before anything is allocated (see ffbench.proc)
    data = load_config_dataset(config)
    known["dataset"] = data.describe()
    started = time.perf_counter()
    known["baseline"] = budgets.warm_baseline(config, data, device)
    baseline_seconds = time.perf_counter() - started  # a measurement pass: the record's baseline
    if budget is not None:
        known["budget"] = {"enforcement": budgets.enforce(budget, config, data, device, known["baseline"])}
    try:
        result = run_one(config, settings, dataset=data)
    finally:
        budgets.lift()
    return result.updated(
        error=None,
        baseline=known["baseline"],
        passes_seconds={"baseline_seconds": baseline_seconds, **(result.passes_seconds or {})},
    )


def _failed(exc: BaseException, limited: bool) -> dict:
    """An error record's fields: `status` (`oom` or `error`), `error`, and for an error the
    traceback (and `fault` when the machine caused it)."""
    from ..schema import ENVIRONMENT_FAULT
    from .statuses import environment_fault, is_oom

    status = "oom" if is_oom(exc, limited=limited) else "error"
    fault = environment_fault(exc) if status == "error" else None
    lines = [ln for ln in traceback.format_exception_only(type(exc), exc) if ln.strip()]
    return {
        "status": status,
        "error": " ".join(" ".join(lines).split())[:2000],
        # the machine's fault: re-measured on resume
        **({"fault": ENVIRONMENT_FAULT, "fault_reason": fault} if fault is not None else {}),
        **({"traceback": traceback.format_exc()[-8000:]} if status == "error" else {}),
    }


def run_spec(spec: dict) -> Record:
    from ..environment import environment
    from . import budget as budgets

    budget = budgets.Budget.from_spec(spec)
    known: dict = {}
    try:
        record = _measure(spec, known, budget)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a record
        if isinstance(exc, KeyboardInterrupt):
            raise
        failed = _failed(exc, limited=budget is not None and budget.kind == "process")
        del exc
        _empty_cuda_cache(known.get("device_type"))
        kept = {k: v for k, v in known.items() if k in ("dataset", "baseline")}
        record = Record.build(kind="measure", config=spec["config"], **kept, **failed)
    device_type = known.get("device_type", "cpu")
    if budget is not None:
        enforcement = (known.get("budget") or {}).get("enforcement")
        record = record.updated(
            budget={**budgets.judge(budget, record, device_type), "enforcement": enforcement}
        )
    if record.environment is None:
        import torch

        record = record.updated(environment=environment(torch.device(device_type)))
    return record


def _empty_cuda_cache(device_type: str | None) -> None:
    if device_type == "cuda":
        import torch

        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m ffbench.run.worker SPEC_JSON OUT_JSON", file=sys.stderr)
        return 2
    spec_path, out_path = argv
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    die_with_parent(spec.get("parent_pid"))
    started = time.perf_counter()
    record = run_spec(spec).updated(
        worker={"pid": os.getpid(), "seconds_in_worker": time.perf_counter() - started}
    )
    from ..results.store import write_json_atomic
    from .statuses import WORKER_EXIT_ENVIRONMENT, environment_fault

    try:
        write_json_atomic(out_path, record.to_dict())
    except OSError as exc:  # a full disk: one line for the sweep's record, no traceback
        with contextlib.suppress(OSError):  # the log may be on the full disk too
            print(
                f"ffbench worker: cannot write {exc.filename or out_path}: {exc.strerror or exc}",
                file=sys.stderr,
                flush=True,
            )
        return WORKER_EXIT_ENVIRONMENT if environment_fault(exc) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
