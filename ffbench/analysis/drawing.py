"""The report's figures as files: every registered figure (`ffbench.analysis.plots`) drawn
to SVG text, one row per figure with a panel per run, and the SVGs written next to the page
in `NAME_files/`, listed in `NAME_files/ffbench-figures.txt`: a later report removes only the
SVGs listed there, never a file it did not write.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..results import store
from . import html
from .compare import slug


@dataclass
class FigureOut:
    name: str
    question: str
    note: str
    file: Path | None  # the SVG file written, None when the figure was omitted
    svg: str | None = None

    @property
    def data(self) -> str:
        """The SVG as base64, for an inline data: URI."""
        return base64.b64encode((self.svg or "").encode("utf-8")).decode("ascii")


FIGURE_LIST = "ffbench-figures.txt"  # in NAME_files/: the figures this report wrote (nothing else is removed)
_FIGURE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def write_figures(files_dir: Path, figures: list[FigureOut]) -> None:
    """Write the figures' SVGs and the list of them; remove only the SVGs an earlier report
    listed there and this one does not draw (any other file in the folder is left alone)."""
    listing = files_dir / FIGURE_LIST
    try:
        earlier = set(listing.read_text(encoding="utf-8").split()) if listing.is_file() else set()
    except (OSError, UnicodeDecodeError):
        earlier = set()
    drawn = [f.name for f in figures if f.svg is not None]
    files_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(earlier - set(drawn)):
        if _FIGURE_NAME.match(name):
            (files_dir / f"{name}.svg").unlink(missing_ok=True)
    for f in figures:
        if f.svg is not None:
            store.write_text_atomic(f.file, f.svg)
    store.write_text_atomic(listing, "".join(f"{name}\n" for name in drawn))


def figures_dir_for(out_html: Path) -> Path:
    out_html = Path(out_html)
    return out_html.with_name(out_html.stem + "_files")


@dataclass
class Drawn:
    """A figure drawn and written to SVG text (its matplotlib figure already closed)."""

    name: str
    question: str
    note: str
    svg: str | None  # None when the figure was omitted


def draw_figures(runs, epochs, timelines, maxbatch) -> list[Drawn]:
    """Every figure, each turned into SVG and closed as soon as it is drawn (never more than
    one figure function's figures open at a time)."""
    from . import plots

    out = []
    for fn in plots.FIGURES:
        try:
            made = fn(plots.runs_for(fn, runs), epochs=epochs, timelines=timelines, maxbatch=maxbatch)
        except Exception as exc:  # noqa: BLE001 - one broken figure must not lose the report
            made = plots.Plot(
                fn.__name__,
                fn.__name__.replace("_", " "),
                None,
                f"could not be drawn: {type(exc).__name__}: {exc}",
            )
        for p in made if isinstance(made, list) else [made]:
            out.append(Drawn(p.name, p.question, p.note, p.svg() if p.figure is not None else None))
    return out


def _figure_out(p: Drawn, stem: str, files_dir: Path) -> FigureOut:
    return FigureOut(stem, p.question, p.note, files_dir / f"{stem}.svg" if p.svg else None, p.svg)


def figure_rows(analyses: list[Any], labels: list[str | None], files_dir: Path):
    """One row per figure with one panel per run (labelled), each `report.Analysis` a run;
    and every FigureOut."""
    drawn = [draw_figures(a.runs, a.epochs, a.timelines, a.maxbatch) for a in analyses]
    rows, flat = [], []
    for name in dict.fromkeys(p.name for plots in drawn for p in plots):
        panels = []
        for label, plots in zip(labels, drawn):
            for p in (p for p in plots if p.name == name):
                f = _figure_out(p, name if label is None else f"{name}--{slug(label)}", files_dir)
                panels.append((label, f))
                flat.append(f)
        rows.append(html.FigureRow(name, panels))
    return rows, flat
