"""--micro-batch as one knob across commands: the largest-batch searches of several
micro-batches in one folder, sweep axes normalised before they are counted, combinations a
trainer cannot honour refused in one line, no abbreviated flags."""

from __future__ import annotations

import json

import pytest

from ffbench.cli import main
from ffbench.config import RunConfig
from ffbench.errors import ConfigError

TINY = ["--dataset", "synthetic", "--width", "16", "--threads", "1"]


def run(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_maxbatch_searches_with_and_without_micro_batches_share_a_folder(tmp_path):
    """A second search into one folder adds its answers (found by review: it replaced the
    first's, and the micro-batch was never recorded)."""
    out = str(tmp_path / "mb")
    common = [
        "maxbatch",
        *TINY,
        "--depths",
        "1",
        "--memory-limit",
        "1MiB",
        "--budget",
        "tensor",
        "--out",
        out,
    ]
    assert run([*common, "--trainers", "bp,ff"]) == 0
    assert run([*common, "--trainers", "bp", "--micro-batch", "2/8"]) == 0
    doc = json.loads((tmp_path / "mb" / "maxbatch.json").read_text())
    found = {(r["trainer"], r["micro_batch"]): r["max_batch_size"] for r in doc["results"]}
    assert set(found) == {("bp", None), ("ff", None), ("bp", "1/4")}
    from ffbench.analysis.report import load_maxbatch

    rows = load_maxbatch([tmp_path / "mb"])
    assert sorted(map(str, rows["micro_batch"].fillna("none"))) == ["1/4", "none", "none"]


def test_sweep_micro_batches_are_normalised_before_they_are_counted(tmp_path, capsys):
    argv = ["sweep", "--dataset", "synthetic", "--trainers", "bp", "--widths", "16", "--depths", "1"]
    argv += ["--batch-sizes", "8", "--dry-run"]
    assert run([*argv, "--micro-batches", "1/4,2/8", "--out", str(tmp_path / "s")]) == 0
    assert "1 configurations" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fields, message",
    [
        (
            dict(trainer="ff", ff_pass="sequential"),
            "ff (--arch mlp) micro-batches with --ff-pass together only",
        ),
        (dict(trainer="ff-summed"), "--micro-batch does not apply to ff-summed"),
        (dict(trainer="bp-inbackward"), "--micro-batch does not apply to bp-inbackward"),
        (
            dict(trainer="ff", arch="recurrent", ff_micro_schedule="layer-major"),
            "--arch recurrent micro-batches micro-batch-major only",
        ),
    ],
)
def test_combinations_a_trainer_cannot_honour_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig(micro_batch=4, batch_size=16, **fields)


def test_what_each_trainer_honours_is_accepted():
    assert RunConfig(trainer="ff-frugal", ff_pass="sequential", micro_batch=4).micro == 4
    assert (
        RunConfig(trainer="bp", arch="recurrent", micro_batch=4, ff_micro_schedule="layer-major").micro == 4
    )
    assert (
        RunConfig(trainer="ff", micro_batch="1/4", ff_micro_schedule="layer-major")
        .short_name()
        .endswith("-m25-layer-major")
    )
    assert (
        not RunConfig(trainer="bp", micro_batch=4, ff_micro_schedule="layer-major")
        .short_name()
        .endswith("layer-major")
    )  # a BP configuration has no FF schedule


def test_no_abbreviated_flags(tmp_path, capsys):
    argv = ["sweep", "--dataset", "synthetic", "--trainers", "bp", "--dry-run", "--out", str(tmp_path / "s")]
    for flag, value in (("--micro-batch", "1/4"), ("--width", "16")):  # prefixes of --micro-batches, --widths
        assert run([*argv, flag, value]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"unrecognized arguments: {flag} {value}" in err
    assert not (tmp_path / "s").exists()
