"""Results on disk: the folder layout, atomic writes, configuration identity, one walker.

A *results folder* (what `ffbench sweep` and `ffbench maxbatch` write)::

    DIR/manifest.json      identifies the folder: format, schema version, command, grid, settings
    DIR/environment.json   where it ran: torch/CUDA, device, CPU model, cores, threads, dataset, git
    DIR/records/*.json     one record per configuration, written atomically when it finishes
    DIR/results.csv        the records as one table (derived; rebuilt at the end of every run)

A *run folder* (what `ffbench reproduce` writes) holds results folders and a folder of
`train` records beside its `reproduce.json`. Records are the source of truth; everything
else can be rebuilt from them. The schema is documented in docs/results-schema.md.

A record's file name is `<trainer>-d<depth>-w<width>-b<batch>-<hash>.json`, the hash taken
over the configuration fields that differ from their defaults (`config_hash`), so adding a
configuration field (at its default) changes no existing name. Schema version 1 folders
(ffbench 0.1) hashed every field: they are read (their records upgraded, `ffbench.record`),
never written into.

No torch is imported here.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import GRID_FIELDS, axis_fields, non_defaults
from ..errors import ConfigError
from ..record import SCHEMA_VERSION, Record
from ..schema import needs_measuring
from .lock import LOCK_NAME, check_free

FORMAT = "ffbench-results"
MANIFEST = "manifest.json"
ENVIRONMENT = "environment.json"
RECORDS = "records"
CSV_NAME = "results.csv"
WORK = ".work"  # scratch files of the workers in flight
RUN_SUMMARY = "reproduce.json"  # a run folder's summary (not a record)
FILE_MODE = 0o644


# -- writing ------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON has no NaN: store missing numbers as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`
    (readable by everyone, like any file the user creates: mode 0644 less the umask)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path) from None
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error, naming the file it was writing (a full disk's write() names none)."""
    if exc.filename is not None and Path(exc.filename) != path.parent:
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def make_readable(path: str | Path) -> None:
    """Mode 0644 less the umask (mkstemp creates 0600): readable like any file the user makes."""
    os.chmod(path, FILE_MODE & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_text(data: Any) -> str:
    """The JSON text ffbench writes for `data` (NaN stored as null, keys sorted)."""
    return json.dumps(_clean(data), indent=2, sort_keys=True)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """JSON (NaN stored as null), written atomically."""
    write_text_atomic(path, json_text(data))


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# -- identity -----------------------------------------------------------------------------


def stable_hash(value: Any, digits: int = 12) -> str:
    """Hex digest of a JSON-able value, independent of dict order."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def config_hash(config: Any) -> str:
    """12-hex-digit id of a configuration (a RunConfig or its dict): the hash of the fields
    that differ from their defaults."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return stable_hash(non_defaults(data))


def record_name(config: Any) -> str:
    """File name of a configuration's record: readable prefix + hash, e.g. bp-d2-w500-b64-<hash>.json."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    short = f"{data['trainer']}-d{data['depth']}-w{data['width']}-b{data['batch_size']}"
    return f"{short}-{config_hash(data)}.json"


# -- reading ------------------------------------------------------------------------------


MAX_NUMBER = 2**63  # no figure ffbench writes is larger: beyond it a file was not written by ffbench


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _checked_number(text: str) -> int | float:
    value = float(text) if any(c in text for c in ".eE") else int(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def loads_strict(text: str) -> Any:
    """json.loads, refusing NaN/Infinity and numbers beyond +-2**63 (ValueError); too deep a
    nesting raises RecursionError."""
    return json.loads(
        text, parse_constant=_refuse_constant, parse_float=_checked_number, parse_int=_checked_number
    )


def read_json(path: str | Path, what: str) -> Any:
    """A JSON file read strictly (`loads_strict`); ConfigError, one line, when it cannot be."""
    try:
        return loads_strict(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except RecursionError:
        raise ConfigError(f"{what} {path} is nested too deeply to be ffbench JSON") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} {path} is not readable JSON ({exc.msg}, line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    except ValueError as exc:  # a refused constant or number, an integer with too many digits
        raise ConfigError(f"{what} {path} is not ffbench JSON ({' '.join(str(exc).split())[:120]})") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None


def read_manifest(folder: Path) -> dict:
    """The manifest of an existing results folder; ConfigError if it is not one of ours."""
    manifest = read_json(Path(folder) / MANIFEST, "manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ConfigError(
            f"{folder} is not an ffbench results folder ({MANIFEST} has no 'format': '{FORMAT}')"
        )
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise ConfigError(
            f"{folder} uses results schema version {version!r}; this ffbench reads 1 to {SCHEMA_VERSION}"
        )
    return manifest


def is_results_folder(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).exists()


@dataclass(frozen=True)
class Document:
    """One JSON file found under the paths given: `folder` is the results folder (or plain
    folder) it belongs to, `manifest` that folder's manifest when it is a results folder."""

    path: Path
    data: Any
    folder: Path
    manifest: dict | None = None


MAX_FOLDER_DEPTH = 3  # plain folders are searched this deep for results folders and records


def _folder_files(folder: Path, depth: int = 0) -> Iterator[tuple[Path, Path, dict | None]]:
    """(file, folder, manifest) for a results folder, or for a plain folder of JSON files and
    the folders below it (a run folder of `ffbench reproduce`, a folder of train records)."""
    if is_results_folder(folder):
        manifest = read_manifest(folder)
        check_records_folder(folder)
        for f in sorted((folder / RECORDS).glob("*.json")):
            if not f.name.startswith("."):
                yield f, folder, manifest
        for f in sorted(folder.glob("*.json")):
            if f.name not in (MANIFEST, ENVIRONMENT):
                yield f, folder, manifest
        return
    for f in sorted(folder.glob("*.json")):
        if not f.name.startswith("."):
            yield f, folder, None
    if depth < MAX_FOLDER_DEPTH:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            yield from _folder_files(sub, depth + 1)


def walk(paths: str | Path | Iterable[str | Path]) -> list[Document]:
    """Every JSON document under `paths` (files, results folders, run folders, plain folders),
    each read once, in a stable order. ConfigError for a path that does not exist or a file
    that is not JSON. What each document *is* is for the caller to decide."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[tuple[Path, Path, dict | None]] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(_folder_files(p))
        elif p.exists():
            found.append((p, p.parent, None))
        else:
            raise ConfigError(f"{p} does not exist")
    seen: set[Path] = set()
    docs = []
    for f, folder, manifest in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            docs.append(Document(f, read_json(f, "input"), folder, manifest))
    check_folder_records(
        (d.path, d.data, d.manifest) for d in docs if d.manifest and d.path.parent.name == RECORDS
    )
    return docs


def check_records_folder(folder: Path) -> None:
    """A results folder's `records` is a folder (or not there yet)."""
    records = Path(folder) / RECORDS
    if records.exists() and not records.is_dir():
        raise ConfigError(f"{records} is not a folder: {folder} is not a readable results folder")


def check_folder_records(records: Iterable[tuple[Path, Any, dict]]) -> None:
    """(path, data, manifest) of records in results folders: each is named after its
    configuration (`record_name`, the resume identity) and each configuration is there once,
    so a record copied under a second name or edited after it was written is refused,
    naming the files (schema-1 folders, named by another hash, are not checked)."""
    named: list[tuple[Path, str]] = []
    seen: dict[tuple[Path, str], Path] = {}
    for path, data, manifest in records:
        config = data.get("config") if isinstance(data, dict) else None
        if not isinstance(config, dict) or manifest.get("schema_version") == 1:
            continue
        try:
            chash, expected = config_hash(config), record_name(config)
        except (KeyError, TypeError):
            continue  # an incomplete configuration: the record check names the field
        other = seen.setdefault((path.parent.resolve(), chash), path)
        if other != path:
            raise ConfigError(f"{other} and {path} hold the same configuration ({chash}); keep one of them")
        named.append((path, expected))
    for path, expected in named:
        if path.name != expected:
            raise ConfigError(
                f"record {path}: its configuration is named {expected}, not {path.name} "
                f"(copied or edited after it was written); move it out of {path.parent}"
            )


# -- a results folder being written -------------------------------------------------------


def check_writable_place(path: Path, flag: str = "--out") -> None:
    """ConfigError unless `path` could be created: its nearest existing ancestor is a
    writable folder (nothing is created)."""
    parent = Path(path).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in {parent}")


def read_results_folder(folder: Path, writable: bool = True) -> tuple[dict | None, dict[str, dict]]:
    """Validate `folder` as a place to write results, without writing anything.

    Returns its manifest and its records (file name -> record, each read once and checked)
    when it is an existing ffbench results folder, (None, {}) when it does not exist or is
    empty; raises ConfigError for a file, a foreign or a corrupt folder, or a folder another
    ffbench is writing (see lock.py). `writable=False` (a dry run, which writes nothing)
    reads a folder it could not write."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file, not a results folder")
    check_free(folder)
    if writable and folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {folder}: cannot write in it")
    if not folder.exists() or not any(p.name != LOCK_NAME for p in folder.iterdir()):
        if writable:
            check_writable_place(folder / MANIFEST)
        return None, {}
    if not (folder / MANIFEST).exists():
        raise ConfigError(
            f"--out {folder} exists and is not an ffbench results folder (no {MANIFEST}); "
            f"choose a new or empty folder"
        )
    manifest = read_manifest(folder)
    check_records_folder(folder)
    records = []
    for path in sorted((folder / RECORDS).glob("*.json")):
        data = read_json(path, f"--out {folder}: record")
        if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
            raise ConfigError(f"--out {folder}: {path.name} is not an ffbench record")
        Record.from_dict(data, path, "measure")  # a bad record is refused before anything is rewritten
        records.append((path, data, manifest))
    check_folder_records(records)
    return manifest, {path.name: data for path, data, _ in records}


def remove_stale_temporaries(folder: Path) -> None:
    """Delete half-written files a killed run left behind (never a finished record)."""
    folder = Path(folder)
    for path in [*(folder / RECORDS).glob(".*.tmp"), *folder.glob(".*.tmp")]:
        path.unlink(missing_ok=True)
    work = folder / WORK
    if work.exists():
        for path in work.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)


def varying_fields(*grids: dict) -> set[str]:
    """The configuration fields the grids' axes set (besides the usual GRID_FIELDS)."""
    return {f for grid in grids for key in (grid or {}) for f in axis_fields(key)}


def comparable(base_config: dict, varying: set[str] = frozenset()) -> dict:
    """What must match for new records to join a folder: the base configuration's fields
    that differ from their defaults (so fields added later at their default match), less
    those a grid varies."""
    skip = set(GRID_FIELDS) | set(varying)
    return non_defaults({k: v for k, v in base_config.items() if k not in skip})


def _diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:3]) or "?"


@dataclass
class ResultsFolder:
    """A results folder records are written to. Use `open` (validates before writing; the
    folder's records are then read once and kept in `records`, which `save` keeps as on disk:
    one writer holds the folder, see lock.py). Without `records`, `get` reads the file."""

    path: Path
    manifest: dict
    source: str
    records: dict[str, dict] | None = None  # record file name -> the record as on disk

    @staticmethod
    def check(path: str | Path, **identity: Any) -> dict | None:
        """Raise ConfigError if `path` cannot take these results; writes nothing. Returns the
        existing manifest (None for a new folder). `identity`: `read`'s keywords."""
        return ResultsFolder.read(path, **identity)[0]

    @staticmethod
    def read(
        path: str | Path,
        *,
        command: str,
        base_config: dict,
        settings: dict,
        environment: dict,
        grid: dict | None = None,
        writable: bool = True,
    ) -> tuple[dict | None, dict[str, dict]]:
        """`check`: the existing manifest (None for a new folder), and the folder's records
        (file name -> record), each read once."""
        path = Path(path)
        manifest, records = read_results_folder(path, writable)
        if manifest is None:
            return None, {}
        if manifest.get("command") != command:
            raise ConfigError(
                f"--out {path} holds results of 'ffbench {manifest.get('command')}', not '{command}'; "
                f"choose another folder"
            )
        if manifest.get("schema_version") == 1:
            raise ConfigError(
                f"--out {path} holds results of schema version 1 (ffbench 0.1), named by another "
                f"hash; choose another folder"
            )
        varying = varying_fields(grid or {}, *(manifest.get("grids") or []))
        old_base = manifest.get("base_config") or {}
        for what, old, new in (
            ("settings", manifest.get("settings") or {}, settings),
            ("base configuration", comparable(old_base, varying), comparable(base_config, varying)),
        ):
            if old != new:
                raise ConfigError(
                    f"--out {path} was measured with other {what} ({_diff(old, new)}); choose another folder"
                )
        old_env = read_json(path / ENVIRONMENT, f"--out {path}:")
        for key in ("device_name", "torch", "cuda"):
            if not isinstance(old_env, dict) or old_env.get(key) != environment.get(key):
                found = old_env.get(key) if isinstance(old_env, dict) else None
                raise ConfigError(
                    f"--out {path} was measured with {key} {found!r}, this run has "
                    f"{environment.get(key)!r}; choose another folder"
                )
        return manifest, records

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        command: str,
        grid: dict,
        base_config: dict,
        settings: dict,
        environment: dict,
        source: str | None = None,
    ) -> ResultsFolder:
        path = Path(path)
        manifest, records = cls.read(
            path,
            command=command,
            base_config=base_config,
            settings=settings,
            environment=environment,
            grid=grid,
        )
        if manifest is None:
            manifest = {
                "format": FORMAT,
                "schema_version": SCHEMA_VERSION,
                "command": command,
                "created": now(),
                "grids": [],
                "base_config": {k: v for k, v in base_config.items() if k not in GRID_FIELDS},
                "settings": settings,
                "records": RECORDS,
            }
            write_json_atomic(path / ENVIRONMENT, {**environment, "created": manifest["created"]})
        if grid not in manifest["grids"]:
            manifest["grids"].append(grid)
        manifest.update(grid=grid, updated=now())
        write_json_atomic(path / MANIFEST, manifest)
        (path / RECORDS).mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        return cls(path, manifest, source or command, records)

    def record_path(self, config: Any) -> Path:
        return self.path / RECORDS / record_name(config)

    def get(self, config: Any) -> dict | None:
        """A configuration's record (None when there is none): from `records` when the folder
        was opened, else read from its file."""
        if self.records is not None:
            return self.records.get(record_name(config))
        p = self.record_path(config)
        return read_json(p, "record") if p.exists() else None

    def pending(self, configs: Iterable[Any], retry_errors: bool = False) -> list:
        """The configurations a run measures: without a record, `killed`, an error of the
        environment (and, with retry_errors, every error). See schema.needs_measuring."""
        return [c for c in configs if needs_measuring(self.get(c), retry_errors)]

    def save(self, record: dict) -> Path:
        """Write a configuration's record (atomically), stamped with the schema and its hash."""
        record.update(schema_version=SCHEMA_VERSION, config_hash=config_hash(record["config"]))
        path = self.path / RECORDS / record_name(record["config"])
        text = json_text(record)
        write_text_atomic(path, text)
        if self.records is not None:
            self.records[path.name] = loads_strict(text)  # what reading the file would give
        return path
