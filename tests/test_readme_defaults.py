"""Every default README.md states equals the code's: each sentence of the README that says
"default" is either checked here against RunConfig (or the command-line/plugin option it
names) or listed as prose that states no value. A new stated default fails until checked."""

import re
from pathlib import Path

import pytest

from ffbench import cli
from ffbench.config import RunConfig
from ffbench.run.executors import Job, default_gpus

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
TEXT = " ".join(README.split())  # one line: statements wrap across lines
BASE = RunConfig()


def _plugin_default(flag: str) -> str:
    import argparse

    from ffbench import pytest_plugin

    parser = argparse.ArgumentParser()

    class Group:  # the part of pytest's parser the plugin calls
        def addoption(self, *names, **kw):
            kw.pop("type", None)
            parser.add_argument(*names, **kw)

        def getgroup(self, *a, **kw):
            return self

        addini = staticmethod(lambda *a, **kw: None)

    pytest_plugin.pytest_addoption(Group())
    return parser.get_default(flag.lstrip("-").replace("-", "_"))


def _threads_default() -> int:
    """The threads a run gets when none is asked for (RunConfig's None)."""
    import torch

    from ffbench.measure import set_threads

    before = torch.get_num_threads()
    try:
        return set_threads(BASE.threads)
    finally:
        torch.set_num_threads(before)


def sweep_defaults() -> dict:
    from ffbench.run.sweep import DEFAULT_SETTINGS

    return DEFAULT_SETTINGS


def _executor_default() -> str:
    return cli.build_parser().parse_args(["sweep"]).executor


# phrase in README (whitespace collapsed) -> (the value it states, the value in the code)
CHECKED = {
    "`--eval-chunk` (default 256)": (256, lambda: BASE.eval_chunk),
    "(default 8, chosen on validation)": (8.0, lambda: BASE.ff_threshold),
    "Adam single-tensor by default": (
        ("adam", "single-tensor"),
        lambda: (BASE.optimizer, BASE.optimizer_impl),
    ),
    "(RMS by default)": ("rms", lambda: BASE.ff_norm),
    "the earlier name of `bp --micro-batch 1/4`": (
        25,
        lambda: RunConfig(trainer="bp-accum", batch_size=100).micro,
    ),
    "(5000 examples by default)": (5000, lambda: BASE.val_size),
    "`--ffbench-compare-threshold`, default 0": ("0", lambda: _plugin_default("--ffbench-compare-threshold")),
    "`local` (default)": ("local", _executor_default),
    "`--threads` (default 1)": (1, lambda: _threads_default()),
    "`--steps` (default 5)": (
        (5, 5, 5),
        lambda: (
            cli.build_parser().parse_args(["measure"]).steps,
            sweep_defaults()["steps"],
            _plugin_default("--ffbench-rounds"),
        ),
    ),
    "`--ray-gpus-per-task`, default 1, 0 with `--device cpu`": (
        (1, 0),
        lambda: tuple(
            default_gpus(Job("j", {"config": {"device": d}}, None, None), None) for d in ("cuda", "cpu")
        ),
    ),
}

# sentences that say "default" without stating a setting's value, or checked elsewhere
PROSE = (
    "Run the main job on its offline default",
    "without one, the offline default falls back",
    "the default grid took",
    "through the default `local` executor",
    "Precedence is by order of application: defaults,",
    "synthetic as CIFAR by default",
    "glibc's defaults",
    "glibc's default allocator settings",
    "the reference the default is tested against",
    "`$FFBENCH_CACHE`, default `~/.cache/ffbench`",  # test_cache_default below
    "`--ray-cpus-per-task`, default `--threads`",  # needs ray: tests/test_executors_ray.py
    "the figure takes the default settings",
    "`measure`, `sweep` and `maxbatch` default to `synthetic` data",  # tests/test_memory_data.py
)


@pytest.mark.parametrize("phrase", list(CHECKED))
def test_stated_default_equals_the_code(phrase):
    assert phrase in TEXT, f"README no longer says {phrase!r}: update this test with it"
    stated, actual = CHECKED[phrase]
    assert actual() == stated


def test_every_default_the_readme_states_is_checked():
    known = list(CHECKED) + list(PROSE)
    unchecked = []
    for match in re.finditer(r"default", TEXT, flags=re.IGNORECASE):
        around = TEXT[max(0, match.start() - 80) : match.end() + 80]
        if not any(phrase in around for phrase in known):
            unchecked.append(around)
    assert unchecked == []


def test_cache_default(monkeypatch):
    from ffbench.data import _cache_root

    monkeypatch.delenv("FFBENCH_CACHE", raising=False)
    assert _cache_root(None) == Path.home() / ".cache" / "ffbench"
