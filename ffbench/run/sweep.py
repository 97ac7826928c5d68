"""Sweeps: a grid of configurations, each measured in a fresh worker process, resumable.

    plan = plan_sweep(grid_flags=..., config_flags=..., setting_flags=..., sweep_file=...)
    run_plan(plan)                       # or: for record in measure(folder, configs): ...

Each finished configuration's record is written atomically to DIR/records/<name>.json
the moment its worker ends, so a killed sweep (kill -9 included) loses at most the
configuration in flight; a re-run with the same folder skips every configuration whose
record exists, and a record's file name is a function of its configuration, so a
configuration can never appear twice. Out-of-memory and timeouts are results (status
`oom`, `timeout`), not failures of the sweep; a worker killed by someone (`killed`) or by a
full disk (`error`, `fault: environment`) is measured again by a plain re-run (statuses.py).
One driver writes a folder at a time (lock.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import platform
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import validate
from ..config import (
    GRID_AXES,
    OPTIMIZER_SETTINGS,
    RunConfig,
    axis_fields,
    check_field,
    config_keys,
    grid_points,
)
from ..errors import ConfigError, EnvironmentFault
from ..record import Record
from ..results.store import RECORDS, WORK, ResultsFolder, loads_strict, record_name, stable_hash
from ..schema import ENVIRONMENT_FAULT
from ..units import MiB
from . import statuses
from .executors import Executor, Job, JobResult
from .executors.choice import get_executor

# sweep-file / CLI list keys (the grid's axes)
GRID_KEYS = (*GRID_AXES, "optimizers")
SETTING_KEYS = ("steps", "memory_limit", "timeout")


@dataclass(frozen=True)
class SweepSettings:
    """How every configuration of a results folder is measured (fixed for the folder)."""

    timing_steps: int = 5  # at least (measure.protocol.MIN_STEPS; a test checks they agree)
    warmup_steps: int = 1
    memory_limit_bytes: int | None = None
    timeout_seconds: float | None = None
    timeline: bool = True
    budget_kind: str | None = None  # with a memory limit: "process" (enforced) or "tensor" (compared)
    include_eval: bool = False  # the budget also covers the evaluation chunk

    def __post_init__(self) -> None:
        validate.setting("steps", self.timing_steps, "settings")
        validate.setting("warmup", self.warmup_steps, "settings")
        validate.setting("memory_limit", self.memory_limit_bytes, "settings")
        if self.timeout_seconds is not None:
            object.__setattr__(
                self, "timeout_seconds", validate.setting("timeout", self.timeout_seconds, "settings")
            )
        if (self.memory_limit_bytes is None) != (self.budget_kind is None):
            object.__setattr__(self, "budget_kind", None if self.memory_limit_bytes is None else "process")

    def budget(self) -> dict | None:
        """The worker's budget spec (see run/budget.py)."""
        if self.memory_limit_bytes is None:
            return None
        return {"bytes": self.memory_limit_bytes, "kind": self.budget_kind, "include_eval": self.include_eval}

    def harness(self) -> dict:
        """HarnessSettings fields for the worker. Under a memory budget the default-malloc
        timing is skipped; a process budget without evaluation measures none."""
        return {
            "warmup_steps": self.warmup_steps,
            "timing_steps": self.timing_steps,
            "timeline": self.timeline,
            "compare_allocator": self.memory_limit_bytes is None,
            "defer_timing": True,  # timed afterwards with its pair group (run.timing)
            "evaluate": not (self.budget_kind == "process" and not self.include_eval),
        }

    def to_dict(self) -> dict:
        """Every setting; the budget's kind and scope only when there is a budget (so folders
        measured before they existed compare equal)."""
        out = dataclasses.asdict(self)
        if self.memory_limit_bytes is None:
            del out["budget_kind"], out["include_eval"]
        return out


# -- parsing the grid -----------------------------------------------------------------


def parse_list(value: Any, key: str) -> list:
    """'bp,ff' / ['bp', 'ff'] / 'bp' -> list; integers for the numeric axes (positive)."""
    if isinstance(value, str):
        items: list = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise ConfigError(f"{key.replace('_', '-')}: empty list")
    if key == "optimizers":
        unknown = [v for v in items if v not in OPTIMIZER_SETTINGS]
        if unknown:
            raise ConfigError(
                f"optimizers: unknown {unknown[0]!r}; choose from {', '.join(OPTIMIZER_SETTINGS)}"
            )
    field = GRID_AXES.get(key, key)
    if field in ("depth", "width", "batch_size"):
        out = []
        for item in items:
            text = str(item).strip()
            number = (
                int(text) if not isinstance(item, (bool, float)) and text.lstrip("+-").isdigit() else None
            )
            if number is None or number <= 0:
                raise ConfigError(f"{key.replace('_', '-')}: expected positive integers, got {item!r}")
            out.append(number)
        items = out
    if field == "micro_batch":  # '2/8' is '1/4': normalised first, so duplicates are seen
        items = [check_field(field, item) if isinstance(item, (str, int)) else item for item in items]
    seen: list = []
    for item in items:  # de-duplicate, keep order: a repeated value would be a repeated row
        if item not in seen:
            seen.append(item)
    return seen


def read_sweep_file(path: str | Path) -> dict:
    """A JSON or TOML file with keys trainers, depths, widths, batch_sizes (lists or comma
    strings), optionally steps, memory_limit, timeout and any RunConfig field (a scalar)."""
    import tomllib

    path = Path(path)
    source = f"sweep file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"sweep file {path} is not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else loads_strict(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        what = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())[:200]
        raise ConfigError(
            f"sweep file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {what}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file {path} must hold a table/object of keys")
    return {norm: value for norm, value in (_file_entry(source, k, v) for k, v in data.items())}


def _file_entry(source: str, key: Any, value: Any) -> tuple[str, Any]:
    """One sweep-file key, normalised, and its value checked by the rule of what it sets."""
    norm = str(key).replace("-", "_")
    if norm in GRID_KEYS or (norm in config_keys() and isinstance(value, list)):
        values = validate.sourced(source, parse_list, value, norm)
        if norm != "optimizers":  # (parse_list checks optimizer settings by name)
            for v in values:
                validate.field(GRID_AXES.get(norm, norm), v, source)
        return norm, values
    if norm in SETTING_KEYS:
        validate.setting(norm, value, source)
        return norm, value
    if norm in config_keys() and (norm not in GRID_AXES.values() or norm not in default_grid_fields()):
        return norm, validate.field(norm, value, source)
    raise ConfigError(
        f"{source}: unknown key {str(key)[:60]!r}; use trainers, depths, widths, "
        f"batch_sizes, steps, memory_limit, timeout or a configuration field"
    )


AXIS_KEY = {field: key for key, field in GRID_AXES.items()}  # `depth` given as an axis is `depths`


def axis_key(key: str) -> str:
    """The one name of an axis (`--axis depth=...` is the `depths` axis)."""
    return AXIS_KEY.get(key, key)


def merge_axes(axes: Iterable[tuple[str, Any]], scalars: Iterable[str] = (), where: str = "") -> dict:
    """The axes given in one place (the command line, a sweep file) as one grid; ConfigError
    for a field two of them set (`--depths 1,2 --axis depth=1`), or one a scalar also sets
    (`--axis ff_pass=... --ff-pass ...`): either would be measured as something else."""
    grid: dict = {}
    owner: dict[str, str] = {}
    for key, values in axes:
        name = axis_key(key)
        for field in axis_fields(name):
            if field in owner:
                raise ConfigError(
                    f"{where}the axis {_axis_flag(key)} repeats {_axis_flag(owner[field])} "
                    f"(both set {field}); give each axis once"
                )
            owner[field] = key
        grid[name] = values
    for field in scalars:
        if field in owner:
            raise ConfigError(
                f"{where}--{field.replace('_', '-')} is also swept by {_axis_flag(owner[field])}; give one of them"
            )
    return grid


def _axis_flag(key: str) -> str:
    return f"--{key.replace('_', '-')}" if key in GRID_KEYS else f"--axis {key}"


def _set_axis(grid: dict, key: str, values: list | None) -> None:
    """Put an axis into `grid` (None: only remove), replacing any axis setting the same fields
    (a later layer wins: the flags over the sweep file)."""
    fields = set(axis_fields(axis_key(key)))
    for other in [k for k in grid if fields & set(axis_fields(k))]:
        del grid[other]
    if values is not None:
        grid[axis_key(key)] = values


def grid_configs(base: RunConfig, grid: dict[str, list]) -> list[RunConfig]:
    """Every grid point on top of the base configuration (each validated)."""
    return [base.replace(**point) for point in grid_points(grid)]


_AXIS_PREFIX = {"trainers": "", "depths": "d", "widths": "w", "batch_sizes": "b"}
_NOT_IN_NAME = ("data_dir", "device", "dataset")  # where it was read or run: the name has them already
NAME_LIMIT = 100  # characters of the description; past it, a hash of the rest keeps names apart


def contents_name(grid: dict | None, base: dict, settings: dict) -> str:
    """What a results folder holds, in its name: the grid's axes (`ff+bp-d2,4-w500-b64`), then
    every base-configuration field and setting that is not its default (`lr=0.01`)."""
    from ..results.store import comparable

    parts = []
    for key, values in (grid or {}).items():
        joined = ("+" if key == "trainers" else ",").join(str(v) for v in values)
        parts.append(f"{_AXIS_PREFIX[key]}{joined}" if key in _AXIS_PREFIX else f"{key}={joined}")
    varying = {field for key in grid or {} for field in axis_fields(key)}
    fixed = {k: v for k, v in comparable(base, varying).items() if k not in _NOT_IN_NAME}
    parts += [f"{k}={v}" for k, v in sorted(fixed.items())] + settings_words(settings)
    name = "-".join(parts)
    name = "".join(c if c.isalnum() or c in "+,.=_-" else "_" for c in name)
    if len(name) > NAME_LIMIT:
        name = f"{name[: NAME_LIMIT - 7]}-{stable_hash(name, 6)}"
    return name


def settings_words(settings: dict) -> list[str]:
    """The settings not at their default, in a folder name's words."""
    defaults = SweepSettings().to_dict()
    words = []
    if settings.get("memory_limit_bytes") is not None:
        limit = settings["memory_limit_bytes"]
        size = f"{limit // MiB}MiB" if limit % MiB == 0 else f"{limit}B"
        words.append(f"{settings.get('budget_kind') or 'process'}-budget={size}")
        words += ["with-eval"] if settings.get("include_eval") else []
    named = {"timing_steps": "steps", "warmup_steps": "warmup", "timeout_seconds": "timeout"}
    for key, word in named.items():
        if key in settings and settings[key] != defaults[key]:
            words.append(f"{word}={settings[key]:g}")
    if settings.get("timeline") is False:
        words.append("no-timeline")
    return words


def default_out_dir(
    device_type: str, label: str, grid: dict | None, base: dict, settings: dict, root="results"
) -> Path:
    """results/<date>-<device>-<label>-<what it holds>/ (`contents_name`): the same command on
    the same day resumes into the same folder; a folder of other settings is refused."""
    date = _dt.date.today().isoformat()
    return Path(root) / f"{date}-{device_type}-{label}-{contents_name(grid, base, settings)}"


# -- measuring into a results folder ----------------------------------------------------


def job_for(folder: ResultsFolder, config: RunConfig, settings: SweepSettings) -> Job:
    work = folder.path / WORK
    name = record_name(config)
    scratch = f"{os.getpid()}-{name}"  # per driver: two drivers never share a scratch file
    spec = {
        "config": config.to_dict(),
        "settings": settings.harness(),
        "budget": settings.budget(),
        "source": folder.source,
    }
    return Job(name, spec, work / f"{scratch}.spec", work / scratch, settings.timeout_seconds)


def _record_without_result(result: JobResult) -> dict:
    """What happened to a worker that wrote no record (see statuses.py)."""
    job = result.job
    last = [ln for ln in result.stderr_tail.strip().splitlines() if ln.strip()]
    extra: dict = {}
    if result.timed_out:
        status, error = "timeout", f"no result within {job.timeout_seconds:g} s (worker killed)"
    elif (result.worker or {}).get("slurm_state") == "OUT_OF_MEMORY" or result.stderr_tail.startswith(
        "ray: OutOfMemoryError"
    ):  # the cluster ended the task for its memory: that is evidence of memory
        status, error = "oom", f"{result.executor}: the task was ended for exceeding its memory"
    elif result.returncode is not None and result.returncode < 0:
        status, error, extra = statuses.death(result.returncode, result.oom_kills)
    elif result.returncode is None:  # the process that ran it (a template, a task) went away first
        status = "killed"
        error = (
            f"the worker's parent went away before it reported ({(last or ['killed?'])[-1][:300]}): "
            "re-measured on resume"
        )
    else:
        status = "error"
        error = f"worker exited with status {result.returncode}" + (f": {last[-1][:500]}" if last else "")
        if (
            result.returncode == statuses.WORKER_EXIT_ENVIRONMENT
            or any(why in result.stderr_tail for why in ("No space left", "Disk quota", "File too large"))
            or (not last and statuses.disk_full(job.out_path))  # silent: its log is on that disk
        ):
            extra = {"fault": ENVIRONMENT_FAULT}
    if result.stderr_tail.strip():
        extra["worker_output"] = result.stderr_tail
    record = Record.build(kind="measure", config=job.spec["config"], status=status, error=error, **extra)
    return record.to_dict()  # the sweep adds where and how it ran (finalize), then the store writes it


def finalize(folder: ResultsFolder, result: JobResult, settings: SweepSettings) -> dict:
    """The worker's record (or one describing why there is none) + the sweep's fields."""
    record = Record.wrap(result.record if result.record is not None else _record_without_result(result))
    worker = {
        **(record.worker or {}),
        **result.worker,
        "wall_seconds": result.wall_seconds,
        **overhead(result.wall_seconds, record.passes_seconds),
        "returncode": result.returncode,
        "signal": result.signal,
        "timed_out": result.timed_out,
        "executor": result.executor,
        "probe": result.probe,
    }
    where = {"source": folder.source, "isolated": True, "settings": settings.to_dict(), "worker": worker}
    return record.updated(**where).to_dict()


def overhead(wall_seconds: float, passes: dict | None) -> dict:
    """`overhead_seconds`: the worker's wall time (as its executor saw it) minus the
    measurement passes it recorded (baseline, memory, timing, process step, evaluation; not building the
    trainer or loading the data); none without recorded passes."""
    if not passes:
        return {}
    measured = sum(v for k, v in passes.items() if k != "prepare_seconds")
    return {"overhead_seconds": wall_seconds - measured}


def timing_job(folder: ResultsFolder, group: list[RunConfig], settings: SweepSettings) -> Job:
    """One job timing a pair group by the timing protocol (run.timing)."""
    from . import timing

    key = f"timing-{stable_hash([record_name(c) for c in group], 12)}"
    scratch = folder.path / WORK / f"{os.getpid()}-{key}"
    spec = {"configs": [c.to_dict() for c in group], "settings": settings.harness() | {"defer_timing": False}}
    timeout = settings.timeout_seconds * len(group) if settings.timeout_seconds else None
    return Job(key, spec, scratch.with_suffix(".spec"), scratch, timeout, kind=timing.KIND)


def time_groups(
    folder: ResultsFolder, configs: list[RunConfig], settings: SweepSettings, executor: Executor
) -> Iterator[dict]:
    """Time every pair group with a member awaiting its times (one job each, run.timing);
    yield each member's record as it is written."""
    from . import timing

    jobs = {}
    for group in timing.pending_groups(folder, configs):
        job = timing_job(folder, group, settings)
        jobs[job.key] = (job, group)
    for result in executor.run(job for job, _ in jobs.values()):
        if result.cancelled:
            continue
        out = result.record or {}
        found = out.get("results") or {}
        tail = (result.stderr_tail.strip().splitlines() or [""])[-1][:300]
        measured = sum(sum(f.get("step_seconds") or []) for f in found.values())
        job = {
            "wall_seconds": result.wall_seconds,
            "overhead_seconds": result.wall_seconds - measured,
            "executor": result.executor,
            "error": out.get("error")
            or (None if result.record else f"timing job exit status {result.returncode}: {tail}"),
        }
        for config in jobs[result.job.key][1]:
            record = timing.merge(folder.get(config), found.get(record_name(config)), job)
            folder.save(record)
            yield record


def check_device_model(folder: ResultsFolder, record: dict, executor: Executor) -> None:
    """Refuse a record measured on another device model than the folder's (a mixed cluster),
    unless the executor was told to allow it."""
    from ..results.store import ENVIRONMENT

    theirs = (record.get("environment") or {}).get("device_name")
    if not theirs or getattr(executor, "allow_mixed_devices", False):
        return
    path = folder.path / ENVIRONMENT
    ours = loads_strict(path.read_text(encoding="utf-8")).get("device_name") if path.exists() else None
    if ours and ours != theirs:
        raise ConfigError(
            f"{record_name(record['config'])} was measured on {theirs!r} "
            f"(host {(record.get('worker', {}).get('probe') or {}).get('host')}), but {folder.path} holds "
            f"measurements on {ours!r}; pin the device model (--ray-accelerator-type, --slurm-option "
            f"constraint=...) or pass --allow-mixed-devices"
        )


def measure(
    folder: ResultsFolder,
    configs: list[RunConfig],
    settings: SweepSettings,
    *,
    executor: Executor | None = None,
    progress: bool = False,
    retry_errors: bool = False,
) -> Iterator[dict]:
    """Measure every configuration without a record; yield each record as it is written.
    Without an executor, a local one is started for this call and closed after it. The
    progress bar names the configuration running now (the caller reports each record:
    `finished_line`)."""
    from .. import progress as prog

    own = executor is None
    executor = executor or get_executor("local")
    todo = folder.pending(configs, retry_errors)
    waiting = {record_name(c): c.short_name() for c in todo}  # in order: the next to run first
    stack = contextlib.ExitStack()
    bar = stack.enter_context(prog.bar(total=len(configs), initial=len(configs) - len(todo), unit="config",
                                       desc=folder.source, enabled=progress))  # fmt: skip
    runs = executor.run(job_for(folder, c, settings) for c in todo)
    try:
        if waiting:
            bar.set_postfix_str(f"running {next(iter(waiting.values()))}")
        for result in runs:
            if result.cancelled:  # a worker killed by a cancel is not a result
                continue
            record = finalize(folder, result, settings)
            check_device_model(folder, record, executor)
            path = folder.save(record)
            waiting.pop(result.job.key, None)
            bar.update(1)
            bar.set_postfix_str(f"running {next(iter(waiting.values()))}" if waiting else "")
            if record.get("fault") == ENVIRONMENT_FAULT:  # the disk is full: so would the next be
                raise EnvironmentFault(
                    f"{record['error'][:300]}; {path} records it as an environment fault: free space "
                    f"(or raise ulimit -f) and re-run to measure it"
                )
            yield record
        if settings.timing_steps:
            yield from time_groups(folder, configs, settings, executor)
    finally:
        getattr(runs, "close", lambda: None)()  # stopped early: the executor cancels what is in flight
        stack.close()
        if own:
            executor.close()
        try:
            (folder.path / WORK).rmdir()  # only when empty
        except OSError:
            pass


def write_csv(folder: ResultsFolder) -> Path:
    """Rebuild DIR/results.csv from the folder's records (read from disk: what the CSV holds is
    what the files hold)."""
    from ..results import to_csv
    from ..results.store import CSV_NAME

    return to_csv(folder.path, folder.path / CSV_NAME)


# -- environment metadata ----------------------------------------------------------------

ISOLATION = {
    "local": "forked from a template process that had imported torch (ffbench.run.executors.template)",
    "subprocess": "a fresh interpreter (python -m ffbench.run.worker)",
    "ray": "a fresh interpreter started by a Ray task (one GPU per task)",
    "slurm": "a fresh interpreter started by a SLURM array task",
}


def environment_metadata(
    device,
    dataset_description: dict,
    base: RunConfig,
    settings: SweepSettings,
    executor: Executor | None = None,
    device_environment: dict | None = None,
) -> dict:
    """The folder's environment.json: `environment(device)`, or `device_environment` as a
    remote worker reported it (`Executor.environment`), and how the workers were run."""
    import os

    from ..environment import environment

    env = dict(device_environment) if device_environment else environment(device)
    env.update(
        {
            "hostname": env.get("hostname") or platform.node(),
            "dataset": dataset_description,
            "seed": base.seed,
            "threads_requested": base.threads,
            "threads_note": "torch intra-op threads per worker; null = 1 (the timing protocol's default)",
            "allocator_setting": (
                "memory workers: mallopt(M_MMAP_THRESHOLD=65536) before anything is allocated (record "
                "'allocator_setting')"
                + ("" if settings.memory_limit_bytes is None else ", then the memory limit")
                + "; step times: one timing job per configuration's trainers, glibc's defaults "
                "(record 'timing.allocator_setting')"
            ),
            "environment_variables": {
                k: os.environ[k]
                for k in (
                    "MALLOC_MMAP_THRESHOLD_",
                    "MALLOC_ARENA_MAX",
                    "LD_PRELOAD",
                    "PYTORCH_CUDA_ALLOC_CONF",
                    "OMP_NUM_THREADS",
                    "CUDA_VISIBLE_DEVICES",
                )
                if k in os.environ
            },
            "isolation": "one worker process per configuration, "
            + ISOLATION.get(getattr(executor, "name", "local"), "run by a custom executor"),
        }
    )
    return env


def status_counts(records: Iterable[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.get("status", "?")] = counts.get(r.get("status", "?"), 0) + 1
    return counts


# -- where a command's results go (validates; writes nothing) ---------------------------


@dataclass
class Located:
    out: Path
    environment: dict
    dataset: Any
    device: Any  # the torch.device (or, reported by a remote worker, its name)
    device_type: str


def locate_results(
    command: str,
    base: RunConfig,
    settings: SweepSettings,
    *identity: Any,
    out: str | Path | None = None,
    out_root: str | Path = "results",
    grid: dict | None = None,
    executor: Executor | None = None,
    writable: bool = True,
) -> Located:
    """Resolve the device and the dataset, describe the environment, and choose the
    results folder of `command`: `out`, or results/<date>-<device>-<dataset>-<command>-
    <what it holds: the grid and every setting not at its default>/ (`contents_name`); check
    that it can be created or resumed. A remote executor's worker resolves the device."""
    from ..data import load_dataset
    from ..device import resolve_device

    remote = executor.environment(base.device) if getattr(executor, "remote", False) else None
    device = resolve_device(base.device) if remote is None else remote["device"]
    device_type = str(device).split(":")[0]
    dataset = load_dataset(base.dataset, data_dir=base.data_dir, val_size=base.val_size)
    env = environment_metadata(device, dataset.describe(), base, settings, executor, remote)
    folder = (
        Path(out)
        if out
        else default_out_dir(
            device_type, f"{dataset.name}-{command}", grid, base.to_dict(), settings.to_dict(), root=out_root
        )
    )
    ResultsFolder.check(
        folder,
        command=command,
        base_config=base.to_dict(),
        settings=settings.to_dict(),
        environment=env,
        grid=grid,
        writable=writable,
    )
    return Located(folder, env, dataset, device, device_type)


# -- planning a sweep from command-line values (validates everything; writes nothing) --------


def default_grid_fields() -> tuple[str, ...]:
    """The fields the default grid sets (a single value for one of them in a sweep file would
    be overridden by the grid: it must come as its axis)."""
    return ("trainer", "depth", "width", "batch_size")


def default_grid() -> dict[str, list]:
    """Every trainer that builds an MLP with no further option (bp-ste needs a black box)."""
    from ..trainers import architectures, trainer_class, trainer_names

    trainers = [
        n
        for n in trainer_names()
        if "mlp" in architectures(n) and not getattr(trainer_class(n), "needs_black_box", False)
    ]
    return {"trainers": trainers, "depths": [2], "widths": [500], "batch_sizes": [100]}


# memory measurements' data unless a dataset is named: synthetic, of the architecture's
# input shape (the bytes do not depend on the pixel values; nothing falls back to other data)
MEMORY_DATASET = "synthetic"
DEFAULT_SETTINGS = {"steps": SweepSettings.timing_steps, "memory_limit": None, "timeout": None}


@dataclass
class Plan:
    out: Path
    configs: list[RunConfig]
    grid: dict
    base: RunConfig
    settings: SweepSettings
    environment: dict
    command: str = "sweep"


def _settings(values: dict) -> SweepSettings:
    limit = validate.setting("memory_limit", values["memory_limit"], "memory_limit")
    timeout = validate.setting("timeout", values["timeout"], "timeout")
    return SweepSettings(
        timing_steps=validate.setting("steps", values["steps"], "steps"),
        memory_limit_bytes=limit,
        timeout_seconds=timeout,
    )


def plan_sweep(
    *,
    grid_flags: dict | None = None,
    config_flags: dict | None = None,
    setting_flags: dict | None = None,
    sweep_file: str | None = None,
    out: str | None = None,
    out_root: str | Path = "results",
    executor: Executor | None = None,
    dry_run: bool = False,
) -> Plan:
    """Resolve grid, base configuration, settings, device, dataset and the results folder;
    validate everything and write nothing.

    Precedence by order of application: defaults, then the sweep file, then the flags given
    (each `*_flags` dict holds only what was given on the command line)."""
    file = read_sweep_file(sweep_file) if sweep_file else {}
    layers = (file, grid_flags or {}, config_flags or {}, setting_flags or {})
    grid = default_grid()
    values: dict = {"dataset": MEMORY_DATASET}  # bytes do not depend on pixel values
    settings_values = dict(DEFAULT_SETTINGS)
    for layer in layers:
        axes = {
            k: v for k, v in layer.items() if k in GRID_KEYS or (k in config_keys() and isinstance(v, list))
        }
        merge_axes(axes.items(), where=f"sweep file {sweep_file}: " if layer is file else "")
        for key, value in layer.items():
            if key in axes:
                _set_axis(grid, key, parse_list(value, key))
            elif key in SETTING_KEYS:
                settings_values[key] = value
            else:
                values[key] = value
                _set_axis(grid, key, None)  # a field given later as one value is no axis any more
    base = RunConfig(**values)
    configs = grid_configs(base, grid)  # validates every name and size
    settings = _settings(settings_values)
    found = locate_results(
        "sweep",
        base,
        settings,
        grid,
        out=out,
        out_root=out_root,
        grid=grid,
        executor=executor,
        writable=not dry_run,
    )
    return Plan(found.out, configs, grid, base, settings, found.environment)


def dry_run_text(plan: Plan, retry_errors: bool = False) -> str:
    """What `--dry-run` prints: the grid, the folder, what is already recorded, the settings
    and an estimated time (`ffbench.run.estimate`); nothing is written."""
    from .estimate import WORKER_START_SECONDS as WORKER_START
    from .estimate import measure_seconds, measure_speed, minutes

    pending = ResultsFolder(plan.out, {}, plan.command).pending(plan.configs, retry_errors)  # killed etc. too
    st = plan.settings
    cpu = plan.environment.get("device", "cpu").startswith("cpu")
    speed = measure_speed(plan.base.device)
    seconds = measure_seconds(
        pending, st.timing_steps, speed, default_malloc=cpu and st.memory_limit_bytes is None
    )
    axes = "; ".join(f"{k} {', '.join(map(str, v))}" for k, v in plan.grid.items())
    limit = (
        f"budget {st.memory_limit_bytes} B ({st.budget_kind})" if st.memory_limit_bytes else "no memory limit"
    )
    return "\n".join(
        [
            f"ffbench {plan.command} --dry-run: {len(plan.configs)} configurations ({axes})",
            f"  results folder {plan.out}: {len(plan.configs) - len(pending)} already recorded, {len(pending)} to run",
            f"  at least {st.timing_steps} timed steps each (timing protocol), {limit}, "
            + (f"timeout {st.timeout_seconds:g} s" if st.timeout_seconds else "no timeout"),
            f"  device {plan.environment.get('device')} ({plan.environment.get('device_name')}), "
            f"threads {plan.base.threads or 1}",
            f"estimated time: {minutes(seconds)} (a matmul timing here, {WORKER_START} s per worker start). "
            "Nothing written (--dry-run).",
        ]
    )


def finished_line(record: dict) -> str:
    """One line for a configuration just measured: its status, training-step peak (tensor
    level, bytes and MiB) and median step time; or why it did not end ok."""
    from ..config import RunConfig, config_keys
    from ..units import format_bytes

    config = record.get("config") or {}
    try:
        name = RunConfig.from_dict({k: v for k, v in config.items() if k in config_keys()}).short_name()
    except Exception:  # noqa: BLE001 - a record from another version still gets its line
        name = record_name(config) if config else "?"
    if record.get("status") != "ok":
        return f"{name}: {record.get('status')} ({record.get('error') or 'no detail'})"
    metrics = record.get("metrics") or {}
    peak = metrics.get("tensor_train_peak_bytes", metrics.get("tensor_peak_bytes"))
    step = metrics.get("step_seconds_median")
    parts = [f"{name}: ok"]
    if peak is not None:
        parts.append(f"training peak {peak:,} B ({format_bytes(peak)})")
    if step is not None:
        parts.append(f"step {1000 * step:,.1f} ms (median of {metrics.get('timed_steps', '?')})")
    return ", ".join(parts)


def next_steps(out: Path, counts: dict[str, int]) -> str:
    """What to run after a sweep: the report; and how to retry what did not end ok."""
    lines = [
        f"next: ffbench report {out}    (HTML report with every claim decided: reports/{Path(out).name}.html)"
    ]
    if counts.get("killed"):
        lines.append("      the same sweep command again re-measures the killed configurations")
    if counts.get("error"):
        lines.append(
            "      the same sweep command with --retry-errors re-measures the configurations that failed"
        )
    return "\n".join(lines)


def run_plan(
    plan: Plan,
    *,
    executor: Executor | None = None,
    progress: bool = True,
    retry_errors: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """Lock the folder (one writer), open (create or resume) it, measure what is missing,
    export the CSV. Without an executor, a local one runs this plan and is closed after it."""
    from ..results.lock import FolderLock

    with FolderLock(plan.out):
        return _run_locked(plan, executor, progress, retry_errors, echo)


def _run_locked(plan: Plan, executor, progress: bool, retry_errors: bool, echo) -> dict[str, int]:
    folder = ResultsFolder.open(
        plan.out,
        command=plan.command,
        grid=plan.grid,
        base_config=plan.base.to_dict(),
        settings=plan.settings.to_dict(),
        environment=plan.environment,
    )
    from .timing import needs_timing

    todo = folder.pending(plan.configs, retry_errors)
    done = len(plan.configs) - len(todo)
    untimed = sum(needs_timing(folder.get(c)) for c in plan.configs)  # measured; times to come
    counts = f"{done} already recorded, {len(todo)} to run" + (f", {untimed} to time" if untimed else "")
    echo(
        f"ffbench sweep: {len(plan.configs)} configurations -> {plan.out}" + (f" ({counts})" if done else "")
    )
    try:
        for record in measure(
            folder,
            plan.configs,
            plan.settings,
            executor=executor,
            progress=progress,
            retry_errors=retry_errors,
        ):
            echo(finished_line(record))
    finally:
        if any((plan.out / RECORDS).glob("*.json")):
            write_csv(folder)
    counts = status_counts(folder.get(c) or {} for c in plan.configs)
    echo(
        "done: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; records in {plan.out / RECORDS}, table {plan.out / 'results.csv'}"
    )
    return counts
