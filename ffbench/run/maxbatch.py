"""The largest batch that fits a memory budget, measured: per trainer and depth, a
gallop then bisection over batch size (`ffbench.search.search`) in which every probe is
a worker run (`ffbench.worker`) under the budget (see worker.py for how the budget is
enforced).

A probe *fits* when its record's status is `ok`: no allocation failed and the measured
peak (tensor level on CPU, allocator on CUDA) is within the budget. The search is seeded
with the analytic model's prediction (`ffbench.model.max_batch_size(config, budget)`),
probing around it with small steps first; a trainer the model has no ledger for starts
from a small batch and doubles (the seed_source says why). Probes are ordinary records
in a results folder, so an interrupted search resumes without re-measuring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import model
from ..config import RunConfig
from ..search import search
from ..store import ResultsFolder, write_json_atomic
from ..units import format_bytes

DEFAULT_START = 16


@dataclass
class Probe:
    batch_size: int
    status: str
    peak_bytes: int | None


@dataclass
class MaxBatch:
    trainer: str
    depth: int
    width: int
    budget_bytes: int
    max_batch_size: int  # largest batch measured to fit (0: not even batch 1)
    first_failing: int | None  # smallest batch measured not to fit (None: hit the cap)
    capped: bool  # the search stopped at --max-batch while still fitting
    seed: int | None  # analytic prediction used to start, if any
    seed_source: str  # 'memory_model', or 'default start (no seed: why)'
    note: str | None = None
    probes: list[Probe] = field(default_factory=list)


def analytic_seed(
    config: RunConfig, budget_bytes: int, in_features: int | None = None, num_classes: int | None = None
) -> tuple[int | None, str]:
    """The analytic model's largest fitting batch as the search's seed, and its source."""
    shapes = {"in_features": in_features, "num_classes": num_classes}
    try:
        value = model.max_batch_size(
            config, budget_bytes, **{k: v for k, v in shapes.items() if v is not None}
        )
    except NotImplementedError as exc:
        return None, f"default start (no seed: {exc})"
    if value <= 0:
        return None, "default start (no seed: the model predicts that not even batch 1 fits)"
    return value, "memory_model"


def _search_one(
    folder: ResultsFolder,
    settings,
    config0: RunConfig,
    entry: MaxBatch,
    metric: str,
    bar,
    executor,
    start: int,
    cap: int,
    tolerance: float,
) -> None:
    """Search one trainer and depth, each probe a record of `folder` (measured unless
    already there); fills `entry` (result, probes, and a note if a probe errored)."""
    from .sweep import measure

    bad: list[str] = []

    def fits(batch: int) -> bool | None:
        config = config0.replace(batch_size=batch)
        record = folder.get(config)
        if record is None:
            bar.set_postfix_str(f"{config0.trainer} d{config0.depth} b{batch}", refresh=True)
            record = next(measure(folder, [config], settings, executor=executor))
            bar.update(1)
        status = record.get("status")
        peak = (record.get("metrics") or {}).get(metric)
        entry.probes.append(Probe(batch, status, peak))
        if status == "ok":
            return True
        if status in ("oom", "timeout"):
            return False
        bad.append(f"batch {batch}: {record.get('error')}")
        return None

    seed = entry.seed
    lo, hi, capped = search(fits, start=seed or start, seeded=seed is not None, cap=cap, tolerance=tolerance)
    entry.max_batch_size, entry.first_failing, entry.capped = lo, hi, capped
    if bad:
        entry.note = "stopped on an error: " + bad[0][:300]


def find_max_batches(
    folder: ResultsFolder,
    settings,
    base: RunConfig,
    trainers: list[str],
    depths: list[int],
    budget_bytes: int,
    *,
    cap: int,
    tolerance: float,
    start: int = DEFAULT_START,
    in_features: int | None = None,
    num_classes: int | None = None,
    executor=None,
    progress: bool = False,
    echo: Callable[[str], None] = lambda s: None,
) -> list[MaxBatch]:
    from tqdm.auto import tqdm

    from ..device import resolve_device
    from .worker import BUDGET_METRIC

    metric = BUDGET_METRIC[resolve_device(base.device).type]
    results = []
    bar = tqdm(unit="probe", disable=not progress, dynamic_ncols=True, desc="maxbatch")
    try:
        for trainer in trainers:
            for depth in depths:
                config0 = base.replace(trainer=trainer, depth=depth)
                seed, source = analytic_seed(config0, budget_bytes, in_features, num_classes)
                entry = MaxBatch(trainer, depth, base.width, budget_bytes, 0, None, False, seed, source)
                _search_one(folder, settings, config0, entry, metric, bar, executor, start, cap, tolerance)
                results.append(entry)
                echo(
                    f"{trainer} depth {depth}: fits batch {entry.max_batch_size}"
                    f"{' (cap reached)' if entry.capped else ''} ({len(entry.probes)} probes)"
                )
    finally:
        bar.close()
    write_json_atomic(
        folder.path / "maxbatch.json",
        {
            "budget_bytes": budget_bytes,
            "criterion": metric,
            "tolerance": tolerance,
            "cap": cap,
            "width": base.width,
            "results": [asdict(r) for r in results],
        },
    )
    return results


def table(results: list[MaxBatch]) -> str:
    if not results:
        return ""
    budget = format_bytes(results[0].budget_bytes)
    lines = [f"{'trainer':<14}{'depth':>6}{'max batch':>12}{'first fail':>12}{'probes':>8}  seed"]
    for r in results:
        fits = f"{'>=' if r.capped else ''}{r.max_batch_size}"
        lines.append(
            f"{r.trainer:<14}{r.depth:>6}{fits:>12}{str(r.first_failing or '-'):>12}"
            f"{len(r.probes):>8}  {r.seed if r.seed else '-'}" + (f"  ({r.note})" if r.note else "")
        )
    for depth in sorted({r.depth for r in results}):
        parts = [
            f"{r.trainer} fits batch {'>=' if r.capped else ''}{r.max_batch_size}"
            for r in results
            if r.depth == depth
        ]
        lines.append(f"with {budget} (depth {depth}, width {results[0].width}): " + ", ".join(parts))
    return "\n".join(lines)


def run_maxbatch(
    base: RunConfig,
    trainers: list[str],
    depths: list[int],
    budget_bytes: int,
    *,
    out: str | Path | None = None,
    steps: int = 1,
    timeout: float | None = None,
    cap: int = 2**22,
    tolerance: float = 0.02,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    out_root: str | Path = "results",
) -> list[MaxBatch]:
    """Check everything, open (or resume) the results folder, search, export the CSV."""
    from .sweep import SweepSettings, locate_results, write_csv

    for t in trainers:
        for d in depths:
            base.replace(trainer=t, depth=d)  # validates names and sizes before anything is written
    settings = SweepSettings(
        timing_steps=steps,
        warmup_steps=0,
        memory_limit_bytes=budget_bytes,
        timeout_seconds=timeout,
        timeline=False,
    )
    found = locate_results("maxbatch", base, settings, out=out, out_root=out_root)
    out, dataset = found.out, found.dataset
    folder = ResultsFolder.open(
        out,
        command="maxbatch",
        grid={"trainers": trainers, "depths": depths},
        base_config=base.to_dict(),
        settings=settings.to_dict(),
        environment=found.environment,
    )
    echo(
        f"ffbench maxbatch: budget {format_bytes(budget_bytes)} ({budget_bytes} bytes), width {base.width}, "
        f"{dataset.name}, {found.device} -> {out}"
    )
    try:
        return find_max_batches(
            folder,
            settings,
            base,
            trainers,
            depths,
            budget_bytes,
            cap=cap,
            tolerance=tolerance,
            progress=progress,
            echo=echo,
            in_features=dataset.in_features,
            num_classes=dataset.num_classes,
        )
    finally:
        write_csv(folder)
