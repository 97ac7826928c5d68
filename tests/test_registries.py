"""Claims and figures are registered by a decorator: a claim's sentence is written once (its
docstring), a figure's place in the report is its `@figure(order)`."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from ffbench.analysis import drawing, plots, report
from ffbench.analysis.claims import CLAIMS, Verdict, claim, sentence
from ffbench.analysis.claims.registered import evaluate
from ffbench.results import rows as results

CLAIMS_DIR = Path(__file__).resolve().parents[1] / "ffbench" / "analysis" / "claims"

# the report's figures, in the order the report has shown them since before the registry
REPORT_ORDER = [
    "best_ff_vs_best_bp",
    "frontier",
    "crossover",
    "peak_vs_depth",
    "memory_breakdown",
    "memory_vs_accuracy",
    "memory_at_target",
    "activations_vs_depth",
    "eval_vs_train",
    "step_time",
    "ff_bp_time_ratio",
    "accuracy",
    "accuracy_vs_time",
    "memory_vs_time",
    "black_box",
    "measured_vs_analytic",
    "timeline",
    "max_batch",
]
EVERY_ARCHITECTURE = {
    "best_ff_vs_best_bp",
    "crossover",
    "measured_vs_analytic",
    "frontier",
    "ff_bp_time_ratio",
}


def empty_tables():
    runs = results.frame([], results.ROW_COLUMNS).assign(group=None, num_classes=None, in_features=None)
    inp = report.Inputs()
    return runs, report.epochs_from(inp), report.timelines_from(inp), report.maxbatch_from(inp)


def test_the_report_draws_the_figures_in_their_order():
    assert [fn.__name__ for fn in plots.FIGURES] == REPORT_ORDER
    drawn = drawing.draw_figures(*empty_tables())  # nothing to draw: one omitted figure each
    assert [d.name for d in drawn] == REPORT_ORDER
    assert all(d.svg is None and "could not be drawn" not in d.note for d in drawn)
    assert {fn.__name__ for fn in plots.FIGURES if fn.every_architecture} == EVERY_ARCHITECTURE


def test_a_figure_order_is_given_once():
    before = list(plots.FIGURES)

    def again(runs, **_):
        return plots.Plot("again", "?")

    with pytest.raises(ValueError, match="order 10 is best_ff_vs_best_bp's already"):
        plots.figure(10)(again)
    assert plots.FIGURES == before


def test_image_bodies_are_drawn_only_by_the_figures_comparing_architectures():
    runs = results.frame([], results.ROW_COLUMNS).assign(group=None)
    runs = runs.reindex(range(2)).assign(arch=["mlp", "conv"])
    assert list(plots.runs_for(plots.crossover, runs)["arch"]) == ["mlp", "conv"]
    assert list(plots.runs_for(plots.peak_vs_depth, runs)["arch"]) == ["mlp"]


def test_every_verdict_says_its_claim_as_its_docstring_does():
    runs, epochs, _, maxbatch = empty_tables()
    verdicts = evaluate(runs, epochs, maxbatch)
    assert len(verdicts) == len(CLAIMS) > 10
    for fn, v in zip(CLAIMS, verdicts):
        first = inspect.getdoc(fn).split("\n\n")[0]
        assert "\n" not in first and first.endswith("."), fn.__name__  # one line, one sentence
        assert v.claim == first[:-1] == fn.claim_sentence


def test_a_claim_sentence_is_written_only_in_its_docstring():
    """No Verdict(claim=...) literal in the claim modules: the sentence has one home."""
    for path in sorted(CLAIMS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Verdict":
                said = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "claim")]
                assert not any(isinstance(a, (ast.Constant, ast.JoinedStr)) for a in said), (
                    f"{path.name}:{node.lineno}"
                )


def test_the_decorator_sets_the_sentence_on_a_direct_call():
    def toy(runs, epochs=None, maxbatch=None) -> Verdict:
        """A toy claim holds
        over two lines.

        Test: none.
        """
        return Verdict(verdict="holds")

    registered = claim("check")(toy)
    try:
        assert sentence(toy) == "A toy claim holds over two lines"
        v = registered(None)
        assert (v.claim, v.verdict) == ("A toy claim holds over two lines", "holds")
        assert registered.__name__ == "toy" and CLAIMS[-1] is registered  # a check, defined last
    finally:
        CLAIMS.remove(registered)
