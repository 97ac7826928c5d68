"""`ffbench reproduce`: re-run the memory and accuracy claims for Forward-Forward.

One command runs, into `results/<run>/` (resumable: re-running the same command skips
what is already recorded):

1. a memory sweep (every trainer x depths x batch sizes, one fresh process each,
   through the harness) on random inputs of MNIST's shape (`synthetic`: memory does
   not depend on pixel values; labelled as such);
2. a largest-batch search under a memory budget (`maxbatch`) for a few trainers;
3. accuracy runs (`fit`) on real data, one JSON record per trainer and seed;
4. the HTML report `reports/<run>.html` with every claim's verdict, printed at the end.

Profiles:
- `quick`: offline, 2 CPU cores, under 20 minutes; width 500, one seed; MNIST when it is
  available, else the `auto` dataset (stated in the report).
- `full`: the paper's setting, for a GPU: 4 x 2000 ReLUs, 60 epochs, 3 seeds; memory over
  depth up to 47 layers of width 2000 at batch 5000. On a CPU it prints its estimated
  time first and needs `--yes`.

Recipes were chosen on the validation split (see README): FF uses RMS normalisation,
mean goodness, theta = 8, Adam lr 5e-3, batch 100; BP uses Adam lr 1e-3, batch 100.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..errors import ConfigError
from ..schema import TRAINER_ORDER as TRAINERS  # the profiles compare the built-in trainers

FF_RECIPE = dict(lr=5e-3, ff_threshold=8.0, batch_size=100)
BP_RECIPE = dict(lr=1e-3, batch_size=100)


@dataclass(frozen=True)
class Profile:
    name: str
    trainers: tuple[str, ...]
    depths: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    width: int
    timing_steps: int
    maxbatch_budget: str
    maxbatch_trainers: tuple[str, ...]
    maxbatch_depths: tuple[int, ...]
    accuracy_runs: tuple[RunConfig, ...]
    seeds: tuple[int, ...]
    maxbatch_tolerance: float = 0.02  # relative width of the bracket the search stops at
    description: str = ""
    extra: dict = field(default_factory=dict)


def _runs(
    depth_ff: int, width_ff: int, depth_bp: int, width_bp: int, epochs_ff: int, epochs_bp: int, frugal: bool
) -> tuple[RunConfig, ...]:
    runs = [
        RunConfig(trainer="ff", depth=depth_ff, width=width_ff, epochs=epochs_ff, **FF_RECIPE),
        RunConfig(trainer="bp", depth=depth_bp, width=width_bp, epochs=epochs_bp, **BP_RECIPE),
    ]
    if frugal:  # the fair low-memory baselines (bp-accum / bp-inbackward: same update as bp)
        runs += [
            RunConfig(trainer=t, depth=depth_bp, width=width_bp, epochs=epochs_bp, **BP_RECIPE)
            for t in ("bp-local", "bp-inbackward", "bp-accum")
        ]
    return tuple(runs)


PROFILES = {
    "quick": Profile(
        name="quick",
        trainers=TRAINERS,
        depths=(1, 2, 4, 8),
        batch_sizes=(64, 1024),
        width=500,
        timing_steps=3,
        maxbatch_budget="256MiB",
        maxbatch_trainers=("bp", "ff"),
        maxbatch_depths=(2, 8),
        accuracy_runs=_runs(2, 500, 2, 1000, epochs_ff=15, epochs_bp=10, frugal=True),
        seeds=(0,),
        maxbatch_tolerance=0.1,
        description="2 CPU cores, under 20 minutes: memory at width 500, accuracy of 2-layer nets",
    ),
    "full": Profile(
        name="full",
        trainers=TRAINERS,
        depths=(2, 4, 8, 16, 24, 32, 47),
        batch_sizes=(64, 1024, 5000),
        width=2000,
        timing_steps=5,
        maxbatch_budget="8GiB",
        maxbatch_trainers=("bp", "ff", "bp-inbackward"),
        maxbatch_depths=(4, 16, 47),
        accuracy_runs=_runs(4, 2000, 4, 2000, epochs_ff=60, epochs_bp=60, frugal=False),
        seeds=(0, 1, 2),
        description="the paper's setting (4 x 2000, 60 epochs, 3 seeds) and memory up to 47 layers",
    ),
}


def run_name(profile: str, device_type: str, today: _dt.date | None = None) -> str:
    return f"{(today or _dt.date.today()).isoformat()}-{device_type}-{profile}"


def estimate_seconds(profile: Profile, seconds_per_gflop: float) -> float:
    """Rough time of a profile from its arithmetic: 6 flops per weight per example for a
    training step (forward 2, backward 4; FF forwards 2 x batch rows), evaluation and
    accuracy epochs over 60000 examples."""
    flops = 0.0
    for depth in profile.depths:
        for batch in profile.batch_sizes:
            weights = 784 * profile.width + (depth - 1) * profile.width**2
            steps = profile.timing_steps + 6
            flops += len(profile.trainers) * steps * 6 * weights * batch * 2
    for cfg in profile.accuracy_runs:
        weights = 784 * cfg.width + (cfg.depth - 1) * cfg.width**2
        rows = 2 if cfg.is_ff else 1
        flops += len(profile.seeds) * cfg.epochs * 60000 * (6 * rows + 2 * 10 * cfg.is_ff) * weights
    return flops / 1e9 * seconds_per_gflop


def measure_cpu_speed() -> float:
    """Seconds per GFLOP of this machine on a 1024 x 2000 x 2000 matmul (one sample)."""
    import torch

    a, b = torch.randn(1024, 2000), torch.randn(2000, 2000)
    a @ b
    t0 = time.perf_counter()
    for _ in range(3):
        a @ b
    return (time.perf_counter() - t0) / (3 * 2 * 1024 * 2000 * 2000 / 1e9)


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

    @property
    def threads(self) -> int | None:
        return 1 if self.dev.type == "cpu" else None  # memory runs: one thread on a shared CPU


def stage_memory_sweep(run: ReproduceRun) -> None:
    from .sweep import plan_sweep, run_plan

    p = run.profile
    plan = plan_sweep(
        grid_flags={
            "trainers": list(p.trainers),
            "depths": list(p.depths),
            "batch_sizes": list(p.batch_sizes),
            "widths": [p.width],
        },
        config_flags={"dataset": "synthetic", "device": run.device, "threads": run.threads},
        setting_flags={"steps": p.timing_steps},
        out=str(run.out / "sweep"),
    )
    run_plan(plan, progress=run.progress, echo=run.echo)


def stage_maxbatch(run: ReproduceRun) -> None:
    from ..units import parse_size
    from .maxbatch import run_maxbatch, table

    p = run.profile
    base = RunConfig(dataset="synthetic", device=run.device, width=p.width, batch_size=1, threads=run.threads)
    found = run_maxbatch(
        base,
        list(p.maxbatch_trainers),
        list(p.maxbatch_depths),
        parse_size(p.maxbatch_budget),
        out=run.out / "maxbatch",
        progress=run.progress,
        tolerance=p.maxbatch_tolerance,
        echo=run.echo,
    )
    run.echo(table(found))


def stage_accuracy(run: ReproduceRun) -> None:
    from ..store import write_json_atomic
    from .fit import fit

    train_dir = run.out / "train"
    for seed in run.profile.seeds:
        for cfg in run.profile.accuracy_runs:
            cfg = cfg.replace(seed=seed, device=run.device, dataset=run.dataset.name, data_dir=run.data_dir)
            path = train_dir / f"{cfg.short_name()}-s{seed}.json"
            if path.exists():
                run.echo(f"{path.name}: already recorded")
                continue
            run.echo(f"accuracy: {cfg.short_name()} seed {seed}, {cfg.epochs} epochs on {run.dataset.name}")
            write_json_atomic(path, fit(cfg, run.dataset, progress=run.progress, echo=run.echo))


# The stages, in order; each is timed, and a re-run skips what is already recorded.
STAGES: dict[str, Callable[[ReproduceRun], None]] = {
    "memory_sweep": stage_memory_sweep,
    "maxbatch": stage_maxbatch,
    "accuracy": stage_accuracy,
}


def _prepare(profile_name: str, device: str, data_dir, results_root, reports_root, yes, name, progress, echo):
    """Check everything a run needs before anything is written."""
    from ..data import load_dataset
    from ..device import resolve_device

    if profile_name not in PROFILES:
        raise ConfigError(f"unknown profile {profile_name!r}; choose from {', '.join(PROFILES)}")
    profile = PROFILES[profile_name]
    dev = resolve_device(device)
    if profile.name == "full" and dev.type == "cpu" and not yes:
        hours = estimate_seconds(profile, measure_cpu_speed()) / 3600
        raise ConfigError(
            f"the full profile is meant for a GPU; on this CPU it would take about "
            f"{hours:.0f} hours (estimated from a matmul timing); add --yes to run it anyway"
        )
    run = name or run_name(profile.name, dev.type)
    dataset = load_dataset("auto", data_dir=data_dir)
    out, report_path = Path(results_root) / run, Path(reports_root) / f"{run}.html"
    return ReproduceRun(profile, device, dev, data_dir, dataset, out, report_path, progress, echo)


def _summary(run: ReproduceRun, report, timings: dict[str, float]) -> dict:
    """reproduce.json: every invocation's timings are kept (a resumed run measures only what
    was missing), and the verdicts."""
    from ..analysis.report import verdicts_json
    from ..store import RUN_SUMMARY

    previous = run.out / RUN_SUMMARY
    history = json.loads(previous.read_text()).get("invocations", []) if previous.exists() else []
    history.append({"finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "seconds": timings})
    return {
        "profile": run.profile.name,
        "device": str(run.dev),
        "dataset": run.dataset.describe(),
        "run": run.out.name,
        "report": str(run.report_path),
        "invocations": history,
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
) -> dict:
    from ..analysis.report import build_report, print_claims
    from ..store import RUN_SUMMARY, write_json_atomic

    run = _prepare(profile_name, device, data_dir, results_root, reports_root, yes, name, progress, echo)
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
