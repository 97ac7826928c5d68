"""Which configuration fields a configuration uses: a flag no configuration of a command
uses is refused (it would be recorded, change the configuration's identity, and measure
nothing different). No torch is imported here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .arch import is_image
from .config import config_fields, flag
from .errors import ConfigError

_IMAGE = ("conv/local", lambda c: is_image(c.arch))
_FF = ("FF trainers' (ff, ff-summed, ff-frugal)", lambda c: c.is_ff)
_RECURRENT = ("--arch recurrent", lambda c: c.arch == "recurrent")
# field -> (who uses it, in words; whether a configuration does)
USED_BY: dict[str, tuple[str, Callable[[Any], bool]]] = {
    # the Forward-Forward group of RunConfig, unless a line below says more
    **dict.fromkeys((f.name for f in config_fields() if f.metadata["group"] == "ff"), _FF),
    **dict.fromkeys(("channels", "kernel", "stride", "image_shape", "ff_goodness_scope"), _IMAGE),
    "memory_format": ("--arch conv", lambda c: c.arch == "conv"),
    "width": ("fully connected bodies' (mlp, recurrent)", lambda c: not is_image(c.arch)),
    **dict.fromkeys(("time_steps", "bptt_window", "eval_steps"), _RECURRENT),
    "checkpoint_segments": ("--trainer bp-checkpoint", lambda c: c.trainer == "bp-checkpoint"),
    # --micro-batch: RunConfig refuses it for a trainer that cannot accumulate (bp-inbackward, ...)
    "ff_micro_schedule": ("FF trainers' (with --micro-batch)", lambda c: c.is_ff and c.micro_batching),
}
# fields a command never uses (measurements are steps, not epochs)
UNUSED_BY_COMMAND = {"measure": ("epochs",), "sweep": ("epochs",), "maxbatch": ("epochs",)}


def check_used(command: str, fields: Iterable[str], configs: list) -> None:
    """ConfigError (one line) for a field given (a flag, an axis) that no configuration of
    `configs` uses."""
    for name in fields:
        if name in UNUSED_BY_COMMAND.get(command, ()):
            raise ConfigError(
                f"{flag(name)}: 'ffbench {command}' does not use it (it measures steps, not epochs)"
            )
        rule = USED_BY.get(name)
        if rule is not None and configs and not any(rule[1](c) for c in configs):
            raise ConfigError(
                f"{flag(name)} is a {rule[0]} option and no configuration here uses it; "
                f"leave it out (it would only change the record's identity)"
            )
