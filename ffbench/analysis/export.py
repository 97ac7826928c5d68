"""Exports for other tools: a step's timeline as Chrome trace events (Perfetto, chrome://tracing),
and memory figures as github-action-benchmark's ``customSmallerIsBetter`` list with a
JSON-lines history of them.

Trace events
------------
The Trace Event Format's JSON object form: ``{"traceEvents": [...], "displayTimeUnit": "ns"}``.
Time is the op index (one aten op = one microsecond on the viewer's axis: the tracker counts
ops, not seconds). A counter track ``live tensor bytes`` holds the timeline; each phase is a
complete event (``ph: "X"``) from the op it began at to the op it ended at, with the bytes at
its start and its peak in ``args``; an instant event marks the peak with what it held.

github-action-benchmark
-----------------------
``customSmallerIsBetter`` reads a JSON list of ``{"name", "unit", "value", "range", "extra"}``
(name, unit: strings; value: a number; range, extra: strings). ffbench writes one entry per
benchmark and figure (tensor-level bytes: exact, so the range is ``± 0``), with the commit
and the machine in ``extra``. The history file holds the same entries, one JSON line each,
with ``run``, ``commit`` and ``machine`` keys added; `read_history` gives each run's list back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# (figure key, entry name suffix): what a benchmark contributes to the CI list
FIGURES = (
    ("tensor_whole_run_peak_bytes", "tensor whole-run peak"),
    ("tensor_peak_bytes", "tensor step peak"),
    ("tensor_transient_bytes", "tensor step transient"),
)
HISTORY_KEYS = ("run", "commit", "machine")


# -- trace events ------------------------------------------------------------------------------
def trace_events(record: dict, name: str = "ffbench step") -> dict:
    """A measure record's steady step (timeline, phases, peak) as Chrome trace events."""
    timeline = record.get("timeline")
    if not timeline:
        raise ConfigError(f"{name}: the record holds no timeline (measured with timeline off)")
    pid, tid = 1, 1
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "tid": tid, "ts": 0, "args": {"name": name}},
        {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "ts": 0, "args": {"name": "phases"}},
    ]
    for op, live in timeline:
        events.append(
            {
                "name": "live tensor bytes",
                "cat": "memory",
                "ph": "C",
                "ts": int(op),
                "pid": pid,
                "tid": tid,
                "args": {"bytes": int(live)},
            }  # fmt: skip
        )
    for p in record.get("phases") or []:
        if p.get("start_op") is None or p.get("end_op") is None:
            continue  # a record written before phases carried their op indices
        label = p["name"] if p.get("layer") is None else f"{p['name']}[{p['layer']}]"
        events.append(
            {
                "name": label,
                "cat": "phase",
                "ph": "X",
                "ts": int(p["start_op"]),
                "dur": max(int(p["end_op"]) - int(p["start_op"]), 0),
                "pid": pid,
                "tid": tid,
                "args": {"start_bytes": p["start_bytes"], "peak_bytes": p["peak_bytes"]},
            }  # fmt: skip
        )
    peak_op, peak = max(timeline, key=lambda point: point[1])
    metrics = record.get("metrics") or {}
    held = {k[len("tensor_peak_") : -len("_bytes")]: v for k, v in metrics.items()
            if k.startswith("tensor_peak_") and k.endswith("_bytes")}  # fmt: skip
    events.append(
        {
            "name": "peak",
            "cat": "memory",
            "ph": "i",
            "s": "p",
            "ts": int(peak_op),
            "pid": pid,
            "tid": tid,
            "args": {"peak_bytes": int(peak), **held},
        }  # fmt: skip
    )
    return {"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"time": "aten op index"}}


# -- github-action-benchmark -------------------------------------------------------------------
def current_commit(where: str | Path = ".") -> str:
    """$GITHUB_SHA (set by GitHub Actions), else `git rev-parse --short HEAD` in `where`."""
    sha = os.environ.get("GITHUB_SHA")
    if sha:
        return sha
    try:
        out = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def machine_of(env: dict) -> str:
    """The machine, in words, from a record's `environment`."""
    parts = [env.get("device_name") or env.get("device"), env.get("cpu_model")]
    if env.get("cores"):
        parts.append(f"{env['cores']} cores")
    if not any(parts):
        import platform

        return f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores"
    return ", ".join(str(p) for p in dict.fromkeys(parts) if p)


def entries(name: str, figures: dict, commit: str, machine: str) -> list[dict]:
    """github-action-benchmark entries for one benchmark's figures (bytes)."""
    out = []
    for key, what in FIGURES:
        value = figures.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out.append(
                {
                    "name": f"{name}: {what}",
                    "unit": "bytes",
                    "value": value,
                    "range": "± 0",
                    "extra": f"commit: {commit}\nmachine: {machine}",
                }  # fmt: skip
            )
    return out


def document_entries(doc: Any, path: Path, commit: str) -> list[dict]:
    """Entries of one JSON document: a pytest-benchmark file (each benchmark), a measure or a track record."""
    if isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list):
        out = []
        for b in doc["benchmarks"]:
            info = b.get("extra_info") or {}
            out += entries(
                b.get("fullname") or b.get("name"), info, commit, machine_of(info.get("environment") or {})
            )
        return out
    if (
        isinstance(doc, dict)
        and doc.get("kind") in ("measure", "track")
        and isinstance(doc.get("metrics"), dict)
    ):
        config = doc.get("config") or {}
        if config:
            from ..config import RunConfig

            name = RunConfig.from_dict(config).short_name()
        else:
            name = str(doc.get("name") or path.stem)
        return entries(name, doc["metrics"], commit, machine_of(doc.get("environment") or {}))
    return []


def append_history(path: str | Path, run: list[dict], run_id: str) -> None:
    """Append one run's entries to a JSON-lines history (one write; the file is never rewritten)."""
    if not run:
        return
    lines = []
    for e in run:
        commit, _, machine = e["extra"].partition("\nmachine: ")
        lines.append(
            json.dumps({"run": run_id, "commit": commit.removeprefix("commit: "), "machine": machine, **e})
        )
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_history(path: str | Path) -> dict[str, list[dict]]:
    """Each run's entry list (as github-action-benchmark reads it), in the order appended."""
    runs: dict[str, list[dict]] = {}
    text = Path(path).read_text(encoding="utf-8")
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            run = row["run"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}:{n}: not a line of an ffbench history") from None
        runs.setdefault(str(run), []).append({k: v for k, v in row.items() if k not in HISTORY_KEYS})
    return runs
