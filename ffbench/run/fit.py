"""Train one configuration for its epochs and report accuracy: what `ffbench train` runs.

This loop owns its clock (wall time of each epoch's training, evaluation timed
apart); the trainer only sees batches. Accuracy is measured on the validation split
(recipes are chosen on it) and on the test split (reported, never tuned on).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch

from .. import progress as prog
from ..analysis.target import flag_epochs, time_to_target
from ..config import BATCH_CONVENTION, RunConfig
from ..data import Dataset
from ..device import resolve_device, synchronize
from ..environment import environment
from ..measure.protocol import set_threads
from ..record import Record
from ..trainers import build_trainer
from .readout import linear_readout_accuracy


def fit(
    config: RunConfig,
    dataset: Dataset,
    *,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    on_epoch: Callable[[Record], None] | None = None,
) -> Record:
    """Train `config` on `dataset`; returns its record (`Record.to_dict()` is the JSON).
    `on_epoch` receives the record so far (`"partial": true`) after every epoch, so a run cut
    short keeps its epochs."""
    device = resolve_device(config.device)
    # one thread on a CPU unless asked (recorded): an epoch's CPU seconds are then its cost
    threads = set_threads(config.threads if config.threads is not None or device.type != "cpu" else 1)
    data = dataset.to(device)
    trainer = build_trainer(config, data.in_features, data.num_classes, device)
    order_gen = torch.Generator(device="cpu").manual_seed(config.seed)
    epochs: list[dict] = []
    next_lr = lr_schedule(trainer, config, config.epochs * -(-len(data.train_x) // config.batch_size))
    # what every copy of the record carries and no epoch changes: worked out once
    fixed = {"threads": threads, "environment": environment(device), "memory": training_memory(config, data)}
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        trainer.model.train()
        order = torch.randperm(len(data.train_x), generator=order_gen).to(device)
        batches = range(0, len(order), config.batch_size)
        loss_sum = torch.zeros((), device=device)
        t0, cpu0 = time.perf_counter(), time.process_time()
        desc = f"epoch {epoch}/{config.epochs}"
        # a bar on a terminal only: a log gets the epoch's line below
        with prog.bar(total=len(batches), desc=desc, unit="batch", enabled=progress and prog.interactive(),
                      leave=False) as bar:  # fmt: skip
            for i in batches:
                next_lr()
                idx = order[i : i + config.batch_size]
                loss_sum += trainer.train_step(data.train_x[idx].to(trainer.dtype), data.train_y[idx])
                bar.update(1)
        synchronize(device)
        train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        t0 = time.perf_counter()
        val = trainer.accuracy(data.val_x, data.val_y)
        reached = config.target_accuracy is not None and val >= config.target_accuracy
        # with a target, the test split only where the run ends (the target or the cap): what is reported
        test = trainer.accuracy(data.test_x, data.test_y) if ends(config, epoch, reached) else None
        eval_s = time.perf_counter() - t0
        row = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / len(batches),
            "val_accuracy": val,
            "test_accuracy": test,
            "train_seconds": train_s,
            "eval_seconds": eval_s,
            # CPU time of this process while training (all its threads): with --threads 1 on a
            # shared machine, what the epoch cost whatever the contention; the load average
            # (1 minute, at the epoch's end) says how contended the wall time was
            "train_cpu_seconds": train_cpu_s,
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        }
        epochs.append(row)
        if on_epoch is not None:
            on_epoch(_record(config, dataset, trainer, epochs, started, fixed).updated(partial=True))
        echo(
            f"epoch {epoch}/{config.epochs}  loss {row['train_loss']:.4f}  "
            f"val {100 * val:.2f} %  test {'-' if test is None else f'{100 * test:.2f}'} %  "
            f"({train_s:.1f} s train, {eval_s:.1f} s eval)"
        )
        if reached:
            echo(f"validation accuracy reached the target {100 * config.target_accuracy:.2f} %: stopping")
            break
    return _after_training(
        _record(config, dataset, trainer, epochs, started, fixed), config, data, trainer, echo
    )


def ends(config: RunConfig, epoch: int, reached: bool) -> bool:
    """Whether the test split is evaluated after `epoch`: every epoch without a target; with
    one, only the epoch the run ends at (the target reached, or the cap)."""
    return config.target_accuracy is None or reached or epoch == config.epochs


def _after_training(record: Record, config: RunConfig, data: Dataset, trainer, echo) -> Record:
    """The record with what is measured on the trained network: the black box's effect and
    FF's linear read-out."""
    # the untrained network of the same seed, built once after training (building it seeds
    # torch's global generator): what the black box left unchanged, and the read-out's control
    control = (
        build_trainer(config, data.in_features, data.num_classes, trainer.device)
        if config.black_box is not None or config.is_ff
        else None
    )
    if config.black_box is not None:
        record = record.updated(black_box=black_box_effect(config, trainer, control))
    if config.is_ff:
        record = record.updated(readout=readout_with_control(config, data, trainer, control))
        echo(
            f"linear read-out on FF activities: test {100 * record.readout['trained']:.2f} % "
            f"(untrained-network control {100 * record.readout['untrained_control']:.2f} %)"
        )
    return record


def _record(config: RunConfig, dataset: Dataset, trainer, epochs, started, fixed: dict) -> Record:
    """The train record of the epochs so far (`fixed`: threads, environment, memory)."""
    flag_epochs(epochs, fixed["environment"].get("cores"))
    target = config.target_accuracy
    return Record.build(
        kind="train",
        status="ok",  # the copies written between epochs also carry "partial": true
        source="train",
        config=config.to_dict(),
        dataset=dataset.describe(),
        batch_convention=BATCH_CONVENTION,
        eval_chunk=config.chunk,
        epochs=epochs,
        val_accuracy=epochs[-1]["val_accuracy"],
        test_accuracy=epochs[-1]["test_accuracy"],
        wall_seconds=time.perf_counter() - started,
        parameters=trainer.parameter_count(),
        **fixed,
        **({"time_to_target": time_to_target(epochs, target, config.epochs)} if target is not None else {}),
        **({"ff_evaluation": _ff_evaluation(config, trainer)} if config.is_ff else {}),
    )


def _ff_evaluation(config: RunConfig, trainer) -> dict:
    """How an FF run's accuracy is evaluated: the label loop, its layers and chunk."""
    return {
        "method": "goodness: try every label, highest summed goodness wins",
        "layers": [i + 1 for i in trainer.eval_layers],
        "chunk": config.chunk,
    }


def lr_schedule(trainer, config: RunConfig, total_steps: int) -> Callable[[], None]:
    """A function to call before every training step: sets each optimizer's learning rate.
    Constant at `lr`, or linear over the run's `total_steps`: from `lr` at the first step to
    `lr_final` at the last when `lr_final` is given (it implies the linear schedule), else to
    0 one step after the last (`lr_schedule = "linear"`)."""
    step = iter(range(total_steps + 1))
    linear = config.lr_schedule == "linear" or config.lr_final is not None

    def rate(s: int) -> float:
        if config.lr_final is None:
            return config.lr * (1 - s / total_steps)
        return config.lr + (config.lr_final - config.lr) * s / max(1, total_steps - 1)

    def next_lr() -> None:
        if linear:
            lr = rate(next(step))
            for opt in trainer.optimizers():
                for group in opt.param_groups:
                    group["lr"] = lr

    return next_lr


def black_box_effect(config: RunConfig, trainer, control) -> dict:
    """Where learning reached with the black box in the forward pass: per parameter, the
    largest change from the same seed's initial weights (`control`, untrained; 0.0: no
    update ever reached it)."""
    from ..blackbox import weight_changes

    changes = weight_changes(trainer, control)
    return {
        "after_layer": config.black_box,
        "operation": "2-bit quantisation of the RMS-normalised output in NumPy (ffbench/blackbox.py)",
        "estimator": "straight-through" if getattr(trainer, "straight_through", False) else "none",
        "weight_changes": changes,
        "frozen_parameters": [c["parameter"] for c in changes if c["max_abs_change"] == 0.0],
    }


def training_memory(config: RunConfig, data: Dataset) -> dict:
    """The analytic model's tensor-level bytes of this configuration's training step (exact
    for the built-in trainers), so accuracy can be read beside memory; a note when no
    ledger models the trainer."""
    from ..model import predict

    try:
        pred = predict(config, data.in_features, data.num_classes)
    except NotImplementedError as exc:
        return {"analytic_note": str(exc)}
    return {"analytic_train_peak_bytes": pred.train_peak_bytes, "analytic_peak_bytes": pred.peak_bytes}


def readout_with_control(config: RunConfig, data: Dataset, trainer, control) -> dict:
    """Linear read-out on the trained FF net and on an untrained one with the same seed
    (`control`)."""
    kwargs = dict(num_classes=data.num_classes, batch_size=config.batch_size, seed=config.seed)
    args = (data.train_x, data.train_y, data.test_x, data.test_y)
    return {
        "method": "linear softmax on normalised activities of all layers, neutral label, "
        "1 pass of Adam(lr=1e-3) over the training split; test accuracy",
        "trained": linear_readout_accuracy(trainer.readout_features, *args, **kwargs),
        "untrained_control": linear_readout_accuracy(control.readout_features, *args, **kwargs),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m ffbench.run.fit SPEC_JSON OUT_JSON``: one accuracy run as an executor job.
    SPEC holds {"config": RunConfig dict, "progress": bool, "parent_pid": int}; the record
    is written to OUT (atomically) for the driver to keep."""
    import json
    import sys

    from ..data import load_config_dataset
    from ..proc import die_with_parent
    from ..results.store import write_json_atomic

    spec_path, out_path = sys.argv[1:] if argv is None else argv
    with open(spec_path) as f:
        spec = json.load(f)
    die_with_parent(spec.get("parent_pid"))
    config = RunConfig.from_dict(spec["config"])
    dataset = load_config_dataset(config)
    progress = bool(spec.get("progress"))
    record = fit(config, dataset, progress=progress, echo=print if progress else (lambda s: None))
    if spec.get("tuning"):  # how the recipe was chosen (reproduce's tuned accuracy runs)
        record = record.updated(tuning=spec["tuning"])
    write_json_atomic(out_path, record.to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
