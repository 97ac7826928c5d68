"""README's verdict paragraph is generated from the committed reference run's claims: it
fails as soon as the prose and the numbers disagree (regenerate with
`ffbench report results/<run> --out reports/<run>.html --readme README.md`)."""

import re
from pathlib import Path

import pytest

from ffbench.analysis import readme
from ffbench.analysis.report import analyse

ROOT = Path(__file__).resolve().parents[1]


def test_readme_verdicts_match_the_committed_run():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.section(text)
    match = re.search(r"Verdicts of `([^`]+)`", section)
    assert match, "the verdict section names no run"
    run = ROOT / "results" / match.group(1)
    assert run.is_dir(), f"README names {run.name}, which is not committed under results/"
    assert section == readme.verdict_lines(analyse([run]).verdicts, run.name)


def test_markers_are_required(tmp_path):
    from ffbench.errors import ConfigError

    with pytest.raises(ConfigError, match="no verdict markers"):
        readme.replace_section("no markers here", "x")
