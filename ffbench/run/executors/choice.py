"""`get_executor(name)`: an executor by name. Above the executors' modules (each imports the
package's shared `Job`, `JobResult` and `BaseExecutor`), so the package itself imports none
of them."""

from __future__ import annotations

from ...errors import ConfigError
from . import EXECUTORS, Executor


def get_executor(name: str = "local", **options) -> Executor:
    """An executor by name; `options` are its constructor's (None values are left out, and
    an option another executor takes is an error)."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    common = {"allow_mixed_devices"}
    for key in given:
        prefix = key.split("_", 1)[0]
        if prefix in ("ray", "slurm") and prefix != name:
            raise ConfigError(f"--{key.replace('_', '-')} goes with --executor {prefix}")
        if prefix not in ("ray", "slurm") and key not in common:
            raise ConfigError(f"unknown executor option {key!r}")
    if name == "local":
        from .template import TemplateExecutor as cls
    elif name == "subprocess":
        from .subprocess import SubprocessExecutor as cls
    elif name == "ray":
        from .ray import RayExecutor as cls
    else:
        from .slurm import SlurmExecutor as cls
    prefix = f"{name}_"
    return cls(**{k.removeprefix(prefix): v for k, v in given.items()})
