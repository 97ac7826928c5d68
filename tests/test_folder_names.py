"""A results folder's default name says what it holds (the grid and every setting not at its
default), never a hash a reader cannot read, except past a length limit."""

from ffbench.config import RunConfig
from ffbench.run.sweep import NAME_LIMIT, SweepSettings, contents_name


def test_the_grid_and_the_changed_settings_name_the_folder():
    grid = {"trainers": ["ff", "bp"], "depths": [2, 4], "widths": [500], "batch_sizes": [64, 1024]}
    base = RunConfig(lr=0.01, threads=1, device="cpu", data_dir=None).to_dict()
    settings = SweepSettings(timing_steps=1).to_dict()
    assert contents_name(grid, base, settings) == "ff+bp-d2,4-w500-b64,1024-lr=0.01-threads=1-steps=1"


def test_default_settings_add_nothing_and_axes_name_their_field():
    grid = {"trainers": ["bp"], "depths": [2], "widths": [256], "batch_sizes": [128], "time_steps": [2, 4]}
    base = RunConfig(arch="recurrent").to_dict()
    assert (
        contents_name(grid, base, SweepSettings().to_dict())
        == "bp-d2-w256-b128-time_steps=2,4-arch=recurrent"
    )


def test_a_budget_is_named_in_units():
    settings = SweepSettings(
        memory_limit_bytes=128 * 2**20, budget_kind="tensor", include_eval=True
    ).to_dict()
    name = contents_name({"trainers": ["ff"], "depths": [2]}, RunConfig().to_dict(), settings)
    assert name == "ff-d2-tensor-budget=128MiB-with-eval"


def test_a_long_description_is_cut_and_kept_apart_by_a_hash():
    grid = {"trainers": ["bp"], "depths": list(range(1, 60))}
    longer = {"trainers": ["bp"], "depths": list(range(1, 61))}
    one = contents_name(grid, RunConfig().to_dict(), SweepSettings().to_dict())
    other = contents_name(longer, RunConfig().to_dict(), SweepSettings().to_dict())
    assert len(one) == NAME_LIMIT and one.startswith("bp-d1,2,3,")
    assert one != other
