"""The memory model's dispatch: built-in ledgers, no silent fallback, plugin ledgers
from the `ffbench.ledgers` entry-point group, torch-free import, max_batch_size's
exactness, and the harness recording why a run has no prediction."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import types

import pytest

from ffbench import model
from ffbench.config import RunConfig
from ffbench.model import registry
from ffbench.trainers import trainer_names


def with_trainer(name: str, **fields) -> RunConfig:
    """A RunConfig naming a trainer that no registered trainer has."""
    cfg = RunConfig(**fields)
    object.__setattr__(cfg, "trainer", name)
    return cfg


def test_every_trainer_has_a_built_in_ledger():
    assert set(registry.known_trainers()) == set(trainer_names())


def test_a_trainer_without_a_ledger_raises_instead_of_falling_back_to_bp():
    with pytest.raises(NotImplementedError, match=r"^no memory ledger for trainer 'no-such-trainer'$"):
        model.predict(with_trainer("no-such-trainer"))


def test_a_name_cannot_get_two_ledgers():
    with pytest.raises(ValueError, match="two memory ledgers"):
        registry.register(object(), "bp")


PLUGIN = """
    class LinearClassifier:
        '''A softmax regression trainer's ledger: logits, then nothing else.'''

        def param_groups(self, cfg, I, C):
            return [[("W", C * I), ("b", C)]]

        def step(self, L, cfg, I, C, s, first):
            L.phase = "forward"
            L.alloc("z", cfg.batch_size * C * s, "activations", "addmm")
            L.free("z")

        def eval_chunk(self, L, cfg, I, C, s, n, prefix):
            L.phase = "eval"
            return L.alloc(prefix + "argmax", n * 8, "other", "argmax")


    LEDGER = LinearClassifier()
"""


@pytest.fixture
def plugin_distribution(tmp_path, monkeypatch):
    """An installed distribution `myledger` whose entry point models trainer `linear`."""
    (tmp_path / "ffbench_test_myledger.py").write_text(textwrap.dedent(PLUGIN))
    info = tmp_path / "myledger-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myledger\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ffbench.ledgers]\nlinear = ffbench_test_myledger:LEDGER\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setattr(registry, "_PLUGINS", {})
    yield
    sys.modules.pop("ffbench_test_myledger", None)
    importlib.invalidate_caches()


def test_a_plugin_ledger_is_found_through_its_entry_point(plugin_distribution):
    cfg = with_trainer("linear", batch_size=32, width=8, eval_chunk=32)
    assert "ffbench_test_myledger" not in sys.modules  # loaded lazily, on look-up
    pred = model.predict(cfg, in_features=20, num_classes=3)
    assert "ffbench_test_myledger" in sys.modules
    s, P, n_p = 4, 3 * 20 + 3, 2
    params, adam = s * P, 2 * s * P + 4 * n_p
    batch = 32 * 20 * s + 32 * 8
    assert pred.start_bytes == params + adam + batch
    assert pred.peak_bytes == params + adam + batch + 32 * 3 * s and pred.where == "forward: addmm"
    assert pred.first_step_start_bytes == params + batch  # no optimizer state before the first step
    # evaluation: one chunk (= batch_size) of inputs, its argmax, then torch.cat(parts)
    assert pred.eval_peak_bytes == params + adam + 32 * 20 * s + 32 * 8 + 2 * 32 * 8


def test_importing_the_model_does_not_import_torch():
    code = "import sys, ffbench.model, ffbench.search; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("trainer", ["bp", "ff", "bp-local"])
def test_max_batch_size_is_exact_and_respects_the_limit(trainer):
    cfg = RunConfig(trainer=trainer, depth=2, width=64)
    budget = model.predict(cfg.replace(batch_size=37)).train_peak_bytes
    assert model.max_batch_size(cfg, budget, include_eval=False) == 37
    assert model.max_batch_size(cfg, budget, limit=30, include_eval=False) == 30
    assert model.max_batch_size(cfg, budget - 1, include_eval=False) == 36
    assert model.max_batch_size(cfg, 1) == 0
    # with the evaluation chunk (256 examples whatever the batch) in the budget, a small
    # batch fits as long as the training step stays under the evaluation's peak
    whole = model.predict(cfg.replace(batch_size=37)).whole_run_peak_bytes
    assert model.max_batch_size(cfg, whole) >= 37


def test_harness_records_why_there_is_no_prediction_and_lets_bugs_surface():
    from ffbench.run.harness import _analytic_fields

    data = types.SimpleNamespace(in_features=784, num_classes=10)
    fields = _analytic_fields(with_trainer("no-such-trainer"), data, 100)
    assert fields == {"analytic_note": "no memory ledger for trainer 'no-such-trainer'"}
    assert _analytic_fields(RunConfig(trainer="bp"), data, 100)["analytic_peak_bytes"] > 0
    with pytest.raises(ValueError):  # FF cannot embed 10 labels in 5 inputs: an error, not "no model"
        _analytic_fields(RunConfig(trainer="ff"), types.SimpleNamespace(in_features=5, num_classes=10), 100)
