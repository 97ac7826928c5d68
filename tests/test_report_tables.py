"""The report's tables: a configuration x trainer pivot (smallest peak in bold) before the
long results table, which is folded and filterable; the environment as one value per key
plus where it differs; one number format (thousands separators on every number)."""

import re
from pathlib import Path

import pandas as pd
import pytest

from ffbench.analysis import html
from ffbench.analysis.report import build_report
from ffbench.analysis.tables import environment_summary

RECURRENT = Path(__file__).resolve().parents[1] / "results" / "2026-12-06-cpu-recurrent"


@pytest.mark.parametrize(
    ("number", "decimals", "text"),
    [(1024, None, "1,024"), (2048.0, None, "2,048"), (12345.678, None, "12,346"), (12340.2, None, "12,340"),
     (0.030542099, None, "0.03054"), (97.64, None, "97.64"), (3.5, None, "3.5"), (1234.5, 2, "1,234.50"),
     (-1500, None, "-1,500"), (8.0, 2, "8.00")],
)  # fmt: skip
def test_one_number_format(number, decimals, text):
    assert html.number_text(float(number), decimals) == text
    assert html.cell(number, decimals).text == text


def test_pivot_bolds_the_smallest_of_each_row_leaving_apart_columns_out():
    df = pd.DataFrame(
        {"bp": [9.52, 18.55], "ff": [8.54, 8.54], "bp-ce": [6.31, 12.03], "bp-accum": [float("nan"), 8.54]},
        index=["T2", "T8"],
    )
    made = html.pivot(df, apart=("bp-ce",))
    bold = [[made.columns[i] for i, c in enumerate(row) if c.strong] for row in made.rows]
    assert bold == [["ff"], ["ff", "bp-accum"]]  # ties both bold; bp-ce never compared
    assert [c.text for c in made.rows[0]] == ["T2", "9.52", "8.54", "6.31", "–"]


def test_environment_is_one_value_per_key_plus_where_it_differs():
    env = pd.DataFrame(
        {"sweep": {"torch": "2.14.1", "threads": "1"}, "train": {"torch": "2.14.1", "threads": "2"},
         "wide": {"torch": "2.14.1", "threads": "1"}}
    )  # fmt: skip
    out = environment_summary(env)
    assert list(out.columns) == ["value", "differs in"]
    assert out.loc["torch"].tolist() == ["2.14.1", ""]
    assert out.loc["threads"].tolist() == ["1", "train: 2"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "rec.html"
    build_report([RECURRENT / "recurrent"], out)
    return out.read_text(encoding="utf-8")


def test_the_pivot_comes_before_the_folded_filterable_results_table(page):
    pivot, results = page.index('<section id="pivot">'), page.index('<section id="results">')
    assert pivot < results
    section = page[results : page.index("</section>", results)]
    assert re.search(r"<details><summary>Show the 25 rows</summary>", section)
    assert '<input type="search" class="filter"' in section
    # every T: ff is the smallest of ff, bp, bp-checkpoint, bp[bptt_window=4] (bp-ce apart)
    rows = page[pivot : page.index("</section>", pivot)].split("<tr>")[2:]
    assert len(rows) == 5 and all(row.count("<strong>") >= 1 for row in rows)
    assert "<strong>8.54</strong>" in rows[-1] and "<strong>6.31" not in page[pivot:results]


def test_the_environment_table_has_two_columns(page):
    env = page[page.index('<section id="environment">') :]
    env = env[: env.index("</section>")]
    assert "<th>value</th><th>differs in</th>" in env
