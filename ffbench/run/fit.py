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
from ..config import BATCH_CONVENTION, RunConfig
from ..data import Dataset
from ..device import resolve_device, synchronize
from ..environment import environment
from ..measure.timer import set_threads
from ..trainers import build_trainer
from .readout import linear_readout_accuracy


def fit(
    config: RunConfig,
    dataset: Dataset,
    *,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict:
    """Train `config` on `dataset`; returns a JSON-serialisable record. `on_epoch` receives the
    record so far (`"partial": true`) after every epoch, so a run cut short keeps its epochs."""
    device = resolve_device(config.device)
    threads = set_threads(config.threads)
    data = dataset.to(device)
    trainer = build_trainer(config, data.in_features, data.num_classes, device)
    order_gen = torch.Generator(device="cpu").manual_seed(config.seed)
    epochs: list[dict] = []
    started = time.perf_counter()
    steps_per_epoch = -(-len(data.train_x) // config.batch_size)
    step = 0
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
                set_learning_rate(trainer, config, step, config.epochs * steps_per_epoch)
                step += 1
                idx = order[i : i + config.batch_size]
                loss_sum += trainer.train_step(data.train_x[idx].to(trainer.dtype), data.train_y[idx])
                bar.update(1)
        synchronize(device)
        train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        t0 = time.perf_counter()
        val = trainer.accuracy(data.val_x, data.val_y)
        test = trainer.accuracy(data.test_x, data.test_y)
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
            on_epoch(
                {**_record(config, dataset, data, trainer, epochs, started, threads, device), "partial": True}
            )
        echo(
            f"epoch {epoch}/{config.epochs}  loss {row['train_loss']:.4f}  "
            f"val {100 * val:.2f} %  test {100 * test:.2f} %  ({train_s:.1f} s train, {eval_s:.1f} s eval)"
        )
    record = _record(config, dataset, data, trainer, epochs, started, threads, device)
    if config.is_ff:
        record["readout"] = readout_with_control(config, data, trainer)
        echo(
            f"linear read-out on FF activities: test {100 * record['readout']['trained']:.2f} % "
            f"(untrained-network control {100 * record['readout']['untrained_control']:.2f} %)"
        )
    return record


def set_learning_rate(trainer, config: RunConfig, step: int, total_steps: int) -> None:
    """--lr-final: the learning rate decays linearly from --lr at the first step to --lr-final at
    the last, in every optimizer the trainer steps; without it the rate stays --lr."""
    if config.lr_final is None:
        return
    lr = config.lr + (config.lr_final - config.lr) * step / max(1, total_steps - 1)
    for opt in trainer.optimizers():
        for group in opt.param_groups:
            group["lr"] = lr


def _record(
    config: RunConfig, dataset: Dataset, data: Dataset, trainer, epochs, started, threads, device
) -> dict:
    """The train record of the epochs so far."""
    record = {
        "kind": "train",
        "status": "ok",
        "source": "train",
        "config": config.to_dict(),
        "dataset": dataset.describe(),
        "batch_convention": BATCH_CONVENTION,
        "eval_chunk": config.chunk,
        "epochs": epochs,
        "val_accuracy": epochs[-1]["val_accuracy"],
        "test_accuracy": epochs[-1]["test_accuracy"],
        "wall_seconds": time.perf_counter() - started,
        "threads": threads,
        "parameters": trainer.parameter_count(),
        "environment": environment(device),
        "memory": training_memory(config, data),
    }
    if config.is_ff:
        record["ff_evaluation"] = {
            "method": "goodness: try every label, highest summed goodness wins",
            "layers": [i + 1 for i in trainer.eval_layers],
            "chunk": config.chunk,
        }
    return record


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


def readout_with_control(config: RunConfig, data: Dataset, trainer) -> dict:
    """Linear read-out on the trained FF net and on an untrained one with the same seed."""
    control = build_trainer(config, data.in_features, data.num_classes, trainer.device)
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
    from ..store import write_json_atomic
    from .worker import die_with_parent

    spec_path, out_path = sys.argv[1:] if argv is None else argv
    with open(spec_path) as f:
        spec = json.load(f)
    die_with_parent(spec.get("parent_pid"))
    config = RunConfig.from_dict(spec["config"])
    dataset = load_config_dataset(config)
    progress = bool(spec.get("progress"))
    record = fit(config, dataset, progress=progress, echo=print if progress else (lambda s: None))
    write_json_atomic(out_path, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
