"""Grids checked before anything runs (issue 24): an axis given twice is refused."""

import pytest

from ffbench.cli import main

BASE = ["sweep", "--dataset", "synthetic", "--trainers", "bp", "--widths", "16", "--batch-sizes", "8",
        "--steps", "1", "--threads", "1", "--quiet"]  # fmt: skip


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "extra,fragment",
    [
        (["--depths", "1,2", "--axis", "depth=1"], "--axis depth repeats --depths"),
        (["--axis", "depth=1", "--axis", "depth=2"], "--axis depth repeats --axis depth"),
        (
            ["--axis", "ff_pass=together", "--ff-pass", "sequential"],
            "--ff-pass is also swept by --axis ff_pass",
        ),
        (["--optimizers", "adam,sgd", "--axis", "optimizer=adam"], "--axis optimizer repeats --optimizers"),
    ],
)
def test_an_axis_given_twice_is_refused_before_anything_runs(tmp_path, capsys, extra, fragment):
    out = tmp_path / "o"
    assert exit_code([*BASE, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not out.exists()


def test_an_axis_named_by_its_field_is_the_same_axis(tmp_path, capsys):
    assert main([*BASE, "--axis", "depth=1,2", "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "2 configurations" in capsys.readouterr().out


def test_a_flag_overrides_the_sweep_files_axis(tmp_path):
    from ffbench.run.sweep import plan_sweep

    file = tmp_path / "s.json"
    file.write_text(
        '{"depth": [1, 2], "trainers": "bp", "widths": [8], "batch_sizes": [4], "dataset": "synthetic"}'
    )
    plan = plan_sweep(grid_flags={"depths": [3]}, sweep_file=str(file), out=str(tmp_path / "o"))
    assert [c.depth for c in plan.configs] == [3]
    plan = plan_sweep(config_flags={"depth": 5}, sweep_file=str(file), out=str(tmp_path / "o"))
    assert [c.depth for c in plan.configs] == [5] and "depths" not in plan.grid


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["measure", "--image-shape", "1x28x28"], "--image-shape is a conv/local option"),
        (["measure", "--memory-format", "contiguous"], "--memory-format is a --arch conv option"),
        (["measure", "--trainer", "bp", "--ff-pass", "together"], "--ff-pass is a FF trainers'"),
        (["train", "--arch", "conv", "--width", "20"], "--width is a fully connected"),
        (["sweep", "--trainers", "bp", "--axis", "epochs=1,2"], "'ffbench sweep' does not use it"),
        (["sweep", "--trainers", "bp", "--arch", "conv", "--widths", "8,16"], "--width is a fully connected"),
        (["measure", "--arch", "conv", "--channels", "99999999999999999999"], "beyond any layer"),
        (["measure", "--arch", "recurrent", "--eval-steps", "3-50"], "beyond --time-steps 8"),
    ],
)
def test_a_flag_no_configuration_uses_is_refused(tmp_path, capsys, argv, fragment):
    out = tmp_path / "o"
    assert exit_code([*argv, "--dataset", "synthetic", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not out.exists()


def test_a_flag_some_configurations_use_is_kept(tmp_path, capsys):
    argv = [*BASE[:4], "bp,ff", *BASE[5:], "--depths", "1", "--ff-pass", "together", "--dry-run"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    assert "2 configurations" in capsys.readouterr().out
