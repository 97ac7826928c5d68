"""Sweeps: a grid of configurations, each measured in a fresh worker process, resumable.

    folder = ResultsFolder.open(out, command="sweep", grid=..., base_config=..., settings=...,
                                environment=...)
    for record in folder.run(configs, executor=LocalExecutor()):
        ...

Each finished configuration's record is written atomically to DIR/records/<name>.json
the moment its worker ends, so a killed sweep (kill -9 included) loses at most the
configuration in flight; a re-run with the same folder skips every configuration whose
record exists, and a record's file name is a function of its configuration, so a
configuration can never appear twice. Out-of-memory and timeouts are results (status
`oom`, `timeout`), not failures of the sweep.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import platform
import signal
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis.results import (
    ENVIRONMENT,
    FORMAT,
    MANIFEST,
    RECORDS,
    SCHEMA_VERSION,
    check_results_folder,
    config_hash,
    record_name,
    remove_stale_temporaries,
    write_csv_next_to_records,
    write_json_atomic,
)
from ..config import TRAINERS, RunConfig, expand_grid
from ..errors import ConfigError
from ..units import parse_size
from .executor import Executor, Job, JobResult, LocalExecutor

# sweep-file / CLI list keys -> RunConfig field
GRID_KEYS = {"trainers": "trainer", "depths": "depth", "widths": "width", "batch_sizes": "batch_size"}
SETTING_KEYS = ("steps", "memory_limit", "timeout")


@dataclass(frozen=True)
class SweepSettings:
    """How every configuration of a results folder is measured (fixed for the folder)."""

    timing_steps: int = 3
    warmup_steps: int = 1
    memory_limit_bytes: int | None = None
    timeout_seconds: float | None = None
    timeline: bool = True

    def __post_init__(self) -> None:
        for name in ("timing_steps",):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"steps must be a positive integer, got {v!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"warmup steps must be >= 0, got {self.warmup_steps!r}")
        if self.memory_limit_bytes is not None and self.memory_limit_bytes <= 0:
            raise ConfigError(f"memory limit must be positive, got {self.memory_limit_bytes!r}")
        if self.timeout_seconds is not None and not self.timeout_seconds > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout_seconds!r}")

    def harness(self) -> dict:
        """HarnessSettings fields for the worker. Under a memory budget the allocator is set
        up front (VmData must follow live memory), so the default-malloc timing is skipped."""
        return {
            "warmup_steps": self.warmup_steps,
            "timing_steps": self.timing_steps,
            "timeline": self.timeline,
            "compare_allocator": self.memory_limit_bytes is None,
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


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
    field = GRID_KEYS.get(key, key)
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
    seen: list = []
    for item in items:  # de-duplicate, keep order: a repeated value would be a repeated row
        if item not in seen:
            seen.append(item)
    return seen


def read_sweep_file(path: str | Path) -> dict:
    """A JSON or TOML file with keys trainers, depths, widths, batch_sizes (lists or comma
    strings), optionally steps, memory_limit, timeout and any RunConfig field (a scalar)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read sweep file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - TOMLDecodeError / JSONDecodeError
        raise ConfigError(
            f"sweep file {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"sweep file {path} must hold a table/object of keys")
    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"extra"}
    out: dict = {}
    for key, value in data.items():
        norm = key.replace("-", "_")
        if norm in GRID_KEYS:
            out[norm] = parse_list(value, norm)
        elif norm in SETTING_KEYS or (norm in fields and norm not in GRID_KEYS.values()):
            out[norm] = value
        else:
            raise ConfigError(
                f"sweep file {path}: unknown key {key!r}; use trainers, depths, widths, "
                f"batch_sizes, steps, memory_limit, timeout or a configuration field"
            )
    return out


def grid_configs(base: RunConfig, grid: dict[str, list]) -> list[RunConfig]:
    return expand_grid(base, **{GRID_KEYS[k]: v for k, v in grid.items()})


def short_hash(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def default_out_dir(device_type: str, label: str, *identity: Any, root: str | Path = "results") -> Path:
    """results/<date>-<device>-<label>-<hash of the grid and settings>/: the same command on
    the same day resumes into the same folder."""
    date = _dt.date.today().isoformat()
    return Path(root) / f"{date}-{device_type}-{label}-{short_hash(*identity)}"


# -- the results folder ---------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def comparable_base(config: RunConfig) -> dict:
    d = config.to_dict()
    for k in ("trainer", "depth", "width", "batch_size", "extra"):
        d.pop(k, None)
    return d


class ResultsFolder:
    """A results folder being written. Use `open` (validates before writing anything)."""

    def __init__(self, path: Path, manifest: dict, settings: SweepSettings, source: str):
        self.path = Path(path)
        self.manifest = manifest
        self.settings = settings
        self.source = source

    # -- opening --------------------------------------------------------------------
    @classmethod
    def check(
        cls,
        path: str | Path,
        *,
        command: str,
        base_config: RunConfig,
        settings: SweepSettings,
        environment: dict,
    ) -> dict | None:
        """Raise ConfigError if `path` cannot take these results; writes nothing."""
        path = Path(path)
        manifest = check_results_folder(path)
        if manifest is None:
            return None
        if manifest.get("command") != command:
            raise ConfigError(
                f"--out {path} holds results of 'ffbench {manifest.get('command')}', "
                f"not '{command}'; choose another folder"
            )
        if manifest.get("settings") != settings.to_dict():
            raise ConfigError(
                f"--out {path} was measured with other settings "
                f"({_diff(manifest.get('settings') or {}, settings.to_dict())}); "
                f"choose another folder"
            )
        if manifest.get("base_config") != comparable_base(base_config):
            raise ConfigError(
                f"--out {path} was measured with another base configuration "
                f"({_diff(manifest.get('base_config') or {}, comparable_base(base_config))}); "
                f"choose another folder"
            )
        try:
            old_env = json.loads((path / ENVIRONMENT).read_text())
        except (OSError, json.JSONDecodeError):
            raise ConfigError(f"--out {path}: {ENVIRONMENT} is missing or corrupt") from None
        for key in ("device_name", "torch", "cuda"):
            if old_env.get(key) != environment.get(key):
                raise ConfigError(
                    f"--out {path} was measured with {key} {old_env.get(key)!r}, this "
                    f"run has {environment.get(key)!r}; choose another folder"
                )
        return manifest

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        command: str,
        grid: dict,
        base_config: RunConfig,
        settings: SweepSettings,
        environment: dict,
        source: str | None = None,
    ) -> ResultsFolder:
        path = Path(path)
        manifest = cls.check(
            path, command=command, base_config=base_config, settings=settings, environment=environment
        )
        now = _now()
        if manifest is None:
            manifest = {
                "format": FORMAT,
                "schema_version": SCHEMA_VERSION,
                "command": command,
                "created": now,
                "grids": [],
                "base_config": comparable_base(base_config),
                "settings": settings.to_dict(),
                "records": RECORDS,
            }
            write_json_atomic(path / ENVIRONMENT, {**environment, "created": now})
        if grid not in manifest["grids"]:
            manifest["grids"].append(grid)
        manifest["grid"] = grid
        manifest["updated"] = now
        write_json_atomic(path / MANIFEST, manifest)
        (path / RECORDS).mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        return cls(path, manifest, settings, source or command)

    # -- records --------------------------------------------------------------------
    def record_path(self, config: RunConfig) -> Path:
        return self.path / RECORDS / record_name(config)

    def get(self, config: RunConfig) -> dict | None:
        p = self.record_path(config)
        return json.loads(p.read_text()) if p.exists() else None

    def pending(self, configs: Iterable[RunConfig], retry_errors: bool = False) -> list[RunConfig]:
        out = []
        for c in configs:
            rec = self.get(c)
            if rec is None or (retry_errors and rec.get("status") == "error"):
                out.append(c)
        return out

    def job(self, config: RunConfig) -> Job:
        work = self.path / ".work"
        name = record_name(config)
        spec = {
            "config": config.to_dict(),
            "settings": self.settings.harness(),
            "memory_limit_bytes": self.settings.memory_limit_bytes,
            "source": self.source,
        }
        return Job(name, spec, work / f"{name}.spec", work / name, self.settings.timeout_seconds)

    def finalize(self, result: JobResult) -> dict:
        """The worker's record (or one describing why there is none) + sweep fields."""
        job = result.job
        record = result.record
        if record is None:
            record = {"kind": "measure", "config": job.spec["config"]}
            if result.timed_out:
                record["status"] = "timeout"
                record["error"] = f"no result within {job.timeout_seconds:g} s (worker killed)"
            elif result.returncode is not None and result.returncode == -signal.SIGKILL:
                record["status"] = "oom"
                record["error"] = "worker killed by SIGKILL (the kernel's out-of-memory killer does this)"
            else:
                record["status"] = "error"
                last = [ln for ln in result.stderr_tail.strip().splitlines() if ln.strip()]
                record["error"] = f"worker exited with status {result.returncode}" + (
                    f": {last[-1][:500]}" if last else ""
                )
                record["worker_output"] = result.stderr_tail
        record.update(
            {
                "schema_version": SCHEMA_VERSION,
                "source": self.source,
                "isolated": True,
                "config_hash": config_hash(job.spec["config"]),
                "settings": self.settings.to_dict(),
            }
        )
        record.setdefault("worker", {}).update(
            {
                "wall_seconds": result.wall_seconds,
                "returncode": result.returncode,
                "timed_out": result.timed_out,
                "executor": "local subprocess",
            }
        )
        return record

    def run(
        self,
        configs: list[RunConfig],
        *,
        executor: Executor | None = None,
        progress: bool = False,
        retry_errors: bool = False,
        on_record: Callable[[RunConfig, dict], None] | None = None,
    ) -> Iterator[dict]:
        """Measure every configuration without a record; yield each record as written."""
        executor = executor or LocalExecutor()
        todo = self.pending(configs, retry_errors)
        by_name = {record_name(c): c for c in todo}
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(configs),
            initial=len(configs) - len(todo),
            unit="config",
            disable=not progress,
            dynamic_ncols=True,
            desc=self.source,
        )
        try:
            jobs = (self.job(c) for c in todo)
            for result in executor.run(jobs):
                record = self.finalize(result)
                write_json_atomic(self.path / RECORDS / result.job.key, record)
                config = by_name[result.job.key]
                bar.update(1)
                bar.set_postfix_str(f"{config.short_name()}: {record['status']}", refresh=True)
                if on_record:
                    on_record(config, record)
                yield record
        finally:
            bar.close()
            try:
                (self.path / ".work").rmdir()  # only when empty
            except OSError:
                pass

    def write_csv(self) -> Path:
        return write_csv_next_to_records(self.path)


def _diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:3]) or "?"


# -- environment metadata ----------------------------------------------------------------


def environment_metadata(device, dataset_description: dict, base: RunConfig, settings: SweepSettings) -> dict:
    import os

    from ..environment import environment

    env = environment(device)
    env.update(
        {
            "hostname": platform.node(),
            "dataset": dataset_description,
            "seed": base.seed,
            "threads_requested": base.threads,
            "threads_note": "torch intra-op threads per worker; null = all cores",
            "allocator_setting": (
                "each worker: default glibc malloc for the first timing pass, then "
                "mallopt(M_MMAP_THRESHOLD=65536) (see record 'allocator_setting')"
                if settings.memory_limit_bytes is None
                else "each worker: mallopt(M_MMAP_THRESHOLD=65536) before the memory limit is set"
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
            "isolation": "one fresh worker process per configuration (python -m ffbench.run.worker)",
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
    device: Any


def locate_results(
    command: str,
    base: RunConfig,
    settings: SweepSettings,
    *identity: Any,
    out: str | Path | None = None,
    out_root: str | Path = "results",
) -> Located:
    """Resolve the device and the dataset, describe the environment, and choose the
    results folder of `command`: `out`, or results/<date>-<device>-<dataset>-<command>-
    <hash of identity, the comparable base configuration and the settings>/; check that
    it can be created or resumed."""
    from ..data import load_dataset
    from ..device import resolve_device

    device = resolve_device(base.device)
    dataset = load_dataset(base.dataset, data_dir=base.data_dir, val_size=base.val_size)
    env = environment_metadata(device, dataset.describe(), base, settings)
    folder = (
        Path(out)
        if out
        else default_out_dir(
            device.type,
            f"{dataset.name}-{command}",
            *identity,
            comparable_base(base),
            settings.to_dict(),
            root=out_root,
        )
    )
    ResultsFolder.check(folder, command=command, base_config=base, settings=settings, environment=env)
    return Located(folder, env, dataset, device)


# -- planning a sweep from command-line values (validates everything; writes nothing) --------

DEFAULT_GRID = {"trainers": list(TRAINERS), "depths": [2], "widths": [500], "batch_sizes": [100]}


@dataclass
class Plan:
    out: Path
    configs: list[RunConfig]
    grid: dict
    base: RunConfig
    settings: SweepSettings
    environment: dict
    command: str = "sweep"


def _setting(name: str, cli: Any, file_value: Any, default: Any) -> Any:
    return cli if cli is not None else (file_value if file_value is not None else default)


def plan_sweep(
    *,
    grid_cli: dict[str, str | None],
    config_cli: dict,
    config_explicit: set[str],
    sweep_file: str | None = None,
    steps: int | None = None,
    memory_limit: str | None = None,
    timeout: float | None = None,
    out: str | None = None,
    out_root: str | Path = "results",
) -> Plan:
    """Resolve grid, base configuration, settings, device, dataset and the results folder.

    Precedence: a command-line value given explicitly > the sweep file > the defaults."""
    file = read_sweep_file(sweep_file) if sweep_file else {}
    grid = {}
    for key in GRID_KEYS:
        if grid_cli.get(key) is not None:
            grid[key] = parse_list(grid_cli[key], key)
        elif key in file:
            grid[key] = file[key]
        else:
            grid[key] = DEFAULT_GRID[key]
    values = dict(config_cli)
    for key, value in file.items():
        if key not in GRID_KEYS and key not in SETTING_KEYS and key not in config_explicit:
            values[key] = value
    try:
        base = RunConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"bad configuration value: {exc}") from None
    configs = grid_configs(base, grid)  # validates every name and size
    raw_limit = _setting("memory_limit", memory_limit, file.get("memory_limit"), None)
    raw_steps = _setting("steps", steps, file.get("steps"), 3)
    raw_timeout = _setting("timeout", timeout, file.get("timeout"), None)
    try:
        timeout_value = None if raw_timeout is None else float(raw_timeout)
    except (TypeError, ValueError):
        raise ConfigError(f"timeout must be a number of seconds, got {raw_timeout!r}") from None
    settings = SweepSettings(
        timing_steps=raw_steps,
        memory_limit_bytes=None if raw_limit is None else parse_size(raw_limit),
        timeout_seconds=timeout_value,
    )
    found = locate_results("sweep", base, settings, grid, out=out, out_root=out_root)
    return Plan(found.out, configs, grid, base, settings, found.environment)


def run_plan(
    plan: Plan,
    *,
    executor: Executor | None = None,
    progress: bool = True,
    retry_errors: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, int]:
    """Open (create or resume) the folder, measure what is missing, export the CSV."""
    folder = ResultsFolder.open(
        plan.out,
        command=plan.command,
        grid=plan.grid,
        base_config=plan.base,
        settings=plan.settings,
        environment=plan.environment,
    )
    todo = folder.pending(plan.configs, retry_errors)
    done = len(plan.configs) - len(todo)
    echo(
        f"ffbench sweep: {len(plan.configs)} configurations -> {plan.out}"
        + (f" ({done} already recorded, {len(todo)} to run)" if done else "")
    )
    try:
        for _ in folder.run(plan.configs, executor=executor, progress=progress, retry_errors=retry_errors):
            pass
    finally:
        if any((plan.out / RECORDS).glob("*.json")):
            folder.write_csv()
    counts = status_counts(folder.get(c) or {} for c in plan.configs)
    echo(
        "done: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; records in {plan.out / RECORDS}, table {plan.out / 'results.csv'}"
    )
    return counts
