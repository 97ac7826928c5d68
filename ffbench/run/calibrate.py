"""`reproduce --dry-run`'s estimate, calibrated from the last run of the same profile.

The arithmetic model (`run/estimate.py`) is good to a factor of two or so; the seconds a
previous run of the profile recorded on this kind of device (its `reproduce.json`:
`invocations[].seconds` per stage) are better. Each stage's recorded seconds (summed over
the invocations that resumed the run; the report's of the last one) are scaled by how much
work the stage has now against then: the `plan` the summary records (memory
configurations, largest-batch searches, accuracy epochs x seeds). A summary without a plan
(written before it was recorded) gives its seconds unscaled, and says so. The accuracy stage
of a run on another dataset is scaled by the training examples of each (where that run did
not record its dataset's size: the model's estimate, for the dataset assumed now).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

WORK_STAGES = ("memory", "maxbatch", "accuracy")  # a resumed run adds what it did to these
SUMMARY = "reproduce.json"  # store.RUN_SUMMARY (kept light: no torch to read it)


@dataclass
class Calibration:
    """Seconds per stage, and where they come from."""

    seconds: dict[str, float]
    source: str  # one line: the run (or the model) the seconds come from
    notes: list[str] = field(default_factory=list)  # stages left to the model, and why


def _read(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _finished(doc: dict) -> str:
    runs = [i for i in doc.get("invocations") or [] if isinstance(i, dict)]
    return max((str(i.get("finished", "")) for i in runs), default="")


def last_summary(results_root: Path, profile: str, device_type: str) -> tuple[Path, dict] | None:
    """The run summary of `profile` on `device_type` ('cpu', 'cuda') under `results_root`
    whose last invocation finished latest; None when there is none."""
    found = []
    for path in Path(results_root).glob(f"*/{SUMMARY}"):
        doc = _read(path)
        if doc and doc.get("profile") == profile and str(doc.get("device", "")).split(":")[0] == device_type:
            found.append((_finished(doc), str(path), path, doc))
    if not found:
        return None
    _, _, path, doc = max(found)
    return path, doc


def recorded_seconds(doc: dict) -> dict[str, float]:
    """Seconds per stage of a run: the work stages summed over its invocations (a resumed run
    measured only what was missing), the report's from the last invocation."""
    out: dict[str, float] = {}
    runs = [i["seconds"] for i in doc.get("invocations") or [] if isinstance(i, dict) and isinstance(i.get("seconds"), dict)]  # fmt: skip
    for seconds in runs:
        for stage in WORK_STAGES:
            if isinstance(seconds.get(stage), (int, float)):
                out[stage] = out.get(stage, 0.0) + float(seconds[stage])
    if runs and isinstance(runs[-1].get("report"), (int, float)):
        out["report"] = float(runs[-1]["report"])
    return out


def calibrate(
    model: dict[str, float], plan: dict[str, float], dataset: tuple[str, int], found
) -> Calibration:
    """Stage seconds for a run whose model estimate is `model` (memory, maxbatch, accuracy),
    whose work is `plan` and which trains on `dataset` (name, training examples), from
    `found` (`last_summary`'s answer, or None)."""
    if found is None:
        return Calibration(dict(model), "the arithmetic model (no earlier run of this profile recorded)")
    path, doc = found
    recorded, then = recorded_seconds(doc), doc.get("plan") if isinstance(doc.get("plan"), dict) else {}
    out, notes, scaled = dict(model), [], []
    for stage in WORK_STAGES:
        if stage not in recorded:
            notes.append(f"{stage}: the model's (not recorded in {path.parent.name})")
            continue
        ratio = _dataset_ratio(doc, dataset, path.parent.name, notes) if stage == "accuracy" else 1.0
        if ratio is None:
            continue
        if isinstance(then.get(stage), (int, float)) and then[stage] > 0 and stage in plan:
            ratio *= plan[stage] / then[stage]
            scaled.append(f"{stage} x {plan[stage] / then[stage]:.2f}")
        out[stage] = recorded[stage] * ratio
    if "report" in recorded:
        out["report"] = recorded["report"]
    how = f"scaled by the work now against then ({', '.join(scaled)})" if scaled else (
        "unscaled (that summary records no plan: the profile may have changed since)")  # fmt: skip
    return Calibration(
        out, f"the stage times recorded by {path.parent.name} ({_finished(doc)}), {how}", notes
    )


def _dataset_ratio(doc: dict, dataset: tuple[str, int], run: str, notes: list[str]) -> float | None:
    """Training examples now over then, for a run on another dataset (1 on the same one);
    None (the model's estimate) where that run did not record its dataset's size."""
    then = doc.get("dataset") if isinstance(doc.get("dataset"), dict) else {}
    name, size = then.get("name"), then.get("train_size")
    if name == dataset[0]:
        return 1.0
    if not isinstance(size, int) or size <= 0:
        notes.append(f"accuracy: the model's ({run} trained on {name}, now {dataset[0]})")
        return None
    notes.append(f"accuracy: {run} trained on {name} ({size} examples), now {dataset[0]} ({dataset[1]}): "
                 f"x {dataset[1] / size:.2f}")  # fmt: skip
    return dataset[1] / size
