import pytest

from ffbench.config import RunConfig
from ffbench.errors import ConfigError
from ffbench.run.sweep import grid_configs
from ffbench.units import GiB, MiB, format_bytes, parse_size


@pytest.mark.parametrize(
    "field,value",
    [
        ("depth", 0),
        ("width", -1),
        ("batch_size", 0),
        ("epochs", 0),
        ("trainer", "sgd-magic"),
        ("dataset", "imagenet"),
        ("device", "tpu"),
        ("optimizer", "lbfgs"),
        ("dtype", "float8"),
        ("lr", 0.0),
        ("ff_eval_layers", "0"),
        ("ff_eval_layers", "x,y"),
        ("eval_chunk", 0),
    ],
)
def test_invalid_values_raise_config_error(field, value):
    with pytest.raises(ConfigError):
        RunConfig(**{field: value})


def test_round_trip_and_unknown_keys():
    cfg = RunConfig(trainer="ff", depth=4, width=2000)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown configuration keys: colour"):
        RunConfig.from_dict({**cfg.to_dict(), "colour": 1})


def test_derived_values():
    cfg = RunConfig(depth=8, batch_size=64)
    assert cfg.chunk == 256 and cfg.replace(eval_chunk=10).chunk == 10  # independent of the batch
    assert cfg.segments == 3  # round(sqrt(8))
    assert cfg.replace(ff_eval_layers="skip-first").eval_layer_indices() == list(range(1, 8))
    assert cfg.replace(ff_eval_layers="3,1").eval_layer_indices() == [0, 2]


def test_grid_is_a_cartesian_product():
    grid = grid_configs(RunConfig(), {"trainers": ["bp", "ff"], "depths": [1, 2, 4]})
    assert len(grid) == 6 and len(set(grid)) == 6
    assert {(c.trainer, c.depth) for c in grid} == {(t, d) for t in ("bp", "ff") for d in (1, 2, 4)}
    with pytest.raises(ConfigError):
        grid_configs(RunConfig(), {"depths": [0]})


def test_the_optimizers_axis_sets_optimizer_and_implementation():
    grid = grid_configs(RunConfig(), {"trainers": ["bp"], "optimizers": ["adam", "adam-fused", "sgd"]})
    assert [(c.optimizer, c.optimizer_impl) for c in grid] == [
        ("adam", "single-tensor"),
        ("adam", "fused"),
        ("sgd", "single-tensor"),
    ]


def test_sizes():
    assert parse_size("512MiB") == 512 * MiB
    assert parse_size("8GiB") == 8 * GiB
    assert parse_size("1.5 GiB") == int(1.5 * GiB)
    assert parse_size("1000") == 1000 and parse_size("2GB") == 2 * 10**9
    for bad in ("", "12 parsecs", "-1MiB", "0"):
        with pytest.raises(ConfigError):
            parse_size(bad)
    assert format_bytes(241.05 * MiB) == "241.05 MiB"
