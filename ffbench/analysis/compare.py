"""`ffbench report RUN_A RUN_B --baseline RUN_A`: runs side by side, compared with a baseline.

Each RESULTS path is one run, labelled by its name; every verdict, figure and table is
computed per run (ratios never cross runs) and the report shows them side by side. Against
the baseline, per configuration trained alike in both (same part of the run -- e.g. `sweep/`
of a `reproduce` run -- and the same training fields, `config.training_keys`: device, threads,
data folder and the evaluation settings aside):

- bytes as exact signed deltas (deterministic: any change is real),
- step time as a ratio of medians, with both interquartile ranges,
- test accuracy as a difference in percentage points.

Evaluation settings (`config.evaluation_keys`: chunk size, FF's label loop, ...) change no
training figure: the training figures are compared whatever they are, the evaluation and
whole-run figures only where they agree (otherwise "not compared: evaluation ran
differently", with what differed). Configurations that differ only in their evaluation
settings within one run are matched with their exact counterpart first.

and "what changed": configuration values, environment and code revision, and verdicts. A
configuration measured twice within one run is never averaged: it is listed apart, not
compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import config_keys, evaluation_keys, training_keys
from ..errors import ConfigError
from ..stats import number_or_nan as _num
from ..units import MiB
from .claims.registered import all_claims
from .tables import configuration_table, environment_table

NOT_KEYED = frozenset(config_keys()) - set(training_keys())  # where it ran, how it evaluated
BYTE_DELTAS = {
    "tensor_peak_bytes": "Δ peak (B)",
    "tensor_train_peak_bytes": "Δ training peak (B)",
    "tensor_transient_bytes": "Δ transient (B)",
    "tensor_whole_run_peak_bytes": "Δ whole-run peak (B)",
}
EVALUATED = {"tensor_whole_run_peak_bytes", "test_accuracy"}  # figures that include evaluation
EVALUATION_DIFFERS = "evaluation ran differently"
SKIPPED_ENV = {"created"}


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(label)).strip("-") or "run"


def run_labels(paths) -> list[str]:
    """A short, unique label per RESULTS path: its name, with parents added while two clash."""
    paths = [Path(p).resolve() for p in paths]
    depth = 1
    while True:
        labels = ["/".join(p.parts[-depth:]).removesuffix(".json") for p in paths]
        if len(set(labels)) == len(labels) or depth >= max(len(p.parts) for p in paths):
            return (
                labels if len(set(labels)) == len(labels) else [f"{i + 1}:{x}" for i, x in enumerate(labels)]
            )
        depth += 1


def baseline_first(paths, labels: list[str], baseline) -> list[int]:
    """Indices of `paths` with the baseline (a path given, or a label) first."""
    wanted = Path(baseline).resolve()
    for i, (p, label) in enumerate(zip(paths, labels)):
        if Path(p).resolve() == wanted or str(baseline) == label:
            return [i] + [j for j in range(len(paths)) if j != i]
    raise ConfigError(f"--baseline {baseline}: not one of the RESULTS given ({', '.join(map(str, paths))})")


# -- per configuration ---------------------------------------------------------------------------


def _keyed(analysis):
    """The run's rows with `part` (its results folder relative to the RESULTS path), the
    string `key` that identifies a configuration's training across runs and `evaluation`, its
    evaluation settings as one string."""
    root = Path(analysis.inputs.given[0]).resolve()
    root = root.parent if root.is_file() else root
    df = analysis.runs

    def part(where: str) -> str:
        folder = Path(where)
        try:
            return str(folder.relative_to(root)) if folder != root else "."
        except ValueError:
            return folder.name

    cols = [c for c in training_keys() if c in df.columns]
    evaluation = [c for c in evaluation_keys() if c in df.columns]
    if len(df) == 0:
        return df.assign(part=[], key=[], evaluation=[])
    parts = df["group_folder"].map(part)
    keys = [
        "|".join(map(_key_text, [kind, where, *values]))
        for kind, where, values in zip(df["kind"], parts, df[cols].itertuples(index=False, name=None))
    ]
    evaluated = ["|".join(map(_key_text, v)) for v in df[evaluation].itertuples(index=False, name=None)]
    return df.assign(part=parts, key=keys, evaluation=evaluated)


def _key_text(value) -> str:
    """A keyed value as text; null is one value whether pandas holds it as None or NaN."""
    return "null" if value is None or (isinstance(value, float) and value != value) else str(value)


def _name(row) -> str:
    from .claims.tables import label, variant

    part = "" if row["part"] == "." else f"{row['part']}: "
    extra = f" seed {int(row['seed'])}" if row["kind"] == "train" else ""
    return f"{part}{variant(row)} {label(row)}{extra}"


def _delta_row(a, b) -> dict:
    """The deltas of one configuration in the baseline (`a`) and another run (`b`): the
    training figures always, those that include evaluation only where it ran alike."""
    row: dict[str, Any] = {"configuration": _name(a)}
    row["status"] = a["status"] if a["status"] == b["status"] else f"{a['status']} → {b['status']}"
    alike = a["evaluation"] == b["evaluation"]
    if a["kind"] == "measure":
        row["peak, baseline (MiB)"] = _num(a.get("tensor_peak_bytes")) / MiB
        for col, title in BYTE_DELTAS.items():
            row[title] = _signed(b.get(col), a.get(col)) if alike or col not in EVALUATED else None
        row["step ratio"] = _num(b.get("step_seconds_median")) / _num(a.get("step_seconds_median"))
        row["step IQR (ms)"] = f"{_ms(a.get('step_seconds_iqr'))} → {_ms(b.get('step_seconds_iqr'))}"
    else:
        delta = 100 * (_num(b.get("test_accuracy")) - _num(a.get("test_accuracy")))
        row["Δ test acc. (pp)"] = delta if alike else float("nan")
    if not alike:
        row["not compared"] = (
            f"{_evaluated_titles(a['kind'])}: {EVALUATION_DIFFERS} ({_evaluation_change(a, b)})"
        )
    return row


def _evaluated_titles(kind: str) -> str:
    """The columns a comparison withholds where evaluation ran differently."""
    if kind != "measure":
        return "Δ test acc."
    return ", ".join(title.removesuffix(" (B)") for col, title in BYTE_DELTAS.items() if col in EVALUATED)


def _evaluation_change(a, b) -> str:
    """The evaluation settings in which two rows differ, e.g. "eval_chunk 1024 → 256"."""
    fields = [c for c in evaluation_keys() if c in a and _key_text(a[c]) != _key_text(b[c])]
    return ", ".join(f"{c} {_key_text(a[c])} → {_key_text(b[c])}" for c in fields)


def _signed(new, old) -> str | None:
    x, y = _num(new), _num(old)
    if x != x or y != y:
        return None
    return f"{int(x - y):+,}"


def _ms(value) -> str:
    x = _num(value)
    return "–" if x != x else f"{1000 * x:.2f}"


def _identity(keyed):
    """A keyed row's training and evaluation as one string."""
    return keyed["key"] + "|" + keyed["evaluation"]


def matches(base, other, ids: list, twice: set[str]) -> dict:
    """Baseline index -> the other run's index of the same configuration: same training and
    evaluation first; then, of the rest, the one row on each side trained alike (evaluated
    differently). `ids`: each side's `_identity`; a configuration measured `twice` in one run
    matches nothing."""
    by_id = {k: j for j, k in ids[1].items() if k not in twice}
    found = {i: by_id[k] for i, k in ids[0].items() if k in by_id}
    rest_a = base.loc[~base.index.isin(list(found)) & ~ids[0].isin(twice), "key"]
    rest_b = other.loc[~other.index.isin(list(found.values())) & ~ids[1].isin(twice), "key"]
    by_key = {k: j for j, k in rest_b.drop_duplicates(keep=False).items()}
    found.update({i: by_key[k] for i, k in rest_a.drop_duplicates(keep=False).items() if k in by_key})
    return found


def deltas(base, other, label: str) -> tuple[list[dict], dict[str, int]]:
    """Rows for the configurations in both runs; counts of the rest (only in one run, and
    measured twice in one run: shown apart, never averaged)."""
    counts = {"only in baseline": 0, f"only in {label}": 0, "measured twice in one run": 0}
    ids = [_identity(base), _identity(other)]
    twice = set(ids[0][ids[0].duplicated()]) | set(ids[1][ids[1].duplicated()])
    found = matches(base, other, ids, twice)
    rows = []
    for i, a in base.iterrows():
        if ids[0][i] in twice:
            counts["measured twice in one run"] += 1
            rows.append(
                {"run": label, "configuration": _name(a), "status": "measured twice in one run: not compared"}
            )
        elif i in found:
            rows.append({"run": label, **_delta_row(a, other.loc[found[i]])})
        else:
            counts["only in baseline"] += 1
    counts[f"only in {label}"] = int((~other.index.isin(list(found.values())) & ~ids[1].isin(twice)).sum())
    return rows, counts


def kept_apart(base, other) -> list[str]:
    """The fields that keep two runs' configurations apart: those whose values in one run
    never occur in the other, else every keyed field whose values differ at all, else the
    combination of the fields that vary (each value in both runs, never paired alike)."""
    cols = [c for c in ["kind", "part", *config_keys()] if c in base.columns and c in other.columns]
    differ, disjoint, varying = [], [], []
    for c in (c for c in cols if c not in NOT_KEYED):
        a, b = {_key_text(v) for v in base[c]}, {_key_text(v) for v in other[c]}
        if len(a | b) > 1:
            varying.append(c)
        if a != b:
            text = f"{c} ({', '.join(sorted(a)) or '–'} vs {', '.join(sorted(b)) or '–'})"
            differ.append(text)
            if not a & b:
                disjoint.append(text)
    if not differ and len(varying) > 1:  # each value occurs in both, never in the same pairing
        differ = [f"the combination of {', '.join(varying)}"]
    return disjoint or differ


def no_common_configuration(keyed: list) -> str:
    """The note of a comparison that found no configuration in common, with what kept the
    runs apart (the baseline against each other run)."""
    base = keyed[0]
    why = [f for other in keyed[1:] if len(base) and len(other) for f in kept_apart(base, other)]
    text = "no configuration measured in both runs"
    return f"{text}: kept apart by {'; '.join(dict.fromkeys(why))}" if why else text


# -- what changed ------------------------------------------------------------------------------


def _joined(values) -> str:
    """Distinct values, numbers in numeric order, joined ("–" for none)."""
    vals = {str(v) for v in values if str(v) not in ("", "–", "nan", "None")}
    return (
        ", ".join(sorted(vals, key=lambda v: (0, float(v), v) if _num(v) == _num(v) else (1, 0.0, v))) or "–"
    )


def _values(frame, split: bool = False) -> dict[str, str]:
    """Field -> the values it takes over a table's columns (each value once; `split`: a cell
    already lists several values, comma-separated, as the configuration table's cells do)."""
    out = {}
    for key, row in frame.iterrows():
        out[str(key)] = _joined(part for v in row for part in (str(v).split(", ") if split else [v]))
    return out


def _verdicts(analysis) -> dict[str, str]:
    """Claim sentence -> verdict. A note the evaluation appended to the sentence (which
    architecture decided it) goes with the verdict, so one claim is one row in every run."""
    sentences = {fn.__name__: fn.claim_sentence for fn in all_claims()}
    out = {}
    for v in analysis.verdicts:
        sentence = sentences.get(v.key, "")
        if not sentence or not v.claim.startswith(sentence):
            sentence = v.claim
        out[sentence] = f"{v.verdict} {v.claim.removeprefix(sentence).strip()}".strip()
    return out


def changes(analyses, labels: list[str]):
    """Rows (what, field, one value per run) for everything that differs from the baseline."""
    per_run = []
    for a in analyses:
        env = _values(environment_table(a.inputs, a.runs))
        code = {k: env.pop(k, "–") for k in ("git_revision", "ffbench")}
        # the revision each record was measured at (a resumed folder may span several)
        seen = {str(r) for r in a.runs.get("git_revision", []) if isinstance(r, str)}
        code["git_revision"] = _joined(seen | set(code["git_revision"].split(", ")))
        config = _values(configuration_table(a.runs).drop(index=["runs"], errors="ignore"), split=True)
        verdicts = _verdicts(a)
        per_run.append({"code": code, "environment": env, "configuration": config, "verdict": verdicts})
    rows = []
    for what in ("code", "environment", "configuration", "verdict"):
        fields = dict.fromkeys(k for run in per_run for k in run[what] if k not in SKIPPED_ENV)
        for field in fields:
            values = [run[what].get(field, "–") for run in per_run]
            if len(set(values)) > 1:
                rows.append({"what": what, "field": field, **dict(zip(labels, values))})
    return rows


def changes_text(analyses, labels: list[str]) -> str:
    """The "what changed" table as plain text (the terminal's view of the comparison)."""
    import pandas as pd

    rows = changes(analyses, labels)
    if not rows:
        return "what changed: nothing recorded differs from the baseline"
    table = pd.DataFrame(rows).rename(columns={labels[0]: f"{labels[0]} (baseline)"})
    # long cells (a verdict's "holds only where ...") cut, so each row fits a terminal line or two
    return "what changed:\n" + table.to_string(index=False, max_colwidth=48)


# -- the comparison --------------------------------------------------------------------------------


@dataclass
class Comparison:
    baseline: str
    labels: list[str]
    changes: Any  # DataFrame: what, field, one column per run
    deltas: Any  # DataFrame: run, configuration, status, deltas
    counts: dict[str, int]

    def view(self):
        from . import html

        changes = self.changes.rename(columns={self.baseline: f"{self.baseline} (baseline)"})
        counts = "; ".join(f"{n} {what}" for what, n in self.counts.items() if n)
        return ComparisonView(
            self.baseline,
            html.table(changes),
            html.table(self.deltas),
            f"Every run is analysed on its own (ratios never cross runs); here each is set against "
            f"{self.baseline}. Only what differs is listed.",
            "Configurations trained alike in both runs (same part of the run, same training fields; "
            "device, threads, data folder and evaluation settings aside). Where evaluation ran "
            "differently, the figures that include it (whole-run peak, test accuracy) are not "
            "compared. Bytes: exact signed difference from the baseline "
            "(B = bytes; tensor-level bytes are deterministic, so any non-zero delta is real). Time: "
            "ratio of median step times (other / baseline) with both interquartile ranges. "
            + (counts + "." if counts else ""),
        )


@dataclass
class ComparisonView:
    baseline: str
    changes: Any  # html.Table
    deltas: Any  # html.Table
    note: str
    deltas_note: str


def compare(analyses, labels: list[str]) -> Comparison:
    """The runs after the first against the first (the baseline)."""
    import pandas as pd

    keyed = [_keyed(a) for a in analyses]
    rows, counts = [], {}
    for other, label in zip(keyed[1:], labels[1:]):
        made, n = deltas(keyed[0], other, label)
        rows += made
        for k, v in n.items():
            counts[k] = counts.get(k, 0) + v
    changed = changes(analyses, labels)
    table = pd.DataFrame(changed or [{"what": "–", "field": "nothing recorded differs"}])
    delta = pd.DataFrame(rows or [{"configuration": no_common_configuration(keyed)}])
    if len(labels) == 2 and "run" in delta.columns:
        delta = delta.drop(columns=["run"])
    if "not compared" in delta.columns:  # the reason last
        delta = delta[[c for c in delta.columns if c != "not compared"] + ["not compared"]]
    return Comparison(labels[0], labels, table, delta.round(3), counts)
