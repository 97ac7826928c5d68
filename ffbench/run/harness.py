"""The measuring harness: `run_one(config)` -> one record.

The harness, not the trainer, owns every clock, device sync and tracker reset
(as in MLCommons' algorithmic-efficiency). On CPU it first lowers glibc's mmap
threshold to 64 KiB, before anything is built (see `prepare`). Then, in order:

1. `measure_memory` (shared with the pytest plugin, `ffbench.pytest_plugin`), each
   step measured on its own under the tensor tracker and, on a GPU, the CUDA
   allocator tracker (composed with `contextlib.ExitStack`):
   a. the first step (optimizer state is allocated lazily here, so its peak differs
      from later steps);
   b. warm-up steps (untracked);
   c. one steady-state step (peak, categories, phases, timeline);
   d. an evaluation pass over one chunk (`settings.eval_examples or config.chunk`
      examples; test rows repeated when the split is smaller);
2. timing steps with no tensor tracker attached (the dispatch mode costs 3-14x on
   small layers), by the timing protocol (`ffbench.measure.protocol`: one thread unless
   asked, adaptive rounds, >= 5 steps, load average recorded): on CPU in a child process
   with glibc's default allocator settings (this process, tuned for RSS, measures memory
   only); a sweep times the trainers of one configuration together instead (`run.timing`);
3. one steady-state step under the process tracker (VmHWM reset through
   /proc/self/clear_refs, plus VmRSS read after every op, because this kernel's
   VmHWM can lag short peaks) and, on CUDA, the allocator tracker: the record's
   steady-step `cuda_*` figures come from this untracked step;
4. the evaluation chunk again, timed.

Every figure is in bytes or seconds. `transient` = step peak - bytes alive at the
start of the step: what a bigger batch or a deeper net must find room for.
The whole-run peak is the maximum over the first step, the steady step and the
evaluation pass (all other steps have the steady step's shapes); on CUDA the
allocator's whole-run peak covers the same steps (the steady one untracked: step 3).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial

import torch

from .. import cuda_allocator
from ..arch import synthetic_features
from ..config import BATCH_CONVENTION, RunConfig
from ..data import Dataset, load_config_dataset
from ..device import resolve_device
from ..environment import environment
from ..measure import (
    CATEGORIES,
    CudaMemory,
    CudaPeakTracker,
    EnergyMeter,
    ProcessMemory,
    ProcessPeakTracker,
    StepTimer,
    TensorMemory,
    TensorTracker,
    set_threads,
)
from ..measure.protocol import MIN_STEPS, Protocol, round_robin
from ..proc import MMAP_THRESHOLD, allocator_setting, set_malloc_mmap_threshold
from ..record import Record
from ..trainers import build_trainer
from ..trainers.registry import family as trainer_family


@dataclass(frozen=True)
class HarnessSettings:
    warmup_steps: int = 1
    timing_steps: int = MIN_STEPS  # at least this many timed steps (measure.protocol); 0: memory only
    eval_examples: int | None = None  # None: one evaluation chunk
    timeline: bool = True
    compare_allocator: bool = True  # CPU: time in a child with glibc's default malloc (False: here)
    defer_timing: bool = False  # the caller times this configuration with its pair group (run.timing)
    evaluate: bool = True  # measure one evaluation chunk (off: a budget that excludes evaluation)
    sites: int = 0  # > 0: the steady step's N largest storages at the peak, with allocation sites


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


def tensor_fields(prefix: str, mem: TensorMemory) -> dict[str, int]:
    """A TensorMemory as record columns: `{prefix}_peak_bytes`, `_start_bytes`,
    `_transient_bytes`, `_saved_activations_bytes` and one `_peak_{category}_bytes` each."""
    out = {
        f"{prefix}_peak_bytes": mem.peak_bytes,
        f"{prefix}_start_bytes": mem.start_bytes,
        f"{prefix}_transient_bytes": mem.transient_bytes,
        f"{prefix}_saved_activations_bytes": mem.peak_saved_bytes,
    }
    for cat in CATEGORIES:
        out[f"{prefix}_peak_{cat}_bytes"] = mem.peak_breakdown.get(cat, 0)
    return out


def peak_holders(mem: TensorMemory) -> dict:
    """`peak_holders` and `peak_sites` record keys (none when sites were not asked for)."""
    if mem.peak_holders is None:
        return {}
    return {"peak_holders": mem.peak_holders, "peak_sites": mem.peak_sites}


def cuda_tracker(stack: contextlib.ExitStack, device: torch.device) -> CudaPeakTracker | None:
    """Enter a CUDA allocator tracker on `stack` when `device` is a GPU; None elsewhere."""
    return stack.enter_context(CudaPeakTracker(device)) if device.type == "cuda" else None


@dataclass
class Prepared:
    """A built trainer and its batch stream: what every measurement needs."""

    config: RunConfig
    device: torch.device
    threads: int
    data: Dataset
    trainer: object
    batches: object  # iterator of (x, y) on the device, each batch owning its storage

    def tensor_tracker(self, inputs=(), timeline: bool = False, sites: int = 0) -> TensorTracker:
        # All devices: on CUDA, Adam keeps its `step` counters on the CPU; they are part
        # of the step's tensors (and of the analytic model) wherever they live.
        model = self.trainer.model
        return TensorTracker(
            model.parameters(),
            self.trainer.optimizers(),
            inputs=inputs,
            timeline=timeline,
            sites=sites,
            module_names={id(m): name for name, m in model.named_modules() if name} if sites else None,
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
        set_malloc_mmap_threshold(MMAP_THRESHOLD)
    threads = set_threads(config.threads)
    data = dataset or load_config_dataset(config)
    trainer = build_trainer(config, data.in_features, data.num_classes, device)
    return Prepared(config, device, threads, data, trainer, _batches(data, config, device, trainer.dtype))


def warmed(config: RunConfig, settings: HarnessSettings, dataset: Dataset | None = None) -> Prepared:
    """A trainer built in this process (its allocator settings untouched), stepped once and
    then `settings.warmup_steps` times: ready to be timed."""
    run = prepare(config, dataset, mmap_threshold=False)
    run.trainer.train_step(*next(run.batches))
    for _ in range(settings.warmup_steps):
        run.trainer.train_step(*next(run.batches))
    return run


def _step(run: Prepared):
    """The untimed part of one step (its batch); returns the timed part."""
    x, y = next(run.batches)
    return lambda: run.trainer.train_step(x, y)


def time_group(configs: list[RunConfig], settings: HarnessSettings) -> dict[str, dict]:
    """The timing protocol (`measure.protocol`) over `configs` in this process: each trainer
    built and warmed up, then all timed round-robin by one job (a pair group: the trainers of
    one configuration, so their ratio is taken under the same conditions). Returns
    record_name(config) -> {step_seconds, metrics, timing} (`protocol.Rounds.fields`)."""
    from ..data import load_config_dataset
    from ..results.store import record_name

    datasets: dict[str, Dataset] = {}
    runs: dict[str, Prepared] = {}
    for config in configs:
        key = json.dumps([config.dataset, config.data_dir, config.val_size, synthetic_features(config)])
        datasets.setdefault(key, load_config_dataset(config))
        runs[record_name(config)] = warmed(config, settings, datasets[key])
    device = next(iter(runs.values())).device
    rule = Protocol.for_steps(settings.timing_steps)
    rounds = round_robin({name: partial(_step, run) for name, run in runs.items()}, device, rule)
    out = {name: rounds.fields(name, rule) for name in runs}
    if device.type == "cuda":  # NVML's board energy: each trainer's steps in a block of their own
        for name, run in runs.items():
            n = len(out[name]["step_seconds"])
            with EnergyMeter(device) as energy:
                for _ in range(n):
                    _step(run)()
                torch.cuda.synchronize(device)  # the queued steps inside the block
            out[name]["metrics"].update(_energy_fields(energy.result(), n))
    return out


def time_group_main(argv: list[str]) -> int:
    """The default-allocator timing child: argv = [configs JSON, settings JSON]; prints
    `time_group`'s result as JSON."""
    configs = [RunConfig.from_dict(c) for c in json.loads(argv[0])]
    print(json.dumps(time_group(configs, HarnessSettings(**json.loads(argv[1])))))
    return 0


def time_with_default_malloc(
    configs: list[RunConfig], settings: HarnessSettings
) -> tuple[dict[str, dict], str | None]:
    """`time_group` in a child process with glibc's default allocator settings (the mmap
    threshold cannot be un-set in this one): forked from the default-malloc template when this
    worker came from one (`executors.template`), else a fresh interpreter.
    Returns (record_name -> fields, error line)."""
    from .executors.template import default_malloc_timing

    args = [json.dumps([c.to_dict() for c in configs]), json.dumps(asdict(settings))]
    proc = default_malloc_timing(args)
    if proc is None:
        code = (
            "import sys; from ffbench.proc import die_with_parent; die_with_parent(int(sys.argv[3])); "
            "from ffbench.run.harness import time_group_main; sys.exit(time_group_main(sys.argv[1:3]))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, *args, str(os.getpid())], capture_output=True, text=True
        )
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit status {proc.returncode}"
        return {}, f"default-malloc timing child failed: {tail[:300]}"
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
        "analytic_train_peak_bytes": pred.train_peak_bytes,
        "analytic_whole_run_peak_bytes": pred.whole_run_peak_bytes,
        "analytic_cuda_allocated_predicted_bytes": pred.cuda_allocated_predicted_bytes,
    }


@dataclass(frozen=True)
class MemoryMeasurement:
    """What `measure_memory` measured: tensor-level figures of the first step, a steady
    step and one evaluation chunk (and, on a GPU, the CUDA allocator's over the same
    blocks), with the analytic model's prediction for the same run."""

    first: TensorMemory
    steady: TensorMemory
    evaluation: TensorMemory | None  # None when the settings skip evaluation
    eval_examples: int
    analytic: dict = field(default_factory=dict)  # empty for a trainer the model does not cover
    cuda_first: CudaMemory | None = None
    cuda_steady: CudaMemory | None = None
    cuda_evaluation: CudaMemory | None = None
    cuda_allocated_predicted_bytes: int = 0  # steady step, ffbench.cuda_allocator's rule

    @property
    def whole_run_peak_bytes(self) -> int:
        evaluation = self.evaluation.peak_bytes if self.evaluation is not None else 0
        return max(self.first.peak_bytes, self.steady.peak_bytes, evaluation)

    @property
    def train_peak_bytes(self) -> int:
        """The training steps' peak (first and steady step): what training alone must fit."""
        return max(self.first.peak_bytes, self.steady.peak_bytes)

    def fields(self, steady_cuda: CudaMemory | None = None) -> dict:
        """Record columns with the harness's names: `analytic_*`, every `tensor_*`
        (steady step, `_first_step`, `_eval`, `tensor_whole_run_peak_bytes`),
        `eval_examples`, the predicted `cuda_allocated_predicted_bytes` and, on a GPU, the
        measured `cuda_*`. `steady_cuda`: allocator figures of a
        steady step run without the tensor tracker (the harness's process-tracker step);
        they replace the tracked steady step's, in the whole-run peak too."""
        return {
            **self.analytic,
            **tensor_fields("tensor", self.steady),
            **tensor_fields("tensor_first_step", self.first),
            **(tensor_fields("tensor_eval", self.evaluation) if self.evaluation is not None else {}),
            "tensor_train_peak_bytes": self.train_peak_bytes,
            "tensor_whole_run_peak_bytes": self.whole_run_peak_bytes,
            "eval_examples": self.eval_examples,  # one full chunk (test rows repeated when fewer)
            "cuda_allocated_predicted_bytes": self.cuda_allocated_predicted_bytes,  # a prediction
            **self.cuda_fields(steady_cuda or self.cuda_steady),
        }

    def cuda_fields(self, steady: CudaMemory | None) -> dict:
        """The `cuda_*` columns (none off a GPU): steady-step figures from `steady`, the
        whole-run peak over it, the first step and the evaluation chunk."""
        if steady is None or self.cuda_first is None:
            return {}
        peaks = (steady, self.cuda_first) + ((self.cuda_evaluation,) if self.cuda_evaluation else ())
        return {
            "cuda_start_allocated_bytes": steady.start_allocated_bytes,
            "cuda_peak_allocated_bytes": steady.peak_allocated_bytes,
            "cuda_rise_allocated_bytes": steady.rise_allocated_bytes,
            "cuda_peak_reserved_bytes": steady.peak_reserved_bytes,
            "cuda_first_step_peak_allocated_bytes": self.cuda_first.peak_allocated_bytes,
            "cuda_eval_peak_allocated_bytes": self.cuda_evaluation.peak_allocated_bytes
            if self.cuda_evaluation
            else None,
            "cuda_train_peak_allocated_bytes": max(
                steady.peak_allocated_bytes, self.cuda_first.peak_allocated_bytes
            ),
            "cuda_whole_run_peak_allocated_bytes": max(m.peak_allocated_bytes for m in peaks),
            "cuda_device_used_bytes": steady.device_used_bytes_after,
            "cuda_device_total_bytes": steady.device_total_bytes,
        }


def eval_batch(run: Prepared, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One evaluation chunk of n test examples on the device, each owning its storage (test
    rows repeated when the split is smaller, so a full chunk's label replication is measured)."""
    ex = _repeat_rows(run.data.test_x, n).to(run.device, run.trainer.dtype, copy=True)
    ey = _repeat_rows(run.data.test_y, n).to(run.device, copy=True)
    return ex, ey


def _tracked(
    run: Prepared, fn, inputs, timeline: bool = False, sites: int = 0
) -> tuple[TensorMemory, CudaMemory | None]:
    """fn() under the tensor tracker and, on a GPU, the CUDA allocator tracker (outside it)."""
    gc.collect()  # reference cycles would otherwise die at an arbitrary point
    with contextlib.ExitStack() as stack:
        cuda = cuda_tracker(stack, run.device)
        tensor = stack.enter_context(run.tensor_tracker(inputs=inputs, timeline=timeline, sites=sites))
        fn()
    return tensor.result(), (cuda.result() if cuda else None)


def _tracked_step(
    run: Prepared, timeline: bool = False, sites: int = 0
) -> tuple[TensorMemory, CudaMemory | None]:
    x, y = next(run.batches)  # dies on return: no batch outlives its step
    return _tracked(run, lambda: run.trainer.train_step(x, y), (x, y), timeline, sites)


def _tracked_eval(run: Prepared, n: int) -> tuple[TensorMemory, CudaMemory | None]:
    ex, ey = eval_batch(run, n)
    return _tracked(run, lambda: run.trainer.predict(ex), (ex, ey))


def measure_memory(run: Prepared, settings: HarnessSettings = HarnessSettings()) -> MemoryMeasurement:
    """The memory measurement of one prepared run, shared by `run_one` and the pytest plugin:
    the first step, `settings.warmup_steps` untracked steps, one steady step (with a timeline
    if `settings.timeline`), then one evaluation chunk of `settings.eval_examples or
    config.chunk` examples, each under its own trackers."""
    first, cuda_first = _tracked_step(run)
    for _ in range(settings.warmup_steps):
        run.trainer.train_step(*next(run.batches))
    steady, cuda_steady = _tracked_step(run, timeline=settings.timeline, sites=settings.sites)
    n_eval = settings.eval_examples or run.config.chunk
    evaluation, cuda_evaluation = _tracked_eval(run, n_eval) if settings.evaluate else (None, None)
    return MemoryMeasurement(
        first=first,
        steady=steady,
        evaluation=evaluation,
        eval_examples=n_eval,
        analytic=_analytic_fields(run.config, run.data, n_eval),
        cuda_first=cuda_first,
        cuda_steady=cuda_steady,
        cuda_evaluation=cuda_evaluation,
        cuda_allocated_predicted_bytes=_cuda_predicted(run, steady),
    )


def _cuda_predicted(run: Prepared, steady: TensorMemory) -> int:
    """The steady step's predicted CUDA allocator peak (`ffbench.cuda_allocator`)."""
    ca = cuda_allocator
    workspace = ca.step_workspace_bytes(run.config.trainer, ca.device_capability(run.device))
    host = ca.host_scalar_count(run.trainer.optimizers())
    return ca.predicted_allocated_bytes(steady.rounded_peak_bytes, host, workspace)


def _process_step(run: Prepared) -> tuple[ProcessMemory, CudaMemory | None]:
    """Process high-water (and CUDA allocator) figures of one steady step, no tensor tracker."""
    x, y = next(run.batches)
    gc.collect()
    with contextlib.ExitStack() as stack:
        proc = stack.enter_context(ProcessPeakTracker(sample_ops=run.device.type == "cpu"))
        cuda = cuda_tracker(stack, run.device)
        run.trainer.train_step(x, y)
    return proc.result(), (cuda.result() if cuda else None)


def _eval_seconds(run: Prepared, n: int) -> float:
    ex, _ = eval_batch(run, n)
    with StepTimer(run.device) as timer:
        run.trainer.predict(ex)
    return timer.result().elapsed_ns / 1e9


def _time_here(run: Prepared, settings: HarnessSettings) -> dict:
    """The timing protocol over this prepared (already warmed) run, in this process."""
    from ..results.store import record_name

    rule, name = Protocol.for_steps(settings.timing_steps), record_name(run.config)
    with EnergyMeter(run.device) as energy:  # NVML's board energy over the timed steps (GPU only)
        fields = round_robin({name: partial(_step, run)}, run.device, rule).fields(name, rule)
    if run.device.type == "cuda":
        fields["metrics"].update(_energy_fields(energy.result(), len(fields["step_seconds"])))
    return fields


def timing(run: Prepared, settings: HarnessSettings) -> dict:
    """The step times of a record (`protocol.Rounds.fields`, or `timing_error`): on CPU in a
    child with glibc's default allocator settings (unless `compare_allocator` is off), on
    other devices here; {} for a memory-only run or one its caller times (`defer_timing`)."""
    if not settings.timing_steps or settings.defer_timing:
        return {}
    if run.device.type != "cpu" or not settings.compare_allocator:
        return _time_here(run, settings)
    from ..results.store import record_name

    found, error = time_with_default_malloc([run.config], settings)
    return found.get(record_name(run.config)) or {"timing_error": error or "no times came back"}


def timed_fields(config: RunConfig, found: dict) -> dict:
    """A record's fields from `timing`'s result: `step_seconds`, `timing`, and the metrics
    (median, quartiles, IQR, count, conditions, examples per second)."""
    if not found.get("step_seconds"):
        return {"timing_error": found["timing_error"]} if found.get("timing_error") else {}
    metrics = {
        **found["metrics"],
        "examples_per_second": config.batch_size / found["metrics"]["step_seconds_median"],
    }
    return {"step_seconds": found["step_seconds"], "timing": found["timing"], "metrics": metrics}


def _energy_fields(energy, steps: int) -> dict:
    """`energy_joules_per_step` beside the step times, or `energy_unavailable` saying why."""
    if energy.joules is None or not steps:
        return {"energy_unavailable": energy.unavailable or "no timed steps"}
    return {"energy_joules_per_step": energy.joules / steps}


def run_one(
    config: RunConfig, settings: HarnessSettings = HarnessSettings(), dataset: Dataset | None = None
) -> Record:
    """Measure one configuration; returns its record (`Record.to_dict()` is the JSON)."""
    passes: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        passes[name], clock = time.perf_counter() - clock, time.perf_counter()

    run = prepare(config, dataset)
    device = run.device
    lap("prepare_seconds")
    memory = measure_memory(run, settings)
    lap("memory_seconds")
    timed = timed_fields(config, timing(run, settings))
    lap("timing_seconds")
    process_mem, cuda_mem = _process_step(run)
    lap("process_step_seconds")
    metrics = {
        **memory.fields(steady_cuda=cuda_mem),
        "rss_start_bytes": process_mem.start_rss_bytes,
        "rss_peak_bytes": process_mem.peak_rss_bytes,
        "rss_rise_bytes": process_mem.rise_bytes,
        "rss_op_sampled_rise_bytes": process_mem.op_sampled_rise_bytes,
        **timed.pop("metrics", {}),
    }
    if settings.evaluate:
        metrics["eval_seconds"] = _eval_seconds(run, memory.eval_examples)
        lap("eval_seconds")
    steady = memory.steady
    return Record.build(
        kind="measure",
        status="ok",
        config=config.to_dict(),
        family=trainer_family(config.trainer, config.arch, config.bptt_window),
        dataset=run.data.describe(),
        batch_convention=BATCH_CONVENTION,
        eval_chunk=config.chunk,
        threads=run.threads,
        allocator_setting=allocator_setting() if device.type == "cpu" else "n/a",
        metrics=metrics,
        **{"step_seconds": [], **timed},  # the times, when any were taken
        passes_seconds=passes,  # the measurement passes (a sweep's overhead is the rest)
        **({"timing_pending": True} if settings.defer_timing and settings.timing_steps else {}),
        phases=[asdict(p) for p in steady.phases],
        timeline=steady.timeline,
        **peak_holders(steady),
        methods={
            "tensor": steady.method,
            "process": process_mem.method,
            "cuda": cuda_mem.method if cuda_mem else None,
            "timer": "perf_counter around each step, device synchronised before and after; "
            "rounds by the timing protocol (ffbench.measure.protocol)",
        },
        environment=environment(device),
    )
