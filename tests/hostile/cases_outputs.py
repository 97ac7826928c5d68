"""Hostile cases of issue 24 over the newer surfaces: output naming, partial runs, comparison
reports, grids and flags a configuration does not use, conv/local/recurrent flags, CIFAR-10
files, records whose name and content disagree, the lock, faults of the executors."""

from __future__ import annotations

import json
import os
import pickle
import shlex
from pathlib import Path

from cases_data import measure_record
from cases_runs import _test_file, executor_choice, fake_executor, faked, pytest_with
from hostile import Case, Outcome, cli, patched, run_main

TINY = ("--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--quiet")
T = ("--width", "16", "--depth", "1", "--batch-size", "8", "--epochs", "2")
GRID = ("--trainers", "bp", "--depths", "1", "--widths", "16", "--batch-sizes", "4")
BIG = "1" + "0" * 400


def _flag(command: str, name: str, args: str, says: str) -> Case:
    extra = {
        "train": ("--out-file", "{tmp}/run.json"),
        "measure": ("--out-file", "{tmp}/m.json"),
        "sweep": (*GRID, "--out", "{tmp}/out"),
        "maxbatch": ("--memory-limit", "1GiB", "--trainers", "bp", "--depths", "1", "--out", "{tmp}/out"),
    }[command]
    argv = [a.replace("{big}", BIG) for a in shlex.split(args)]
    what = f"{command} {args}".replace("{big}", "<400 digits>")
    return Case("flags", f"{command}-{name}", what, cli(command, *TINY, *extra, *argv), 2, says, issue="24")


# command | case | arguments | what the line says
FLAGS = """
measure | image-shape-on-mlp | --image-shape 1x28x28 | --image-shape is a conv/local option
measure | memory-format-on-mlp | --memory-format contiguous | --memory-format is a --arch conv option
measure | memory-format-on-local | --arch local --memory-format contiguous | --memory-format is a --arch conv option
measure | ff-pass-on-bp | --ff-pass together | --ff-pass is a FF trainers'
measure | ff-threshold-on-bp | --ff-threshold 2 | --ff-threshold is a FF trainers'
measure | ff-negatives-on-bp-ce | --trainer bp-ce --ff-negatives hard | --ff-negatives is a FF trainers'
measure | micro-batch-on-bp-inbackward | --trainer bp-inbackward --micro-batch 4 | --micro-batch does not apply to bp-inbackward
measure | micro-schedule-on-bp | --micro-batch 4 --ff-micro-schedule layer-major | --ff-micro-schedule is a FF trainers'
measure | ff-sequential-micro | --trainer ff --ff-pass sequential --micro-batch 4 | micro-batches with --ff-pass together only
measure | segments-on-bp | --checkpoint-segments 2 | --checkpoint-segments is a --trainer bp-checkpoint option
measure | time-steps-on-mlp | --time-steps 4 | --time-steps is a --arch recurrent option
measure | eval-steps-on-mlp | --eval-steps 1-2 | --eval-steps is a --arch recurrent option
train | width-on-conv | --arch conv --width 20 | --width is a fully connected
train | channels-on-mlp | --channels 32 | --channels is a conv/local option
train | kernel-on-mlp | --kernel 5 | --kernel is a conv/local option
train | stride-on-mlp | --stride 2 | --stride is a conv/local option
measure | channels-20-digits | --arch conv --channels 99999999999999999999 | beyond any layer
measure | channels-400-digits | --arch conv --channels {big} | beyond any layer
measure | channel-list-huge | --arch conv --depth 2 --channels 8,99999999999 | beyond any layer
measure | kernel-huge | --arch conv --kernel 99999999999 | beyond any layer
measure | stride-huge | --arch local --stride 99999999999 | beyond any layer
measure | image-side-huge | --arch conv --image-shape 3x99999999999x2 | beyond 16777216
train | eval-steps-beyond-range | --arch recurrent --eval-steps 3-50 | beyond --time-steps 8
train | eval-steps-beyond-list | --arch recurrent --time-steps 4 --eval-steps 2,9 | beyond --time-steps 4
sweep | axis-repeats-depths | --axis depth=1,2 | --axis depth repeats --depths
sweep | axis-given-twice | --axis lr=0.1 --axis lr=0.2 | --axis lr repeats --axis lr
sweep | axis-and-one-value | --axis lr=0.1,0.2 --lr 0.3 | --lr is also swept by --axis lr
sweep | axis-overlaps-optimizers | --optimizers adam,sgd --axis optimizer=sgd | repeats --optimizers
sweep | axis-repeats-trainers | --axis trainer=ff | --axis trainer repeats --trainers
sweep | axis-epochs | --axis epochs=1,2 | 'ffbench sweep' does not use it
sweep | widths-on-conv | --arch conv | --width is a fully connected
sweep | ff-pass-on-bp-grid | --ff-pass together | --ff-pass is a FF trainers'
sweep | image-shape-on-mlp-grid | --image-shape 1x28x28 | --image-shape is a conv/local option
sweep | axis-time-steps-on-mlp | --axis time_steps=2,4 | --time-steps is a --arch recurrent option
maxbatch | memory-format-on-mlp | --memory-format contiguous | --memory-format is a --arch conv option
maxbatch | ff-pass-on-bp | --ff-pass sequential | --ff-pass is a FF trainers'
"""


def flag_cases() -> list[Case]:
    rows = [[c.strip() for c in line.split("|")] for line in FLAGS.strip().splitlines()]
    return [_flag(command, name, args, says) for command, name, args, says in rows]


# -- outputs that cannot collide ----------------------------------------------------------------


def _train(tmp: Path, *argv) -> Outcome:
    return run_main(tmp, ["train", *TINY, *T, *argv])


def _interrupted(act):
    """`act` with Ctrl-C as the second epoch starts (fit's epoch hook raises after epoch 1)."""
    import ffbench.run.fit as fit_module

    real = fit_module.fit

    def fit(*args, on_epoch=None, **kwargs):
        def hook(record):
            on_epoch(record)
            raise KeyboardInterrupt

        return real(*args, on_epoch=hook if on_epoch else None, **kwargs)

    def run(tmp: Path) -> Outcome:
        with patched(fit_module, "fit", fit):
            return act(tmp)

    return run


def _records(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _rerun_interrupted(tmp: Path) -> Outcome:
    """Issue case 1: a finished record, then the same command cut short after one epoch."""
    first = _train(tmp, "--out", str(tmp / "runs"))
    before = _records(tmp / "runs")
    o = _interrupted(lambda t: _train(t, "--out", str(t / "runs")))(tmp)
    after = _records(tmp / "runs")
    kept = {k: v for k, v in after.items() if k not in before}
    if first.code != 0 or any(after.get(k) != v for k, v in before.items()):
        o.notes.append("the finished record was changed")
    if [r.get("status") for r in kept.values()] != ["partial"]:
        o.notes.append(
            f"the cut-short run left {[r.get('status') for r in kept.values()]}, not one partial record"
        )
    if kept and next(iter(kept)) not in o.err:
        o.complaints.append("the interrupt does not name the record it kept")
    return o


def _loaded_statuses(tmp: Path) -> str | None:
    from ffbench.results import load

    got = sorted(load(tmp / "runs")["status"])
    return None if got == ["ok", "partial"] else f"loaded statuses {got}, expected ok and partial"


def _overwrite_interrupted(tmp: Path) -> Outcome:
    first = _train(tmp, "--out-file", str(tmp / "run.json"))
    before = (tmp / "run.json").read_bytes()
    o = _interrupted(lambda t: _train(t, "--out-file", str(t / "run.json"), "--overwrite"))(tmp)
    if first.code != 0 or (tmp / "run.json").read_bytes() != before:
        o.notes.append("--overwrite replaced the record before the new one was complete")
    partial = tmp / "run.partial.json"
    if not partial.is_file() or json.loads(partial.read_text()).get("status") != "partial":
        o.notes.append("the cut-short run's epochs were not kept beside it as partial")
    return o


def _kept_finished(tmp: Path) -> str | None:
    status = json.loads((tmp / "run.json").read_text()).get("status")
    return None if status == "ok" else f"run.json is {status}, not the finished record"


def _measure_after_train(tmp: Path) -> Outcome:
    """Issue case 2: train, then measure the same configuration into the same folder."""
    flags = ("--trainer", "ff", "--width", "16", "--depth", "1", "--batch-size", "8")
    first = run_main(tmp, ["train", *TINY, *flags, "--out", str(tmp / "runs")])
    o = run_main(tmp, ["measure", *TINY, *flags, "--steps", "1", "--out", str(tmp / "runs")])
    kinds = sorted(r.get("kind") for r in _records(tmp / "runs").values())
    if first.code != 0 or kinds != ["measure", "train"]:
        o.notes.append(f"records left: {kinds}, expected a measure and a train record")
    return o


def _twice(tmp: Path) -> Outcome:
    first = _train(tmp, "--out", str(tmp / "runs"))
    o = _train(tmp, "--out", str(tmp / "runs"))
    names = sorted(_records(tmp / "runs"))
    if (
        first.code != 0
        or len(names) != 2
        or not all(n.endswith(("-train-1.json", "-train-2.json")) for n in names)
    ):
        o.notes.append(f"two runs left {names}")
    return o


def _existing(name: str, text: str):
    def setup(tmp: Path) -> None:
        (tmp / name).write_text(text)

    return setup


def _record_file(tmp: Path) -> Path:
    """A finished train record made by hand (no training): what a report reads."""
    record = measure_record()
    record.update(kind="train", source="train", metrics=None, epochs=[{"epoch": 1, "test_accuracy": 0.5}],
                  test_accuracy=0.5, val_accuracy=0.5)  # fmt: skip
    for run in ("a", "b"):
        (tmp / run).mkdir(exist_ok=True)
        (tmp / run / "r.json").write_text(json.dumps(record))
    return tmp


def _comparison(tmp: Path) -> Outcome:
    """Issue case 3: a comparison never writes over the first run's own report."""
    first = run_main(tmp, ["report", "a", "--quiet"])
    own = (tmp / "reports" / "a.html").read_bytes() if first.code == 0 else b""
    o = run_main(tmp, ["report", "a", "b", "--baseline", "a", "--quiet"])
    if (tmp / "reports" / "a.html").read_bytes() != own:
        o.notes.append("the comparison replaced reports/a.html")
    if not (tmp / "reports" / "a-vs-b.html").is_file():
        o.notes.append("no reports/a-vs-b.html")
    return o


def output_cases() -> list[Case]:
    f = "files"
    return [
        Case(
            f,
            "train-rerun-interrupted",
            "train --out runs twice, the second cut short after one epoch",
            _rerun_interrupted,
            130,
            "status 'partial'",
            state=_loaded_statuses,
            issue="1",
        ),
        Case(
            f,
            "train-overwrite-interrupted",
            "train --out-file run.json --overwrite cut short after one epoch",
            _overwrite_interrupted,
            130,
            "run.partial.json",
            state=_kept_finished,
            issue="1",
        ),
        Case(
            f,
            "train-twice-writes-beside",
            "train --out runs twice: two numbered records",
            _twice,
            0,
            issue="1",
        ),
        Case(
            f,
            "measure-after-train",
            "train then measure the same configuration --out runs",
            _measure_after_train,
            0,
            issue="2",
        ),
        Case(
            f,
            "train-out-file-exists",
            "train --out-file over an existing record (no --overwrite)",
            cli("train", *TINY, *T, "--out-file", "{tmp}/run.json"),
            2,
            "--overwrite",
            setup=_existing("run.json", '{"kind": "train"}'),
            issue="2",
        ),
        Case(
            f,
            "measure-out-file-exists",
            "measure --out-file over someone's notes",
            cli("measure", *TINY, "--steps", "1", "--out-file", "{tmp}/notes.json"),
            2,
            "exists",
            setup=_existing("notes.json", "my notes"),
            issue="2",
        ),
        Case(
            f,
            "report-over-foreign-file",
            "report --out-file over an HTML file ffbench did not write",
            cli("report", "{tmp}/a", "--out-file", "{tmp}/mine.html", "--quiet"),
            2,
            "not an ffbench report",
            setup=lambda tmp: (_record_file(tmp), _existing("mine.html", "<p>mine</p>")(tmp)),
            issue="3",
        ),
        Case(
            f,
            "report-comparison-own-name",
            "report a b --baseline a after report a",
            _comparison,
            0,
            setup=_record_file,
            issue="3",
        ),
    ]


# -- records whose name and content disagree ----------------------------------------------------


def _results_folder(tmp: Path, change=None, copy_as: str | None = None) -> None:
    from ffbench.results.store import FORMAT, SCHEMA_VERSION, record_name

    folder = tmp / "out"
    (folder / "records").mkdir(parents=True)
    record = measure_record()
    (folder / "manifest.json").write_text(json.dumps({"format": FORMAT, "schema_version": SCHEMA_VERSION,
                                                      "command": "sweep", "grids": [], "base_config": {},
                                                      "settings": {}}))  # fmt: skip
    (folder / "environment.json").write_text(json.dumps(record["environment"]))
    path = folder / "records" / record_name(record["config"])
    if change:
        change(record)
    path.write_text(json.dumps(record))
    if copy_as:
        (folder / "records" / copy_as).write_text(json.dumps(record))


def _folder_case(name: str, what: str, says: str, change=None, copy_as=None, issue="7") -> Case:
    act = cli("report", "{tmp}/out", "--out-file", "{tmp}/r.html", "--quiet")
    setup = lambda tmp: _results_folder(tmp, change, copy_as)  # noqa: E731
    return Case("records", name, what, act, 2, says, setup=setup, issue=issue)


def _records_a_file(tmp: Path) -> None:
    _results_folder(tmp)
    import shutil

    shutil.rmtree(tmp / "out" / "records")
    (tmp / "out" / "records").write_text("not a folder")


def _edit(path: str, value):
    def change(record: dict) -> None:
        *parents, last = path.split(".")
        node = record
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return change


def record_cases() -> list[Case]:
    resume = cli("sweep", *TINY, *GRID, "--steps", "1", "--out", "{tmp}/out")
    return [
        _folder_case(
            "record-copied",
            "a results folder's record copied under a second name",
            "hold the same configuration",
            copy_as="bp-d1-w16-b4-000000000000.json",
        ),
        _folder_case(
            "record-trainer-edited",
            "a record whose config.trainer was edited",
            "copied or edited",
            change=_edit("config.trainer", "ff"),
        ),
        _folder_case(
            "record-width-edited",
            "a record whose config.width was edited",
            "copied or edited",
            change=_edit("config.width", 17),
        ),
        _folder_case(
            "record-negative-peak",
            "a record with a negative tensor peak",
            "cannot be negative",
            change=_edit("metrics.tensor_peak_bytes", -1),
        ),
        _folder_case(
            "record-negative-start",
            "a record with a negative start figure",
            "cannot be negative",
            change=_edit("metrics.tensor_start_bytes", -100),
        ),
        _folder_case(
            "record-ok-without-metrics",
            "an ok record with no metrics",
            "holds no metrics",
            change=_edit("metrics", {}),
        ),
        _folder_case(
            "record-ok-metrics-null",
            "an ok record whose metrics are null",
            "holds no metrics",
            change=_edit("metrics", None),
        ),
        _folder_case(
            "record-phase-negative",
            "a phase with negative peak bytes",
            "cannot be negative",
            change=_edit("phases", [{"name": "forward", "start_bytes": 0, "peak_bytes": -5}]),
        ),
        Case(
            "records",
            "records-is-a-file",
            "records/ replaced by a file",
            cli("report", "{tmp}/out", "--out-file", "{tmp}/r.html", "--quiet"),
            2,
            "is not a folder",
            setup=_records_a_file,
            issue="7",
        ),
        Case(
            "records",
            "resume-edited-record",
            "a sweep resumed into a folder holding an edited record",
            resume,
            2,
            "copied or edited",
            setup=lambda tmp: _results_folder(tmp, _edit("config.trainer", "ff")),
            issue="7",
        ),
        Case(
            "records",
            "resume-records-a-file",
            "a sweep resumed into a folder whose records/ is a file",
            resume,
            2,
            "is not a folder",
            setup=_records_a_file,
            issue="7",
        ),
        Case(
            "records",
            "resume-copied-record",
            "a sweep resumed into a folder holding a copied record",
            resume,
            2,
            "hold the same configuration",
            setup=lambda tmp: _results_folder(tmp, copy_as="bp-d1-w16-b4-000000000000.json"),
            issue="7",
        ),
    ]


# -- CIFAR-10 files are untrusted ---------------------------------------------------------------


class _RunsACommand:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _cifar(tmp: Path, entry=None) -> None:
    import numpy as np

    from ffbench.data import CIFAR_FOLDER, CIFAR_TEST, CIFAR_TRAIN

    out = tmp / "c" / CIFAR_FOLDER
    out.mkdir(parents=True)
    for i, name in enumerate(CIFAR_TRAIN + CIFAR_TEST):
        good = {b"data": np.zeros((12, 3072), dtype=np.uint8), b"labels": [(i + j) % 10 for j in range(12)]}
        with open(out / name, "wb") as f:
            pickle.dump(entry if entry is not None and i == 0 else good, f)


def _cifar_case(name: str, what: str, entry, says: str) -> Case:
    act = cli("train", "--dataset", "cifar10", "--data-dir", "{tmp}/c", "--arch", "conv", "--depth", "1",
              "--channels", "4", "--threads", "1", "--quiet", "--out-file", "{tmp}/r.json")  # fmt: skip
    setup = lambda tmp: _cifar(tmp, entry(tmp) if callable(entry) else entry)  # noqa: E731
    state = lambda tmp: "the batch ran a command" if (tmp / "ran").exists() else None  # noqa: E731
    return Case("data", name, what, act, 2, says, setup=setup, state=state, issue="8")


def data_cases() -> list[Case]:
    import numpy as np

    def good(change: dict) -> dict:
        return {b"data": np.zeros((12, 3072), dtype=np.uint8), b"labels": [1] * 12, **change}

    return [
        _cifar_case(
            "cifar-runs-code",
            "a data_batch_1 whose pickle calls os.system",
            lambda tmp: {b"data": _RunsACommand(str(tmp / "ran")), b"labels": []},
            "never does",
        ),
        _cifar_case(
            "cifar-float-pixels",
            "CIFAR data as float32 in [0, 1]",
            good({b"data": np.zeros((12, 3072), dtype=np.float32)}),
            "'data' is float32",
        ),
        _cifar_case(
            "cifar-int64-pixels",
            "CIFAR data as int64",
            good({b"data": np.zeros((12, 3072), dtype=np.int64)}),
            "'data' is int64",
        ),
        _cifar_case(
            "cifar-short-rows",
            "CIFAR rows of 3071 values",
            good({b"data": np.zeros((12, 3071), dtype=np.uint8)}),
            "expected uint8 N x 3072",
        ),
        _cifar_case(
            "cifar-flat-data",
            "CIFAR data as one flat vector",
            good({b"data": np.zeros(12 * 3072, dtype=np.uint8)}),
            "expected uint8 N x 3072",
        ),
        _cifar_case("cifar-label-10", "a label 10", good({b"labels": [10] * 12}), "label 10 is not"),
        _cifar_case("cifar-label-negative", "a label -1", good({b"labels": [-1] * 12}), "label -1 is not"),
        _cifar_case(
            "cifar-label-strings", "labels as strings", good({b"labels": ["cat"] * 12}), "label 'cat'"
        ),
        _cifar_case(
            "cifar-100-labels",
            "a CIFAR-100 batch (fine_labels 0..99)",
            {b"data": np.zeros((12, 3072), dtype=np.uint8), b"fine_labels": [50] * 12},
            "not as many labels",
        ),
        _cifar_case(
            "cifar-label-count",
            "11 labels for 12 images",
            good({b"labels": [1] * 11}),
            "not as many labels",
        ),
        _cifar_case("cifar-not-a-dict", "a batch holding a list", [1, 2, 3], "not a dict"),
        _cifar_case(
            "cifar-data-list",
            "CIFAR data as a Python list",
            good({b"data": [[0] * 3072] * 12}),
            "'data' is list",
        ),
    ]


# -- the lock, faults -----------------------------------------------------------------------------


def _lock(kind: str):
    def setup(tmp: Path) -> None:
        (tmp / "notes.txt").write_text("eighteen bytes....")
        (tmp / "g").mkdir()
        lock = tmp / "g" / ".lock"
        if kind == "symlink":
            lock.symlink_to("../notes.txt")
        elif kind == "dangling":
            lock.symlink_to("../nowhere.txt")
        elif kind == "folder":
            lock.mkdir()
        else:
            os.mkfifo(lock)

    return setup


def _fake(fate_result):
    """An executor playing every job as `fate_result(job)` -> JobResult."""
    from ffbench.run.executors import BaseExecutor

    class Fake(BaseExecutor):
        name = "fake"

        def run(self, jobs):
            for job in jobs:
                yield fate_result(job)

    return Fake()


def _template_gone(tmp: Path) -> Outcome:
    """Issue case 5: the local executor's template killed while a configuration runs."""
    executors = executor_choice()
    from ffbench.run.executors import JobResult

    gone = _fake(lambda job: JobResult(job, None, None, 0.1, False, "template exited", executor="fake"))
    argv = ["sweep", *TINY, *GRID, "--steps", "1", "--out", str(tmp / "out")]
    with patched(executors, "get_executor", lambda *a, **k: gone):
        o = run_main(tmp, argv)
    got = [json.loads(p.read_text()).get("status") for p in (tmp / "out" / "records").glob("*.json")]
    if got != ["killed"]:
        o.notes.append(f"recorded {got}, expected killed")
    with patched(executors, "get_executor", lambda *a, **k: fake_executor("ok")):
        again = run_main(tmp, argv)
    got = [json.loads(p.read_text()).get("status") for p in (tmp / "out" / "records").glob("*.json")]
    if again.code != 0 or got != ["ok"]:
        o.notes.append(f"the resume left {got}")
    return o


def _silent_full_disk(tmp: Path) -> Outcome:
    """Issue case 5: a worker that fails without a word (its log on the full disk)."""
    executors = executor_choice()
    import ffbench.run.statuses as statuses
    from ffbench.run.executors import JobResult

    silent = _fake(lambda job: JobResult(job, None, 1, 0.1, False, "", executor="fake"))
    argv = ["sweep", *TINY, *GRID, "--steps", "1", "--out", str(tmp / "out")]
    with (
        patched(executors, "get_executor", lambda *a, **k: silent),
        patched(statuses, "disk_full", lambda p: True),
    ):
        o = run_main(tmp, argv)
    with faked("ok"):
        again = run_main(tmp, argv)
    got = [json.loads(p.read_text()).get("status") for p in (tmp / "out" / "records").glob("*.json")]
    if again.code != 0 or got != ["ok"]:
        o.notes.append(f"the resume left {got}: the environment fault was not measured again")
    return o


def _resumed_ok(tmp: Path) -> str | None:
    got = [json.loads(p.read_text()).get("status") for p in (tmp / "out" / "records").glob("*.json")]
    return None if got == ["ok"] else f"records {got} after the resume, expected ok"


def fault_cases() -> list[Case]:
    sweep = cli("sweep", *TINY, *GRID, "--steps", "1", "--out", "{tmp}/g")

    def intact(tmp: Path) -> str | None:
        return None if (tmp / "notes.txt").read_text() == "eighteen bytes...." else "notes.txt changed"

    locks = [
        Case(
            "concurrency",
            f"lock-{kind}",
            f"a results folder whose .lock is a {kind}",
            sweep,
            2,
            "lock must be a plain file",
            setup=_lock(kind),
            state=intact,
            issue="9",
        )
        for kind in ("symlink", "dangling", "folder", "fifo")
    ]
    return locks + [
        Case(
            "faults",
            "template-killed",
            "the worker's template killed while a configuration runs, then a resume",
            _template_gone,
            0,
            issue="5",
        ),
        Case(
            "faults",
            "silent-worker-full-disk",
            "a worker that fails silently on a full disk, then a resume",
            _silent_full_disk,
            1,
            "environment fault",
            state=_resumed_ok,
            issue="5",
        ),
    ]


# -- the pytest plugin: usage errors, never tracebacks -------------------------------------------


def _marked(size: str):
    def setup(tmp: Path) -> None:
        (tmp / "test_nothing.py").write_text(
            f"import pytest\n\n\n@pytest.mark.ffbench_memory({size})\ndef test_nothing():\n    pass\n"
        )

    return setup


def plugin_cases() -> list[Case]:
    usage = 4  # pytest's exit status for a usage error
    markers = [("marker-unit-xb", "'12XB'"), ("marker-none", "None"), ("marker-negative", "'-1GiB'"),
               ("marker-float", "1.5"), ("marker-two-sizes", "'1GiB', '2GiB'")]  # fmt: skip
    thresholds = ["inf%", "-5%", "nan%", "1e999%", "5%%", "-1MiB"]
    return [
        *(
            Case(
                "plugin",
                name,
                f"@pytest.mark.ffbench_memory({size})",
                pytest_with(),
                usage,
                "ffbench_memory",
                setup=_marked(size),
                issue="24",
            )  # fmt: skip
            for name, size in markers
        ),
        *(
            Case(
                "plugin",
                f"compare-threshold-{t.replace('%', 'pct')}",
                f"--ffbench-compare-threshold={t}",
                pytest_with(f"--ffbench-compare-threshold={t}"),
                usage,
                "--ffbench-compare-threshold",
                setup=_test_file,
                issue="24",
            )  # fmt: skip
            for t in thresholds
        ),
    ]


def issue24_cases() -> list[Case]:
    return flag_cases() + output_cases() + record_cases() + data_cases() + fault_cases() + plugin_cases()
