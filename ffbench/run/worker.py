"""One configuration in a fresh process: `python -m ffbench.run.worker SPEC_JSON OUT_JSON`.

SPEC_JSON holds {"config": RunConfig dict, "settings": HarnessSettings fields,
"memory_limit_bytes": int or null, "source": "sweep"|"maxbatch", "parent_pid": int}.
The worker always writes a record to OUT_JSON (atomically) with a `status`:

- ``ok``: measured, and (with a budget) the measured peak is within it;
- ``oom``: the allocation failed (CUDA ``OutOfMemoryError``, or on CPU the
  ``RLIMIT_DATA`` budget set below made ``DefaultCPUAllocator`` fail), or the run finished
  but its measured peak exceeds the budget (the figures are kept);
- ``error``: anything else (the exception's last line is in ``error``).

A fresh process per configuration gives each run a clean allocator and high-water mark.

Memory budget, enforced for real: on CPU, after torch is imported and the dataset is
loaded, ``RLIMIT_DATA`` is set to current VmData + budget (+ the copy of the training
set the harness makes when the batch is larger than it), so an over-budget allocation
raises and the process carries on to write its record. RLIMIT_AS cannot be used (it
breaks `import torch`). The limit covers everything the process allocates (thread stacks,
Python objects, allocator slack), so it can bite slightly before the tensor-level peak
reaches the budget; the recorded criterion is the tensor-level peak. On CUDA the caching
allocator is capped with `torch.cuda.set_per_process_memory_fraction`, and the criterion
is the allocator's whole-run peak (`cuda_whole_run_peak_allocated_bytes`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback

# What a memory budget is checked against: the whole run (first step, steady step, evaluation).
BUDGET_METRIC = {"cpu": "tensor_whole_run_peak_bytes", "cuda": "cuda_whole_run_peak_allocated_bytes"}


def die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux to SIGKILL this worker when the sweep dies (kill -9 included)."""
    if not parent_pid or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _vm_data_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmData not in /proc/self/status")


def _limit_cpu(budget: int, extra: int) -> dict:
    current = _vm_data_bytes()
    limit = current + budget + extra
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
    return {
        "mechanism": "RLIMIT_DATA",
        "vm_data_at_start_bytes": current,
        "allowance_bytes": extra,
        "limit_bytes": limit,
    }


def _lift_cpu_limit() -> None:
    try:
        resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def _is_oom(exc: BaseException, limited: bool = False) -> bool:
    import torch

    if isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    if limited and isinstance(exc, SystemError) and "without exception set" in str(exc):
        # under RLIMIT_DATA a failed malloc inside CPython/torch glue can surface this way
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def run_spec(spec: dict) -> dict:
    import torch

    from ..config import RunConfig
    from ..data import load_dataset
    from ..device import resolve_device
    from ..environment import environment
    from .harness import HarnessSettings, run_one

    config = RunConfig.from_dict(spec["config"])
    settings = HarnessSettings(**spec.get("settings", {}))
    budget = spec.get("memory_limit_bytes")
    record: dict = {"kind": "measure", "status": "error", "error": None, "config": config.to_dict()}
    device = None
    enforcement: dict | None = None
    try:
        device = resolve_device(config.device)
        data = load_dataset(config.dataset, data_dir=config.data_dir, val_size=config.val_size)
        record["dataset"] = data.describe()
        if budget is not None:
            if device.type == "cpu":
                # every allocation of 64 KiB or more its own mmap, unmapped on free: VmData
                # then follows live memory instead of keeping freed heap (see measure.process)
                from ..measure import set_malloc_mmap_threshold

                set_malloc_mmap_threshold(65536)
                n = len(data.train_x)
                # the harness repeats the training set when one batch is larger than it:
                # part of the data, not of the training footprint
                repeat = (
                    0
                    if config.batch_size <= n
                    else -(-config.batch_size // n) * n * (data.in_features * 4 + 8)
                )
                enforcement = _limit_cpu(budget, repeat)
            else:
                total = torch.cuda.get_device_properties(device).total_memory
                if budget < total:
                    torch.cuda.set_per_process_memory_fraction(budget / total, device)
                enforcement = {
                    "mechanism": "torch.cuda.set_per_process_memory_fraction",
                    "fraction": min(1.0, budget / total),
                    "device_total_bytes": total,
                }
        result = run_one(config, settings, dataset=data)
        _lift_cpu_limit()
        record.update(result)
        record["error"] = None
        if budget is not None:
            metric = BUDGET_METRIC["cuda" if device.type == "cuda" else "cpu"]
            peak = result["metrics"].get(metric)
            if peak is not None and peak > budget:
                record["status"] = "oom"
                record["error"] = f"measured {metric} = {peak} bytes exceeds the budget of {budget} bytes"
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a record
        _lift_cpu_limit()
        if isinstance(exc, KeyboardInterrupt):
            raise
        record["status"] = "oom" if _is_oom(exc, limited=budget is not None) else "error"
        lines = [ln for ln in traceback.format_exception_only(type(exc), exc) if ln.strip()]
        record["error"] = " ".join(" ".join(lines).split())[:2000]
        if record["status"] == "error":
            record["traceback"] = traceback.format_exc()[-8000:]
        del exc
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()
    record["memory_limit"] = (
        None
        if budget is None
        else {
            "budget_bytes": budget,
            "criterion": BUDGET_METRIC["cuda" if device is not None and device.type == "cuda" else "cpu"],
            "enforcement": enforcement,
        }
    )
    if "environment" not in record and device is not None:
        record["environment"] = environment(device)
    return record


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m ffbench.run.worker SPEC_JSON OUT_JSON", file=sys.stderr)
        return 2
    spec_path, out_path = argv
    with open(spec_path) as f:
        spec = json.load(f)
    die_with_parent(spec.get("parent_pid"))
    started = time.perf_counter()
    record = run_spec(spec)
    record["worker"] = {"pid": os.getpid(), "seconds_in_worker": time.perf_counter() - started}
    from ..store import write_json_atomic

    write_json_atomic(out_path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
