"""No repeated block of code in ffbench/: pylint's duplicate-code check (R0801) with
min-similarity-lines 6, comments, docstrings, imports and signatures ignored (pylint's
defaults). The one kind of repetition allowed is declarative: the `option(...)` rows of
RunConfig in ffbench/config.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pylint", reason="pylint is in the test extra: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"ffbench.config"}  # RunConfig's option(...) rows


def duplicate_blocks(path: Path, min_lines: int = 6) -> list[list[str]]:
    """Each repeated block pylint finds under `path`: its places, as `module:[first:last]`."""
    proc = subprocess.run(
        [sys.executable, "-m", "pylint", "--disable=all", "--enable=duplicate-code",
         f"--min-similarity-lines={min_lines}", "--score=n", "--persistent=n", str(path)],
        capture_output=True, text=True, cwd=path.parent,
    )  # fmt: skip
    assert proc.returncode in (0, 8), proc.stderr[-2000:]  # 8: a refactoring message was issued
    blocks: list[list[str]] = []
    for line in proc.stdout.splitlines():
        if "R0801" in line:
            blocks.append([])
        elif line.startswith("==") and blocks:
            blocks[-1].append(line[2:])
    return blocks


def module_of(place: str) -> str:
    return re.sub(r":\[\d+:\d+\]$", "", place)


def test_no_repeated_block_in_ffbench():
    found = duplicate_blocks(ROOT / "ffbench")
    assert [b for b in found if not {module_of(p) for p in b} <= ALLOWED] == []


def test_the_check_finds_a_repeated_block(tmp_path):
    """It can fail: two modules sharing seven lines."""
    body = "".join(f"    total = total * {i} + {i}\n" for i in range(7))
    pkg = tmp_path / "toy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(f"def f(total):\n{body}    return total\n")
    (pkg / "b.py").write_text(f"def g(total):\n{body}    return -total\n")
    found = duplicate_blocks(pkg)
    assert len(found) == 1 and sorted(module_of(p) for p in found[0]) == ["toy.a", "toy.b"]
