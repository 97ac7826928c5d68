"""The benchmark suite's grid: trainer x depth x batch x width per benchmark kind.

Everything else -- options, the ``ffbench_memory`` gate, the ``step_bench``/``accuracy_bench``/
``overhead_bench`` fixtures and how they measure -- is ffbench's pytest plugin
(``ffbench/pytest_plugin.py``, loaded through its ``pytest11`` entry point)::

    python -m pytest --benchmark-only --benchmark-json=bench.json
    FFBENCH_GRID=full python -m pytest --benchmark-only      # or --ffbench-grid full

A test marked ``@pytest.mark.ffbench_grid("step")`` is parametrised over the section's points,
as ``trainer, depth, batch, width`` with ids ``bp-d2-w500-b128`` (= ``RunConfig.short_name()``).
"""

from __future__ import annotations

import pytest

from ffbench.pytest_plugin import selected_grid
from ffbench.trainers.registry import grid_trainers

TRAINERS = grid_trainers()  # the built-in trainers of the main MLP grid

# "default" fits a shared 2-core CPU in a few minutes; "full" is the study grid (tens of
# minutes to hours on a CPU; meant for a GPU).
GRIDS: dict[str, dict[str, dict[str, list]]] = {
    "default": {
        "step": dict(trainer=list(TRAINERS), depth=[2, 4], batch=[128, 1024], width=[500]),
        "accuracy": dict(trainer=list(TRAINERS), depth=[2], batch=[100], width=[500]),
        "overhead": dict(trainer=["bp", "ff"], depth=[2], batch=[128], width=[2000]),
    },
    "full": {
        "step": dict(trainer=list(TRAINERS), depth=[2, 4, 8], batch=[128, 1024, 4096], width=[500, 2000]),
        "accuracy": dict(trainer=list(TRAINERS), depth=[2, 4], batch=[100], width=[500]),
        "overhead": dict(trainer=list(TRAINERS), depth=[2], batch=[128], width=[64, 500, 2000]),
    },
}
AXES = ("trainer", "depth", "batch", "width")


def grid_points(config: pytest.Config, section: str) -> list[tuple]:
    name = selected_grid(config)
    if name not in GRIDS:
        raise pytest.UsageError(f"ffbench grid {name!r}: choose from {', '.join(sorted(GRIDS))}")
    points = [()]
    for axis in AXES:
        points = [p + (v,) for p in points for v in GRIDS[name][section][axis]]
    return points


def pytest_configure(config: pytest.Config) -> None:
    """An unknown grid name is one usage line before collection (not an error per test)."""
    name = selected_grid(config)
    if name not in GRIDS:
        raise pytest.UsageError(f"ffbench grid {name!r}: choose from {', '.join(sorted(GRIDS))}")


def point_id(trainer: str, depth: int, batch: int, width: int) -> str:
    return f"{trainer}-d{depth}-w{width}-b{batch}"  # = RunConfig.short_name()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("ffbench_grid")
    if marker is None:
        return
    points = grid_points(metafunc.config, marker.args[0])
    metafunc.parametrize(",".join(AXES), points, ids=[point_id(*p) for p in points])
