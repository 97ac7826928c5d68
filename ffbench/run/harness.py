"""The measuring harness: `run_one(config)` -> one record.

The harness, not the trainer, owns every clock, device sync and tracker reset
(as in MLCommons' algorithmic-efficiency). On CPU it first lowers glibc's mmap
threshold to 64 KiB, before anything is built (see `prepare`). Then, in order:

1. the first step under the tensor tracker (optimizer state is allocated lazily here,
   so its peak differs from later steps);
2. warm-up steps (untimed, untracked);
3. timing steps with no tensor tracker attached (the dispatch mode costs 3-14x on
   small layers), each bracketed by device syncs; on CPU the same steps are also
   timed in a child process with glibc's default settings, so the record says
   whether the allocator setting changed step time;
4. one steady-state step under the tensor tracker (peak, categories, phases, timeline);
5. one steady-state step under the process tracker (VmHWM reset through
   /proc/self/clear_refs, plus VmRSS read after every op, because this kernel's
   VmHWM can lag short peaks) and, on CUDA, the allocator tracker;
6. an evaluation pass over one chunk (`config.chunk` examples; test rows repeated when the
   split is smaller), measured on its own.

Steps 1, 4 and 6 also run under the CUDA allocator tracker on a GPU, so the CUDA
whole-run peak covers the same steps as the tensor-level one.

Every figure is in bytes or seconds. `transient` = step peak - bytes alive at the
start of the step: what a bigger batch or a deeper net must find room for.
The whole-run peak is the maximum over the first step, the steady step and the
evaluation pass (all other steps have the steady step's shapes).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass

import torch

from ..config import BATCH_CONVENTION, RunConfig
from ..data import Dataset, load_dataset
from ..device import resolve_device
from ..environment import environment
from ..measure import (
    CATEGORIES,
    CudaPeakTracker,
    ProcessPeakTracker,
    StepTimer,
    TensorTracker,
    allocator_setting,
    set_malloc_mmap_threshold,
    set_threads,
)
from ..trainers import build_trainer


@dataclass(frozen=True)
class HarnessSettings:
    warmup_steps: int = 1
    timing_steps: int = 3
    eval_examples: int | None = None  # None: one evaluation chunk
    timeline: bool = True
    compare_allocator: bool = True  # also time steps with default malloc (child process)


def _batches(data: Dataset, config: RunConfig, device: torch.device, dtype: torch.dtype):
    """Endless full batches of real training examples (cycled in a fixed order)."""
    n = len(data.train_x)
    if n < config.batch_size:
        # a batch larger than the training set: repeat it (memory runs only care about shape)
        reps = -(-config.batch_size // n)
        xs, ys = data.train_x.repeat(reps, 1), data.train_y.repeat(reps)
    else:
        xs, ys = data.train_x, data.train_y
    start = 0
    while True:
        if start + config.batch_size > len(xs):
            start = 0
        end, start = start + config.batch_size, start + config.batch_size
        # copy=True: a batch owns its storage (a slice would keep the whole dataset alive
        # as "input" in the tensor-level count). No local names: the generator must not
        # keep the previous batch alive while the next one is made.
        yield (
            xs[end - config.batch_size : end].to(device, dtype, copy=True),
            ys[end - config.batch_size : end].to(device, copy=True),
        )


def _repeat_rows(t: torch.Tensor, n: int) -> torch.Tensor:
    """The first n rows of t, cycling through t when it has fewer."""
    reps = -(-n // len(t))
    return (t.repeat(reps, *([1] * (t.dim() - 1))) if reps > 1 else t)[:n]


def _tensor_fields(prefix: str, mem) -> dict:
    out = {
        f"{prefix}_peak_bytes": mem.peak_bytes,
        f"{prefix}_start_bytes": mem.start_bytes,
        f"{prefix}_transient_bytes": mem.transient_bytes,
        f"{prefix}_saved_activations_bytes": mem.peak_saved_bytes,
    }
    for cat in CATEGORIES:
        out[f"{prefix}_peak_{cat}_bytes"] = mem.peak_breakdown.get(cat, 0)
    return out


@dataclass
class Prepared:
    """A built trainer and its batch stream: what every measurement needs."""

    config: RunConfig
    device: torch.device
    threads: int
    data: Dataset
    trainer: object
    batches: object  # iterator of (x, y) on the device, each batch owning its storage

    def tensor_tracker(self, inputs=(), timeline: bool = False) -> TensorTracker:
        # All devices: on CUDA, Adam keeps its `step` counters on the CPU; they are part
        # of the step's tensors (and of the analytic model) wherever they live.
        return TensorTracker(
            self.trainer.model.parameters(), self.trainer.optimizers(), inputs=inputs, timeline=timeline
        )


def prepare(config: RunConfig, dataset: Dataset | None = None, *, mmap_threshold: bool = True) -> Prepared:
    """Resolve device and threads, load data, build the trainer (seeded).

    On CPU, glibc's mmap threshold is lowered to 64 KiB *before* anything is built:
    chunks that reach glibc's heap earlier stay resident when freed and are later
    reused without raising RSS, which would hide tens of MiB of every step's peak
    from the process high-water mark (measured here).
    """
    device = resolve_device(config.device)
    if mmap_threshold and device.type == "cpu":
        set_malloc_mmap_threshold(65536)
    threads = set_threads(config.threads)
    data = dataset or load_dataset(config.dataset, data_dir=config.data_dir, val_size=config.val_size)
    trainer = build_trainer(config, data.in_features, data.num_classes, device)
    return Prepared(config, device, threads, data, trainer, _batches(data, config, device, trainer.dtype))


def time_steps(config: RunConfig, settings: HarnessSettings, *, mmap_threshold: bool) -> list[float]:
    """Warm up, then time `settings.timing_steps` steps (no tracker attached)."""
    run = prepare(config, mmap_threshold=mmap_threshold)
    run.trainer.train_step(*next(run.batches))
    for _ in range(settings.warmup_steps):
        run.trainer.train_step(*next(run.batches))
    return _timed_steps(run, settings.timing_steps)


def _timed_steps(run: Prepared, n: int) -> list[float]:
    """Seconds of `n` steps, each bracketed by device syncs (StepTimer)."""
    times = []
    for _ in range(n):
        x, y = next(run.batches)
        with StepTimer(run.device) as timer:
            run.trainer.train_step(x, y)
        times.append(timer.result().elapsed_ns / 1e9)
    return times


def time_with_default_malloc(config: RunConfig, settings: HarnessSettings) -> tuple[list[float], str | None]:
    """Step times with glibc's default allocator settings, in a fresh child process
    (the mmap threshold cannot be un-set in this one). Returns (times, error line)."""
    code = (
        "import json, sys; from ffbench.run.worker import die_with_parent; die_with_parent(int(sys.argv[3])); "
        "from ffbench.config import RunConfig; from ffbench.run.harness import HarnessSettings, time_steps; "
        "c = RunConfig.from_dict(json.loads(sys.argv[1])); s = HarnessSettings(**json.loads(sys.argv[2])); "
        "print(json.dumps(time_steps(c, s, mmap_threshold=False)))"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            json.dumps(config.to_dict()),
            json.dumps(asdict(settings)),
            str(os.getpid()),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit status {proc.returncode}"
        return [], f"default-malloc timing child failed: {tail[:300]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def _analytic_fields(config: RunConfig, data: Dataset, n_eval: int) -> dict:
    """The analytic model's prediction for this run, beside the measurement."""
    from .. import model as memory_model

    try:
        pred = memory_model.predict(config, data.in_features, data.num_classes, eval_examples=n_eval)
    except NotImplementedError as exc:  # a trainer the model has no ledger for; anything else is a bug
        return {"analytic_note": str(exc)}
    return {
        "analytic_peak_bytes": pred.peak_bytes,
        "analytic_start_bytes": pred.start_bytes,
        "analytic_transient_bytes": pred.transient_bytes,
        "analytic_first_step_peak_bytes": pred.first_step_peak_bytes,
        "analytic_eval_peak_bytes": pred.eval_peak_bytes,
        "analytic_whole_run_peak_bytes": pred.whole_run_peak_bytes,
    }


def run_one(
    config: RunConfig, settings: HarnessSettings = HarnessSettings(), dataset: Dataset | None = None
) -> dict:
    """Measure one configuration; returns a JSON-serialisable record."""
    run = prepare(config, dataset)
    device, threads, data, trainer, batches = run.device, run.threads, run.data, run.trainer, run.batches

    cuda = device.type == "cuda"

    def tracked(fn, inputs, timeline: bool = False):
        """Run fn() under the tensor tracker (and, on CUDA, the allocator tracker)."""
        gc.collect()  # reference cycles would otherwise die at an arbitrary point
        with CudaPeakTracker(device) if cuda else contextlib.nullcontext() as cuda_tracker:
            with run.tensor_tracker(inputs=inputs, timeline=timeline) as tracker:
                fn()
        return tracker.result(), (cuda_tracker.result() if cuda else None)

    def tracked_step(timeline: bool = False):
        x, y = next(batches)
        return tracked(lambda: trainer.train_step(x, y), (x, y), timeline)

    first, cuda_first = tracked_step()
    for _ in range(settings.warmup_steps):
        trainer.train_step(*next(batches))

    times = _timed_steps(run, settings.timing_steps)
    times_default, default_error = [], None
    if settings.compare_allocator and device.type == "cpu":
        times_default, default_error = time_with_default_malloc(config, settings)

    steady, _ = tracked_step(timeline=settings.timeline)

    # Process high-water and CUDA allocator peak of a steady step, no tensor tracker attached.
    x, y = next(batches)
    gc.collect()
    cuda_mem = None
    with ProcessPeakTracker(sample_ops=device.type == "cpu") as proc:
        with CudaPeakTracker(device) if cuda else contextlib.nullcontext() as cuda_tracker:
            trainer.train_step(x, y)
    process_mem = proc.result()
    cuda_mem = cuda_tracker.result() if cuda else None
    del x, y

    # Evaluation pass, on its own: one chunk (test rows repeated if the split is smaller,
    # so the label replication of a full chunk is measured), tensor-level peak, then time.
    n_eval = settings.eval_examples or config.chunk
    ex = _repeat_rows(data.test_x, n_eval).to(device, trainer.dtype, copy=True)
    ey = _repeat_rows(data.test_y, n_eval).to(device, copy=True)
    eval_mem, cuda_eval = tracked(lambda: trainer.predict(ex), (ex, ey))
    with StepTimer(device) as eval_timer:
        trainer.predict(ex)
    eval_seconds = eval_timer.result().elapsed_ns / 1e9

    step_median = statistics.median(times)
    metrics = {
        **_analytic_fields(config, data, n_eval),
        **_tensor_fields("tensor", steady),
        **_tensor_fields("tensor_first_step", first),
        **_tensor_fields("tensor_eval", eval_mem),
        "tensor_whole_run_peak_bytes": max(first.peak_bytes, steady.peak_bytes, eval_mem.peak_bytes),
        "rss_start_bytes": process_mem.start_rss_bytes,
        "rss_peak_bytes": process_mem.peak_rss_bytes,
        "rss_rise_bytes": process_mem.rise_bytes,
        "rss_op_sampled_rise_bytes": process_mem.op_sampled_rise_bytes,
        "step_seconds_median": step_median,
        "step_seconds_min": min(times),
        "examples_per_second": config.batch_size / step_median,
        "eval_examples": n_eval,  # one full chunk (test rows repeated when fewer)
        "eval_seconds": eval_seconds,
    }
    if default_error:
        metrics["step_seconds_default_malloc_error"] = default_error
    if times_default:
        metrics["step_seconds_median_default_malloc"] = statistics.median(times_default)
        metrics["malloc_setting_time_ratio"] = step_median / statistics.median(times_default)
    if cuda_mem is not None:
        metrics.update(
            {
                "cuda_start_allocated_bytes": cuda_mem.start_allocated_bytes,
                "cuda_peak_allocated_bytes": cuda_mem.peak_allocated_bytes,
                "cuda_rise_allocated_bytes": cuda_mem.rise_allocated_bytes,
                "cuda_peak_reserved_bytes": cuda_mem.peak_reserved_bytes,
                "cuda_first_step_peak_allocated_bytes": cuda_first.peak_allocated_bytes,
                "cuda_eval_peak_allocated_bytes": cuda_eval.peak_allocated_bytes,
                "cuda_whole_run_peak_allocated_bytes": max(
                    cuda_mem.peak_allocated_bytes,
                    cuda_first.peak_allocated_bytes,
                    cuda_eval.peak_allocated_bytes,
                ),
                "cuda_device_used_bytes": cuda_mem.device_used_bytes_after,
                "cuda_device_total_bytes": cuda_mem.device_total_bytes,
            }
        )
    return {
        "kind": "measure",
        "status": "ok",
        "config": config.to_dict(),
        "dataset": data.describe(),
        "batch_convention": BATCH_CONVENTION,
        "eval_chunk": config.chunk,
        "threads": threads,
        "allocator_setting": allocator_setting() if device.type == "cpu" else "n/a",
        "metrics": metrics,
        "step_seconds": times,
        "step_seconds_default_malloc": times_default,
        "phases": [asdict(p) for p in steady.phases],
        "timeline": steady.timeline,
        "methods": {
            "tensor": steady.method,
            "process": process_mem.method,
            "cuda": cuda_mem.method if cuda_mem else None,
            "timer": "perf_counter around each step, device synchronised before and after",
        },
        "environment": environment(device),
    }
