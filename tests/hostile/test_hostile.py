"""Hostile inputs and faults (issue 14): every case one line and the right exit, no traceback,
nothing lost or mislabelled. The cases live in cases_*.py; the table in docs/hostile-inputs.md."""

from __future__ import annotations

import pytest
from catalogue import DOC, all_cases, render_doc
from hostile import GROUPS, run_case

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case, tmp_path):
    verdict, why = run_case(case, tmp_path)
    assert verdict == "clean", f"{case.what}: {verdict}: {why}"


def test_at_least_150_cases_in_every_group_with_every_numbered_case_of_the_issue():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.group for c in CASES} == set(GROUPS)
    assert {c.issue for c in CASES} >= {str(n) for n in range(1, 9)}


def test_the_doc_lists_every_case():
    assert DOC.read_text(encoding="utf-8") == render_doc(CASES), (
        "regenerate: python tests/hostile/tally.py --doc"
    )
