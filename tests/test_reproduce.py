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


def test_the_accuracy_runs_use_the_tuned_recipes_and_stop_at_the_target(tmp_path, offline_digits):
    """A profile with a tuning plan: the tuning runs once (both families, the same trial count),
    is written under <results>/tuning/, read back on the next run, and its chosen recipes and
    the target go into the accuracy runs; a record of another plan is refused."""
    from types import SimpleNamespace

    from ffbench.analysis.thresholds import target_accuracy
    from ffbench.data import load_dataset
    from ffbench.errors import ConfigError
    from ffbench.run import tuning

    grids = {"ff": ({"lr": 1e-2, "ff_threshold": 2.0}, {"lr": 3e-2, "ff_threshold": 8.0}),
             "bp": ({"lr": 1e-3}, {"lr": 3e-2})}  # fmt: skip
    plan = tuning.TuningPlan(1, 16, 32, 3, grids)
    runs = (RunConfig(trainer="ff", depth=1, width=16, batch_size=32, epochs=3),
            RunConfig(trainer="bp", depth=1, width=16, batch_size=32, epochs=3),
            RunConfig(trainer="bp", depth=2, width=16, batch_size=32, epochs=3))  # fmt: skip
    profile = reproduce.Profile("t", (), "1MiB", 16, ("bp",), (1,), runs, (0,), tuning=plan)
    said = []
    run = SimpleNamespace(profile=profile, dataset=load_dataset("digits"), out=tmp_path / "results" / "run",
                          device="cpu", echo=said.append)  # fmt: skip
    tuned, summary = reproduce.tuned_runs(run)
    path = tmp_path / "results" / "tuning" / "digits-mlp-d1-w16-b32.json"
    record = json.loads(path.read_text())
    assert {f: len(v["trials"]) for f, v in record["families"].items()} == {"ff": 2, "bp": 2}
    target = target_accuracy("digits", "mlp")
    for cfg in tuned[:2]:
        chosen = record["families"][cfg.trainer]["chosen"]
        assert cfg.target_accuracy == target and all(getattr(cfg, k) == x for k, x in chosen.items())
    assert tuned[2] == runs[2]  # another network: not tuned by this plan, untouched
    assert summary["record"] == "tuning/digits-mlp-d1-w16-b32.json" and summary["plan"] == plan.to_dict()
    said.clear()
    assert reproduce.tuned_runs(run)[0] == tuned and any("recipes from" in s for s in said)
    run.profile = reproduce.Profile("t", (), "1MiB", 16, ("bp",), (1,), runs, (0,),
                                    tuning=tuning.TuningPlan(1, 16, 32, 4, grids))  # fmt: skip
    with pytest.raises(ConfigError, match="another plan"):
        reproduce.tuned_runs(run)


def test_the_profiles_tune_both_families_alike_and_run_enough_seeds():
    for profile, seeds in ((reproduce.QUICK, 3), (reproduce.FULL, 5)):
        assert len(profile.seeds) >= seeds and profile.tuning is not None
        ff, bp = (c for c in profile.accuracy_runs[:2])
        assert (ff.trainer, bp.trainer) == ("ff", "bp") and ff.epochs == bp.epochs  # one epoch cap
        assert {len(g) for g in profile.tuning.grids.values()} == {profile.tuning.trials}


def test_the_committed_tuning_record_is_the_quick_profiles_plan():
    from pathlib import Path

    from ffbench.run import tuning

    plan = reproduce.QUICK.tuning
    path = Path(__file__).parent.parent / "results" / "tuning" / plan.file_name("mnist")
    record = json.loads(path.read_text())
    assert record["plan"] == plan.to_dict() and record["target"]["val_accuracy"] == 0.97
    for f in record["families"].values():
        assert len(f["trials"]) == plan.trials
        assert f["chosen"] == min(f["trials"], key=tuning.rank_key)["recipe"]
