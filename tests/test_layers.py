"""Imports only downward, and no import circle: read from ffbench/'s source with `ast`, every
import counted, the ones inside functions (lazy imports) included.

The layer order is written here, once. A module may import from its own layer or a lower
one; imports within a layer must not form a circle. Every module of ffbench/ must be placed
(a new module fails the test until it is given a layer).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ffbench"

# Lowest first. A module takes the layer of the longest name here that is it or contains it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "leaves",  # no ffbench import but each other's: names, units, errors, plumbing
        (
            "ffbench.errors",
            "ffbench.units",
            "ffbench.stats",
            "ffbench.schema",
            "ffbench.phases",
            "ffbench.search",
            "ffbench.progress",
            "ffbench.device",
            "ffbench.cuda_allocator",
            "ffbench.proc",
            "ffbench.version",
            "ffbench.idx",
            "ffbench.arch",
            "ffbench.blackbox",
            "ffbench.trainers.registry",  # the trainer names RunConfig checks against
            # the rules a run and the claims share, written once: thresholds (with their
            # provenance) and the time-to-target rule fit stops by
            "ffbench.analysis.thresholds",
            "ffbench.analysis.provenance",
            "ffbench.analysis.target",
        ),
    ),
    # a run's family and micro-batch, named from its configuration (rows and claims share them)
    ("config", ("ffbench.config", "ffbench.usage", "ffbench.analysis.families")),
    (
        "data",  # records and results folders: written by the runs, read by the analysis
        ("ffbench.validate", "ffbench.record", "ffbench.results", "ffbench.data", "ffbench.outputs"),
    ),
    (
        "rooms",  # the measuring rooms: trainers, the analytic model, the trackers
        ("ffbench.trainers", "ffbench.model", "ffbench.measure", "ffbench.environment"),
    ),
    ("run", ("ffbench.run", "ffbench.tracking")),
    ("analysis", ("ffbench.analysis",)),
    (
        "commands",
        (
            "ffbench",  # the package itself: re-exports ffbench.track
            "ffbench.__main__",
            "ffbench.cli",
            "ffbench.pytest_plugin",
            "ffbench.run.reproduce",  # a whole command: the sweeps of a reference run, then its report
            "ffbench.run.tune",  # the command writing a profile's tuning record
        ),
    ),
)

# Upward imports that remain for now, each named: (importer, imported) -> why.
EXCEPTIONS: dict[tuple[str, str], str] = {}


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file under `root` (a package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, int]]:
    """(imported module, line) for every import of a module of the package in `path`."""
    top = next(iter(modules)).split(".")[0]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import sub` imports the module pkg.sub; `from mod import name`, mod
            targets = [
                f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names
            ]
        for target in targets:
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target.split(".")[0] == top and target in modules and target != name:
                found.add((target, node.lineno))
    return found


def graph(root: Path) -> dict[str, set[tuple[str, int]]]:
    modules = module_names(root)
    return {name: imports(name, path, modules) for name, path in modules.items()}


def circles(edges: dict[str, set[tuple[str, int]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted({t for t, _ in edges[start]})))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted({t for t, _ in edges[child]}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(name: str, layers=LAYERS) -> int | None:
    """The index of `name`'s layer: the longest listed name that is it or a package above it."""
    best, rank = -1, None
    for i, (_, names) in enumerate(layers):
        for listed in names:
            if (name == listed or name.startswith(listed + ".")) and len(listed) > best:
                best, rank = len(listed), i
    return rank


def upward(edges, layers=LAYERS, exceptions=EXCEPTIONS) -> list[str]:
    out = []
    for name, targets in sorted(edges.items()):
        for target, line in sorted(targets):
            if layer_of(target, layers) > layer_of(name, layers) and (name, target) not in exceptions:
                out.append(
                    f"{name}:{line} imports {target} "
                    f"({layers[layer_of(name, layers)][0]} -> {layers[layer_of(target, layers)][0]})"
                )
    return out


@pytest.fixture(scope="module")
def edges():
    return graph(PACKAGE)


def test_every_module_has_a_layer(edges):
    assert [name for name in edges if layer_of(name) is None] == []


def test_no_import_circle(edges):
    assert circles(edges) == []


def test_imports_only_downward(edges):
    assert upward(edges) == []


def test_every_exception_is_still_needed(edges):
    used = {(name, target) for name, targets in edges.items() for target, _ in targets}
    assert [pair for pair in EXCEPTIONS if pair not in used] == []


def test_the_checks_find_a_circle_and_an_upward_import(tmp_path):
    """The checks can fail: a package with a lazy circle and an upward import."""
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from .sub import high\n")  # lazy, and upward
    (pkg / "sub" / "__init__.py").write_text("from .. import low\n")
    (pkg / "sub" / "high.py").write_text("from ..low import f\n")
    found = graph(pkg)
    assert found["toy.low"] == {("toy.sub.high", 2)}
    assert circles(found) == [["toy.low", "toy.sub.high"]]
    layers = (("low", ("toy.low",)), ("high", ("toy.sub", "toy")))
    assert upward(found, layers, {}) == ["toy.low:2 imports toy.sub.high (low -> high)"]
    assert upward(found, layers, {("toy.low", "toy.sub.high"): "named"}) == []
