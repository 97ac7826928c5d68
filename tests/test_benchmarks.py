"""ffbench's pytest plugin (memory gate, grids, collection, fixtures) and its JSON loader.

The plugin is ffbench/pytest_plugin.py, loaded through its pytest11 entry point (so every
pytester run below has it, with the real pytest-benchmark plugin); the grid tests copy
benchmarks/conftest.py (the suite's grid) into a scratch project.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Imported here, before pytester changes the working directory, so the inner runs find them.
import ffbench.pytest_plugin  # noqa: F401
import ffbench.results
import ffbench.run.fit  # noqa: F401
import ffbench.run.harness  # noqa: F401
from ffbench.errors import ConfigError
from ffbench.results.benchjson import _fallback_from_flat_extra_info, load_benchmark_json
from ffbench.trainers.registry import grid_trainers
from ffbench.units import MiB

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parents[1] / "benchmarks" / "conftest.py"

TINY = """
import pytest
from ffbench.config import RunConfig

CONFIG = RunConfig(trainer="bp", depth=1, width=16, batch_size=8, dataset="synthetic",
                   device="cpu", threads=1, val_size=0)


@pytest.mark.ffbench_memory("1KiB")
def test_over_budget(step_bench):
    step_bench(CONFIG, rounds=2)


@pytest.mark.ffbench_memory("1GiB")
def test_within_budget(step_bench):
    step_bench(CONFIG, rounds=2)


def test_no_marker(step_bench):
    step_bench(CONFIG, rounds=2)
"""


@pytest.fixture(scope="module", autouse=True)
def _import_lazy_modules() -> None:
    """pytester's in-process runs drop every module first imported inside them; building an
    optimizer imports torch._dynamo (hundreds of modules), and importing those a second time
    fails (duplicate TORCH_LIBRARY registration). Import them once out here."""
    ffbench.pytest_plugin.import_lazy_modules("cpu")


@pytest.fixture
def bench_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_tiny=TINY)
    return pytester


def test_memory_gate_fails_over_budget_passes_within(bench_project: pytest.Pytester) -> None:
    out = bench_project.path / "bench.json"
    result = bench_project.runpytest_subprocess(
        "--benchmark-only", f"--benchmark-json={out}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    failures = [line for line in text.splitlines() if "exceeds the memory budget" in line]
    assert failures, text
    # names the benchmark, its peak and the budget in MiB
    assert any(
        "test_over_budget" in line
        and "tensor-level peak" in line
        and "memory budget 0.00 MiB (1,024 B)" in line
        for line in failures
    ), failures
    assert not any("test_within_budget" in line for line in failures)

    read = load_benchmark_json(out)
    # each benchmark carries its whole record, which the reader unwraps as written; it is the
    # record the reader built from the flat figures before (the date: when the benchmark ended)
    doc = json.loads(out.read_text())
    assert read == [b["extra_info"]["record"] for b in doc["benchmarks"]]
    for bench, stored in zip(doc["benchmarks"], read):
        flat = {**bench, "extra_info": {k: v for k, v in bench["extra_info"].items() if k != "record"}}
        rebuilt = _fallback_from_flat_extra_info(flat, doc).to_dict()
        assert rebuilt["benchmark"].pop("datetime") == doc["datetime"]
        assert stored["benchmark"].pop("datetime") <= doc["datetime"]
        assert list(stored) == list(rebuilt) and stored == rebuilt
    records = {r["benchmark"]["name"]: r for r in read}
    assert set(records) == {"test_over_budget", "test_within_budget", "test_no_marker"}
    over, within = records["test_over_budget"], records["test_within_budget"]
    peak = over["metrics"]["tensor_whole_run_peak_bytes"]
    assert peak > 1024
    assert f"tensor-level peak {peak / MiB:.2f} MiB ({peak:,} B)" in "\n".join(failures)
    assert over["benchmark"]["memory_limit_exceeded"] is True
    assert over["benchmark"]["memory_limit_bytes"] == 1024
    assert within["benchmark"]["memory_limit_exceeded"] is False
    assert records["test_no_marker"]["benchmark"]["memory_limit_bytes"] is None
    # the same configuration gives the same tensor-level peak (exact accounting)
    assert within["metrics"]["tensor_whole_run_peak_bytes"] == peak


def test_memory_limit_option(bench_project: pytest.Pytester) -> None:
    # the option covers the unmarked benchmark; markers keep their own budgets
    result = bench_project.runpytest_subprocess(
        "--benchmark-only", "--ffbench-memory-limit", "1KiB", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["*test_no_marker*exceeds the memory budget 0.00 MiB (1,024 B) (--ffbench-memory-limit 1KiB)*"]
    )
    result = bench_project.runpytest_subprocess(
        "--benchmark-only", "--ffbench-memory-limit", "1GiB", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=1)


def test_sizes_read_as_documented_iec_and_si(bench_project: pytest.Pytester) -> None:
    """kB is 1000 bytes and KiB 1024, as ffbench.units.parse_size reads them everywhere."""
    result = bench_project.runpytest_subprocess(
        "--benchmark-only", "--ffbench-memory-limit", "1GB", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=1)
    result = bench_project.runpytest_subprocess(
        "--benchmark-only", "--ffbench-memory-limit", "2kB", "-k", "no_marker", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(["*test_no_marker*memory budget 0.00 MiB (2,000 B)*"])


def test_machine_info_holds_only_the_machine_and_compare_stays_quiet(bench_project: pytest.Pytester) -> None:
    """The thread count, allocator setting and code revision are in extra_info, so
    pytest-benchmark's --benchmark-compare does not warn between runs on one machine."""
    store = f"file://{bench_project.path / 'saved'}"
    args = ("--benchmark-only", "-k", "no_marker", "-p", "no:cacheprovider", f"--benchmark-storage={store}")
    bench_project.runpytest_subprocess(*args, "--benchmark-autosave").assert_outcomes(passed=1)
    (saved,) = (bench_project.path / "saved").rglob("*.json")
    doc = json.loads(saved.read_text())
    assert set(doc["machine_info"]["ffbench"]) <= {
        "device",
        "device_name",
        "cpu_model",
        "cores",
        "cuda_available",
    }
    env = doc["benchmarks"][0]["extra_info"]["environment"]
    assert {"threads", "allocator_setting", "git_revision", "ffbench_grid"} <= set(env)
    result = bench_project.runpytest_subprocess(*args, "--benchmark-compare")
    result.assert_outcomes(passed=1)
    assert "machine_info is different" not in result.stdout.str() + result.stderr.str()
    # the record read back still knows the run's environment
    (record,) = load_benchmark_json(saved)
    assert record["environment"]["threads"] == env["threads"]


def test_ffbench_compare_fails_a_grown_peak(bench_project: pytest.Pytester) -> None:
    out = bench_project.path / "before.json"
    args = ("--benchmark-only", "-k", "no_marker", "-p", "no:cacheprovider")
    first = bench_project.runpytest_subprocess(*args, f"--benchmark-json={out}")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["*ffbench memory*", "*test_no_marker*"])
    # the same code: identical bytes, passes at the default threshold 0
    again = bench_project.runpytest_subprocess(*args, f"--ffbench-compare={out}")
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["*vs saved*", "*test_no_marker*+0 B*"])
    # a saved run 1 byte smaller: the peak "grew" by one byte and fails, unless allowed
    doc = json.loads(out.read_text())
    info = doc["benchmarks"][0]["extra_info"]
    info["tensor_whole_run_peak_bytes"] -= 1
    out.write_text(json.dumps(doc))
    grown = bench_project.runpytest_subprocess(*args, f"--ffbench-compare={out}")
    grown.assert_outcomes(failed=1)
    grown.stdout.fnmatch_lines(["*test_no_marker*grew by +1 B*"])
    allowed = bench_project.runpytest_subprocess(
        *args, f"--ffbench-compare={out}", "--ffbench-compare-threshold=1%"
    )
    allowed.assert_outcomes(passed=1)
    bad = bench_project.runpytest_subprocess(*args, f"--ffbench-compare={bench_project.path / 'nope.json'}")
    assert bad.ret != 0 and "--ffbench-compare" in bad.stderr.str()


def test_histogram_extra_is_installed(bench_project: pytest.Pytester) -> None:
    """--benchmark-histogram needs pygal: the `plots` extra (part of `test`) installs it."""
    result = bench_project.runpytest_subprocess(
        "--benchmark-only", "-k", "no_marker", "-p", "no:cacheprovider", "--benchmark-histogram=hist"
    )
    result.assert_outcomes(passed=1)
    assert list(bench_project.path.glob("hist*.svg")), result.stdout.str()


def test_gate_also_works_with_benchmarks_disabled(bench_project: pytest.Pytester) -> None:
    # memory is measured outside the timed rounds, so the gate needs no timing
    result = bench_project.runpytest_subprocess("--benchmark-disable", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)


def test_marker_without_a_peak_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_plain="""
import pytest

@pytest.mark.ffbench_memory("10MiB")
def test_records_nothing(benchmark):
    benchmark.pedantic(lambda: None, rounds=1)
"""
    )
    result = pytester.runpytest_subprocess("--benchmark-only", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*recorded no tensor-level peak*"])


def test_limit_memory_is_left_to_pytest_memray(pytester: pytest.Pytester) -> None:
    """ffbench's gate is the ffbench_memory marker; limit_memory is pytest-memray's name."""
    result = pytester.runpytest("--markers", "-p", "no:cacheprovider", "-p", "no:memray")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.ffbench_memory(size): *", "@pytest.mark.ffbench_grid(name): *"]
    )
    result.stdout.no_fnmatch_line("*limit_memory*")


def test_ffbench_memory_beside_pytest_memray(pytester: pytest.Pytester) -> None:
    """With pytest-memray installed (not a dependency), both gates work on one benchmark."""
    pytest.importorskip("pytest_memray")
    pytester.makepyfile(
        test_both=TINY.split("@pytest.mark")[0]
        + """
@pytest.mark.limit_memory("200 MB")
@pytest.mark.ffbench_memory("1KiB")
def test_both(step_bench):
    step_bench(CONFIG, rounds=1)
"""
    )
    result = pytester.runpytest_subprocess("--benchmark-disable", "--memray", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_both*exceeds the memory budget*ffbench_memory('1KiB') marker*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


SAME_CONFIG = """
import pytest
from ffbench.config import RunConfig

CONFIGS = {configs!r}


@pytest.mark.parametrize("trainer", sorted(CONFIGS))
def test_step(step_bench, trainer):
    step_bench(RunConfig.from_dict(CONFIGS[trainer]), rounds=1)
"""


def test_benchmark_and_sweep_records_carry_the_same_memory_columns(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """One configuration measured by the benchmark plugin and by the sweep worker: every
    tensor-level and analytic byte count is the same (one measurement function), and both
    carry process figures."""
    from ffbench.config import RunConfig
    from ffbench.results import load
    from ffbench.run.worker import run_spec

    configs = {
        t: RunConfig(
            trainer=t, depth=2, width=64, batch_size=32, dataset="synthetic", device="cpu", threads=1
        ).to_dict()
        for t in ("bp", "ff")
    }
    pytester.makepyfile(test_same=SAME_CONFIG.format(configs=configs))
    bench_json = tmp_path / "bench.json"
    result = pytester.runpytest_subprocess(
        "--benchmark-only", f"--benchmark-json={bench_json}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    bench = load(bench_json).set_index("trainer")
    for trainer, config in configs.items():
        spec = {"config": config, "settings": {"timing_steps": 1, "compare_allocator": False}}
        record = run_spec(spec).to_dict()
        assert record["status"] == "ok", record.get("error")
        path = tmp_path / f"sweep-{trainer}.json"
        path.write_text(json.dumps(record))
        sweep = load(path).iloc[0]
        memory = [c for c in sweep.index if c.startswith(("tensor_", "analytic_")) and c.endswith("_bytes")]
        assert "tensor_saved_activations_bytes" in memory and "analytic_peak_bytes" in memory
        assert "tensor_eval_peak_bytes" in memory and "tensor_whole_run_peak_bytes" in memory
        row = bench.loc[trainer]
        assert sorted(
            c for c in row.index if c.startswith(("tensor_", "analytic_")) and c.endswith("_bytes")
        ) == sorted(memory)
        assert {c: int(row[c]) for c in memory} == {c: int(sweep[c]) for c in memory}, trainer
        assert row["eval_examples"] == sweep["eval_examples"]
        # process figures in both (a step this small may not raise RSS: a rise of 0 is fine)
        for c in ("rss_start_bytes", "rss_peak_bytes"):
            assert row[c] > 0 and sweep[c] > 0, c
        assert row["rss_rise_bytes"] >= 0 and sweep["rss_rise_bytes"] >= 0


GRID_FILE = """
import pytest

@pytest.mark.ffbench_grid("step")
def test_point(trainer, depth, batch, width):
    pass
"""


def _collected(pytester: pytest.Pytester, *args: str) -> int:
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)
    return sum(1 for line in result.stdout.lines if "::test_point[" in line)


def test_grid_default_small_full_by_option_or_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_grid=GRID_FILE)
    monkeypatch.delenv("FFBENCH_GRID", raising=False)
    default = _collected(pytester)
    assert default == len(grid_trainers()) * 2 * 2  # trainers x depth {2,4} x batch {128,1024}
    full = _collected(pytester, "--ffbench-grid", "full")
    assert full > default
    monkeypatch.setenv("FFBENCH_GRID", "full")
    assert _collected(pytester) == full
    assert _collected(pytester, "--ffbench-grid", "default") == default  # option wins
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_point[[]ff-summed-d2-w2000-b4096[]]*"])


def test_plain_pytest_skips_benchmarks_in_testpaths(pytester: pytest.Pytester) -> None:
    """With testpaths = ["tests", "benchmarks"], plain pytest runs only tests/ and
    `pytest --benchmark-only` runs only the benchmarks."""
    pytester.makeini("[pytest]\ntestpaths = tests benchmarks\nffbench_benchmark_paths = benchmarks\n")
    pytester.makepyfile(
        **{
            "benchmarks/conftest": CONFTEST.read_text(),
            "benchmarks/test_b": (
                "def test_bench(benchmark):\n    benchmark.pedantic(lambda: 1, rounds=1)\n"
            ),
            "tests/test_a": "def test_unit():\n    pass\n",
        }
    )
    plain = pytester.runpytest("-p", "no:cacheprovider")
    plain.assert_outcomes(passed=1)
    plain.stdout.no_fnmatch_line("*test_b*")
    only = pytester.runpytest("--benchmark-only", "-p", "no:cacheprovider", "-v")
    only.assert_outcomes(passed=1)  # tests/ is not even collected
    only.stdout.fnmatch_lines(["*benchmarks/test_b.py::test_bench PASSED*", "*1 passed*"])
    only.stdout.no_fnmatch_line("*test_a*")
    explicit = pytester.runpytest("benchmarks", "-p", "no:cacheprovider")
    explicit.assert_outcomes(passed=1)


# -- loader, on a hand-written file ------------------------------------------------------
def _bench(kind: str, **extra) -> dict:
    info = {
        "config": {
            "trainer": "ff",
            "depth": 2,
            "width": 500,
            "batch_size": 128,
            "device": "cpu",
            "threads": 1,
            "dataset": "mnist",
        },
        "dataset": {"name": "mnist"},
        "ffbench_kind": kind,
        "threads": 1,
        "tensor_peak_bytes": 1000,
        "tensor_whole_run_peak_bytes": 1200,
        "rss_rise_bytes": 900,
        "rss_rise_bytes_per_round": [900, 800],
        "memory_method": "m",
        "timed_rounds_tensor_tracker": False,
        **extra,
    }
    return {
        "name": f"test_{kind}[x]",
        "fullname": f"benchmarks/t.py::test_{kind}[x]",
        "group": "g",
        "params": {},
        "param": "x",
        "extra_info": info,
        "stats": {
            "min": 0.1,
            "max": 0.3,
            "mean": 0.2,
            "stddev": 0.1,
            "rounds": 3,
            "median": 0.2,
            "iqr": 0.1,
            "data": [0.1, 0.2, 0.3],
        },
    }


def test_load_benchmark_json_written_before_the_whole_record(tmp_path: Path) -> None:
    """The fallback for files whose extra_info holds only the flat figures: the record built
    from them, the document's stats, date and machine."""
    data = {
        "machine_info": {"torch": "2.x", "ffbench": {"device": "cpu", "threads": 1}},
        "datetime": "2026-01-01T00:00:00",
        "benchmarks": [
            _bench("step"),
            _bench("accuracy", val_accuracy=0.9, test_accuracy=0.91, epochs=1),
            _bench("tracker_overhead", untracked_step_seconds=[0.1, 0.1, 0.1], tracker_overhead_factor=2.0),
            {"name": "foreign", "extra_info": {}, "stats": {"median": 1.0, "rounds": 1}},
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    step, acc, over = load_benchmark_json(path)

    for rec in (step, acc, over):
        assert rec["source"] == "benchmark" and rec["isolated"] is False
        assert rec["status"] == "ok"
        assert rec["config"]["optimizer"] == "adam"  # every RunConfig field filled in
        assert rec["environment"]["torch"] == "2.x"
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rec["metrics"].values())
        assert rec["metrics"]["tensor_peak_bytes"] == 1000
        assert "rss_rise_bytes_per_round" not in rec["metrics"]
    assert step["kind"] == "measure" and step["benchmark"]["kind"] == "step"
    assert step["metrics"]["step_seconds_median"] == 0.2
    assert step["metrics"]["examples_per_second"] == pytest.approx(128 / 0.2)
    assert step["step_seconds"] == [0.1, 0.2, 0.3]
    assert acc["kind"] == "measure" and acc["benchmark"]["kind"] == "accuracy"
    assert acc["val_accuracy"] == 0.9 and acc["metrics"]["test_accuracy"] == 0.91
    assert acc["metrics"]["wall_seconds"] == 0.2
    assert over["metrics"]["tracked_step_seconds_median"] == 0.2
    assert over["metrics"]["tracker_overhead_factor"] == 2.0
    assert over["untracked_step_seconds"] == [0.1, 0.1, 0.1]


def test_a_malformed_record_in_extra_info_is_one_line(tmp_path: Path) -> None:
    bench = {**_bench("step"), "extra_info": {"record": {"kind": "measure", "config": {}, "status": "fine"}}}
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": [bench]}))
    with pytest.raises(ConfigError, match=r"^record .*b.json benchmark 0: unknown status 'fine'"):
        load_benchmark_json(path)
    # the documented entry (and so `ffbench report`) names the file too
    with pytest.raises(ConfigError, match=r"^record .*b.json benchmark 0: unknown status 'fine'"):
        ffbench.results.load(path)


def test_load_benchmark_json_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[]")
    with pytest.raises(ValueError, match="not a pytest-benchmark JSON"):
        load_benchmark_json(path)


def test_benchmark_only_reports_skips_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = -ra\n")
    pytester.makepyfile(
        test_s=(
            "import pytest\n"
            "@pytest.mark.parametrize('n', range(5))\n"
            "def test_gpu(benchmark, n):\n    pytest.skip('no CUDA GPU')\n"
            "def test_data(benchmark):\n    pytest.skip('no MNIST')\n"
            "def test_run(benchmark):\n    benchmark.pedantic(lambda: 1, rounds=1)\n"
        )
    )
    result = pytester.runpytest("--benchmark-only", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=6)
    result.stdout.fnmatch_lines(["ffbench: 6 skipped: no CUDA GPU (5); no MNIST (1)"])
    result.stdout.no_fnmatch_line("SKIPPED*")


def test_memory_table_keeps_full_names_and_shows_the_tracker_overhead(pytester: pytest.Pytester) -> None:
    long_name = "test_a_tracker_overhead_benchmark_whose_name_is_longer_than_the_old_column"
    pytester.makepyfile(
        test_o=TINY.split("@pytest.mark.ffbench_memory")[0]
        + f"def {long_name}(overhead_bench):\n    overhead_bench(CONFIG, rounds=2)\n"
    )
    result = pytester.runpytest_subprocess("--benchmark-only", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    lines = result.stdout.str().splitlines()
    head = next(line for line in lines if line.startswith("benchmark") and "tracker x" in line)
    row = next(line for line in lines if line.startswith(long_name + " "))
    factor = row.split()[-1]
    assert factor.endswith("x") and float(factor[:-1]) > 0
    assert len(row.split()) == 7  # name, peak, transient, whole run, RSS rise, CUDA peak, factor
    assert head.index("tracker x") + len("tracker x") == len(row)  # right-aligned under its header
