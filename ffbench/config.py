"""RunConfig: everything that defines one run, validated once, frozen, serialisable.

`batch_size` is the number of real examples per optimizer step for every trainer.
Forward-Forward additionally forwards one negative per real example, so an FF layer
sees 2 x batch_size rows per step.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

TRAINERS = ("bp", "bp-checkpoint", "ff", "ff-summed", "bp-accum", "bp-inbackward", "bp-local")
DATASETS = ("auto", "mnist", "fashion-mnist", "digits", "synthetic")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("adam", "sgd")
OPTIMIZER_IMPLS = ("single-tensor", "foreach", "fused")
DTYPES = ("float32", "bfloat16")
FF_GOODNESS = ("mean", "sum")
FF_NORMS = ("rms", "l2")
FF_NEGATIVES = ("random", "hard")
BATCH_CONVENTION = (
    "batch_size = real examples per optimizer step; FF also forwards one "
    "negative per example (2 x batch_size rows per layer)"
)


@dataclass(frozen=True)
class RunConfig:
    trainer: str = "bp"
    depth: int = 2  # hidden layers
    width: int = 500  # units per hidden layer
    batch_size: int = 100  # real examples per optimizer step (FF adds as many negatives)
    epochs: int = 1
    lr: float = 1e-3
    optimizer: str = "adam"
    optimizer_impl: str = "single-tensor"  # foreach=False: smallest temporaries; moves the peak
    momentum: float = 0.9  # sgd only
    dataset: str = "auto"
    data_dir: str | None = None
    device: str = "auto"
    dtype: str = "float32"
    seed: int = 0
    val_size: int = 5000  # carved from the training set (capped for small datasets)
    threads: int | None = None  # torch intra-op threads; None = all cores. Recorded.
    # Forward-Forward (ignored by the BP trainers)
    ff_threshold: float = 8.0  # theta in sigma(goodness - theta); chosen on MNIST validation
    # (theta 1..16 tried with RMS norm, mean goodness: 2 lags 8 by ~2 points)
    ff_goodness: str = "mean"  # mean or sum of squared ReLU activities
    ff_norm: str = "rms"  # rms: unit mean square; l2: unit length
    ff_negatives: str = "random"  # random wrong label, or hardest wrong label from the model
    ff_eval_layers: str = "all"  # 'all', 'skip-first', or 1-based layer list such as '1,2'
    eval_chunk: int | None = None  # examples per evaluation chunk; None = batch_size
    # bp-checkpoint
    checkpoint_segments: int | None = None  # None = round(sqrt(depth))
    # bp-accum: examples per micro-batch (gradients accumulated over batch_size / micro_batch)
    micro_batch: int | None = None  # None = batch_size // 4 (at least 1)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -------------------------------------------------------------
    def validate(self) -> None:
        def choice(name: str, allowed: Iterable[str]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(
                    f"unknown {name.replace('_', '-')} {value!r}; choose from {', '.join(allowed)}"
                )

        choice("trainer", TRAINERS)
        choice("dataset", DATASETS)
        choice("device", DEVICES)
        choice("optimizer", OPTIMIZERS)
        choice("optimizer_impl", OPTIMIZER_IMPLS)
        choice("dtype", DTYPES)
        choice("ff_goodness", FF_GOODNESS)
        choice("ff_norm", FF_NORMS)
        choice("ff_negatives", FF_NEGATIVES)
        for name in ("depth", "width", "batch_size", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        for name in ("eval_chunk", "checkpoint_segments", "threads", "micro_batch"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr!r}")
        if self.val_size < 0:
            raise ConfigError(f"val-size must be >= 0, got {self.val_size!r}")
        if not self.ff_threshold > 0:
            raise ConfigError(f"ff-threshold must be positive, got {self.ff_threshold!r}")
        self.eval_layer_indices()  # raises on a malformed list

    # -- derived values ---------------------------------------------------------
    @property
    def is_ff(self) -> bool:
        return self.trainer.startswith("ff")

    @property
    def chunk(self) -> int:
        """Evaluation chunk size actually used (recorded with every accuracy)."""
        return self.eval_chunk or self.batch_size

    @property
    def segments(self) -> int:
        """Checkpoint segments actually used by bp-checkpoint."""
        if self.checkpoint_segments is not None:
            return min(self.checkpoint_segments, self.depth)
        return max(1, round(self.depth**0.5))

    @property
    def micro(self) -> int:
        """Micro-batch size actually used by bp-accum."""
        if self.micro_batch is not None:
            return min(self.micro_batch, self.batch_size)
        return max(1, self.batch_size // 4)

    def eval_layer_indices(self) -> list[int]:
        """0-based indices of the hidden layers whose goodness is summed at test time."""
        spec = self.ff_eval_layers.strip()
        if spec == "all":
            return list(range(self.depth))
        if spec == "skip-first":
            return list(range(1, self.depth)) if self.depth > 1 else [0]
        try:
            layers = sorted({int(part) - 1 for part in spec.split(",")})
        except ValueError:
            raise ConfigError(
                f"ff-eval-layers must be 'all', 'skip-first' or a list like '1,2', got {spec!r}"
            ) from None
        if not layers or layers[0] < 0 or layers[-1] >= self.depth:
            raise ConfigError(f"ff-eval-layers {spec!r} names a layer outside 1..{self.depth}")
        return layers

    # -- (de)serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def short_name(self) -> str:
        return f"{self.trainer}-d{self.depth}-w{self.width}-b{self.batch_size}"


def expand_grid(base: RunConfig, **axes: Iterable[Any]) -> list[RunConfig]:
    """Cartesian product over the given fields, e.g. expand_grid(cfg, trainer=[...], depth=[...])."""
    names = list(axes)
    for name in names:
        if name not in {f.name for f in dataclasses.fields(RunConfig)}:
            raise ConfigError(f"cannot sweep over unknown field {name!r}")
    values = [list(axes[name]) for name in names]
    for name, vals in zip(names, values):
        if not vals:
            raise ConfigError(f"empty list for {name}")
    return [base.replace(**dict(zip(names, combo))) for combo in itertools.product(*values)]
