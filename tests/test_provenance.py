"""Threshold provenance follows a value across files and flags thresholds set after a run."""

import subprocess
from pathlib import Path

import pytest

from ffbench.analysis import caveats, provenance
from ffbench.analysis.claims import Verdict
from ffbench.analysis.provenance import UNCOMMITTED, Change, changed_after, last_changes, value_of


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str | None], message: str, date: str) -> str:
    for name, text in files.items():
        path = repo / name
        if text is None:
            git(repo, "rm", "-q", name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(repo, "add", name)
    env = {"GIT_AUTHOR_DATE": f"{date}T12:00:00", "GIT_COMMITTER_DATE": f"{date}T12:00:00"}
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True, env={**_env(), **env})
    return git(repo, "rev-parse", "HEAD")


def _env() -> dict:
    import os

    return {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}  # fmt: skip


@pytest.fixture
def history(tmp_path):
    """pkg/claims.py sets X and Y; a later commit moves both into pkg/analysis/thresholds.py
    with new comments (X's value kept, Y's changed); then Z is added."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    first = commit(repo, {"pkg/claims.py": "X = 0.25  # claim 1\nY = 2\n"}, "claims", "2026-01-01")
    run = commit(repo, {"pkg/other.py": "A = 1\n"}, "unrelated", "2026-01-02")
    moved = commit(
        repo,
        {"pkg/claims.py": None, "pkg/analysis/thresholds.py": "X = 0.25  # reworded\nY = 3  # changed\n"},
        "thresholds in one file",
        "2026-01-03",
    )
    added = commit(repo, {"pkg/analysis/thresholds.py": "X = 0.25  # reworded\nY = 3  # changed\nZ = {'a': 1}\n"},
                   "Z", "2026-01-04")  # fmt: skip
    return {"repo": repo, "first": first, "run": run, "moved": moved, "added": added,
            "source": repo / "pkg" / "analysis" / "thresholds.py"}  # fmt: skip


def test_the_value_is_followed_across_the_move(history):
    found = last_changes(history["source"], ["X", "Y", "Z", "W"])
    # git blame names the move for X; the value was set in the first commit
    blamed = git(history["repo"], "blame", "--porcelain", "-L", "1,1", "pkg/analysis/thresholds.py").split()[
        0
    ]
    assert blamed == history["moved"]
    assert found["X"] == Change(history["first"], "2026-01-01")
    assert found["Y"] == Change(history["moved"], "2026-01-03")
    assert found["Z"] == Change(history["added"], "2026-01-04")
    assert found["W"] == "unknown"
    assert str(found["X"]) == f"{history['first'][:10]} (2026-01-01)"


def test_a_value_changed_in_the_working_tree_is_uncommitted(history):
    history["source"].write_text("X = 0.3\nY = 3  # a new comment is no change\nZ = {'a': 1}\n")
    found = last_changes(history["source"], ["X", "Y"])
    assert found["X"] == UNCOMMITTED and found["Y"] == Change(history["moved"], "2026-01-03")


def test_a_threshold_set_after_the_run_is_flagged(history):
    repo, found = history["repo"], last_changes(history["source"], ["X", "Y"])
    short = history["run"][:7]
    assert changed_after(found["X"], short, repo) is False
    assert changed_after(found["Y"], short, repo) is True
    assert changed_after(found["Y"], short + "-dirty", repo) is True
    assert changed_after(found["Y"], history["added"], repo) is False
    assert changed_after(found["Y"], None, repo) is None
    assert changed_after(found["Y"], "0123456789abcdef", repo) is None  # not in this checkout
    assert changed_after(UNCOMMITTED, short, repo) is True


def test_the_verdict_of_a_run_names_the_threshold_set_after_it(history):
    found = last_changes(history["source"], ["X", "Y"])
    v = Verdict(claim="c", verdict="holds", thresholds=("X", "Y"))
    lines = caveats.thresholds_after(v, [history["run"][:7]], found, history["repo"])
    assert len(lines) == 1 and "Y (set in" in lines[0] and "X" not in lines[0].split(":", 1)[1]
    assert caveats.thresholds_after(v, [history["added"][:7]], found, history["repo"]) == []


def test_values_compare_as_expressions():
    assert value_of("X = 0.50  # why", "X") == value_of("X=0.5", "X") == "0.5"
    assert value_of("XY = 1", "X") is None
    assert value_of("T: float = 2  # typed", "T") == "2"


def test_this_checkouts_thresholds_have_a_provenance():
    from ffbench.analysis import thresholds

    found = thresholds.revisions()
    assert set(found) == set(thresholds.NAMES)
    if provenance._git(["rev-parse", "HEAD"], Path(thresholds.__file__).parent) is None:
        pytest.skip("no git")
    assert all(v != "unknown" for v in found.values()), found
