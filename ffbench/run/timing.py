"""A sweep's step times: the trainers of one configuration timed together by one job.

A sweep measures memory in one fresh worker per configuration (tuned for RSS, see
worker.py); step times are taken afterwards by the timing protocol (`measure.protocol`) in a
process that kept glibc's default allocator settings, one *timing job* per pair group: the
configurations that differ only in their trainer or its knobs (RunConfig's `paired=False`
fields, at one micro-batch), so FF and BP are timed round-robin under the same
conditions. Each trainer's times go into its own record (`step_seconds`, `timing`, the
median and IQR in `metrics`).

Resume: a record is complete only with its times. A memory record written with times still
to come says so (`timing_pending`); the next run times every group with such a member again,
whole (a ratio is taken within one job), and a member that had times keeps the earlier ones
under `earlier_timings`: nothing is overwritten silently.

    python -m ffbench.run.timing SPEC_JSON OUT_JSON

SPEC_JSON holds {"configs": [RunConfig dicts], "settings": HarnessSettings fields,
"parent_pid": int}; OUT_JSON gets {"kind": "timing", "status": "ok"|"error", "results":
{record name: fields}}.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ..config import RunConfig, unpaired_keys
from ..record import Record

KIND = "time-group"  # the job kind (executors.ENTRIES)


def pair_key(config: RunConfig) -> str:
    """What the configurations of one pair group share: every field that changes the network's
    tensors (not the trainer's knobs: RunConfig's `paired=False` fields) and the micro-batch."""
    unpaired = unpaired_keys()
    same = {k: v for k, v in config.to_dict().items() if k not in unpaired}
    return json.dumps([same, config.micro], sort_keys=True, default=str)


def pair_groups(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """`configs` grouped by `pair_key`, in the order each group first appears."""
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        groups.setdefault(pair_key(config), []).append(config)
    return list(groups.values())


def needs_timing(record: dict | None) -> bool:
    """A measured configuration whose times are still to come."""
    return bool(record) and record.get("status") == "ok" and bool(record.get("timing_pending"))


def pending_groups(folder, configs: list[RunConfig]) -> list[list[RunConfig]]:
    """The pair groups with a member awaiting its times: each with every member measured ok."""
    out = []
    for group in pair_groups(configs):
        records = [folder.get(c) for c in group]
        if any(needs_timing(r) for r in records):
            out.append([c for c, r in zip(group, records) if r and r.get("status") == "ok"])
    return out


def merge(record: dict, found: dict | None, job: dict) -> dict:
    """`record` with the times a timing job found for it (`found`: its `protocol.Rounds.fields`)
    or the job's error; earlier times kept under `earlier_timings`."""
    from .harness import timed_fields

    rec = Record.wrap(record)
    config = RunConfig.from_dict(rec.config)
    changes: dict = {}
    if rec.timing:
        earlier = {"timing": rec.timing, "step_seconds": rec.step_seconds}
        changes["earlier_timings"] = [*(rec.earlier_timings or []), earlier]
    timed = timed_fields(
        config, found or {"timing_error": job.get("error") or "the timing job returned nothing"}
    )
    if "timing" in timed:
        timed["timing"] = {**timed["timing"], **{f"job_{k}": v for k, v in job.items() if k != "error"}}
        rec = rec.without("timing_pending", "timing_error")
    changes["metrics"] = {**(rec.metrics or {}), **timed.pop("metrics", {})}
    return rec.updated(**changes, **timed).to_dict()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m ffbench.run.timing SPEC_JSON OUT_JSON", file=sys.stderr)
        return 2
    from ..proc import die_with_parent
    from ..results.store import write_json_atomic

    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    die_with_parent(spec.get("parent_pid"))
    started = time.perf_counter()
    out: dict = {"kind": "timing", "status": "ok", "results": {}}
    try:
        from .harness import HarnessSettings, time_group

        configs = [RunConfig.from_dict(c) for c in spec["configs"]]
        out["results"] = time_group(configs, HarnessSettings(**spec.get("settings", {})))
    except Exception as exc:  # noqa: BLE001 - a failed timing job is a result: the records say why
        out.update(status="error", error=" ".join(f"{type(exc).__name__}: {exc}".split())[:500])
    out["passes_seconds"] = {"timing_seconds": time.perf_counter() - started}
    out["pid"] = os.getpid()
    write_json_atomic(argv[1], out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
