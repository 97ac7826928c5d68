"""Which ledger models which trainer: built-in family modules and plugins.

A trainer's ledger is any object with three callables (a `TrainerLedger` is the
built-in form):

* `param_groups(cfg, I, C)` -> one list of (name, numel) per optimizer, in the order
  the optimizer holds them;
* `step(L, cfg, I, C, s, first)` -> writes one `train_step` into the ledger `L`
  (parameters, optimizer state and the batch are already in it);
* `eval_chunk(L, cfg, I, C, s, n, prefix)` -> writes `predict` on one chunk of `n`
  examples and returns the name of the tensor it leaves alive (the chunk's argmax,
  named with `prefix`);

and optionally `check(cfg, I, C)` (raise ValueError for shapes the trainer rejects) and
`notes(cfg)` (caveats that go into `MemoryPrediction.notes`).

Built-in ledgers register themselves (`register`) in the module of this package that
mirrors their trainer's module in `ffbench/trainers/`; every module of the package is
imported on the first look-up, so adding one is one module (or one function in a
family module) and its `register` call. Other packages add ledgers for their own
trainers through the entry-point group `ffbench.ledgers` (name = trainer name, value =
the ledger object), loaded only when that trainer is looked up.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..config import RunConfig
from .ledger import Ledger, Params

ENTRY_POINT_GROUP = "ffbench.ledgers"


@dataclass(frozen=True)
class TrainerLedger:
    """The model of one trainer (see the module docstring for each callable)."""

    param_groups: Callable[[RunConfig, int, int], list[Params]]
    step: Callable[[Ledger, RunConfig, int, int, int, bool], None]
    eval_chunk: Callable[[Ledger, RunConfig, int, int, int, int, str], str]
    check: Callable[[RunConfig, int, int], None] | None = None
    notes: Callable[[RunConfig], tuple[str, ...]] | None = None


_BUILTIN: dict[tuple[str, str], Any] = {}  # (trainer, arch) -> ledger
_PLUGINS: dict[str, Any] = {}  # entry points already loaded
_discovered = False


def register(ledger: Any, *trainers: str, arch: str = "mlp", micro: bool = False) -> Any:
    """Make `ledger` the model of each trainer named, for one architecture, for the plain or
    (micro=True) the micro-batched step (`RunConfig.micro_batching`); built-in ledgers call
    this at import."""
    for name in trainers:
        key = (name, arch, micro)
        if key in _BUILTIN and _BUILTIN[key] is not ledger:
            raise ValueError(f"two memory ledgers for trainer {name!r} (--arch {arch})")
        _BUILTIN[key] = ledger
    return ledger


def _discover_builtin() -> None:
    """Import every module of this package once: each registers its own ledgers."""
    global _discovered
    if _discovered:
        return
    package = __name__.rpartition(".")[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{info.name}")
    _discovered = True


def ledger_for(trainer: str, arch: str = "mlp", micro: bool = False) -> Any:
    """The ledger of `trainer` for `arch` (micro: its micro-batched step): built in, else (a
    plain MLP trainer) from an installed `ffbench.ledgers` entry point.

    Raises NotImplementedError when none models it (never falls back to another trainer's,
    another architecture's or the other schedule's)."""
    _discover_builtin()
    if (trainer, arch, micro) in _BUILTIN:
        return _BUILTIN[(trainer, arch, micro)]
    if micro:
        raise NotImplementedError(
            f"no memory ledger for trainer {trainer!r} (--arch {arch}) with --micro-batch"
        )
    if arch != "mlp":
        raise NotImplementedError(f"no memory ledger for trainer {trainer!r} with --arch {arch}")
    if trainer not in _PLUGINS:
        found = entry_points(group=ENTRY_POINT_GROUP, name=trainer)
        if not found:
            raise NotImplementedError(f"no memory ledger for trainer {trainer!r}")
        _PLUGINS[trainer] = next(iter(found)).load()
    return _PLUGINS[trainer]


def known_trainers() -> list[str]:
    """Names of the trainers with a built-in ledger (plugins are not listed: not loaded)."""
    _discover_builtin()
    return sorted({key[0] for key in _BUILTIN})
