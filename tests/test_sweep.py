"""`ffbench sweep` end to end: real worker subprocesses, a real kill -9, a real OOM, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import matching

from ffbench.cli import main
from ffbench.results import rows as results
from ffbench.results import store
from ffbench.run.sweep import parse_list, read_sweep_file

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--steps", "1"]


def snapshot(folder: Path) -> dict:
    """Every file under folder with its bytes (or {} when it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def sweep_cmd(out, *args):
    return [sys.executable, "-m", "ffbench", "sweep", *TINY, "--out", str(out), "--quiet", *args]


def workers_of(out: Path, driver: int) -> list[int]:
    """Live processes working for the sweep in `out` run by `driver`: fresh `ffbench.run.worker`
    interpreters, or the template processes of the default executor and their forked children
    (which share the template's command line)."""
    fresh = matching("ffbench.run.worker", str(out))
    return fresh + matching("ffbench.run.executors.template", f"--parent {driver} ")


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_kill_9_then_resume_gives_exactly_one_row_per_configuration(tmp_path):
    out = tmp_path / "sweep"
    grid = ["--trainers", "bp", "--depths", "1", "--widths", "16", "--batch-sizes", "8,16,32,64,128"]
    proc = subprocess.Popen(
        sweep_cmd(out, *grid), env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    records = out / "records"
    deadline = time.time() + 120
    while time.time() < deadline and not any(records.glob("*.json")):
        time.sleep(0.1)
    assert any(records.glob("*.json")), "no record within 120 s"
    assert workers_of(out, proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # mid-sweep: a worker is (usually) in flight now
    proc.wait()
    deadline = time.time() + 10
    while workers_of(out, proc.pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not workers_of(out, proc.pid), "the worker in flight must die with the sweep (PR_SET_PDEATHSIG)"
    done_after_kill = len(list(records.glob("*.json")))
    assert 1 <= done_after_kill < 5

    rerun = subprocess.run(sweep_cmd(out, *grid), env=env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    df = results.load(out)
    assert len(df) == 5
    assert df["config_hash"].is_unique
    assert sorted(df.batch_size) == [8, 16, 32, 64, 128]
    assert set(df.status) == {"ok"}
    assert not list(out.rglob("*.tmp")) and not (out / ".work").exists()
    # a third run finds everything recorded and runs nothing
    before = snapshot(records)
    assert main(["sweep", *TINY, *grid, "--out", str(out), "--quiet"]) == 0
    assert snapshot(records) == before
    assert len(results.load(out)) == 5


def test_over_budget_allocation_is_recorded_as_oom_and_the_sweep_finishes(tmp_path):
    out = tmp_path / "oom"
    # b16 (a few MiB) fits a 96 MiB budget; b20000 needs a 62 MiB input batch plus ~80 MiB
    # of activations: the allocator fails for real under RLIMIT_DATA.
    code = main(
        [
            "sweep",
            *TINY,
            "--trainers",
            "bp",
            "--depths",
            "2",
            "--widths",
            "256",
            "--batch-sizes",
            "16,20000",
            "--memory-limit",
            "96MiB",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    df = results.load(out).set_index("batch_size")
    assert df.loc[16, "status"] == "ok"
    assert df.loc[16, "tensor_whole_run_peak_bytes"] <= 96 * 2**20
    assert df.loc[20000, "status"] == "oom"
    assert "can't allocate memory" in df.loc[20000, "error"]
    assert (df["memory_limit_bytes"] == 96 * 2**20).all()
    record = json.loads(next((out / "records").glob("bp-d2-w256-b20000-*.json")).read_text())
    enforcement = record["budget"]["enforcement"]
    assert enforcement["mechanism"] == "RLIMIT_DATA" and record["budget"]["fits"] is False
    # the budget sits on top of the worker's warmed baseline, never charges torch's imports
    limit = record["baseline"]["vm_data_bytes"] + 96 * 2**20 + enforcement["allowance_bytes"]
    assert enforcement["limit_bytes"] == limit
    fits = json.loads(next((out / "records").glob("bp-d2-w256-b16-*.json")).read_text())["budget"]
    assert fits["kind"] == "process" and fits["fits"] is True
    assert (out / "results.csv").exists()


def test_timeout_is_a_result(tmp_path):
    out = tmp_path / "slow"
    assert (
        main(
            [
                "sweep",
                *TINY,
                "--trainers",
                "bp",
                "--depths",
                "1",
                "--widths",
                "16",
                "--batch-sizes",
                "4",
                "--timeout",
                "0.01",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    df = results.load(out)
    assert list(df.status) == ["timeout"]
    assert "0.01 s" in df.error[0]


def _fresh_grid(**kw):
    return [
        "--trainers",
        kw.get("t", "bp"),
        "--depths",
        kw.get("d", "1"),
        "--widths",
        kw.get("w", "16"),
        "--batch-sizes",
        kw.get("b", "4"),
    ]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--trainers", "bp,magic"], "unknown trainer 'magic'"),
        (["--depths", "1,0"], "depths: expected positive integers"),
        (["--batch-sizes", "-4"], "batch-sizes: expected positive integers"),
        (["--widths", "wide"], "widths: expected positive integers"),
        (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet'"),
        (["--memory-limit", "lots"], "cannot read size 'lots'"),
        (["--memory-limit", "0GiB"], "size must be positive"),
        (["--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, fragment):
    out = tmp_path / "never"
    try:
        code = main(["sweep", *TINY, *_fresh_grid(), *args, "--out", str(out), "--quiet"])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("ffbench: error:")
    assert fragment in err
    assert not out.exists()


def test_non_positive_steps_and_timeout_are_refused_by_argparse(tmp_path, capsys):
    for flag in (["--steps", "0"], ["--timeout", "-1"]):
        with pytest.raises(SystemExit) as exc:
            main(["sweep", *_fresh_grid(), *flag, "--out", str(tmp_path / "x")])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("ffbench: error:")
    assert not (tmp_path / "x").exists()


def test_cuda_without_gpu_is_refused(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = tmp_path / "never"
    assert (
        main(
            [
                "sweep",
                *_fresh_grid(),
                "--device",
                "cuda",
                "--dataset",
                "synthetic",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "no CUDA GPU" in err and len(err.splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "make", ["foreign", "corrupt-manifest", "other-schema", "corrupt-record", "a-file", "other-settings"]
)
def test_unusable_out_folder_is_refused_and_left_untouched(tmp_path, capsys, make):
    out = tmp_path / "out"
    if make == "a-file":
        out.write_text("not a folder")
    else:
        out.mkdir()
        if make == "foreign":
            (out / "thesis.tex").write_text("precious")
        elif make == "corrupt-manifest":
            (out / "manifest.json").write_text("{ half a manif")
        elif make == "other-schema":
            (out / "manifest.json").write_text(json.dumps({"format": "something-else"}))
        else:
            (out / "manifest.json").write_text(
                json.dumps(
                    {
                        "format": store.FORMAT,
                        "schema_version": 1,
                        "command": "sweep",
                        "settings": {"timing_steps": 99},
                        "base_config": {},
                        "grids": [],
                    }
                )
            )
            (out / "environment.json").write_text("{}")
            if make == "corrupt-record":
                (out / "records").mkdir()
                (out / "records" / "bp-d1-w16-b4-000000000000.json").write_text("{trunc")
    before = snapshot(out) if out.is_dir() else out.read_bytes()
    code = main(["sweep", *TINY, *_fresh_grid(), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("ffbench: error:"), err
    assert (snapshot(out) if out.is_dir() else out.read_bytes()) == before


def test_sweep_file_toml_and_json(tmp_path):
    toml = tmp_path / "grid.toml"
    toml.write_text(
        'trainers = ["bp", "ff"]\ndepths = [1, 2]\nbatch-sizes = "8,16"\nwidths = 32\n'
        'steps = 2\nmemory_limit = "1GiB"\nlr = 0.01\n'
    )
    data = read_sweep_file(toml)
    assert data == {
        "trainers": ["bp", "ff"],
        "depths": [1, 2],
        "batch_sizes": [8, 16],
        "widths": [32],
        "steps": 2,
        "memory_limit": "1GiB",
        "lr": 0.01,
    }
    js = tmp_path / "grid.json"
    js.write_text(json.dumps({"trainers": "bp", "depths": [3]}))
    assert read_sweep_file(js) == {"trainers": ["bp"], "depths": [3]}
    assert parse_list("bp,ff,bp", "trainers") == ["bp", "ff"]


def test_sweep_file_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("trainers = [bp")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"trainerz": ["bp"]}))
    for f, fragment in (
        (bad, "not valid TOML"),
        (wrong, "unknown key 'trainerz'"),
        (tmp_path / "missing.json", "cannot read sweep file"),
    ):
        assert main(["sweep", "--sweep-file", str(f), "--out", str(tmp_path / "o"), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_one_timing_job_times_the_trainers_of_a_configuration_and_a_rerun_finishes_missing_times(tmp_path):
    """Memory in one worker per configuration (RSS-tuned), then one default-allocator timing job
    per pair group (bp and ff at one batch), round-robin; a record whose times are missing is
    finished by a re-run, its partner's earlier times kept."""
    out = tmp_path / "pair"
    grid = ["--trainers", "bp,ff", "--depths", "1", "--widths", "8", "--batch-sizes", "4,8"]
    assert main(["sweep", *TINY, "--steps", "5", "--out", str(out), "--quiet", *grid]) == 0
    recs = {p.name: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}
    assert len(recs) == 4
    by_batch: dict = {}
    for name, r in recs.items():
        by_batch.setdefault(r["config"]["batch_size"], {})[r["config"]["trainer"]] = (name, r)
    jobs = set()
    for pair in by_batch.values():
        (bp_name, bp), (ff_name, ff) = pair["bp"], pair["ff"]
        assert bp["timing"]["job"] == ff["timing"]["job"]  # one job timed both
        assert bp["timing"]["order"] == ff["timing"]["order"] == [bp_name, ff_name]  # round-robin cycle
        assert (bp["timing"]["position"], ff["timing"]["position"]) == (0, 1)
        jobs.add(bp["timing"]["job"])
        for r in (bp, ff):
            assert r["metrics"]["timed_steps"] >= 5 and len(r["step_seconds"]) == r["metrics"]["timed_steps"]
            assert r["metrics"]["timing_threads"] == 1 and r["metrics"]["timing_cores"] >= 1
            assert {"timing_load_before", "timing_load_after", "step_seconds_iqr"} <= set(r["metrics"])
            assert "M_MMAP_THRESHOLD" in r["allocator_setting"]  # memory: the RSS-tuned worker
            assert "M_MMAP_THRESHOLD" not in r["timing"]["allocator_setting"]  # times: glibc's defaults
            assert "default thresholds" in r["timing"]["allocator_setting"]
            assert "timing_pending" not in r and isinstance(r["worker"]["overhead_seconds"], float)
    assert len(jobs) == 2  # one job per configuration, not one per sweep
    # a record whose times were lost (the sweep killed between memory and timing)
    (bp_name, bp), (ff_name, ff) = by_batch[4]["bp"], by_batch[4]["ff"]
    old_job = bp["timing"]["job"]
    for key in ("timing", "step_seconds"):
        bp.pop(key)
    bp["timing_pending"] = True
    (out / "records" / bp_name).write_text(json.dumps(bp))
    untouched = (out / "records" / by_batch[8]["bp"][0]).read_bytes()
    assert main(["sweep", *TINY, "--steps", "5", "--out", str(out), "--quiet", *grid]) == 0
    bp2 = json.loads((out / "records" / bp_name).read_text())
    ff2 = json.loads((out / "records" / ff_name).read_text())
    assert "timing_pending" not in bp2 and bp2["timing"]["job"] == ff2["timing"]["job"] != old_job
    assert [e["timing"]["job"] for e in ff2["earlier_timings"]] == [old_job]  # not overwritten silently
    assert (out / "records" / by_batch[8]["bp"][0]).read_bytes() == untouched
