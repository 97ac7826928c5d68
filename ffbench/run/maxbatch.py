"""The largest batch that fits a memory budget, measured: per trainer and depth, a gallop
then bisection over batch size (`ffbench.search.search`) in which every probe is a worker run
(`ffbench.run.worker`) under the budget.

`--budget tensor` (default) decides by the tensor-level training-step peak (first and steady
step; `--include-eval` adds one evaluation chunk): the algorithm's own bytes, nothing enforced,
the same answer on any machine. `--budget process` enforces the budget for real (RLIMIT_DATA
over the worker's baseline on CPU, the caching allocator's cap on CUDA): what a real process
fits, allocator slack and kernel workspaces included. See run/budget.py.

The search is seeded with the analytic model's answer for the same criterion
(`ffbench.model.max_batch_size`), probing around it with small steps first; a trainer the model
has no ledger for starts from a small batch and doubles (the seed_source says why). Probes are
memory-only records (no timed steps unless asked) in a results folder, so an interrupted search
resumes without re-measuring. A search that fits nothing says why in its note.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import model
from ..config import RunConfig
from ..errors import FfbenchError
from ..results.lock import FolderLock
from ..results.store import ResultsFolder, write_json_atomic
from ..search import search
from ..units import format_bytes

DEFAULT_START = 16


@dataclass
class Probe:
    batch_size: int
    status: str
    peak_bytes: int | None  # the budget's criterion as measured (None for a process budget on CPU)
    fits: bool | None


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
    budget_kind: str = "tensor"
    include_eval: bool = False
    note: str | None = None
    probes: list[Probe] = field(default_factory=list)
    micro_batch: int | str | None = None  # --micro-batch of every probe (rows or a fraction of the batch)


def analytic_seed(
    config: RunConfig,
    budget_bytes: int,
    in_features: int | None = None,
    num_classes: int | None = None,
    include_eval: bool = False,
) -> tuple[int | None, str]:
    """The analytic model's largest fitting batch (same criterion) as the seed, and its source."""
    shapes = {"in_features": in_features, "num_classes": num_classes}
    try:
        value = model.max_batch_size(
            config,
            budget_bytes,
            include_eval=include_eval,
            **{k: v for k, v in shapes.items() if v is not None},
        )
    except NotImplementedError as exc:
        return None, f"default start (no seed: {exc})"
    if value <= 0:
        return None, "default start (no seed: the model predicts that not even batch 1 fits)"
    return value, "memory_model"


def _probe(folder: ResultsFolder, settings, config: RunConfig, bar, executor) -> dict:
    """The probe's record: already in the folder, or measured now."""
    from ..schema import needs_measuring
    from .sweep import measure

    record = folder.get(config)
    if needs_measuring(record):  # none yet, or killed / an environment fault last time
        bar.set_postfix_str(
            f"{config.trainer} d{config.depth}: probing batch {config.batch_size}", refresh=True
        )
        # its memory record, then (with --steps) the same record with its times: the last
        record = collections.deque(measure(folder, [config], settings, executor=executor), maxlen=1)
        record = record[0] if record else None
        if record is None:
            raise FfbenchError(f"the probe of {config.short_name()} was cancelled")
    return record


def _verdict(record: dict) -> bool | None:
    """Did the probe fit? None: inconclusive (an error, not a memory outcome)."""
    status = record.get("status")
    if status == "ok":
        return bool((record.get("budget") or {}).get("fits"))
    if status in ("oom", "timeout"):
        return False
    return None


def _why_nothing_fits(entry: MaxBatch) -> str:
    """One line: why the search found no batch that fits."""
    if not entry.probes:
        return "no probe ran"
    first = min(entry.probes, key=lambda p: p.batch_size)
    budget = format_bytes(entry.budget_bytes)
    if first.status == "timeout":
        return f"nothing was measured: batch {first.batch_size} timed out (--timeout too short?)"
    if first.status == "oom":
        return f"batch {first.batch_size} ran out of memory under the {budget} {entry.budget_kind} budget"
    if first.peak_bytes is not None:
        return f"batch {first.batch_size} needs {format_bytes(first.peak_bytes)}, over the {budget} budget"
    return f"batch {first.batch_size} did not fit the {budget} {entry.budget_kind} budget ({first.status})"


def _search_one(
    folder, settings, config0, entry: MaxBatch, bar, executor, start: int, cap: int, tolerance: float
):
    """Search one trainer and depth; fills `entry` (result, probes, and a note when a probe
    errored or nothing fits)."""
    bad: list[str] = []

    def fits(batch: int) -> bool | None:
        record = _probe(folder, settings, config0.replace(batch_size=batch), bar, executor)
        verdict = _verdict(record)
        measured = (record.get("budget") or {}).get("measured_bytes")
        entry.probes.append(Probe(batch, record.get("status"), measured, verdict))
        if verdict is None:
            bad.append(f"batch {batch}: {record.get('error')}")
        return verdict

    seed = entry.seed
    lo, hi, capped = search(fits, start=seed or start, seeded=seed is not None, cap=cap, tolerance=tolerance)
    entry.max_batch_size, entry.first_failing, entry.capped = lo, hi, capped
    if bad:
        entry.note = "stopped on an error: " + bad[0][:300]
    elif lo == 0:
        entry.note = "nothing fits: " + _why_nothing_fits(entry)
    elif timed_out(entry):
        entry.note = _timeout_note(entry, settings.timeout_seconds)


def timed_out(entry: MaxBatch) -> bool:
    """Whether the answer's upper bound was decided by a timeout, not by memory."""
    first = next((p for p in entry.probes if p.batch_size == entry.first_failing), None)
    return first is not None and first.status == "timeout"


def _timeout_note(entry: MaxBatch, timeout: float | None) -> str:
    count = sum(p.status == "timeout" for p in entry.probes)
    return (
        f"bounded by timeouts, not memory: batch {entry.first_failing} timed out"
        + (f" (--timeout {timeout:g} s)" if timeout else "")
        + f", {count} of {len(entry.probes)} probes did; batch {entry.max_batch_size} is a lower bound"
    )


def _searches(executor, run_one, entries: list) -> None:
    """Call `run_one(entry)` for every entry: one after the other, or, when the executor runs
    several jobs at once (a cluster), each search in a thread of its own (every probe
    depends on the one before it, so a search is sequential; searches are independent)."""
    slots = getattr(executor, "slots", 1)
    if slots <= 1 or len(entries) <= 1:
        for entry in entries:
            run_one(entry)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=min(slots, len(entries)), thread_name_prefix="maxbatch")
    try:
        for future in [pool.submit(run_one, entry) for entry in entries]:
            future.result()
    except BaseException:  # Ctrl-C or a failed search: cancel the probes in flight
        executor.close()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


def find_max_batches(
    folder: ResultsFolder,
    settings,
    base: RunConfig,
    trainers: list[str],
    depths: list[int],
    *,
    cap: int,
    tolerance: float,
    start: int = DEFAULT_START,
    in_features: int | None = None,
    num_classes: int | None = None,
    executor=None,
    device_type: str | None = None,
    progress: bool = False,
    echo: Callable[[str], None] = lambda s: None,
) -> list[MaxBatch]:
    """Search every trainer and depth under the folder's budget (settings), in parallel where
    the executor runs several jobs at once; write maxbatch.json. `device_type` is the
    workers' (resolved here when not given)."""
    from .. import progress as prog
    from ..device import resolve_device
    from .budget import Budget

    budget = Budget(**settings.budget())
    searches = []  # (result, the configuration it searches the batch size of)
    for trainer in trainers:
        for depth in depths:
            config0 = base.replace(trainer=trainer, depth=depth)
            seed, source = analytic_seed(config0, budget.bytes, in_features, num_classes, budget.include_eval)
            entry = MaxBatch(trainer, depth, base.width, budget.bytes, 0, None, False, seed, source,
                             budget.kind, budget.include_eval, micro_batch=base.micro_batch)  # fmt: skip
            searches.append((entry, config0))

    def run_one(search: tuple[MaxBatch, RunConfig]) -> None:
        entry, config0 = search
        _search_one(folder, settings, config0, entry, bar, executor, start, cap, tolerance)
        bar.update(1)
        echo(
            f"{_fits(entry)} at depth {entry.depth}{' (cap reached)' if entry.capped else ''} "
            f"({len(entry.probes)} probes)" + (f"; {entry.note}" if entry.note else "")
        )

    with prog.bar(total=len(searches), unit="search", desc="maxbatch", enabled=progress) as bar:
        _searches(executor, run_one, searches)
    write_json_atomic(
        folder.path / "maxbatch.json",
        {
            "budget_bytes": budget.bytes,
            "budget_kind": budget.kind,
            "include_eval": budget.include_eval,
            "criterion": budget.criterion(device_type or resolve_device(base.device).type),
            "tolerance": tolerance,
            "cap": cap,
            "width": base.width,
            "results": _merged(folder.path / "maxbatch.json", [asdict(entry) for entry, _ in searches]),
        },
    )
    return [entry for entry, _ in searches]


def _search_key(row: dict) -> tuple:
    return (row.get("trainer"), row.get("depth"), row.get("width"), row.get("micro_batch"))


def _merged(path, rows: list[dict]) -> list[dict]:
    """The folder's earlier searches that this call did not repeat (another trainer, depth or
    micro-batch under the same budget: the folder's settings), then this call's: a second
    search into one folder adds to its answers instead of replacing them."""
    from ..results.store import read_json

    if not path.exists():
        return rows
    done = {_search_key(r) for r in rows}
    kept = [r for r in read_json(path, "maxbatch").get("results") or [] if _search_key(r) not in done]
    return kept + rows


def _name(r: MaxBatch) -> str:
    """The trainer, and its micro-batch when it was searched with one."""
    return r.trainer if r.micro_batch is None else f"{r.trainer} --micro-batch {r.micro_batch}"


def _fits(r: MaxBatch) -> str:
    """'bp fits batch 512', or why it fits none (nothing measured, or not even batch 1)."""
    if r.max_batch_size == 0:
        measured = any(p.status not in ("timeout", "error", "killed") for p in r.probes)
        return f"{_name(r)} fits no batch ({'not even batch 1' if measured else 'nothing was measured'})"
    bound = r.capped or timed_out(r)
    return f"{_name(r)} fits batch {'>=' if bound else ''}{r.max_batch_size}" + (
        " (bounded by timeouts)" if timed_out(r) else ""
    )


def table(results: list[MaxBatch]) -> str:
    if not results:
        return ""
    budget = f"a {format_bytes(results[0].budget_bytes)} {results[0].budget_kind} budget"
    width = max(14, *(len(_name(r)) + 2 for r in results))
    lines = [f"{'trainer':<{width}}{'depth':>6}{'max batch':>12}{'first fail':>12}{'probes':>8}  seed"]
    for r in results:
        fits = f"{'>=' if r.capped or timed_out(r) else ''}{r.max_batch_size}"
        failing = f"{r.first_failing}{' t/o' if timed_out(r) else ''}" if r.first_failing else "-"
        lines.append(
            f"{_name(r):<{width}}{r.depth:>6}{fits:>12}{failing:>12}"
            f"{len(r.probes):>8}  {r.seed if r.seed else '-'}" + (f"  ({r.note})" if r.note else "")
        )
    for depth in sorted({r.depth for r in results}):
        parts = [_fits(r) for r in results if r.depth == depth]
        lines.append(f"with {budget} (depth {depth}, width {results[0].width}): " + ", ".join(parts))
    return "\n".join(lines)


def _dry_run_text(base: RunConfig, trainers, depths, settings, found, steps: int) -> str:
    from .estimate import measure_speed, minutes, search_seconds

    budget = settings.budget()
    speed = measure_speed(base.device)
    lines = [
        f"ffbench maxbatch --dry-run: {len(trainers) * len(depths)} searches under a {budget['kind']} budget of "
        f"{format_bytes(budget['bytes'])} (width {base.width}, {found.dataset.name}, {found.device}) -> {found.out}"
    ]
    total = 0.0
    for trainer in trainers:
        for depth in depths:
            config = base.replace(trainer=trainer, depth=depth)
            seed, source = analytic_seed(config, budget["bytes"], found.dataset.in_features,
                                         found.dataset.num_classes, budget["include_eval"])  # fmt: skip
            total += search_seconds(config, seed, speed, steps)
            lines.append(f"  {trainer} depth {depth}: starts at batch {seed or DEFAULT_START} ({source})")
    lines.append(
        f"estimated time: {minutes(total)} (about 8 probes per search). Nothing written (--dry-run)."
    )
    return "\n".join(lines)


def run_maxbatch(
    base: RunConfig,
    trainers: list[str],
    depths: list[int],
    budget_bytes: int,
    *,
    out: str | Path | None = None,
    budget_kind: str = "tensor",
    include_eval: bool = False,
    steps: int = 0,
    timeout: float | None = None,
    cap: int = 2**22,
    tolerance: float = 0.02,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    out_root: str | Path = "results",
    executor=None,
    dry_run: bool = False,
) -> list[MaxBatch] | None:
    """Check everything, open (or resume) the results folder, search, export the CSV.
    Without an executor, a local one runs every probe and is closed at the end. With
    `dry_run`, print the plan and an estimated time instead, write nothing, return None."""
    from .executors.choice import get_executor
    from .sweep import SweepSettings, locate_results

    for t in trainers:
        for d in depths:
            base.replace(trainer=t, depth=d)  # validates names and sizes before anything is written
    settings = SweepSettings(
        timing_steps=steps,
        warmup_steps=0,
        memory_limit_bytes=budget_bytes,
        timeout_seconds=timeout,
        timeline=False,
        budget_kind=budget_kind,
        include_eval=include_eval,
    )
    grid = {"trainers": trainers, "depths": depths}
    own = executor is None
    executor = executor or get_executor("local")
    try:
        found = locate_results(
            "maxbatch",
            base,
            settings,
            out=out,
            out_root=out_root,
            grid=grid,
            executor=executor,
            writable=not dry_run,
        )
        if dry_run:
            print(_dry_run_text(base, trainers, depths, settings, found, steps))
            return None
        with FolderLock(found.out):
            folder = ResultsFolder.open(
                found.out,
                command="maxbatch",
                grid=grid,
                base_config=base.to_dict(),
                settings=settings.to_dict(),
                environment=found.environment,
            )
            echo(
                f"ffbench maxbatch: {budget_kind} budget {format_bytes(budget_bytes)} ({budget_bytes} bytes"
                f"{', evaluation included' if include_eval else ', training steps'}), width {base.width}, "
                f"{found.dataset.name}, {found.device} -> {found.out}"
            )
            search = dict(cap=cap, tolerance=tolerance, progress=progress, echo=echo, executor=executor)
            return _search_all(folder, settings, base, trainers, depths, found, search)
    finally:
        if own:
            executor.close()


def _search_all(folder, settings, base, trainers, depths, found, search: dict) -> list[MaxBatch]:
    from .sweep import write_csv

    try:
        return find_max_batches(
            folder,
            settings,
            base,
            trainers,
            depths,
            in_features=found.dataset.in_features,
            num_classes=found.dataset.num_classes,
            device_type=found.device_type,
            **search,
        )
    finally:
        write_csv(folder)
