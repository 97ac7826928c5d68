"""RunConfig: everything that defines one run, validated once, frozen, serialisable.

Each field carries its own command-line help, group and validation rule in its metadata
(`option(...)`): the CLI flags, the results table's configuration columns and the report's
configuration table are all derived from this one class. Adding a configuration field is
one `option(...)` line here.

`batch_size` is the number of real examples per optimizer step for every trainer.
Forward-Forward additionally forwards one negative per real example, so an FF layer
sees 2 x batch_size rows per step.

This module imports no torch; only validating a trainer name loads the trainer registry.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

DATASETS = ("auto", "mnist", "fashion-mnist", "digits", "synthetic", "cifar10")
ARCHS = ("mlp", "conv", "local", "recurrent")
DEVICES = ("auto", "cpu", "cuda")
OPTIMIZERS = ("adam", "sgd")
OPTIMIZER_IMPLS = ("single-tensor", "foreach", "fused")
LR_SCHEDULES = ("constant", "linear")
DTYPES = ("float32", "bfloat16")
FF_GOODNESS = ("mean", "sum")
FF_NORMS = ("rms", "l2")
FF_NEGATIVES = ("random", "hard")
FF_PASSES = ("together", "sequential")
FF_EVALS = ("label-loop", "replicated")
FF_LOSSES = ("threshold", "symba")
FF_SCOPES = ("layer", "position")
MEMORY_FORMATS = ("channels_last", "contiguous")
FF_MICRO_SCHEDULES = ("micro-batch-major", "layer-major")
DEFAULT_EVAL_CHUNK = 256  # examples per evaluation chunk, whatever the training batch
BATCH_CONVENTION = (
    "batch_size = real examples per optimizer step; FF also forwards one "
    "negative per example (2 x batch_size rows per layer)"
)
# Flag groups, in --help order.
GROUPS = {
    "model": "model",
    "training": "training",
    "data": "data",
    "ff": "Forward-Forward (ignored by the BP trainers)",
    "bp": "backprop variants",
    "knobs": "techniques every family may use (same update: the closed division)",
    "recurrent": "recurrent network (--arch recurrent) and the black box",
    "measurement": "device and measurement",
}
MAX_SEED = 2**63 - 1  # torch.manual_seed takes a signed 64-bit value
MAX_ROWS = 2**31 - 1
ACCUM_DEFAULT = "1/4"  # bp-accum's micro-batch: a quarter of the batch  # a batch or evaluation chunk larger than this cannot be indexed by int32 kernels


def micro_rows(batch_size: int, micro_batch: int | str | None, trainer: str) -> int:
    """Real examples per micro-batch actually used (`RunConfig.micro`), from a record's
    fields: rows (at most the batch), a fraction p/q of the batch (at least 1 row), or the
    whole batch without one (bp-accum: 1/4)."""
    spec = micro_batch
    if spec is None:
        spec = ACCUM_DEFAULT if trainer == "bp-accum" else batch_size
    if isinstance(spec, str):
        num, den = (int(part) for part in spec.split("/"))
        return max(1, batch_size * num // den)
    return min(int(spec), batch_size)


def trainer_choices() -> tuple[str, ...]:
    from .trainers.registry import trainer_names  # loads the trainer modules (torch)

    return trainer_names()


# What a field is to a comparison (`option(role=...)`).
ROLES = {
    "identity": "what was trained: rows that differ here are different configurations",
    "variant": "a trainer's implementation option (same update, another schedule): named in the "
    "variant, e.g. ff[ff_pass=sequential]",
    "evaluation": "how evaluation ran: changes no training figure, only evaluation and whole-run ones",
    "place": "where and how fast it ran (device, threads, data folder): never keys a comparison",
}


def option(
    default: Any,
    help: str,  # noqa: A002 - argparse's word
    *,
    group: str,
    kind: str,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    limit: int | None = None,
    shown: bool = True,
    paired: bool = True,
    role: str = "identity",
    column: str | None = None,
) -> Any:
    """A RunConfig field. kind: 'choice', 'int' (>= 1), 'int0' (>= 0), 'float' (> 0, finite),
    'float0' (>= 0, finite), 'text' (free text without NUL), 'ints' (a positive integer or a
    comma list of them, stored as text: '64', '32,64,128'). A field whose default is None may
    be None. `limit`: largest value allowed. The rule is `check_value`'s (one for every input).
    `shown`: listed in the report's configuration table. `paired`: the field changes the
    network's tensors, so rows that differ in it are different configurations for a comparison
    (False: a trainer's knob or a run setting -- rows differing only there are paired).
    `role`: what the field is to a comparison (ROLES). `column`: the dtype of its column in the
    results table (None: as read)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    meta = {
        "help": help,
        "group": group,
        "kind": kind,
        "choices": choices,
        "limit": limit,
        "shown": shown,
        "paired": paired,
        "role": role,
        "column": column,
    }
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunConfig:
    # model
    trainer: str = option(
        "bp", "algorithm and schedule", group="model", kind="choice", choices=trainer_choices, paired=False
    )
    depth: int = option(2, "hidden layers", group="model", kind="int", limit=10_000, column="Int64")
    width: int = option(500, "units per hidden layer", group="model", kind="int", limit=2**24, column="Int64")
    arch: str = option(
        "mlp", "architecture: fully connected (mlp), convolutional, locally connected, recurrent",
        group="model", kind="choice", choices=ARCHS,
    )  # fmt: skip
    channels: str = option(
        "64", "conv/local: output channels, one value for every layer or one per layer (e.g. 32,64,128)",
        group="model", kind="ints",
    )  # fmt: skip
    kernel: str = option(
        "3", "conv/local: kernel size (padding kernel // 2), one value or one per layer",
        group="model", kind="ints",
    )  # fmt: skip
    stride: str = option(
        "1", "conv/local: stride, one value or one per layer", group="model", kind="ints"
    )  # fmt: skip
    memory_format: str = option(
        "channels_last",
        "conv: activation layout; channels_last keeps oneDNN from reordering inside conv ops "
        "(hidden from the tensor-level count), contiguous (NCHW) shows what that hides",
        group="model", kind="choice", choices=MEMORY_FORMATS,
    )  # fmt: skip
    # training
    batch_size: int = option(
        100,
        "real examples per optimizer step; FF also forwards as many negatives",
        group="training",
        kind="int",
        limit=MAX_ROWS,
        column="Int64",
    )
    epochs: int = option(
        1,
        "passes over the training split (train)",
        group="training",
        kind="int",
        limit=10**6,
        paired=False,
        column="Int64",
    )
    target_accuracy: float | None = option(
        None, "validation accuracy to stop at: training ends after the first epoch reaching it (at most "
        "--epochs; the record says when, or that the cap was hit without it; test accuracy is then evaluated at that "
        "epoch only); default: every epoch",
        group="training", kind="float", limit=1, paired=False,
    )  # fmt: skip
    lr: float = option(1e-3, "learning rate", group="training", kind="float", paired=False, column="float64")
    lr_final: float | None = option(
        None, "learning rate at the last step of `train`, decayed linearly from --lr (implies --lr-schedule linear)",
        group="training", kind="float",
    )  # fmt: skip
    optimizer: str = option("adam", "optimizer", group="training", kind="choice", choices=OPTIMIZERS)
    optimizer_impl: str = option(
        "single-tensor",
        "optimizer implementation; moves the memory peak (single-tensor: smallest temporaries)",
        group="training",
        kind="choice",
        choices=OPTIMIZER_IMPLS,
    )
    lr_schedule: str = option(
        "constant", "learning rate over training: constant, or linear decay to --lr-final (default 0)",
        group="training", kind="choice", choices=LR_SCHEDULES, paired=False)  # fmt: skip
    momentum: float = option(0.9, "SGD momentum", group="training", kind="float0", shown=False, paired=False)
    seed: int = option(
        0,
        "seed of weights, negatives and data order",
        group="training",
        kind="int0",
        limit=MAX_SEED,
        paired=False,
        column="Int64",
    )
    dtype: str = option(
        "float32", "parameter and activation dtype", group="training", kind="choice", choices=DTYPES
    )
    # data
    dataset: str = option("auto", "dataset", group="data", kind="choice", choices=DATASETS)
    data_dir: str | None = option(
        None,
        "folder holding MNIST/Fashion-MNIST raw files (or CIFAR-10's cifar-10-batches-py)",
        group="data",
        kind="text",
        shown=False,
        paired=False,
        role="place",
    )
    image_shape: str | None = option(
        None, "conv/local: CxHxW of the inputs (default: the dataset's; synthetic 3x32x32)",
        group="data", kind="text",
    )  # fmt: skip
    val_size: int = option(
        5000,
        "validation examples carved from the training split",
        group="data",
        kind="int0",
        limit=MAX_ROWS,
        paired=False,
        column="Int64",
    )
    # device and measurement
    device: str = option(
        "auto",
        "device (auto: CUDA when available)",
        group="measurement",
        kind="choice",
        choices=DEVICES,
        role="place",
    )
    threads: int | None = option(
        None,
        "torch CPU threads (default: 1, the timing protocol's); recorded",
        group="measurement",
        kind="int",
        limit=4096,
        paired=False,
        role="place",
        column="Int64",
    )
    eval_chunk: int = option(
        DEFAULT_EVAL_CHUNK,
        "examples per evaluation chunk, independent of the training batch",
        group="measurement",
        kind="int",
        limit=MAX_ROWS,
        paired=False,
        role="evaluation",
        column="Int64",
    )
    # Forward-Forward
    ff_threshold: float = option(
        8.0,
        "goodness threshold theta (chosen on MNIST validation)",
        group="ff",
        kind="float",
        paired=False,
        column="float64",
    )
    ff_goodness: str = option(
        "mean",
        "mean or sum of squared activities",
        group="ff",
        kind="choice",
        choices=FF_GOODNESS,
        paired=False,
        role="variant",
    )
    ff_norm: str = option(
        "rms",
        "normalisation before each layer",
        group="ff",
        kind="choice",
        choices=FF_NORMS,
        paired=False,
        role="variant",
    )
    ff_negatives: str = option(
        "random",
        "random wrong label, or the model's hardest",
        group="ff",
        kind="choice",
        choices=FF_NEGATIVES,
        paired=False,
        role="variant",
    )
    ff_pass: str | None = option(
        None,
        "row blocks per layer: positives and negatives together (2B rows) or one after the other "
        "(same update; default: the trainer's, together for ff, sequential for ff-frugal)",
        group="ff",
        kind="choice",
        choices=FF_PASSES,
        paired=False,
        role="variant",
    )
    ff_eval: str = option(
        "label-loop",
        "evaluation: one label at a time (memory constant in the number of classes) or all "
        "labels of a chunk at once (replicated; same predictions)",
        group="ff",
        kind="choice",
        choices=FF_EVALS,
        paired=False,
        role="evaluation",
    )
    ff_eval_layers: str = option(
        "all",
        "layers whose goodness is summed at test time: all, skip-first, or e.g. 1,2",
        group="ff",
        kind="text",
        paired=False,
        role="evaluation",
    )
    ff_loss: str = option(
        "threshold",
        "layer loss: Hinton's threshold loss, or SymBa's softplus(-alpha (g_pos - g_neg)) on the "
        "same image with the true and a wrong label (conv/local only)",
        group="ff", kind="choice", choices=FF_LOSSES,
    )  # fmt: skip
    ff_alpha: float = option(8.0, "SymBa's alpha (--ff-loss symba)", group="ff", kind="float")
    ff_goodness_scope: str = option(
        "layer",
        "conv/local: one goodness per example (over C,H,W) or one per position (over C; "
        "Hinton's local goodness), the loss averaged over positions",
        group="ff", kind="choice", choices=FF_SCOPES,
    )  # fmt: skip
    # backprop variants
    checkpoint_segments: int | None = option(
        None,
        "bp-checkpoint segments (default about sqrt(depth))",
        group="bp",
        kind="int",
        limit=10_000,
        paired=False,
        role="variant",
        column="Int64",
    )
    # techniques every family may use (each gives its family's exact update)
    micro_batch: int | str | None = option(
        None, "real examples per micro-batch: rows (e.g. 256) or a fraction of the batch (e.g. 1/4); "
        "gradients accumulate over the micro-batches, then one step (the same update); FF forwards "
        "as many negatives per micro-batch. Default: none (bp-accum: 1/4). Refused for a trainer "
        "without a micro-batched schedule: bp-inbackward (it steps inside backward, before the batch "
        "is complete), ff-summed (one backward over every layer's summed loss), bp-local, bp-ce",
        group="knobs", kind="micro", limit=MAX_ROWS, paired=False, role="variant", column="object")  # fmt: skip
    ff_micro_schedule: str = option(
        "micro-batch-major", "FF with --micro-batch: each micro-batch through every layer, every "
        "layer's gradient accumulating (micro-batch-major), or each layer over all micro-batches "
        "before the next, the layer's outputs for the whole batch kept (layer-major; not --arch "
        "recurrent)",
        group="ff", kind="choice", choices=FF_MICRO_SCHEDULES, paired=False, role="variant")  # fmt: skip
    # recurrent network and the black box
    time_steps: int = option(
        8, "time steps a static image is shown for (--arch recurrent; paper: 8)",
        group="recurrent", kind="int", limit=100_000,
    )  # fmt: skip
    bptt_window: int | None = option(
        None, "truncated BPTT: back-propagate every k time steps (bp, bp-ste with --arch recurrent; "
        "default: full BPTT)", group="recurrent", kind="int", limit=100_000, paired=False, role="variant", column="Int64")  # fmt: skip
    eval_steps: str = option(
        "3-5", "time steps whose goodness (or logits) is summed at test time, 1-based: a-b or a list "
        "(--arch recurrent; paper: 3-5)", group="recurrent", kind="text", paired=False, role="evaluation")  # fmt: skip
    black_box: int | None = option(
        None, "hidden layer whose normalised output passes through a black box (2-bit NumPy "
        "quantiser, outside autograd) on its way to the next layer (default: none)",
        group="recurrent", kind="int", limit=10_000,
    )  # fmt: skip

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -------------------------------------------------------------
    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = _checked(f, getattr(self, f.name))
            object.__setattr__(self, f.name, value)  # floats given as ints are stored as floats
        self.eval_layer_indices()  # raises on a malformed list
        self.eval_step_indices()
        self._check_recurrent_options()
        self._check_knobs()
        self._validate_image_fields()
        if self.arch != "mlp":
            from .trainers.registry import trainer_class

            trainer_class(self.trainer, self.arch)  # ConfigError: this trainer has no such architecture

    def _check_recurrent_options(self) -> None:
        if self.bptt_window is not None and not (
            self.arch == "recurrent" and self.trainer in ("bp", "bp-ste")
        ):
            raise ConfigError("bptt-window applies to bp and bp-ste with --arch recurrent (truncated BPTT)")
        if self.black_box is not None:
            from .trainers.registry import trainer_class

            if not vars(trainer_class(self.trainer, self.arch)).get("black_box_support", False):
                raise ConfigError(f"trainer {self.trainer!r} (--arch {self.arch}) has no black box")
            if not 1 <= self.black_box < self.depth:
                raise ConfigError(
                    f"black-box {self.black_box}: the box sits between hidden layers k and k + 1, "
                    f"so k must be in 1..{self.depth - 1}"
                )

    def _check_knobs(self) -> None:
        """--micro-batch only for trainers that accumulate a batch's gradients before stepping."""
        from .trainers.registry import trainer_class

        if self.micro_batch is None:
            return
        cls = trainer_class(self.trainer, self.arch)
        where = f"{self.trainer} (--arch {self.arch})"
        if not getattr(cls, "micro_batch_support", False):
            why = getattr(cls, "no_micro_batching", "it has no micro-batched schedule")
            raise ConfigError(f"--micro-batch does not apply to {where}: {why}")
        passes = getattr(cls, "micro_batch_passes", None)
        if self.ff_pass is not None and passes is not None and self.ff_pass not in passes:
            raise ConfigError(
                f"{where} micro-batches with --ff-pass {' or '.join(passes)} only; "
                f"leave --ff-pass out, or use ff-frugal for --ff-pass {self.ff_pass}"
            )
        if self.arch == "recurrent" and self.is_ff and self.ff_micro_schedule == "layer-major":
            raise ConfigError(
                "--arch recurrent micro-batches micro-batch-major only: every layer at step t "
                "reads its neighbours at step t - 1"
            )

    def _validate_image_fields(self) -> None:
        """Layer lists match the depth; conv/local-only options are refused elsewhere."""
        from .arch import is_image, parse_shape, per_layer

        for name in ("channels", "kernel", "stride"):
            per_layer(name, getattr(self, name), self.depth)
        if self.image_shape is not None:
            parse_shape(self.image_shape)
        if not is_image(self.arch):
            for name, default in (("ff_loss", "threshold"), ("ff_goodness_scope", "layer")):
                if getattr(self, name) != default:
                    raise ConfigError(f"{flag(name)} {getattr(self, name)} needs --arch conv or local")

    # -- derived values ---------------------------------------------------------
    @property
    def is_ff(self) -> bool:
        return self.trainer.startswith("ff")

    @property
    def chunk(self) -> int:
        """Evaluation chunk size (recorded with every accuracy)."""
        return self.eval_chunk

    @property
    def segments(self) -> int:
        """Checkpoint segments actually used by bp-checkpoint."""
        if self.checkpoint_segments is not None:
            return min(self.checkpoint_segments, self.depth)
        return max(1, round(self.depth**0.5))

    @property
    def micro(self) -> int:
        """Real examples per micro-batch actually used: `micro_batch` rows (at most the batch)
        or its fraction of the batch (at least 1 row); without one the whole batch, except
        `bp-accum`, the name kept for `bp --micro-batch 1/4` (committed runs stay loadable)."""
        return micro_rows(self.batch_size, self.micro_batch, self.trainer)

    @property
    def micro_batching(self) -> bool:
        """True when the step runs the micro-batch loop (a --micro-batch was given, or the
        trainer is bp-accum): the trainer's and the analytic model's micro-batched schedule."""
        return self.micro_batch is not None or self.trainer == "bp-accum"

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

    def eval_step_indices(self) -> list[int]:
        """0-based time steps whose goodness is summed at test time (--arch recurrent), clipped
        to the steps a run has; a run shorter than the window uses its last step."""
        spec = self.eval_steps.strip()
        try:
            if "-" in spec:
                a, b = (int(part) for part in spec.split("-"))
                steps = list(range(a, b + 1))
            else:
                steps = [int(part) for part in spec.split(",")]
        except ValueError:
            raise ConfigError(
                f"eval-steps must be a range like 3-5 or a list like 3,4,5, got {spec!r}"
            ) from None
        if not steps or min(steps) < 1:
            raise ConfigError(f"eval-steps {spec!r}: steps are numbered from 1")
        if max(steps) > self.time_steps and self.eval_steps != RunConfig.eval_steps:
            raise ConfigError(
                f"eval-steps {spec!r} names step {max(steps)}, beyond --time-steps {self.time_steps}; "
                f"give steps in 1..{self.time_steps}"
            )  # the default window is clipped to a shorter run (documented); a given one never is
        inside = sorted({s - 1 for s in steps if s <= self.time_steps})
        return inside or [self.time_steps - 1]

    # -- (de)serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        unknown = set(data) - set(config_keys())
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def short_name(self) -> str:
        from .arch import is_image

        if is_image(self.arch):
            return f"{self.trainer}-{self.arch}-d{self.depth}-c{self.channels}-b{self.batch_size}{self._knob_suffix()}"
        name = f"{self.trainer}-d{self.depth}-w{self.width}-b{self.batch_size}"
        if self.arch == "recurrent":
            name += f"-T{self.time_steps}"
        name += self._knob_suffix()
        return name if self.arch == "mlp" else f"{self.arch}-{name}"

    def _knob_suffix(self) -> str:
        """-m<rows> for a micro-batch given (bp-accum's own is in its name), -layer-major for
        FF's other micro-batch schedule."""
        if self.micro_batch is None:
            return ""
        layer_major = self.is_ff and self.ff_micro_schedule == "layer-major"
        return f"-m{self.micro}" + ("-layer-major" if layer_major else "")


def flag(name: str) -> str:
    """The command-line spelling of a field: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def rule_text(kind: str, limit: int | None = None) -> str:
    """What a value of this kind must be, e.g. 'an integer >= 1 and at most 4096'."""
    if kind in ("int", "int0"):
        text = f"an integer >= {1 if kind == 'int' else 0}"
        return text + (f" and at most {limit}" if limit is not None else "")
    if kind in ("float", "float0"):
        text = f"a finite number {'>' if kind == 'float' else '>='} 0"
        return text + (f" and at most {limit}" if limit is not None else "")
    if kind == "micro":
        return (
            "rows (an integer >= 1"
            + (f" and at most {limit})" if limit is not None else ")")
            + (" or a fraction of the batch such as 1/4")
        )
    return "text" if kind == "text" else "one of the choices"


def check_value(
    name: str,
    value: Any,
    kind: str,
    *,
    limit: int | float | None = None,
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] | None = None,
    nullable: bool = False,
) -> Any:
    """One rule for every value that enters ffbench (RunConfig fields, sweep settings, plugin
    options, records read back): the value if valid (numbers of a float kind as float),
    ConfigError naming `name` otherwise. kinds: see `option`."""
    if value is None and nullable:
        return None
    if kind == "choice":
        choices = choices() if callable(choices) else choices
        if not isinstance(value, str) or value not in choices:
            raise ConfigError(f"unknown {name} {value!r}; choose from {', '.join(choices)}")
        return value
    if kind == "ints":
        from .arch import parse_ints

        return ",".join(str(v) for v in parse_ints(name, value))
    if kind == "micro":
        return _micro_value(name, value, limit)
    if kind == "text":
        if not isinstance(value, str) or "\x00" in value:
            raise ConfigError(f"{name} must be text, got {value!r}")
        return value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind in ("int", "int0"):
        ok = number and isinstance(value, int) and value >= (1 if kind == "int" else 0)
    else:
        ok = number and math.isfinite(value) and (value > 0 if kind == "float" else value >= 0)
    if not ok or (limit is not None and value > limit):
        raise ConfigError(f"{name} must be {rule_text(kind, limit)}, got {value!r}")
    return float(value) if kind in ("float", "float0") else value


def _micro_value(name: str, value: Any, limit: int | None) -> int | str:
    """A micro-batch: rows (an int, or its digits as text) or a fraction p/q of the batch with
    0 < p <= q, stored reduced ('2/8' -> '1/4') so one setting has one identity."""
    rows = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        rows = int(value.strip())
    if rows is not None:
        if 1 <= rows and (limit is None or rows <= limit):
            return rows
    elif isinstance(value, str) and value.count("/") == 1:
        num, den = (part.strip() for part in value.split("/"))
        if num.isdigit() and den.isdigit() and 0 < int(num) <= int(den) <= (limit or MAX_ROWS):
            common = math.gcd(int(num), int(den))
            return f"{int(num) // common}/{int(den) // common}"
    raise ConfigError(f"{name} must be {rule_text('micro', limit)}, got {value!r}")


def _checked(f: dataclasses.Field, value: Any) -> Any:
    """The field's value if it is valid (floats normalised to float); ConfigError otherwise."""
    meta = f.metadata
    return check_value(
        flag(f.name)[2:],
        value,
        meta["kind"],
        limit=meta["limit"],
        choices=meta["choices"],
        nullable=f.default is None,
    )


def field_rule(name: str) -> dataclasses.Field:
    """The RunConfig field `name` (its metadata holds the rule); ConfigError if unknown."""
    for f in dataclasses.fields(RunConfig):
        if f.name == name:
            return f
    raise ConfigError(f"unknown configuration field {name!r}")


def check_field(name: str, value: Any) -> Any:
    """`value` checked by the rule of RunConfig field `name` (what a flag, a sweep file or a
    record read back must satisfy)."""
    return _checked(field_rule(name), value)


def config_fields() -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(RunConfig)


def config_keys() -> tuple[str, ...]:
    """Every configuration field, in declaration order: the results table's config columns."""
    return tuple(f.name for f in config_fields())


def config_defaults() -> dict[str, Any]:
    """Field -> default value, without building (or validating) a RunConfig."""
    return {f.name: f.default for f in config_fields()}


def shown_keys() -> tuple[str, ...]:
    """The fields listed in the report's configuration table."""
    return tuple(f.name for f in config_fields() if f.metadata["shown"])


def unpaired_keys() -> frozenset[str]:
    """The fields that do not change a configuration's tensor bytes or that belong to one
    algorithm: rows that differ only in these are the same configuration for a comparison."""
    return frozenset(f.name for f in config_fields() if not f.metadata["paired"])


def role_keys(role: str) -> tuple[str, ...]:
    """The fields of one role (ROLES), in declaration order."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    return tuple(f.name for f in config_fields() if f.metadata["role"] == role)


def variant_keys() -> tuple[str, ...]:
    """The trainer's implementation options: a row whose values differ from the defaults is a
    variant of its trainer (e.g. ff[ff_pass=sequential])."""
    return role_keys("variant")


def evaluation_keys() -> tuple[str, ...]:
    """How evaluation ran (chunk size, FF's label loop, which layers or steps are read): no
    training figure depends on these."""
    return role_keys("evaluation")


def training_keys() -> tuple[str, ...]:
    """What was trained: every field but the evaluation settings and where and how fast it ran
    (device, threads, data folder). Two runs' configurations are the same training when these agree."""
    return tuple(f.name for f in config_fields() if f.metadata["role"] in ("identity", "variant"))


def column_dtypes() -> dict[str, str]:
    """Field -> the dtype of its column in the results table, for the fields that fix one."""
    return {f.name: f.metadata["column"] for f in config_fields() if f.metadata["column"] is not None}


def non_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The entries of a configuration dict that differ from the field defaults (unknown keys
    kept): what identifies a configuration, so a field added later at its default changes
    no existing identity."""
    defaults = config_defaults()
    return {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}


# The axes a sweep varies (plural flags and sweep-file keys) -> the field each sets.
GRID_AXES = {
    "trainers": "trainer",
    "depths": "depth",
    "widths": "width",
    "batch_sizes": "batch_size",
    "micro_batches": "micro_batch",
}
# `optimizers`: a named optimizer and implementation per grid point (it sets two fields).
OPTIMIZER_SETTINGS = {
    "adam": {"optimizer": "adam", "optimizer_impl": "single-tensor"},
    "adam-foreach": {"optimizer": "adam", "optimizer_impl": "foreach"},
    "adam-fused": {"optimizer": "adam", "optimizer_impl": "fused"},
    "sgd": {"optimizer": "sgd", "optimizer_impl": "single-tensor"},
    "sgd-fused": {"optimizer": "sgd", "optimizer_impl": "fused"},
}
GRID_FIELDS = (*GRID_AXES.values(), "optimizer", "optimizer_impl")  # what a folder's records vary over


def axis_fields(key: str) -> tuple[str, ...]:
    """The configuration fields a grid axis sets: a plural axis, `optimizers`, or any field
    named directly (a list value for a field in a sweep file, `--axis FIELD=V1,V2`)."""
    if key == "optimizers":
        return ("optimizer", "optimizer_impl")
    return (GRID_AXES.get(key, key),)


def grid_points(axes: dict[str, list]) -> list[dict[str, Any]]:
    """The cartesian product of a sweep's axes, each point as field values."""
    options = []
    for key, values in axes.items():
        if key == "optimizers":
            options.append([OPTIMIZER_SETTINGS[v] for v in values])
        else:
            options.append([{axis_fields(key)[0]: v} for v in values])
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*options)]
