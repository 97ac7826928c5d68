"""The report's HTML: views of the verdicts, figures and tables, rendered through the Jinja2
template `templates/report.html.j2` (stylesheet `report.css`, table sorting `sort.js`, both
inlined: the page needs no network and no other file).

Reading order: a summary box (one line per finding: verdict, key number, link, warnings),
then claim cards (the numbers, test and thresholds folded in `<details>`), findings apart
from checks of the instrument, then figures and sortable tables. With several runs (a
comparison) every line, card and figure shows each run, labelled, side by side.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from . import thresholds
from .claims import GROUPS, Verdict

TEMPLATES = Path(__file__).with_name("templates")
DASH = "–"  # what an empty cell shows (never None, NaN or <NA>)
BADGES = {"holds": "holds", "partial": "holds in part", "does not hold": "does not hold"}


# -- tables ------------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str
    num: bool = False
    sort: str = ""  # the number a numeric cell sorts by ("" for an empty one)
    strong: bool = False  # set in bold (the smallest of a pivot's row)

    @property
    def short(self) -> bool:
        """Short text is kept on one line (a trainer name never breaks at its hyphen)."""
        return len(self.text) <= 24


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    css: str = "data"
    sortable: bool = True
    filterable: bool = False  # long tables: a box that keeps the rows holding its text


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def cell(value: Any, decimals: int | None = None) -> Cell:
    """One table cell: numbers right-aligned and sortable (`decimals` fixed where given),
    booleans as yes/no, nothing as –."""
    if isinstance(value, (list, tuple, dict)):
        return Cell(str(value))
    if _missing(value):
        return Cell(DASH)
    if isinstance(value, str) and re.fullmatch(r"[+-]\d[\d,]*", value):  # a signed delta: sorts as a number
        return Cell(value, True, value.replace(",", ""))
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return Cell("yes" if value else "no")
    if isinstance(value, (int, float)) or hasattr(value, "dtype"):
        number = float(value)
        if math.isnan(number):
            return Cell(DASH, True, "")
        return Cell(number_text(number, decimals), True, repr(number))
    return Cell(str(value))


def number_text(number: float, decimals: int | None = None) -> str:
    """The one number format of the report: thousands separators on every number; `decimals`
    fixed where given, else a whole number as such and any other to 4 significant digits."""
    if decimals is not None:
        return f"{number:,.{decimals}f}"
    if number.is_integer():
        return f"{int(number):,}"
    places = max(0, 3 - math.floor(math.log10(abs(number))))
    text = f"{number:,.{places}f}"
    return text.rstrip("0").rstrip(".") if places else text


FIXED = ("(MiB)", "(ms)", "(%)", "(pp)")  # columns shown with two decimals


def table(
    df, index: bool = False, css: str = "data", sortable: bool = True, decimals: int | None = None
) -> Table:
    """A DataFrame as a Table (the index as the first column when `index`); numbers with
    `decimals` places, or two in the columns of FIXED units."""
    columns = ([""] if index else []) + [str(c) for c in df.columns]
    decimals = [2 if str(c).endswith(FIXED) else decimals for c in df.columns]
    rows = []
    for key, row in zip(df.index, df.itertuples(index=False, name=None)):
        rows.append(([Cell(str(key))] if index else []) + [cell(v, d) for v, d in zip(row, decimals)])
    return Table(columns, rows, css, sortable)


def pivot(df, apart: tuple[str, ...] = ()) -> Table:
    """A configuration x trainer table (the index first, two decimals), the smallest number
    of each row in bold; the columns in `apart` are shown but never compared."""
    made = table(df, index=True, css="data pivot", decimals=2)
    compared = [str(c) not in apart for c in df.columns]
    for row in made.rows:
        cells = [c for c, use in zip(row[1:], compared) if use and c.num and c.sort != ""]
        smallest = min((float(c.sort) for c in cells), default=None)
        for c in cells:
            c.strong = float(c.sort) == smallest
    return made


def thresholds_table() -> Table:
    revisions = thresholds.revisions()
    rows = [
        [Cell(name), Cell(str(getattr(thresholds, name))), Cell(revisions[name])] for name in thresholds.NAMES
    ]
    return Table(["threshold", "value", "last changed in"], rows, "thresholds")


# -- claims --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One run's verdict of one claim."""

    label: str | None
    css: str
    badge: str
    verdict: str
    summary: str
    detail: str
    eval_chunk: str
    caveats: list[str]


def entry(v: Verdict, label: str | None) -> Entry:
    why = re.fullmatch(r"not evaluated \((.*)\)", v.verdict, re.S)
    summary = v.summary or _shortened(why.group(1) if why else v.detail) or v.verdict
    return Entry(label, v.status.replace(" ", ""), BADGES.get(v.status, v.status), v.verdict, summary,
                 v.detail, v.eval_chunk, list(v.caveats))  # fmt: skip


def _shortened(detail: str, limit: int = 180) -> str:
    """A detail short enough for a summary line: whole, or its first clause, or cut at a word."""
    if len(detail) <= limit:
        return detail
    first = detail.split("; ")[0]
    if 40 <= len(first) <= limit:
        return first + " …"
    return detail[:limit].rsplit(" ", 1)[0] + " …"


@dataclass
class Card:
    key: str
    number: int
    claim: str
    css: str
    test: str
    thresholds: list[tuple[str, str]]
    figure: str | None
    figure_link: bool
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Group:
    key: str
    title: str
    cards: list[Card]


def cards(runs: list[tuple[str | None, list[Verdict]]], figures: set[str]) -> list[Group]:
    """The claim cards, findings then checks; one entry per run in each card."""
    first = runs[0][1]
    made = []
    for i, v in enumerate(first):
        entries = [entry(vs[i], label) for label, vs in runs]
        values = [(n, str(getattr(thresholds, n))) for n in v.thresholds]
        made.append(Card(v.key, i + 1, v.claim, entries[0].css, v.test, values, v.figure,
                         v.figure in figures, entries))  # fmt: skip
    return [Group(g, title, [c for c, v in zip(made, first) if v.group == g]) for g, title in GROUPS.items()]


def checks_line(verdicts: list[Verdict]) -> str:
    """'3 of 5 hold; 2 not evaluated' for the checks of the instrument."""
    checks = [v for v in verdicts if v.group == "check"]
    held = sum(v.status == "holds" for v in checks)
    others: dict[str, int] = {}
    for v in checks:
        if v.status != "holds":
            others[BADGES.get(v.status, v.status)] = others.get(BADGES.get(v.status, v.status), 0) + 1
    return f"{held} of {len(checks)} hold" + "".join(f"; {n} {what}" for what, n in others.items())


# -- the page ------------------------------------------------------------------------------------


@dataclass
class FigureRow:
    name: str
    panels: list[tuple[str | None, Any]]  # (run label, drawing.FigureOut)


@dataclass
class Section:
    anchor: str
    title: str
    table: Table
    note: str = ""
    collapsed: bool = False  # folded under its title (a long table)


@dataclass
class Page:
    title: str
    generated: str
    sources: str
    counts: str
    batch_convention: str
    runs: list[tuple[str | None, list[Verdict]]]  # (label, verdicts) per run; label None alone
    figures: list[FigureRow]
    sections: list[Section]
    baseline: str | None = None
    comparison: Any = None  # compare.ComparisonView


def _code(text: Any) -> Markup:
    """Escaped text with `backticked` names set as code; a summary's lines (one per
    architecture) each on its own line."""
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape("" if text is None else text)))
    return Markup(html.replace("\n", "<br>"))


def _nav(page: Page) -> list[tuple[str, str]]:
    nav = [("summary", "Summary")]
    if page.comparison is not None:
        nav.append(("comparison", "Comparison"))
    nav += [("claims", "Claims"), ("figures", "Figures")]
    return nav + [(s.anchor, s.title.split(" (")[0]) for s in page.sections]


def render(page: Page) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["code"] = _code
    groups = cards(page.runs, {row.name for row in page.figures})
    summary = [c for g in groups if g.key == "finding" for c in g.cards]
    return env.get_template("report.html.j2").render(
        **vars(page),
        css=(TEMPLATES / "report.css").read_text(encoding="utf-8"),
        script=(TEMPLATES / "sort.js").read_text(encoding="utf-8"),
        labels=[label for label, _ in page.runs],
        nav=_nav(page),
        groups=groups,
        summary=summary,
        checks_summary=[checks_line(vs) for _, vs in page.runs],
        thresholds=thresholds_table(),
    )
