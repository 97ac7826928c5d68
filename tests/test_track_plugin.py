"""The pytest plugin on tests of any project: the ffbench_memory marker on a plain test, the
ffbench_step fixture, memory history for CI (github-action-benchmark's list) and the
--ffbench-compare gate per benchmark group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_track import doc_files  # tests/ is on sys.path (rootdir-relative imports)

import ffbench.pytest_plugin
from ffbench.analysis.export import read_history

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module", autouse=True)
def _import_lazy_modules() -> None:
    ffbench.pytest_plugin.import_lazy_modules("cpu")


@pytest.fixture
def ff_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """The doc's hand-written FF loop and its test file, as a project of their own."""
    files = doc_files()
    pytester.makepyfile(my_ff_loop=files["my_ff_loop.py"], test_memory=files["test_memory.py"])
    return pytester


def test_marker_on_a_plain_test_and_the_step_fixture_gate_a_hand_written_ff_loop(ff_project):
    result = ff_project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    # the steady step of the doc's example: 17,095,568 B (docs/track-your-own-loop.md)
    result.stdout.fnmatch_lines(
        ["*test_one_steady_step_fits_in_16_mib*tensor-level peak 16.30 MiB (17,095,568 B) exceeds*16.00 MiB*"]
    )
    result.stdout.fnmatch_lines(["*ffbench memory*", "*test_two_steps_fit_in_20_mib*"])


def _valid_benchmark_action_list(entries) -> None:
    """github-action-benchmark's customSmallerIsBetter input: a list of objects with name
    (string), unit (string), value (number); range and extra optional strings."""
    assert isinstance(entries, list) and entries
    for e in entries:
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["unit"], str) and e["unit"]
        assert isinstance(e["value"], (int, float)) and not isinstance(e["value"], bool)
        assert isinstance(e.get("range", ""), str) and isinstance(e.get("extra", ""), str)
        assert set(e) <= {"name", "unit", "value", "range", "extra"}


def test_history_on_two_commits_reads_back_as_two_valid_lists(ff_project, monkeypatch):
    history, listing = ff_project.path / "history.jsonl", ff_project.path / "memory.json"
    args = ("-p", "no:cacheprovider", "-k", "steady", f"--ffbench-history={history}")
    for commit in ("1111111", "2222222"):
        monkeypatch.setenv("GITHUB_SHA", commit)
        result = ff_project.runpytest_subprocess(*args, f"--ffbench-benchmark-action={listing}")
        result.assert_outcomes(failed=1)  # over its budget: still recorded
    runs = read_history(history)
    assert len(runs) == 2
    for (run, entries), commit in zip(runs.items(), ("1111111", "2222222")):
        assert run.startswith(commit)
        _valid_benchmark_action_list(entries)
        assert all(f"commit: {commit}\nmachine: " in e["extra"] for e in entries)
        values = {e["name"].rsplit(": ", 1)[1]: e["value"] for e in entries}
        assert values["tensor step peak"] == 17_095_568 and all(e["unit"] == "bytes" for e in entries)
    last = json.loads(listing.read_text())
    _valid_benchmark_action_list(last)
    assert last == list(runs.values())[-1]
    lines = history.read_text().splitlines()
    assert all(json.loads(line)["commit"] in ("1111111", "2222222") for line in lines)


GROUPS = """
import pytest


@pytest.mark.benchmark(group="gated")
def test_a(benchmark):
    benchmark.extra_info["tensor_whole_run_peak_bytes"] = 1000
    benchmark.pedantic(lambda: None, rounds=1)


@pytest.mark.benchmark(group="free")
def test_b(benchmark):
    benchmark.extra_info["tensor_whole_run_peak_bytes"] = 1000
    benchmark.pedantic(lambda: None, rounds=1)
"""


def test_compare_gate_applies_per_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_groups=GROUPS)
    saved = pytester.path / "saved.json"
    first = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--benchmark-json={saved}")
    first.assert_outcomes(passed=2)
    doc = json.loads(saved.read_text())
    for b in doc["benchmarks"]:
        b["extra_info"]["tensor_whole_run_peak_bytes"] = 999  # both grew by one byte since
    saved.write_text(json.dumps(doc))
    both = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--ffbench-compare={saved}")
    both.assert_outcomes(failed=2)
    one = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--ffbench-compare={saved}", "--ffbench-compare-group=gated"
    )
    one.assert_outcomes(passed=1, failed=1)
    one.stdout.fnmatch_lines(["*test_a*grew by +1 B*"])
    one.stdout.fnmatch_lines(["*test_b*+1 B*"])  # compared and listed, not failed


def test_history_file_in_a_missing_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(f"--ffbench-history={Path('nope') / 'h.jsonl'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--ffbench-history" in result.stderr.str()
