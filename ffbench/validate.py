"""One validation layer for every way a value enters ffbench.

Command-line flags, sweep files, environment variables ($FFBENCH_DATA, $FFBENCH_CACHE,
$FFBENCH_GRID), pytest-plugin options and the JSON read back (records, benchmark files,
maxbatch.json) are checked by the same rules: a configuration field by its RunConfig rule
(`config.check_field`), a sweep setting by `SETTING_RULES`, both through
`config.check_value` (type, range, finiteness); records are checked by
`ffbench.record.Record.from_dict` with the helpers here. Every error is a ConfigError of one line
that names the field and where the value came from ("sweep file s.toml: seed must be ...").

No torch is imported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import MAX_ROWS, check_field, check_value, config_keys, field_rule
from .errors import ConfigError
from .units import parse_size

MAX_STEPS = 10**6
MAX_TIMEOUT = 10**7  # seconds (about 116 days): larger ones overflow the OS's timers
# sweep settings (file keys and flags): kind and limit, as config.option's
SETTING_RULES = {
    "steps": ("int0", MAX_STEPS),
    "warmup": ("int0", MAX_STEPS),
    "timeout": ("float", MAX_TIMEOUT),
    "max_batch": ("int", MAX_ROWS),
    "rounds": ("int", MAX_STEPS),  # the benchmark plugin's timed rounds
}


def sourced(source: str, check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`check(*args, **kwargs)`, its ConfigError prefixed with where the value came from."""
    try:
        return check(*args, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def field(name: str, value: Any, source: str) -> Any:
    """A configuration field's value checked by its RunConfig rule."""
    return sourced(source, check_field, name, value)


def setting(name: str, value: Any, source: str) -> Any:
    """A sweep setting (steps, timeout, memory_limit) checked by its rule; None stays None."""
    if value is None:
        return None
    if name == "memory_limit":
        return sourced(source, _size, value)
    kind, limit = SETTING_RULES[name]
    return sourced(source, check_value, name, value, kind, limit=limit)


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"memory_limit must be a size such as 2GiB, got {value!r}")
    return parse_size(value)


# -- paths given by the user and the environment ----------------------------------------


def path_text(text: Any, flag: str) -> str:
    """A path argument that ffbench can write into its files and messages (UTF-8, no NUL)."""
    if not isinstance(text, str) or "\x00" in text:
        raise ConfigError(f"{flag} must be a path, got {text!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{flag} {text.encode('utf-8', 'surrogateescape')!r}: the name is not UTF-8 text"
        ) from None
    return text


def env_folders(var: str, *, must_exist: bool = True) -> list[Path]:
    """The folders named by environment variable `var` (os.pathsep-separated); ConfigError
    for a name that is not a folder (when it must exist) or not UTF-8."""
    raw = os.environ.get(var, "")
    out = []
    for entry in filter(None, raw.split(os.pathsep)):
        entry = path_text(entry, f"${var}")
        path = Path(entry).expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"${var}={entry} is not a folder")
        if must_exist and not path.exists():
            raise ConfigError(f"${var}={entry} does not exist")
        out.append(path)
    return out


ENV_FOLDERS = ("FFBENCH_DATA", "FFBENCH_CACHE")


def environment() -> None:
    """The environment variables ffbench reads, checked before any command runs."""
    for var in ENV_FOLDERS:
        env_folders(var, must_exist=False)


def data_dir(value: Any, flag: str = "--data-dir", advice: str = "") -> Path:
    """An explicit data folder: an existing folder (never silently passed over)."""
    path = Path(path_text(str(value), flag)).expanduser()
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"{flag} {value} {state}" + (f"; {advice}" if advice else ""))
    return path


# -- JSON read back ---------------------------------------------------------------------

NUMBER = "number"
_TYPES: dict[str, tuple[type, ...]] = {
    "dict": (dict,),
    "list": (list,),
    "str": (str,),
    "bool": (bool,),
    NUMBER: (int, float),
}
BENCH_FIELDS = {"name": "str", "group": "str", "fullname": "str", "extra_info": "dict", "stats": "dict"}
MAXBATCH_FIELDS = {
    "trainer": "str",
    "depth": NUMBER,
    "width": NUMBER,
    "budget_bytes": NUMBER,
    "max_batch_size": NUMBER,
    "first_failing": NUMBER,
    "capped": "bool",
    "probes": "list",
    "note": "str",
}  # fmt: skip  (micro_batch, added later: checked by config.check_field on read)
STATS = ("median", "min", "max", "mean", "stddev", "iqr")  # pytest-benchmark's figures ffbench reads
MAX_FIGURE = 2**62  # bytes, seconds, counts: anything larger was not measured


def _typed(value: Any, kind: str) -> bool:
    if value is None:
        return True
    if kind == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) <= MAX_FIGURE
    return isinstance(value, _TYPES[kind])


def shape(doc: dict, fields: dict[str, str], where: str) -> None:
    """Each known field of `doc` has its JSON type (null allowed)."""
    for key, kind in fields.items():
        if key in doc and not _typed(doc[key], kind):
            raise ConfigError(f"{where}: field '{key}' must be {kind}, got {_short(doc[key])}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def numbers(values: Any, where: str, what: str) -> None:
    """A dict (or list) of figures: every entry a finite number in range, or null."""
    items = values.items() if isinstance(values, dict) else enumerate(values)
    for key, value in items:
        if not _typed(value, NUMBER):
            raise ConfigError(
                f"{where}: {what} '{key}' must be a number (at most 2**62), got {_short(value)}"
            )


def config(data: Any, where: str) -> None:
    """A configuration read back: a dict whose known fields satisfy their rules (null: the
    default; a choice is only checked to be text, so names added later still read)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: 'config' must be an object, got {_short(data)}")
    known = set(config_keys())
    for key, value in data.items():
        if key not in known or value is None:
            continue
        if field_rule(key).metadata["kind"] == "choice":
            if not isinstance(value, str):
                raise ConfigError(f"{where}: config {key} must be text, got {_short(value)}")
            continue
        sourced(where, check_field, key, value)


def byte_counts(values: Any, where: str, what: str) -> None:
    """Every `*_bytes` figure of a dict is a count: not negative (null allowed)."""
    if not isinstance(values, dict):
        return
    for key, value in values.items():
        if (
            key.endswith("_bytes")
            and isinstance(value, (int, float))
            and not isinstance(value, bool)
            and value < 0
        ):
            raise ConfigError(f"{where}: {what} '{key}' is a byte count and cannot be negative, got {value}")


def benchmark_document(doc: dict, path: Path) -> None:
    """A pytest-benchmark JSON file read back: each benchmark's fields, config and figures."""
    where = f"benchmark file {path}"
    if not isinstance(doc.get("machine_info"), dict):
        raise ConfigError(f"{where}: 'machine_info' must be an object")
    shape(doc["machine_info"], {"ffbench": "dict"}, f"{where}, machine_info")
    for i, bench in enumerate(doc["benchmarks"]):
        if not isinstance(bench, dict):
            raise ConfigError(f"{where}: benchmark {i} must be an object, got {_short(bench)}")
        shape(bench, BENCH_FIELDS, f"{where}, benchmark {i}")
        info = bench.get("extra_info") or {}
        if "config" in info:
            config(info["config"], f"{where}, benchmark {i}")
        stats = bench.get("stats") or {}
        numbers({k: stats.get(k) for k in (*STATS, "rounds")}, f"{where}, benchmark {i}", "stat")
        numbers(stats.get("data") or [], f"{where}, benchmark {i}", "timing")


def maxbatch_document(doc: dict, path: Path) -> None:
    """maxbatch.json read back."""
    where = f"{path}"
    numbers({k: doc.get(k) for k in ("budget_bytes", "width", "cap", "tolerance")}, where, "field")
    for i, row in enumerate(doc["results"]):
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: result {i} must be an object, got {_short(row)}")
        shape(row, MAXBATCH_FIELDS, f"{where}, result {i}")
        if row.get("micro_batch") is not None:
            sourced(f"{where}, result {i}", check_field, "micro_batch", row["micro_batch"])
