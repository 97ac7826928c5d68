"""The largest batch that fits a memory budget, measured: per trainer and depth, an
exponential then binary search over batch size in which every probe is a worker run
(`ffbench.worker`) under the budget (see worker.py for how the budget is enforced).

A probe *fits* when its record's status is `ok`: no allocation failed and the measured
peak (tensor level on CPU, allocator on CUDA) is within the budget. The search is seeded
with the analytic prediction of `ffbench.memory_model.max_batch_size(config, budget)`
when that module is importable (probing around it with small steps first), else it
starts from a small batch and doubles. Probes are ordinary records in a results folder,
so an interrupted search resumes without re-measuring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import RunConfig
from ..store import ResultsFolder, write_json_atomic
from ..units import format_bytes

DEFAULT_START = 16
SEED_STEP = 0.05  # first step away from an analytic seed, as a fraction of it


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
    seed_source: str  # 'memory_model' or 'default start'
    note: str | None = None
    probes: list[Probe] = field(default_factory=list)


def predict(
    config: RunConfig, budget_bytes: int, in_features: int | None = None, num_classes: int | None = None
) -> int | None:
    """The analytic model's prediction, or None when the model is absent or cannot say."""
    try:
        from .. import memory_model  # written separately; optional
    except Exception:  # noqa: BLE001 - ImportError or a broken module: no seed
        return None
    try:
        if in_features is not None and num_classes is not None:
            try:
                value = memory_model.max_batch_size(
                    config, budget_bytes, in_features=in_features, num_classes=num_classes
                )
            except TypeError:  # an older signature: (config, budget_bytes)
                value = memory_model.max_batch_size(config, budget_bytes)
        else:
            value = memory_model.max_batch_size(config, budget_bytes)
    except Exception:  # noqa: BLE001 - NotImplementedError, anything: no seed
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def search(
    fits: Callable[[int], bool | None], *, start: int, seeded: bool, cap: int, tolerance: float
) -> tuple[int, int | None, bool]:
    """Largest b in [1, cap] with fits(b), assuming monotonicity. fits may return None
    (inconclusive: the search stops there). Returns (largest fitting, smallest failing, capped)."""
    start = max(1, min(start, cap))
    step = max(1, math.ceil(start * SEED_STEP)) if seeded else max(1, start)
    ok = fits(start)
    if ok is None:
        return 0, None, False
    lo, hi = (start, None) if ok else (0, start)
    if ok:  # gallop up
        while hi is None:
            nxt = min(lo + step, cap)
            if nxt == lo:
                return lo, None, True
            res = fits(nxt)
            if res is None:
                return lo, None, False
            if res:
                lo, step = nxt, step * 2
            else:
                hi = nxt
    else:  # gallop down
        step = step if seeded else max(1, start // 2)
        while lo == 0 and hi > 1:
            nxt = max(1, hi - step)
            res = fits(nxt)
            if res is None:
                return 0, hi, False
            if res:
                lo = nxt
            else:
                hi, step = nxt, step * 2
        if lo == 0:
            return 0, hi, False
    while hi - lo > max(1, math.floor(lo * tolerance)):
        mid = (lo + hi) // 2
        res = fits(mid)
        if res is None:
            break
        if res:
            lo = mid
        else:
            hi = mid
    return lo, hi, False


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
    from .sweep import measure
    from .worker import BUDGET_METRIC

    metric = BUDGET_METRIC[resolve_device(base.device).type]
    results = []
    bar = tqdm(unit="probe", disable=not progress, dynamic_ncols=True, desc="maxbatch")
    try:
        for trainer in trainers:
            for depth in depths:
                config0 = base.replace(trainer=trainer, depth=depth)
                seed = predict(config0, budget_bytes, in_features, num_classes)
                entry = MaxBatch(
                    trainer,
                    depth,
                    base.width,
                    budget_bytes,
                    0,
                    None,
                    False,
                    seed,
                    "memory_model" if seed else "default start",
                )
                bad: list[str] = []

                def fits(batch: int) -> bool | None:
                    config = config0.replace(batch_size=batch)
                    record = folder.get(config)
                    if record is None:
                        bar.set_postfix_str(f"{trainer} d{depth} b{batch}", refresh=True)
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

                lo, hi, capped = search(
                    fits, start=seed or start, seeded=seed is not None, cap=cap, tolerance=tolerance
                )
                entry.max_batch_size, entry.first_failing, entry.capped = lo, hi, capped
                if bad:
                    entry.note = "stopped on an error: " + bad[0][:300]
                results.append(entry)
                echo(
                    f"{trainer} depth {depth}: fits batch {lo}{' (cap reached)' if capped else ''}"
                    f" ({len(entry.probes)} probes)"
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
    from ..data import load_dataset
    from ..device import resolve_device
    from .sweep import SweepSettings, default_out_dir, environment_metadata, write_csv

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
    device = resolve_device(base.device)
    dataset = load_dataset(base.dataset, data_dir=base.data_dir, val_size=base.val_size)
    env = environment_metadata(device, dataset.describe(), base, settings)
    out = (
        Path(out)
        if out
        else default_out_dir(
            device.type, f"{dataset.name}-maxbatch", base.to_dict(), settings.to_dict(), root=out_root
        )
    )
    folder = ResultsFolder.open(
        out,
        command="maxbatch",
        grid={"trainers": trainers, "depths": depths},
        base_config=base.to_dict(),
        settings=settings.to_dict(),
        environment=env,
    )
    echo(
        f"ffbench maxbatch: budget {format_bytes(budget_bytes)} ({budget_bytes} bytes), width {base.width}, "
        f"{dataset.name}, {device} -> {out}"
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
