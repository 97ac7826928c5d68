"""A user's package adds a trainer through the `ffbench.trainers` entry-point group: the
example of docs/adding-a-trainer.md, built as a real (temporary) distribution."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ffbench.trainers import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-trainer.md"


def _doc_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def symba_package(tmp_path):
    """ffbench_symba.py + a dist-info whose entry_points.txt is the doc's TOML entry."""
    (tmp_path / "ffbench_symba.py").write_text(_doc_blocks("python")[0])
    toml = _doc_blocks("toml")[0]
    entry = re.search(r'^(\S+) = "(\S+)"$', toml, flags=re.M)
    info = tmp_path / "ffbench_symba-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ffbench-symba\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ffbench.trainers]\n{entry.group(1)} = {entry.group(2)}\n")
    sys.path.insert(0, str(tmp_path))
    try:
        registry.reload_plugins()
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        registry._registry.pop(("ff-symba", "mlp"), None)
        registry.reload_plugins()


def test_the_documented_plugin_registers_and_trains(symba_package):
    import torch

    from ffbench.config import RunConfig
    from ffbench.trainers import build_trainer, trainer_names

    assert "ff-symba" in trainer_names()
    config = RunConfig(trainer="ff-symba", depth=2, width=16, batch_size=8, dataset="synthetic")
    trainer = build_trainer(config, 64, 10, torch.device("cpu"))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    x, y = torch.rand(8, 64), torch.randint(0, 10, (8,))
    loss = trainer.train_step(x, y)
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    # the variant's loss is really used: same data, different update from plain ff
    ff = build_trainer(config.replace(trainer="ff"), 64, 10, torch.device("cpu"))
    ff.train_step(x, y)
    assert any(not torch.equal(a, b) for a, b in zip(ff.model.parameters(), trainer.model.parameters()))


def test_the_cli_measures_a_plugin_trainer_and_says_the_model_has_no_ledger(symba_package, tmp_path):
    out = tmp_path / "m.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(symba_package), str(DOC.parents[1])])}
    args = ["measure", "--trainer", "ff-symba", "--dataset", "synthetic", "--depth", "1", "--width", "32"]
    args += ["--batch-size", "16", "--threads", "1", "--steps", "1", "--out-file", str(out), "--quiet"]
    proc = subprocess.run([sys.executable, "-m", "ffbench", *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert record["config"]["trainer"] == "ff-symba"
    assert record["family"] == "ff"  # declared by the plugin class, as the doc shows
    assert record["metrics"]["tensor_peak_bytes"] > 0
    assert "analytic_peak_bytes" not in record["metrics"]  # never another trainer's ledger
    assert "no memory ledger for trainer 'ff-symba'" in record["metrics"]["analytic_note"]


def test_a_broken_plugin_is_one_clear_error(tmp_path):
    info = tmp_path / "broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ffbench.trainers]\nff-broken = no_such_module:Nothing\n")
    sys.path.insert(0, str(tmp_path))
    try:
        from ffbench.errors import ConfigError

        with pytest.raises(ConfigError, match="trainer plugin 'ff-broken'.*failed to load"):
            registry.reload_plugins()
    finally:
        sys.path.remove(str(tmp_path))
        registry.reload_plugins()


def test_a_plugin_inherits_no_family(monkeypatch):
    """Subclassing BPTrainer to change the update must not file a plugin as exact backprop
    (and so as BP's best): a plugin class states its family or is 'other'."""
    from ffbench.trainers import registry
    from ffbench.trainers.bp import BPTrainer

    class Tweaked(BPTrainer):
        name = "bp-tweaked"

    class Declared(BPTrainer):
        name = "bp-declared"
        family = "bp"

    for cls in (Tweaked, Declared):
        cls.__module__ = "someones_package.trainers"
        monkeypatch.setitem(registry._registry, (cls.name, "mlp"), cls)
    assert registry.family("bp-tweaked") == "other"
    assert registry.family("bp-declared") == "bp"
    assert registry.family("bp-checkpoint") == "bp"  # built-in subclasses keep theirs
