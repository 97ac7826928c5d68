"""One home per configuration concept: flags derived from RunConfig, precedence by order of
application, identity (hash) of the non-default fields, schema-1 folders read, never written into."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ffbench.cli import build_parser, sweep_plan
from ffbench.config import RunConfig, config_defaults, config_keys, flag
from ffbench.errors import ConfigError
from ffbench.results import load, store

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "2026-11-27-cpu-quick"


def plan(tmp_path, *argv):
    args = build_parser().parse_args(
        ["sweep", "--out", str(tmp_path / "out"), "--dataset", "synthetic", *argv]
    )
    return sweep_plan(args)


def test_every_field_is_a_flag_of_train():
    parser = build_parser()
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    for key in config_keys():
        assert flag(key) in help_text


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_flags_win_over_the_sweep_file_even_at_their_default_value(tmp_path, suffix):
    sweep_file = tmp_path / f"s{suffix}"
    if suffix == ".toml":
        sweep_file.write_text('trainers = ["bp"]\nlr = 0.01\nseed = 7\nsteps = 5\nwidths = [16]\n')
    else:
        sweep_file.write_text(
            json.dumps({"trainers": ["bp"], "lr": 0.01, "seed": 7, "steps": 5, "widths": [16]})
        )
    defaults = config_defaults()
    p = plan(tmp_path, "--sweep-file", str(sweep_file), "--lr", "0.001", "--seed", "0", "--steps", "3")
    assert p.base.lr == defaults["lr"] == 0.001 and p.base.seed == defaults["seed"] == 0
    assert p.settings.timing_steps == 3
    # the file still wins over the defaults where no flag was given
    p = plan(tmp_path, "--sweep-file", str(sweep_file))
    assert (p.base.lr, p.base.seed, p.settings.timing_steps) == (0.01, 7, 5)
    assert {c.width for c in p.configs} == {16} and {c.trainer for c in p.configs} == {"bp"}
    # and a grid flag wins over the file's list
    p = plan(tmp_path, "--sweep-file", str(sweep_file), "--widths", "8,32")
    assert sorted({c.width for c in p.configs}) == [8, 32]


def test_sweep_file_values_of_the_wrong_type_are_refused(tmp_path):
    for body, fragment in [
        ('seed = "abc"\n', "seed must be an integer"),
        ("threads = true\n", "threads must be an integer >= 1"),
        ("memory_limit = true\n", "memory_limit must be a size"),
        ("timeout = true\n", "timeout must be a finite number > 0"),
        ("lr = inf\n", "lr must be a finite number > 0"),
    ]:
        f = tmp_path / "s.toml"
        f.write_text(body)
        with pytest.raises(ConfigError, match=fragment):
            plan(tmp_path, "--sweep-file", str(f))
    assert not (tmp_path / "out").exists()


def test_the_hash_covers_only_fields_that_differ_from_their_defaults():
    config = RunConfig(trainer="ff", depth=4, lr=0.005)
    full = config.to_dict()
    sparse = {
        k: v
        for k, v in full.items()
        if v != config_defaults()[k] or k in ("trainer", "depth", "width", "batch_size")
    }
    # a record written before a field existed (the field missing) keeps its identity
    assert store.config_hash(full) == store.config_hash(sparse) == store.config_hash(config)
    assert store.config_hash(config) != store.config_hash(config.replace(seed=1))
    # ints and floats of the same value are one configuration
    assert store.config_hash(RunConfig(ff_threshold=8)) == store.config_hash(RunConfig(ff_threshold=8.0))


def _as_schema_1(folder: Path) -> None:
    """Rewrite a results folder the way ffbench 0.1 wrote it: schema 1, every field (and
    the since-removed `extra`) in the config, records named by the hash of all fields."""
    import hashlib

    for path in sorted((folder / store.RECORDS).glob("*.json")):
        record = store.read_json(path, "record")
        config = {**config_defaults(), **record["config"], "extra": {}}
        old_hash = hashlib.sha256(
            json.dumps(
                {k: v for k, v in config.items() if k != "extra"},
                sort_keys=True,
                separators=(",", ":"),
                default=str,
            ).encode()
        ).hexdigest()[:12]
        record.update(config=config, config_hash=old_hash, schema_version=1)
        path.unlink()
        short = f"{config['trainer']}-d{config['depth']}-w{config['width']}-b{config['batch_size']}"
        store.write_json_atomic(folder / store.RECORDS / f"{short}-{old_hash}.json", record)
    manifest = store.read_manifest(folder)
    store.write_json_atomic(folder / store.MANIFEST, {**manifest, "schema_version": 1})


def test_a_schema_1_folder_is_read_but_never_written_into(tmp_path):
    folder = tmp_path / "sweep"
    shutil.copytree(REFERENCE / "sweep", folder)
    _as_schema_1(folder)
    manifest = store.read_manifest(folder)
    paths = sorted((folder / store.RECORDS).glob("*.json"))
    configs = [RunConfig.from_dict(_known(store.read_json(p, "record")["config"])) for p in paths]
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert len(load(folder)) == len(paths)  # read: each record upgraded on read
    env = store.read_json(folder / store.ENVIRONMENT, "environment")
    with pytest.raises(ConfigError, match="schema version 1 .*choose another folder"):
        store.ResultsFolder.open(
            folder,
            command="sweep",
            grid=manifest["grid"],
            base_config=configs[0].to_dict(),
            settings=manifest["settings"],
            environment=env,
        )
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def _known(config: dict) -> dict:
    return {k: v for k, v in config.items() if k in config_keys()}


def test_load_reads_a_run_folder_written_by_reproduce():
    from ffbench.results import load

    df = load(REFERENCE)
    assert set(df["kind"]) == {"measure", "train"}
    assert set(df["source"]) >= {"sweep", "maxbatch", "train"}
    assert (df["status"] == "ok").sum() > 50


def test_results_imports_no_torch():
    code = "import sys, ffbench.results, ffbench.results.store, ffbench.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
