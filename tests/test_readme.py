"""README's verdict paragraph is generated from the committed reference run's claims: it
fails as soon as the prose and the numbers disagree (regenerate with
`ffbench report results/<run> --out-file reports/<run>.html --readme README.md`)."""

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


def _blocks(section: str) -> list[str]:
    """The indented code blocks of a Markdown section, each as one stripped string."""
    blocks, current = [], []
    for line in section.splitlines() + [""]:
        if line.startswith("    "):
            current.append(line.strip())
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


def test_quick_start_works_on_any_machine():
    """The CPU-only torch first (its own command, before the set-up: a reader going top to
    bottom never installs the CUDA build by accident), then three commands -- set up, run the
    main job on its offline default, test -- with no path or package source of the machines
    ffbench was built on; CI runs the test command."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = text[text.index("## Quick start") : text.index("## ", text.index("## Quick start") + 3)]
    cpu_torch, setup, main_job, tests = _blocks(quick)[:4]
    assert cpu_torch.startswith(
        "python3 -m venv .venv && . .venv/bin/activate && pip install torch torchvision"
    )
    assert cpu_torch.endswith("--index-url https://download.pytorch.org/whl/cpu")
    assert "pip install -e '.[test]'" in setup and "torch==" not in setup
    assert setup.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
    assert main_job == "ffbench reproduce --profile quick"
    assert tests == "python -m pytest -q"
    assert tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for package in ("chromium", "chromium-driver", "dataset-fashion-mnist"):
        assert package in quick
    assert "--index-url" in quick  # the CPU-only wheels
    for machine_specific in ("../shared", "local disk", "/work/"):
        assert machine_specific not in text
