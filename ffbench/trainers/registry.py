"""Which trainers exist: the built-in ones in this package and any a user's package adds.

A trainer class registers itself with `@register_trainer` (its `name` is what `--trainer`
takes, its `arch` the `--arch` it builds: "mlp" unless it says otherwise; one name may have
a class per architecture). Built-in trainers are found by importing every module of this package; another
package adds trainers through the `ffbench.trainers` entry-point group, whose entries name
a trainer class or a module that registers its classes (see docs/adding-a-trainer.md).
So adding a trainer is its module (and, for the analytic model, its ledger); a built-in one
also takes its place in DISPLAY_ORDER, the one list of trainer names (the report reads it
without importing a trainer: the analysis imports no torch).

Names of Forward-Forward trainers start with "ff" (`RunConfig.is_ff`): the report groups
trainers by that prefix.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil

from ..errors import ConfigError

ENTRY_POINT_GROUP = "ffbench.trainers"
_NOT_TRAINERS = {"base", "registry"}
# The built-in trainers in display order: figures and tables list them so, and each keeps its
# place (and colour) in every report; a plugin's trainer comes after. A built-in trainer class
# without a place here is refused on registration.
DISPLAY_ORDER = (
    "bp",
    "bp-checkpoint",
    "ff",
    "ff-frugal",
    "ff-summed",
    "bp-accum",
    "bp-inbackward",
    "bp-local",
    "bp-ste",  # backprop with a straight-through estimator at the black box (needs --black-box)
    "bp-ce",  # the recurrent network's cross-entropy read-out (--arch recurrent)
)
_registry: dict[tuple[str, str], type] = {}  # (name, arch) -> class
_loaded = False


def register_trainer(cls: type) -> type:
    """Class decorator: make `cls` available as `--trainer cls.name`."""
    name, arch = getattr(cls, "name", ""), getattr(cls, "arch", "mlp")
    if not isinstance(name, str) or not name:
        raise TypeError(f"trainer class {cls.__qualname__} needs a non-empty string `name`")
    if _built_in(cls) and name not in DISPLAY_ORDER:
        raise TypeError(f"built-in trainer {name!r} ({cls.__module__}) has no place in DISPLAY_ORDER")
    known = _registry.get((name, arch))
    if known is not None and known is not cls:
        raise ConfigError(f"two {arch} trainers are named {name!r}: {known.__module__} and {cls.__module__}")
    _registry[(name, arch)] = cls
    return cls


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> None:
    try:
        obj = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin: say which, in one line
        raise ConfigError(f"trainer plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from None
    if isinstance(obj, type):
        register_trainer(obj)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules(_package_path()):
        if module.name not in _NOT_TRAINERS:
            importlib.import_module(f"{__package__}.{module.name}")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        _load_entry_point(ep)
    _loaded = True


def _package_path() -> list[str]:
    return list(importlib.import_module(__package__).__path__)


def _built_in(cls: type) -> bool:
    return cls.__module__.startswith(__package__ + ".")


def display_order(names) -> list[str]:
    """`names` (each once) in display order: the built-in trainers in DISPLAY_ORDER, then
    any other name alphabetically. Needs no trainer imported."""
    present = set(names)
    return [t for t in DISPLAY_ORDER if t in present] + sorted(present - set(DISPLAY_ORDER))


def grid_trainers() -> tuple[str, ...]:
    """The built-in trainers of the main MLP grid, in display order: those that build an MLP
    with no further option (bp-ste needs a black box; bp-ce is the recurrent network's)."""
    _load()
    return tuple(
        display_order(
            name
            for (name, arch), cls in _registry.items()
            if arch == "mlp" and _built_in(cls) and not getattr(cls, "needs_black_box", False)
        )
    )


def trainer_names() -> tuple[str, ...]:
    """Every registered trainer name, built-in ones first (in module order)."""
    _load()
    return tuple(dict.fromkeys(name for name, _ in _registry))


def architectures(name: str) -> tuple[str, ...]:
    """The architectures a trainer name builds."""
    _load()
    return tuple(arch for n, arch in _registry if n == name)


def trainer_class(name: str, arch: str = "mlp") -> type:
    _load()
    if (name, arch) in _registry:
        return _registry[(name, arch)]
    if name not in trainer_names():
        raise ConfigError(f"unknown trainer {name!r}; choose from {', '.join(trainer_names())}")
    raise ConfigError(f"trainer {name!r} has no --arch {arch}; it builds {', '.join(architectures(name))}")


FAMILIES = ("ff", "bp", "other")


def family(name: str, arch: str = "mlp", bptt_window: int | None = None) -> str:
    """The family a configuration's update belongs to (`Trainer.family`): "ff", "bp" (exact
    backprop, the only side FF is judged against) or "other" (another algorithm: greedy local
    BP, a straight-through box, a cross-entropy read-out, truncated BPTT)."""
    if bptt_window is not None:
        return "other"  # truncated BPTT: an approximation of backprop's gradient
    cls = trainer_class(name, arch)
    if not _built_in(cls):
        # a plugin's class states its family itself: subclassing BPTrainer to change the
        # update must not make it exact backprop (nor BP's best) by inheritance
        return vars(cls).get("family", "other")
    return cls.family


def reload_plugins() -> None:
    """Look at the entry points again (after a package was installed in this process)."""
    global _loaded
    _loaded = False
    _load()
