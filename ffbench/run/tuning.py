"""Recipes for the accuracy runs, chosen for FF and BP by one declared procedure with the same budget.

The procedure (AlgoPerf's idea: time to a target with a declared tuning budget): for each
family, a declared grid of exactly `TuningPlan.trials` recipes (learning rates for BP;
learning rates and the goodness threshold theta for FF, within the same count), each trial
trained on the training split, one thread, one seed kept apart from the reported seeds,
until its validation accuracy reaches the target or its epoch cap. The chosen recipe is the
trial with the fewest epochs to the target (within a family every trial does the same work
per epoch, so epochs order the trials as CPU seconds would, without the machine's noise; the
CPU seconds are recorded beside them); ties go to the higher validation accuracy at that
epoch; a trial that never reaches the target ranks after every one that does, by its best
validation accuracy. The test split is never looked at.

The tuning record (JSON, `results/tuning/<dataset>-<arch>-d<depth>-w<width>-b<batch>.json`)
holds the plan (the budget), every trial and the chosen recipes; `reproduce` reads it when
it exists for the same plan and runs the tuning when it does not. Re-run one by hand with
``python -m ffbench.run.tuning --data-dir DIR [--profile quick]``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import RunConfig
from ..errors import ConfigError
from ..record import Record

KIND = "tuning"


@dataclass(frozen=True)
class TuningPlan:
    """The declared budget: the network every trial trains, the epoch cap, the seed, and
    each family's grid of recipes (the same number of trials for every family)."""

    depth: int
    width: int
    batch_size: int
    epoch_cap: int
    grids: dict  # family trainer -> tuple of recipes ({"lr": ...} / {"lr": ..., "ff_threshold": ...})
    seed: int = 100  # not among the reported seeds
    arch: str = "mlp"

    @property
    def trials(self) -> int:
        counts = {len(g) for g in self.grids.values()}
        if len(counts) != 1:
            raise ConfigError(f"tuning plan: unequal trial counts per family {self._counts()}")
        return counts.pop()

    def _counts(self) -> dict:
        return {family: len(g) for family, g in self.grids.items()}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grids"] = {family: [dict(r) for r in grid] for family, grid in self.grids.items()}
        d["trials_per_family"] = self.trials
        return d

    def file_name(self, dataset: str) -> str:
        return f"{dataset}-{self.arch}-d{self.depth}-w{self.width}-b{self.batch_size}.json"

    def config(self, family: str, recipe: dict, dataset, target: float, **run) -> RunConfig:
        return RunConfig(trainer=family, arch=self.arch, depth=self.depth, width=self.width,
                         batch_size=self.batch_size, epochs=self.epoch_cap, seed=self.seed,
                         target_accuracy=target, dataset=dataset.name, **recipe, **run)  # fmt: skip


def plan_for(depth: int, width: int, epoch_cap: int, trials: int | None = None) -> TuningPlan:
    """The grids every profile tunes with (batch 100, Adam): BP over four learning rates, FF
    over two learning rates x two thresholds: TUNING_TRIALS trials each."""
    from ..analysis.thresholds import TUNING_TRIALS

    grids = {
        "ff": tuple({"lr": lr, "ff_threshold": th} for lr in (5e-3, 1e-2) for th in (4.0, 8.0)),
        "bp": tuple({"lr": lr} for lr in (3e-4, 1e-3, 3e-3, 1e-2)),
    }
    plan = TuningPlan(depth, width, 100, epoch_cap, grids)
    if plan.trials != (trials or TUNING_TRIALS):
        raise ConfigError(
            f"tuning plan: {plan.trials} trials per family, the budget says {trials or TUNING_TRIALS}"
        )
    return plan


def trial_summary(recipe: dict, record: Record) -> dict:
    """One trial of the record: its recipe, whether and when it reached the target, the
    validation accuracy at the end and of every epoch, the CPU and wall seconds."""
    from ..analysis.target import flagged

    ttt = record.time_to_target
    epochs = record.epochs
    return {
        "recipe": dict(recipe),
        "reached": ttt["reached"],
        "epochs_to_target": ttt.get("epoch"),
        "cpu_seconds_to_target": ttt.get("cpu_seconds"),
        "unflagged_cpu_seconds_to_target": ttt.get("unflagged_cpu_seconds"),
        "wall_seconds_to_target": ttt.get("wall_seconds"),
        "epochs_run": len(epochs),
        "val_accuracy": epochs[-1]["val_accuracy"],
        "best_val_accuracy": max(e["val_accuracy"] for e in epochs),
        "val_curve": [e["val_accuracy"] for e in epochs],
        "flagged_epochs": [e["epoch"] for e in epochs if flagged(e)],
    }


def rank_key(trial: dict) -> tuple:
    """Fewest epochs to the target, then the higher validation accuracy; unreached last."""
    if trial["reached"]:
        return (0, trial["epochs_to_target"], -trial["val_accuracy"])
    return (1, 0, -trial["best_val_accuracy"])


def choose(trials: list[dict]) -> dict:
    return min(trials, key=rank_key)


def tune(plan: TuningPlan, dataset, target: float, *, device: str = "cpu",
         echo: Callable[[str], None] = print) -> dict:  # fmt: skip
    """Run every trial of `plan` on `dataset` (in this process, one thread) and return the
    tuning record."""
    from .fit import fit

    families: dict[str, dict] = {}
    env = None
    for family, grid in plan.grids.items():
        trials = []
        for recipe in grid:
            cfg = plan.config(family, recipe, dataset, target, device=device, threads=1)
            record = fit(cfg, dataset, progress=False, echo=lambda s: None)
            env = env or record.environment
            trials.append(trial_summary(recipe, record))
            t = trials[-1]
            echo(f"tuning {family} {recipe}: "
                 + (f"{t['epochs_to_target']} epochs, {t['cpu_seconds_to_target']:.1f} CPU s to target"
                    if t["reached"] else f"not reached in {t['epochs_run']} epochs")
                 + f" (val {100 * t['val_accuracy']:.2f} %)")  # fmt: skip
        chosen = choose(trials)
        families[family] = {
            "trials": trials,
            "chosen": chosen["recipe"],
            "chosen_trial": trials.index(chosen),
        }
    return {
        "kind": KIND,
        "dataset": dataset.describe(),
        "target": {"val_accuracy": target, "split": "validation"},
        "plan": plan.to_dict(),
        "criterion": "fewest epochs to the target on the validation split (same work per epoch within a "
        "family); ties: higher validation accuracy; unreached trials last, by best validation accuracy",
        "families": families,
        "environment": env or {},
        "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def load_or_tune(plan: TuningPlan, dataset, target: float, folder: Path, *, device: str = "cpu",
                 echo: Callable[[str], None] = print) -> tuple[dict, Path]:  # fmt: skip
    """The tuning record of `plan` on `dataset` in `folder`: read when there (it must hold
    this plan and target), else run and written there. Returns (record, its path)."""
    from ..results.store import read_json, write_json_atomic

    path = Path(folder) / plan.file_name(dataset.name)
    if path.exists():
        record = read_json(path, "tuning record")
        if not isinstance(record, dict) or record.get("kind") != KIND:
            raise ConfigError(f"{path} is not a tuning record")
        if record.get("plan") != plan.to_dict() or record.get("target", {}).get("val_accuracy") != target:
            raise ConfigError(
                f"{path} was tuned with another plan or target than this profile's; move it away to re-tune"
            )
        echo(f"tuning: recipes from {path}")
        return record, path
    echo(f"tuning: no record at {path}: {plan.trials} trials per family, up to {plan.epoch_cap} epochs each")
    record = tune(plan, dataset, target, device=device, echo=echo)
    write_json_atomic(path, record)
    return record, path
