"""`ffbench reproduce`: re-run the memory and accuracy claims for Forward-Forward.

One command runs, into the run folder `results/<run>/` (resumable: re-running the same
command skips what is already recorded):

1. memory sweeps, each a results folder (`Profile.sweeps`): the main grid (every trainer
   over depth and batch, timed), one column under other optimizers, the paper's width, an
   activation-dominated shape and the evaluation modes -- on random inputs of MNIST's shape
   -- and a CIFAR-shaped convolutional grid (`--arch conv`, random 3x32x32 images)
   (`synthetic`: memory does not depend on pixel values; labelled as such);
2. a largest-batch search under a tensor-level budget (`maxbatch`);
3. accuracy runs (`fit`) on real data: FF and BP of the same architecture, several seeds;
4. the HTML report `reports/<run>.html` with every claim's verdict, printed at the end.

Profiles:
- `quick`: offline, 2 CPU cores, aimed at 10 minutes (not yet met: `--dry-run` prints the
  estimate, calibrated from the last recorded run); MNIST when it is available, else the
  `auto` dataset (stated in the report).
Both measure the recurrent network's memory over T in {2, 4, 8, 16, 32} for every recurrent
trainer (folder `recurrent`: d2 w256 b128 in quick, 2 x 2000 in full).
- `full`: the paper's setting, for a GPU: 4 x 2000 ReLUs, 60 epochs, 3 seeds; memory over
  depth up to 47 layers of width 2000 at batch 5000; the recurrent network (2 x 2000, the
  paper's 8 iterations) trained by FF in time, by BPTT and as a cross-entropy read-out. On a CPU it prints its estimated
  time first and needs `--yes`.

Recipes: FF uses RMS normalisation, mean goodness, batch 100; BP batch 100; both Adam. The
learning rates (and FF's theta) of the accuracy runs are chosen by one procedure with the
same declared budget for both families (`ffbench.run.tuning`: a committed tuning record under
results/tuning/, or run when absent); each accuracy run stops at the target validation
accuracy (`analysis/thresholds.py`) or its epoch cap. FF_RECIPE / BP_RECIPE are the starting
recipes of the other networks and of profiles without a tuning plan.
"""

from __future__ import annotations

import datetime as _dt
import io
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError
from ..trainers.registry import grid_trainers
from .calibrate import Calibration
from .tuning import TuningPlan, plan_for

FF_RECIPE = dict(lr=5e-3, ff_threshold=8.0, batch_size=100)
BP_RECIPE = dict(lr=1e-3, batch_size=100)


@dataclass(frozen=True)
class MemorySweep:
    """One results folder of the run: a grid (axes as `ffbench sweep` takes them) on a base
    configuration, with `steps` timed steps per configuration (0: memory only)."""

    name: str
    grid: dict
    steps: int = 0
    config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    sweeps: tuple[MemorySweep, ...]
    maxbatch_budget: str
    maxbatch_width: int
    maxbatch_trainers: tuple[str, ...]
    maxbatch_depths: tuple[int, ...]
    accuracy_runs: tuple[RunConfig, ...]
    seeds: tuple[int, ...]
    # the largest batch again with micro-batching on both sides: (micro-batch, trainers)
    maxbatch_micro: tuple[tuple[str, tuple[str, ...]], ...] = ()
    maxbatch_tolerance: float = 0.02  # relative width of the bracket the search stops at
    # FF's and BP's recipes for the accuracy runs of this network: chosen by this plan (read
    # from results/tuning/ or run), each run stopping at the target (epochs: the cap)
    tuning: TuningPlan | None = None
    description: str = ""


def _runs(depth: int, width: int, epochs_ff: int, epochs_bp: int) -> tuple[RunConfig, ...]:
    """FF and BP of the same architecture (the accuracy-at-equal-architecture claim)."""
    return (
        RunConfig(trainer="ff", depth=depth, width=width, epochs=epochs_ff, **FF_RECIPE),
        RunConfig(trainer="bp", depth=depth, width=width, epochs=epochs_bp, **BP_RECIPE),
    )


def _grid(trainers, depths, batches, widths, **more) -> dict:
    return {"trainers": list(trainers), "depths": list(depths), "batch_sizes": list(batches),
            "widths": list(widths), **{k: list(v) for k, v in more.items()}}  # fmt: skip


# bp-accum is `bp --micro-batch 1/4`: micro-batching is a knob of every family (the MICRO sweeps)
PLAIN = tuple(t for t in grid_trainers() if t != "bp-accum")
FAMILIES = ("bp", "bp-checkpoint", "bp-inbackward", "bp-local", "ff", "ff-frugal")
# The trainers of both families that accumulate micro-batches (the same update as without);
# each micro-batched grid runs them at MICRO, a quarter of the batch (bp-accum's setting)
MICRO_TRAINERS = ("bp", "bp-checkpoint", "ff", "ff-frugal")
MICRO = ("1/4",)


def _micro(grid: dict, schedules: bool = False) -> dict:
    """The same grid for the micro-batching trainers at MICRO (schedules: FF's other schedule,
    layer-major; micro-batch-major is the default, measured in the plain micro-batched grid)."""
    if schedules:
        return {**grid, "trainers": ["ff", "ff-frugal"], "micro_batches": list(MICRO),
                "ff_micro_schedule": ["layer-major"]}  # fmt: skip
    return {**grid, "trainers": list(MICRO_TRAINERS), "micro_batches": list(MICRO)}


# FF in time against BPTT (--arch recurrent): every recurrent trainer over the number of time
# steps, truncated BPTT (window 4) beside full and checkpointed BPTT, into one folder
TIME_STEPS = (2, 4, 8, 16, 32)
RECURRENT_RECIPE = dict(arch="recurrent", time_steps=8, lr=3e-3, lr_schedule="linear", ff_negatives="hard",
                        ff_threshold=8.0, batch_size=100)  # fmt: skip


def _recurrent_sweeps(widths, batches, time_steps=None, bptt_time_steps=None, micro_time_steps=None):
    """The recurrent memory sweeps (TIME_STEPS unless given; truncated BPTT and the micro-batched
    grid over `time_steps` unless given their own)."""
    config = {"arch": "recurrent"}
    trainers = ("ff", "bp", "bp-checkpoint")
    time_steps = time_steps or TIME_STEPS
    grid = _grid(trainers, (2,), batches, widths, time_steps=time_steps)
    truncated = bptt_time_steps or time_steps
    return (
        MemorySweep("recurrent", grid, config=config),
        MemorySweep("recurrent", _grid(("bp",), (2,), batches, widths, time_steps=truncated, bptt_window=(4,)),
                    config=config),
        MemorySweep("recurrent", {**grid, "time_steps": list(micro_time_steps or time_steps),
                                  "micro_batches": list(MICRO)}, config=config),
    )  # fmt: skip


def _recurrent_runs(width: int, epochs: int) -> tuple[RunConfig, ...]:
    """FF in time and full BPTT on the same network and recipe, and BPTT's cross-entropy read-out."""
    return (
        RunConfig(trainer="ff", depth=2, width=width, epochs=epochs, **RECURRENT_RECIPE),
        RunConfig(trainer="bp", depth=2, width=width, epochs=epochs, **RECURRENT_RECIPE),
        RunConfig(trainer="bp-ce", depth=2, width=width, epochs=epochs, **{**RECURRENT_RECIPE, "lr": 1e-3}),
    )


# CIFAR-shaped convolutional memory (issue 15): synthetic 3x32x32 images, conv 3x3/s1 + ReLU
# layers, FF with SymBa's loss (the conv FF that learns; ff-frugal then runs the together pass)
# and a 64-example evaluation chunk (FF's label loop is 10 forwards). Activations are most of
# bp's peak here, the regime in which FF can save memory at all.
CONV = {"arch": "conv", "image_shape": "3x32x32", "ff_loss": "symba", "eval_chunk": 64}


def _conv_grid(depths, batches, channels) -> dict:
    return {"trainers": list(FAMILIES), "depths": list(depths), "batch_sizes": list(batches),
            "channels": [str(c) for c in channels]}  # fmt: skip


def _evaluation_sweep(depth: int, batch: int, width: int) -> MemorySweep:
    """The instrument: replicated against label-loop evaluation at two chunk sizes."""
    grid = _grid(("ff", "ff-frugal"), (depth,), (batch,), (width,), ff_eval=("label-loop", "replicated"),
                 eval_chunk=(256, 1024))  # fmt: skip
    return MemorySweep("evaluation", grid)


QUICK = Profile(
    name="quick",
    # Thinned to fit 10 minutes on 2 cores (issue 23): every claim keeps its evidence, the
    # series are sparser (depths 2-8 at batch 1024, 2 and 8 elsewhere, the paper's width at
    # depth 2; T 2, 8, 32; conv at 16 channels) and the micro-batched grids sit at the points the equal-knob claims compare.
    sweeps=(
        # the main grid, timed: every trainer over depth at width 500, batch 1024 (and 64 at
        # depths 2 and 8), and the micro-batching trainers of both families at a quarter of the batch
        MemorySweep("sweep", _grid(PLAIN, (2, 4, 8), (1024,), (500,)), steps=5),
        MemorySweep("sweep", _grid(PLAIN, (2, 8), (64,), (500,)), steps=5),
        MemorySweep("sweep", _micro(_grid(PLAIN, (2, 8), (1024,), (500,))), steps=5),
        MemorySweep("sweep", _micro(_grid(PLAIN, (2, 8), (1024,), (500,)), schedules=True), steps=5),
        # the optimizer decides the binding phase: one configuration, two more optimizers
        MemorySweep("optimizers", _grid(PLAIN, (8,), (1024,), (500,), optimizers=("adam-fused", "sgd"))),
        # the paper's width, and an activation-dominated shape (batch >= 4 x width) deep enough
        # for a crossover
        MemorySweep("wide", _grid(FAMILIES, (2,), (1024,), (2000,))),
        MemorySweep("activations", _grid(FAMILIES, (2, 8, 32), (2048,), (256,))),
        MemorySweep("activations", _micro(_grid(FAMILIES, (8, 32), (2048,), (256,)))),
        # convolutional, CIFAR-shaped: where activations dominate (timed): 16 channels over
        # depth 2-8 at batch 64, with micro-batches at depth 2 and 8, and batch 256 at depth 2
        MemorySweep("conv", _conv_grid((2, 4, 8), (64,), (16,)), steps=5, config=CONV),
        MemorySweep("conv", _micro(_conv_grid((2, 8), (64,), (16,))), steps=5, config=CONV),
        MemorySweep("conv-batch", _conv_grid((2,), (256,), (16,)), config=CONV),
        _evaluation_sweep(2, 1024, 500),
        # FF in time against BPTT at d2 w256 b128 (memory only; accuracy: results/*-cpu-recurrent/)
        *_recurrent_sweeps(
            (256,), (128,), time_steps=(2, 8, 32), bptt_time_steps=(8, 32), micro_time_steps=(8, 32)
        ),
    ),
    maxbatch_budget="128MiB",
    maxbatch_width=500,
    maxbatch_trainers=("bp", "bp-inbackward", "ff", "ff-frugal"),
    maxbatch_depths=(8,),
    maxbatch_micro=((MICRO[0], ("bp", "ff-frugal")),),
    accuracy_runs=_runs(2, 500, epochs_ff=20, epochs_bp=20),
    seeds=(0, 1, 2),
    tuning=plan_for(2, 500, epoch_cap=20),
    description="2 CPU cores, aimed at 10 minutes (see the estimate): memory at widths 256-2000 and CIFAR-shaped conv nets, "
    "every family with and without micro-batches, accuracy of 2 x 500 nets",
)
FULL = Profile(
    name="full",
    sweeps=(
        MemorySweep("sweep", _grid(PLAIN, (2, 4, 8, 16, 24, 32, 47), (64, 1024, 5000), (2000,)), steps=5),
        MemorySweep("sweep", _micro(_grid(PLAIN, (2, 4, 8, 16, 24, 32, 47), (1024, 5000), (2000,))), steps=5),
        MemorySweep("sweep", _micro(_grid(PLAIN, (2, 8, 32), (5000,), (2000,)), schedules=True), steps=5),
        MemorySweep(
            "optimizers", _grid(PLAIN, (2, 8, 32), (1024, 5000), (2000,), optimizers=("adam-fused", "sgd"))
        ),
        MemorySweep("activations", _grid(PLAIN, (2, 8, 32), (8192,), (500, 1000))),
        MemorySweep("activations", _micro(_grid(PLAIN, (2, 8, 32), (8192,), (500, 1000)))),
        MemorySweep("conv", _conv_grid((2, 4, 8), (64, 256, 1024), (16, 64, 256)), steps=5, config=CONV),
        MemorySweep(
            "conv", _micro(_conv_grid((2, 4, 8), (64, 256, 1024), (16, 64, 256))), steps=5, config=CONV
        ),
        _evaluation_sweep(4, 5000, 2000),
        # FF in time against BPTT on the paper's recurrent shape (2 x 2000)
        *_recurrent_sweeps((2000,), (128, 1024)),
    ),
    maxbatch_budget="8GiB",
    maxbatch_width=2000,
    maxbatch_trainers=FAMILIES,
    maxbatch_depths=(4, 16, 47),
    maxbatch_micro=((MICRO[0], ("bp", "bp-checkpoint", "ff", "ff-frugal")),),
    # and the paper's recurrent setting (8 iterations, 2 x 2000) against BPTT
    accuracy_runs=_runs(4, 2000, epochs_ff=60, epochs_bp=60) + _recurrent_runs(2000, 60),
    seeds=(0, 1, 2, 3, 4),
    tuning=plan_for(4, 2000, epoch_cap=60),
    description="the paper's setting (4 x 2000, 60 epochs, 3 seeds), memory up to 47 layers and conv nets "
    "up to 256 channels, depth 8, batch 1024, every family with and without micro-batches",
)
PROFILES = {"quick": QUICK, "full": FULL}


def run_name(profile: str, device_type: str, today: _dt.date | None = None) -> str:
    return f"{(today or _dt.date.today()).isoformat()}-{device_type}-{profile}"


def _sweep_configs(sweep: MemorySweep) -> list[RunConfig]:
    from .sweep import grid_configs

    return grid_configs(RunConfig(dataset="synthetic", **sweep.config), sweep.grid)


def estimate_stages(
    profile: Profile, seconds_per_gflop: float, cpu: bool = True, examples: int | None = None
) -> dict[str, float]:
    """Rough seconds of each part of a profile (`ffbench.run.estimate`): every memory sweep,
    the largest-batch searches (seeded by the analytic model) and the accuracy runs (on
    `examples` training examples a epoch: MNIST's when not given)."""
    from .. import model
    from ..units import parse_size
    from .estimate import MNIST_SHAPE, fit_seconds, measure_seconds, search_seconds

    out: dict[str, float] = {}
    for s in profile.sweeps:  # several grids may share one folder: their times add up
        key = f"memory: {s.name}"
        out[key] = out.get(key, 0.0) + measure_seconds(_sweep_configs(s), s.steps, seconds_per_gflop, cpu)
    budget, searches = parse_size(profile.maxbatch_budget), 0.0
    for micro, trainers in _maxbatch_searches(profile):
        for trainer, depth in itertools.product(trainers, profile.maxbatch_depths):
            cfg = RunConfig(
                trainer=trainer,
                depth=depth,
                width=profile.maxbatch_width,
                dataset="synthetic",
                micro_batch=micro,
            )
            try:
                seed = model.max_batch_size(cfg, budget)
            except NotImplementedError:
                seed = None
            searches += search_seconds(cfg, seed, seconds_per_gflop)
    out["maxbatch"] = searches
    n = examples or MNIST_SHAPE[2]
    out["accuracy"] = sum(fit_seconds(c, seconds_per_gflop, n) for c in profile.accuracy_runs) * len(
        profile.seeds
    )
    return out


def plan_units(profile: Profile) -> dict[str, int]:
    """The work of each stage, recorded in the run summary so that a later estimate can scale
    this run's stage times (`run/calibrate.py`): memory configurations, largest-batch
    searches, accuracy epochs over every seed."""
    return {
        "memory": sum(len(_sweep_configs(s)) for s in profile.sweeps),
        "maxbatch": sum(len(t) for _, t in _maxbatch_searches(profile)) * len(profile.maxbatch_depths),
        "accuracy": sum(c.epochs for c in profile.accuracy_runs) * len(profile.seeds),
    }


def estimate_seconds(profile: Profile, seconds_per_gflop: float) -> float:
    """Rough seconds of a whole profile (see `estimate_stages`)."""
    return sum(estimate_stages(profile, seconds_per_gflop).values())


@dataclass
class ReproduceRun:
    """One invocation of `reproduce`: what every stage needs."""

    profile: Profile
    device: str  # as requested ("auto", "cpu", "cuda")
    dev: Any  # the resolved torch.device
    data_dir: str | None
    dataset: Any  # the accuracy runs' Dataset
    out: Path  # results/<run>/
    report_path: Path
    progress: bool
    echo: Callable[[str], None]
    executor: Any = None  # where every measurement and accuracy run happens (`run.executors`)

    @property
    def threads(self) -> int | None:
        return 1 if self.dev.type == "cpu" else None  # every run: one thread on a shared CPU (recorded)


def stage_memory(run: ReproduceRun) -> None:
    """Each memory sweep of the profile into results/<run>/<name>/ (synthetic inputs of
    MNIST's shape: memory does not depend on pixel values; labelled as such)."""
    from .sweep import plan_sweep, run_plan

    for sweep in run.profile.sweeps:
        config = {"dataset": "synthetic", "device": run.device, "threads": run.threads, **sweep.config}
        plan = plan_sweep(
            grid_flags=sweep.grid,
            config_flags=config,
            setting_flags={"steps": sweep.steps},
            out=str(run.out / sweep.name),
            executor=run.executor,
        )
        run_plan(plan, executor=run.executor, progress=run.progress, echo=run.echo)


def stage_maxbatch(run: ReproduceRun) -> None:
    """The largest batch under a tensor-level budget (training steps), per trainer and depth."""
    from ..units import parse_size
    from .maxbatch import run_maxbatch, table

    p = run.profile
    base = RunConfig(
        dataset="synthetic", device=run.device, width=p.maxbatch_width, batch_size=1, threads=run.threads
    )
    for micro, trainers in _maxbatch_searches(p):
        found = run_maxbatch(
            base.replace(micro_batch=micro),
            list(trainers),
            list(p.maxbatch_depths),
            parse_size(p.maxbatch_budget),
            out=run.out / "maxbatch",
            budget_kind="tensor",
            progress=run.progress,
            tolerance=p.maxbatch_tolerance,
            echo=run.echo,
            executor=run.executor,
        )
        run.echo(table(found))


def _maxbatch_searches(p: Profile) -> list[tuple[str | None, tuple[str, ...]]]:
    """(micro-batch, trainers) of each largest-batch search: without micro-batches, then with."""
    return [(None, p.maxbatch_trainers), *p.maxbatch_micro]


def stage_accuracy(run: ReproduceRun) -> None:
    """Every accuracy run without a record, as executor jobs (in parallel on a cluster);
    each record is written here, by the driver, as its run finishes."""
    from ..results.store import WORK, write_json_atomic
    from .executors import Job

    train_dir = run.out / "train"
    jobs = []
    accuracy_runs, tuning = tuned_runs(run)
    for seed in run.profile.seeds:
        for cfg in accuracy_runs:
            cfg = cfg.replace(
                seed=seed,
                device=run.device,
                dataset=run.dataset.name,
                data_dir=run.data_dir,
                threads=run.threads,
            )
            name = f"{cfg.short_name()}-s{seed}.json"
            if (train_dir / name).exists():
                run.echo(f"{name}: already recorded")
                continue
            to = (
                ""
                if cfg.target_accuracy is None
                else f"to {100 * cfg.target_accuracy:g} % validation, at most "
            )
            run.echo(
                f"accuracy: {cfg.short_name()} seed {seed}, {to}{cfg.epochs} epochs on {run.dataset.name}"
            )
            spec = {"config": cfg.to_dict(), "progress": run.progress}
            if tuning is not None and cfg.target_accuracy is not None:
                spec["tuning"] = tuning
            work = train_dir / WORK
            scratch = f"{os.getpid()}-{name}"  # per driver, as a sweep's
            jobs.append(
                Job(name, spec, work / f"{scratch}.spec", work / scratch, kind="train", stream_output=True)
            )
    failed = []
    for result in run.executor.run(jobs):
        if result.record is None:
            lines = result.stderr_tail.strip().splitlines() or [f"exit status {result.returncode}"]
            failed.append(f"{result.job.key}: {lines[-1][:300]}")
            continue
        write_json_atomic(train_dir / result.job.key, result.record)
    if (train_dir / WORK).exists() and not any((train_dir / WORK).iterdir()):
        (train_dir / WORK).rmdir()
    for line in failed:
        run.echo(f"accuracy run failed (no record; re-run to retry): {line}")


def tuned_runs(run: ReproduceRun) -> tuple[tuple[RunConfig, ...], dict | None]:
    """The profile's accuracy runs, those of its tuned network with the chosen recipes and
    the target to stop at (`thresholds.target_accuracy`); and what their records carry of
    the tuning (record name, plan, criterion, chosen recipes, trials). The tuning record is
    read from `<results>/tuning/`, or run and written there when absent."""
    plan = run.profile.tuning
    if plan is None:
        return run.profile.accuracy_runs, None
    from ..analysis.thresholds import target_accuracy
    from .tuning import load_or_tune

    target = target_accuracy(run.dataset.name, plan.arch)
    record, path = load_or_tune(plan, run.dataset, target, run.out.parent / "tuning", device=run.device,
                                echo=run.echo)  # fmt: skip
    chosen = {family: f["chosen"] for family, f in record["families"].items()}
    tuned = (plan.arch, plan.depth, plan.width, plan.batch_size)
    runs = tuple(
        cfg.replace(**chosen[cfg.trainer], target_accuracy=target)
        if cfg.trainer in chosen and (cfg.arch, cfg.depth, cfg.width, cfg.batch_size) == tuned
        else cfg
        for cfg in run.profile.accuracy_runs
    )
    trials = {family: [{k: v for k, v in t.items() if k != "val_curve"} for t in f["trials"]]
              for family, f in record["families"].items()}  # fmt: skip
    summary = {"record": f"tuning/{path.name}", "plan": record["plan"], "criterion": record["criterion"],
               "chosen": chosen, "trials": trials}  # fmt: skip
    return runs, summary


# The stages, in order; each is timed, and a re-run skips what is already recorded.
STAGES: dict[str, Callable[[ReproduceRun], None]] = {
    "memory": stage_memory,
    "maxbatch": stage_maxbatch,
    "accuracy": stage_accuracy,
}


def _profile_and_device(profile_name: str, device: str, executor, yes: bool, dry_run: bool):
    """The profile and the device a run uses (a remote executor's worker resolves the device);
    the full profile on a CPU only with `yes`."""
    import torch

    from ..device import resolve_device

    if profile_name not in PROFILES:
        raise ConfigError(f"unknown profile {profile_name!r}; choose from {', '.join(PROFILES)}")
    profile = PROFILES[profile_name]
    remote = executor.environment(device) if getattr(executor, "remote", False) else None
    dev = resolve_device(device) if remote is None else torch.device(remote["device"])
    if profile.name == "full" and dev.type == "cpu" and not yes and not dry_run:
        from .estimate import measure_speed

        hours = estimate_seconds(profile, measure_speed("cpu")) / 3600
        raise ConfigError(
            f"the full profile is meant for a GPU; on this CPU it would take about "
            f"{hours:.0f} hours (estimated from a matmul timing); add --yes to run it anyway"
        )
    return profile, dev


def _outputs(name: str | None, profile: Profile, dev, results_root, reports_root) -> tuple[Path, Path]:
    """The run folder and the report a run writes, checked."""
    run = name or run_name(profile.name, dev.type)
    out, report_path = Path(results_root) / run, Path(reports_root) / f"{run}.html"
    _check_outputs(out, report_path)
    return out, report_path


def _calibrated(run: ReproduceRun) -> tuple[dict[str, float], Calibration]:
    """The model's seconds per stage (memory per folder) and the calibrated stage seconds."""
    from .calibrate import calibrate, last_summary
    from .estimate import measure_speed

    examples = len(run.dataset.train_y)
    model = estimate_stages(
        run.profile, measure_speed(run.device), cpu=run.dev.type == "cpu", examples=examples
    )
    stages = {"memory": sum(v for k, v in model.items() if k.startswith("memory: ")),
              "maxbatch": model["maxbatch"], "accuracy": model["accuracy"]}  # fmt: skip
    found = last_summary(run.out.parent, run.profile.name, run.dev.type)
    return model, calibrate(stages, plan_units(run.profile), (run.dataset.name, examples), found)


def dry_run_text(run: ReproduceRun) -> str:
    """The plan of a run: what each stage measures, what is already recorded, how long
    (calibrated from the last recorded run of the profile where there is one)."""
    from .estimate import minutes

    model, cal = _calibrated(run)
    stages = cal.seconds
    memory_model = sum(v for k, v in model.items() if k.startswith("memory: ")) or 1.0
    lines = [f"ffbench reproduce --profile {run.profile.name} --dry-run: {run.profile.description}",
             f"device {run.dev}; accuracy on {run.dataset.name} ({run.dataset.source})",
             f"results -> {run.out}{' (exists: resumes)' if run.out.exists() else ''}; report -> {run.report_path}"]  # fmt: skip
    for name in dict.fromkeys(s.name for s in run.profile.sweeps):
        share = model[f"memory: {name}"] / memory_model  # the memory stage split as the model splits it
        lines.append(f"  memory {name}: {minutes(stages['memory'] * share)}")
        for sweep in (s for s in run.profile.sweeps if s.name == name):
            axes = ", ".join(f"{k} {','.join(map(str, v))}" for k, v in sweep.grid.items())
            n = len(_sweep_configs(sweep))
            lines.append(f"    {n} configurations ({axes}); {sweep.steps} timed steps")
    p = run.profile
    searches = sum(len(trainers) for _, trainers in _maxbatch_searches(p)) * len(p.maxbatch_depths)
    lines.append(f"  maxbatch: {searches} searches under a "
                 f"{p.maxbatch_budget} tensor budget (width {p.maxbatch_width}); {minutes(stages['maxbatch'])}")  # fmt: skip
    cap = "to the target, at most " if p.tuning is not None else ""
    runs = ", ".join(f"{c.trainer} {c.depth}x{c.width} {cap}{c.epochs} epochs" for c in p.accuracy_runs)
    lines.append(f"  accuracy: {runs}; seeds {', '.join(map(str, p.seeds))}; {minutes(stages['accuracy'])} "
                 f"(assumed dataset: {run.dataset.name}, {len(run.dataset.train_y)} training examples)")  # fmt: skip
    if p.tuning is not None:
        record = run.out.parent / "tuning" / p.tuning.file_name(run.dataset.name)
        lines.append(f"    recipes from {record}" if record.exists() else
                     f"    no tuning record at {record}: {p.tuning.trials} trials per family first, up to "
                     f"{p.tuning.epoch_cap} epochs each (not in the estimate)")  # fmt: skip
    if "report" in stages:
        lines.append(f"  report: {minutes(stages['report'])}")
    lines.append(f"estimated total: {minutes(sum(stages.values()))} from scratch "
                 "(what is already recorded is skipped). Nothing written (--dry-run).")  # fmt: skip
    lines.append(f"estimated from {cal.source}" + "".join(f"; {n}" for n in cal.notes)
                 + f"; the arithmetic model alone (a matmul timing on {run.dev}) says "
                 f"{minutes(sum(v for k, v in model.items()))}.")  # fmt: skip
    return "\n".join(lines)


def _check_outputs(out: Path, report_path: Path) -> None:
    """Every place the run writes, checked before any work: the run folder (a folder, or
    creatable; not being written by another ffbench), its results folders, and the report."""
    from ..analysis.report import check_out
    from ..results.lock import check_free
    from ..results.store import check_writable_place

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--results: {out} is a file, not a run folder")
    check_writable_place(out, "--results")
    if out.is_dir():
        check_free(out)
        for sub in ("train", *(s.name for s in QUICK.sweeps + FULL.sweeps), "maxbatch"):
            if (out / sub).exists() and not (out / sub).is_dir():
                raise ConfigError(f"--results {out}: {out / sub} is a file where results go")
    check_out(report_path, flag="--reports")


def _summary(run: ReproduceRun, report, timings: dict[str, float]) -> dict:
    """reproduce.json: every invocation's timings are kept (a resumed run measures only what
    was missing), and the verdicts."""
    from ..analysis.verdicts import verdicts_json
    from ..results.store import RUN_SUMMARY, read_json

    previous = run.out / RUN_SUMMARY
    old = read_json(previous, "run summary") if previous.exists() else {}
    history = old.get("invocations") if isinstance(old, dict) else None
    history = history if isinstance(history, list) else []
    history.append({"finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "seconds": timings})
    return {
        "profile": run.profile.name,
        "device": str(run.dev),
        "dataset": run.dataset.describe(),
        "run": run.out.name,
        "report": str(run.report_path),
        "invocations": history,
        "plan": plan_units(run.profile),  # the work the stage times are for (run/calibrate.py)
        "claims": json.loads(verdicts_json(report.verdicts)),
    }


def reproduce(
    profile_name: str = "quick",
    *,
    device: str = "auto",
    data_dir: str | None = None,
    results_root: str | Path = "results",
    reports_root: str | Path = "reports",
    yes: bool = False,
    progress: bool = True,
    name: str | None = None,
    echo: Callable[[str], None] = print,
    executor=None,
    dry_run: bool = False,
) -> dict:
    """Run every stage (measurements and accuracy runs through `executor`: a local one,
    closed at the end, when none is given), then the report; with `dry_run`, print the plan
    and its estimated time and write nothing."""
    from ..data import load_dataset
    from ..results.lock import FolderLock
    from .executors.choice import get_executor

    own = executor is None
    executor = executor or get_executor("local")
    try:
        # everything a run needs is checked before anything is written
        profile, dev = _profile_and_device(profile_name, device, executor, yes, dry_run)
        out, report_path = _outputs(name, profile, dev, results_root, reports_root)
        dataset = load_dataset("auto", data_dir=data_dir)
        run = ReproduceRun(
            profile, device, dev, data_dir, dataset, out, report_path, progress, echo, executor
        )
        if dry_run:
            echo(dry_run_text(run))
            return {}
        with FolderLock(run.out):
            return _reproduce(run)
    finally:
        if own:
            executor.close()


def _reproduce(run: ReproduceRun) -> dict:
    from ..analysis.report import build_report
    from ..analysis.verdicts import print_claims
    from ..results.store import RUN_SUMMARY, write_json_atomic

    echo = run.echo
    echo(f"ffbench reproduce --profile {run.profile.name}: {run.profile.description}")
    echo(
        f"device {run.dev}; accuracy on {run.dataset.name} ({run.dataset.source}); "
        f"results -> {run.out}, report -> {run.report_path}"
    )
    started = time.perf_counter()
    timings: dict[str, float] = {}
    for stage, fn in STAGES.items():
        t0 = time.perf_counter()
        fn(run)
        timings[stage] = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = build_report([run.out], run.report_path)
    timings["report"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    summary = _summary(run, report, timings)
    write_json_atomic(run.out / RUN_SUMMARY, summary)
    text = io.StringIO()
    print_claims(report.verdicts, file=text)
    echo(text.getvalue().rstrip())
    echo(f"total {timings['total'] / 60:.1f} min; report {run.report_path}")
    return summary
