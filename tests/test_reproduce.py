"""`ffbench reproduce` end to end on a tiny profile (real sweep, search, training, report)."""

import json

import pytest

from ffbench import data
from ffbench.cli import main
from ffbench.config import RunConfig
from ffbench.run import reproduce


@pytest.fixture
def offline_digits(tmp_path, monkeypatch):
    """No MNIST anywhere: `auto` falls back to the bundled digits."""
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", ())
    monkeypatch.delenv("FFBENCH_DATA", raising=False)
    monkeypatch.setenv("FFBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def tiny_profile(monkeypatch):
    grid = {"trainers": ["bp", "ff", "ff-summed"], "depths": [1, 3], "batch_sizes": [32], "widths": [32]}
    tiny = reproduce.Profile(
        name="tiny",
        sweeps=(
            reproduce.MemorySweep("sweep", grid, steps=1),
            reproduce.MemorySweep(
                "evaluation",
                {**grid, "trainers": ["ff"], "depths": [1], "ff_eval": ["label-loop", "replicated"]},
            ),  # fmt: skip
        ),
        maxbatch_budget="64MiB",
        maxbatch_width=32,
        maxbatch_trainers=("ff", "bp"),
        maxbatch_depths=(1,),
        accuracy_runs=(
            RunConfig(trainer="ff", depth=1, width=64, epochs=2, lr=5e-3, batch_size=32),
            RunConfig(trainer="bp", depth=1, width=64, epochs=2, lr=3e-3, batch_size=32),
        ),
        seeds=(0,),
        description="test profile",
    )
    monkeypatch.setitem(reproduce.PROFILES, "tiny", tiny)
    return tiny


def test_reproduce_writes_results_report_and_verdicts(tmp_path, offline_digits, tiny_profile, capsys):
    code = main(
        [
            "reproduce",
            "--profile",
            "tiny",
            "--device",
            "cpu",
            "--name",
            "run",
            "--results",
            str(tmp_path / "results"),
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "results" / "run" / "reproduce.json").read_text())
    assert summary["dataset"]["name"] == "digits"  # the auto fallback, stated
    assert len(list((tmp_path / "results" / "run" / "sweep" / "records").glob("*.json"))) == 6
    assert len(list((tmp_path / "results" / "run" / "evaluation" / "records").glob("*.json"))) == 2
    assert len(list((tmp_path / "results" / "run" / "train").glob("*.json"))) == 2
    html = (tmp_path / "reports" / "run.html").read_text()
    assert "data:image/svg+xml;base64," in html or "data:image/png;base64," in html
    assert summary["claims"] and all(c["verdict"] for c in summary["claims"])
    for claim in summary["claims"]:
        assert claim["claim"] in out
    # the work its stage times are for: 6 + 2 configurations, 2 searches, 2 runs x 2 epochs x 1 seed
    assert (
        summary["plan"] == reproduce.plan_units(tiny_profile) == {"memory": 8, "maxbatch": 2, "accuracy": 4}
    )
    # a dry run of another run of the profile is estimated from this run's stage times
    dry = ["reproduce", "--profile", "tiny", "--device", "cpu", "--name", "next", "--dry-run",
           "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports")]  # fmt: skip
    assert main(dry) == 0
    text = capsys.readouterr().out
    assert "estimated from the stage times recorded by run (" in text and "memory x 1.00" in text
    assert "(assumed dataset: digits," in text and not (tmp_path / "results" / "next").exists()
    # a second run resumes: nothing is measured again
    code = main(
        [
            "reproduce",
            "--profile",
            "tiny",
            "--device",
            "cpu",
            "--name",
            "run",
            "--quiet",
            "--results",
            str(tmp_path / "results"),
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    assert code == 0


def test_full_profile_on_cpu_needs_yes_and_writes_nothing(tmp_path, offline_digits, capsys):
    code = main(
        [
            "reproduce",
            "--profile",
            "full",
            "--device",
            "cpu",
            "--results",
            str(tmp_path / "results"),
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "hours" in err and "--yes" in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()


def test_unknown_profile_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--profile", "huge", "--results", str(tmp_path / "r")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "argument --profile: invalid choice: 'huge'" in err
    assert not (tmp_path / "r").exists()


def test_estimate_grows_with_the_profile():
    speed = 1e-2
    assert reproduce.estimate_seconds(reproduce.PROFILES["full"], speed) > 20 * reproduce.estimate_seconds(
        reproduce.PROFILES["quick"], speed
    )
