"""`ffbench` command line: argument parsing and one-line errors only.

Every configuration flag is derived from a `RunConfig` field (its help, group, choices and
validation live in the field's metadata). Flags have no argparse default: only the flags a
user gives reach the namespace, so precedence is by order of application -- field defaults,
then a sweep file, then the flags -- never by comparing a value with its default.

Bad input ends with one line on stderr (`ffbench: error: ...`) and exit status 2, before
anything is written. A failure of the machine (a full disk, out of memory) is one line naming
the file or the size, exit status 1; a bug is one line naming the file that holds its
traceback (`ffbench: internal error: ...`), exit status 1.

Output paths, one rule everywhere: `--out DIR` is always a folder (a results folder for
sweep and maxbatch; the folder a record or report is written into, under a name derived
from the run); `--out-file FILE` names one file exactly (train, measure, report).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, validate
from .config import (
    GRID_AXES,
    GROUPS,
    OPTIMIZER_SETTINGS,
    RunConfig,
    check_value,
    config_fields,
    config_keys,
    flag,
    rule_text,
)
from .errors import ConfigError, EnvironmentFault, FfbenchError
from .usage import check_used
from .validate import SETTING_RULES

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one readable line (no usage dump), and no abbreviated
    flags: --micro-batch and --micro-batches, --depth and --depths are different settings,
    and a prefix must not pick one silently."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"ffbench: error: {message} (see '{self.prog} --help')\n")


# -- value parsers (argparse `type=`) ------------------------------------------------------


def _typed(kind: str, limit: int | float | None = None):
    """An argparse `type=` for a number of `kind` (see config.option): the text converted,
    then checked by the same rule as every other input (config.check_value)."""
    convert, what = (int, "an integer") if kind in ("int", "int0") else (float, "a number")

    def parse(text: str) -> int | float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        try:
            return check_value("value", value, kind, limit=limit)
        except ConfigError:
            raise argparse.ArgumentTypeError(f"expected {rule_text(kind, limit)}, got {text!r}") from None

    return parse


def _micro_type(limit: int | None):
    """An argparse `type=` for --micro-batch: rows or a fraction such as 1/4 (config.check_value)."""

    def parse(text: str) -> int | str:
        try:
            return check_value("value", text, "micro", limit=limit)
        except ConfigError:
            raise argparse.ArgumentTypeError(f"expected {rule_text('micro', limit)}, got {text!r}") from None

    return parse


steps_type = _typed("int", SETTING_RULES["steps"][1])  # timed steps of measure and sweep: >= 1
timeout_type = _typed(*SETTING_RULES["timeout"])


class LazyChoices(Sequence):
    """argparse `choices` asked for only when used: `--trainer`'s names load every trainer
    module (and torch), which `--version`, `--help` and a command without the flag never need.
    Checking a value or listing the names (a subcommand's help, an error) loads them."""

    def __init__(self, load) -> None:
        self._load, self._names = load, None

    def _all(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = tuple(self._load())
        return self._names

    def __getitem__(self, index):
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __contains__(self, value) -> bool:
        return value in self._all()

    def __iter__(self):
        return iter(self._all())


def _field_argument(f) -> dict:
    meta = f.metadata
    kind = meta["kind"]
    kwargs: dict = {"dest": f.name, "default": argparse.SUPPRESS}
    default = f"default {f.default}" if f.default is not None else None
    if kind == "choice":
        kwargs["choices"] = LazyChoices(meta["choices"]) if callable(meta["choices"]) else meta["choices"]
    elif kind in ("int", "int0", "float", "float0"):
        kwargs["type"] = _typed(kind, meta["limit"])
    elif kind == "micro":
        kwargs["type"] = _micro_type(meta["limit"])
    kwargs["help"] = meta["help"] + (f" ({default})" if default else "")
    return kwargs


def add_config_flags(parser: argparse.ArgumentParser, exclude: Sequence[str] = ()) -> None:
    """One flag per RunConfig field (except `exclude`), in argument groups."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in config_fields():
        if f.name in exclude:
            continue
        group = f.metadata["group"]
        if group not in groups:
            groups[group] = parser.add_argument_group(GROUPS[group])
        groups[group].add_argument(flag(f.name), **_field_argument(f))


def given(args: argparse.Namespace, keys: Sequence[str]) -> dict:
    """The values of the flags the user gave (flags have no argparse default)."""
    return {k: getattr(args, k) for k in keys if hasattr(args, k)}


def config_from_args(args: argparse.Namespace, **overrides) -> RunConfig:
    return RunConfig(**{**given(args, config_keys()), **overrides})


MEMORY_DATASET_HELP = (
    "dataset (default synthetic, of the architecture's input shape: the bytes do not depend on "
    "pixel values; auto: MNIST, else Fashion-MNIST, else digits)"
)


def memory_dataset(args: argparse.Namespace) -> dict:
    """measure, sweep, maxbatch: synthetic data unless --dataset names one (ffbench.run.sweep)."""
    from .run.sweep import MEMORY_DATASET

    return {} if hasattr(args, "dataset") else {"dataset": MEMORY_DATASET}


def memory_dataset_flag(parser: argparse.ArgumentParser) -> None:
    """The --dataset help of a memory command says what its default is."""
    for action in parser._actions:
        if action.dest == "dataset":
            action.help = MEMORY_DATASET_HELP


FILE_SUFFIXES = (".json", ".html", ".htm")


def out_folder(path: str | None, has_out_file: bool = False) -> Path | None:
    """`--out DIR`: always a folder. A file there (or a file name, where the command also
    takes --out-file) is refused, with the flag to use."""
    if not path:
        return None
    out = Path(path)
    hint = f"; to name the file, use --out-file {out}" if has_out_file else ""
    if out.is_file():
        raise ConfigError(f"--out {out} is a file; --out names a folder{hint}")
    if has_out_file and out.suffix.lower() in FILE_SUFFIXES:
        raise ConfigError(f"--out {out}: --out names a folder{hint}")
    return out


def out_path(args: argparse.Namespace, name: str, example: str) -> Path | None:
    """The file a command writes: --out-file FILE, or --out DIR / `name`; None for neither."""
    folder = out_folder(getattr(args, "out", None), has_out_file=True)
    file = getattr(args, "out_file", None)
    if file:
        return check_out_file(file, example)
    return check_out_file(str(folder / name), example) if folder is not None else None


def check_out_file(path: str | None, example: str) -> Path | None:
    """Refuse an output file that could not be written, before any work is done."""
    if not path:
        return None
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"--out-file {out} is a folder; give a file name such as {example}")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"{out}: cannot write in {parent}")
    return out


def _echo(args: argparse.Namespace):
    """Messages on stdout, above any progress bar (nothing with --quiet)."""
    from .progress import echo

    return (lambda s: None) if args.quiet else echo


def executor_from_args(args: argparse.Namespace):
    """The executor `--executor` and its options name (a context manager: closing it stops
    its template processes or cancels what it still runs)."""
    from .run.executors.choice import get_executor

    options = {k: v for k, v in vars(args).items() if k.startswith(("ray_", "slurm_"))}
    if options.get("slurm_option") is not None:
        options["slurm_option"] = dict(_key_value(item) for item in options["slurm_option"])
    return get_executor(args.executor, allow_mixed_devices=args.allow_mixed_devices, **options)


def _flags(args: argparse.Namespace, *same: str, **renamed: str) -> dict:
    """Keyword arguments from the parsed flags: each of `same` under its own name, and
    keyword=flag for each of `renamed` (the flag's value under the keyword)."""
    return {**{k: getattr(args, k) for k in same}, **{k: getattr(args, a) for k, a in renamed.items()}}


def with_executor(args: argparse.Namespace, run, *positional, **keywords):
    """`run(..., executor=...)` with the executor the flags name, closed afterwards."""
    with executor_from_args(args) as executor:
        return run(*positional, executor=executor, **keywords)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--slurm-option expects KEY=VALUE (an sbatch option), got {text!r}")
    return key, value


# -- commands -------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from .data import load_config_dataset
    from .device import resolve_device
    from .run.fit import fit

    config = config_from_args(args)
    check_used("train", given(args, config_keys()), [config])
    resolve_device(config.device)  # fail before loading anything
    output = record_output(args, config, "train", "runs/ff.json")
    dataset = load_config_dataset(config)
    if config.dataset == "auto" and dataset.name != "mnist":  # said even with --quiet: it changes the result
        print(
            f"ffbench train: no MNIST found; --dataset auto fell back to {dataset.name} "
            f"({dataset.source}, {dataset.in_features} features)",
            file=sys.stderr,
        )
    echo = _echo(args)
    echo(
        f"ffbench train: {config.short_name()} on {dataset.name} ({dataset.source}), "
        f"{config.epochs} epoch(s), seed {config.seed}"
    )
    # with an output, the record is written after every epoch (status "partial" until the end)
    epochs_done: list[int] = []

    def keep(record) -> None:
        output.write(record)
        epochs_done.append(len(record.epochs))

    try:
        record = fit(
            config, dataset, progress=not args.quiet, echo=echo, on_epoch=keep if output.active else None
        )
    except KeyboardInterrupt:
        if output.kept is None:
            raise
        print(
            f"ffbench: interrupted after {epochs_done[-1]} of {config.epochs} epoch(s); kept them in "
            f"{output.kept} (status 'partial', never counted as a finished run)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if output.active:
        echo(f"wrote {output.write(record, final=True)}")
    return 0


def record_output(args: argparse.Namespace, config: RunConfig, kind: str, example: str):
    """Where a `train` or `measure` record goes (ffbench.outputs), checked before any work."""
    from .outputs import RecordOutput

    folder = out_folder(getattr(args, "out", None), has_out_file=True)
    file = check_out_file(getattr(args, "out_file", None), example)
    return RecordOutput(folder=folder, file=file, overwrite=args.overwrite, config=config, kind=kind)


def cmd_measure(args: argparse.Namespace) -> int:
    from .device import resolve_device
    from .run.harness import HarnessSettings, run_one

    config = config_from_args(args, **memory_dataset(args))
    check_used("measure", given(args, config_keys()), [config])
    resolve_device(config.device)
    output = record_output(args, config, "measure", "runs/bp.json")
    record = run_one(
        config, HarnessSettings(warmup_steps=args.warmup, timing_steps=args.steps, sites=args.sites)
    )
    if not args.quiet:
        print(describe_measurement(config, record.to_dict()))
    if output.active:
        _echo(args)(f"wrote {output.write(record, final=True)}")
    return 0


MODELLED = (  # (label, measured column, analytic column): the lines measured beside modelled
    ("training step peak", "tensor_peak_bytes", "analytic_peak_bytes"),
    ("alive at step start", "tensor_start_bytes", "analytic_start_bytes"),
    ("transient", "tensor_transient_bytes", "analytic_transient_bytes"),
    ("first step peak", "tensor_first_step_peak_bytes", "analytic_first_step_peak_bytes"),
    ("evaluation peak", "tensor_eval_peak_bytes", "analytic_eval_peak_bytes"),
    ("whole run peak", "tensor_whole_run_peak_bytes", "analytic_whole_run_peak_bytes"),
)


def describe_measurement(config: RunConfig, record: dict) -> str:
    """What `ffbench measure` prints: tensor-level bytes measured beside the analytic model's
    prediction (and their difference in bytes), then process, allocator and time."""
    from .schema import CATEGORIES
    from .units import format_bytes as fb

    m = record["metrics"]
    modelled = "analytic_peak_bytes" in m
    lines = [
        f"{config.short_name()} on {record['dataset']['name']} ({record['environment']['device']}, "
        f"{record['threads']} threads; batch = real examples, FF forwards as many negatives; "
        f"evaluation chunk {config.chunk})",
        f"  {'tensor-level':<22}{'measured':>14}{'modelled':>14}{'difference':>16}",
    ]
    for label, measured, analytic in MODELLED:
        if measured in m:
            model = m.get(analytic)
            diff = f"{model - m[measured]:+,} B" if model is not None else "-"
            lines.append(
                f"  {label:<22}{fb(m[measured]):>14}{fb(model) if model is not None else '-':>14}{diff:>16}"
            )
    if not modelled:
        lines.append(f"  (no analytic model: {m.get('analytic_note', 'this trainer has no ledger')})")
    lines.append("  at the peak: " + ", ".join(f"{c} {fb(m[f'tensor_peak_{c}_bytes'])}" for c in CATEGORIES))
    from .analysis.attribution import holder_lines

    lines += holder_lines(record)
    lines.append(f"  process RSS rise {fb(m['rss_rise_bytes'])} ({record['allocator_setting']})")
    if "cuda_allocated_predicted_bytes" in m:
        model = m.get("analytic_cuda_allocated_predicted_bytes")
        lines.append(
            f"  CUDA allocated peak, predicted (not measured): {fb(m['cuda_allocated_predicted_bytes'])}"
            + (f", modelled {fb(model)}" if model is not None else "")
            + " (512 B blocks + cuBLAS workspaces; a lower bound, reserved not predicted)"
        )
    if "cuda_peak_allocated_bytes" in m:
        lines.append(
            f"  CUDA allocator: peak {fb(m['cuda_peak_allocated_bytes'])}, rise "
            f"{fb(m['cuda_rise_allocated_bytes'])}, reserved {fb(m['cuda_peak_reserved_bytes'])}"
        )
    if "step_seconds_median" in m:
        lines.append(
            f"  step {1000 * m['step_seconds_median']:.2f} ms median, IQR {1000 * m['step_seconds_iqr']:.2f} ms "
            f"over {m['timed_steps']} timed steps, {m['examples_per_second']:.0f} examples/s"
            + (f", {m['energy_joules_per_step']:.3f} J/step (NVML)" if "energy_joules_per_step" in m else "")
        )
    if (
        m.get("timing_load_before") is not None and m.get("timing_load_after") is not None
    ):  # the timing protocol's conditions (flagged in a report when over the cores)
        lines.append(
            f"  timed at {m['timing_threads']} thread(s), 1-minute load {m['timing_load_before']:.2f} -> "
            f"{m['timing_load_after']:.2f} on {m['timing_cores']} cores"
            + (f"; flagged, no verdict uses it: {why}" if (why := _timing_flag(record)) else "")
        )
    elif record.get("timing_error"):
        lines.append(f"  step time: none ({record['timing_error']})")
    return "\n".join(lines)


def _timing_flag(record: dict) -> str | None:
    """Why a record's step time is unfit for a verdict (analysis/timing.py), None when fit."""
    from .analysis.timing import flag

    timing = record.get("timing") or {}
    row = {**record.get("metrics", {}), "timing_protocol": timing.get("protocol"),
           "timing_allocator": timing.get("allocator_setting"), "trainer": record["config"].get("trainer")}  # fmt: skip
    return flag(row)


def axis_type(text: str) -> tuple[str, list]:
    """`FIELD=V1,V2,...` -> (field, values typed as the field's flag would type them)."""
    name, sep, values = text.partition("=")
    fields = {f.name: f for f in config_fields()}
    field = fields.get(name.strip().replace("-", "_"))
    if not sep or field is None or not values.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=V1,V2 with a configuration field, got {text!r}")
    convert = _field_argument(field).get("type", str)
    return field.name, [convert(v.strip()) for v in values.split(",") if v.strip()]


def sweep_plan(args: argparse.Namespace, executor=None):
    """The sweep a command line asks for: defaults, then the sweep file, then the flags given."""
    from .config import axis_fields
    from .run.sweep import GRID_KEYS, SETTING_KEYS, axis_key, merge_axes, plan_sweep

    axes = [*given(args, tuple(GRID_KEYS)).items(), *(getattr(args, "axis", None) or [])]
    config_flags = given(args, config_keys())
    plan = plan_sweep(
        grid_flags=merge_axes(axes, scalars=config_flags),
        config_flags=config_flags,
        setting_flags=given(args, SETTING_KEYS),
        sweep_file=args.sweep_file,
        out=out_folder(args.out),
        executor=executor,
        dry_run=getattr(args, "dry_run", False),
    )
    fields = [*config_flags, *(f for key, _ in axes for f in axis_fields(axis_key(key)))]
    check_used("sweep", fields, plan.configs)
    return plan


def cmd_sweep(args: argparse.Namespace) -> int:
    from .run.sweep import run_plan

    with executor_from_args(args) as executor:
        plan = sweep_plan(args, executor)
        if args.dry_run:
            from .run.sweep import dry_run_text

            print(dry_run_text(plan, retry_errors=args.retry_errors))
            return 0
        echo = _echo(args)
        counts = run_plan(
            plan, executor=executor, progress=not args.quiet, retry_errors=args.retry_errors, echo=echo
        )
    from .run.sweep import next_steps

    echo(next_steps(plan.out, counts))
    return 0


def cmd_maxbatch(args: argparse.Namespace) -> int:
    from .run.maxbatch import run_maxbatch, table
    from .run.sweep import parse_list
    from .units import parse_size

    budget = parse_size(args.memory_limit)
    trainers = parse_list(args.trainers, "trainers")
    depths = parse_list(args.depths, "depths")
    base = config_from_args(args, batch_size=1, **memory_dataset(args))
    check_used(
        "maxbatch",
        given(args, config_keys()),
        [base.replace(trainer=t, depth=d) for t in trainers for d in depths],
    )
    if not 0 <= args.tolerance < 1:
        raise ConfigError(f"--tolerance must be in [0, 1), got {args.tolerance!r}")
    echo = _echo(args)
    flags = _flags(args, "dry_run", "include_eval", "steps", "timeout", "tolerance", budget_kind="budget")
    output = {"out": out_folder(args.out), "progress": not args.quiet, "echo": echo}
    results = with_executor(
        args, run_maxbatch, base, trainers, depths, budget, cap=args.max_batch, **flags, **output
    )
    if results is not None:
        echo(table(results))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .run.reproduce import reproduce

    flags = _flags(
        args, "device", "data_dir", "yes", "name", "dry_run", results_root="results", reports_root="reports"
    )
    echo = print if args.dry_run else _echo(args)
    with_executor(args, reproduce, args.profile, progress=not args.quiet, echo=echo, **flags)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .analysis import readme
    from .analysis.report import build_report
    from .analysis.verdicts import print_claims

    if args.readme:
        path = Path(args.readme)
        if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
            raise ConfigError(f"--readme {path}: not a file ffbench can read and rewrite")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"--readme {path} is not UTF-8 text") from None
        readme.section(text)  # markers present: checked first
    first = Path(args.results[0]).resolve()
    name = report_name(args.results, args.baseline)
    out = out_path(args, name, "reports/run.html") or Path("reports") / name
    check_report_target(out, args.overwrite)
    report = build_report(args.results, out, baseline=args.baseline)
    if not args.quiet:
        drawn = sum(1 for f in report.figures if f.file is not None)
        print(f"wrote {report.html_path} ({drawn} figures inline; also in {report.figures_dir}/)")
        if report.comparison is not None:
            from .analysis.compare import changes_text

            print(changes_text(report.analyses, report.labels))
        for label, analysis in zip(report.labels, report.analyses):
            if label is not None:
                print(f"\n== {label}{' (baseline)' if label == report.labels[0] else ''}")
            print_claims(analysis.verdicts, verbose=args.verbose)
        if not args.verbose:
            print("each claim's numbers, test and threshold: in the report, or run the same command with -v")
    if args.readme:
        readme.update(args.readme, report.verdicts, run=first.name)
        if not args.quiet:
            print(f"updated the verdicts in {args.readme}")
    return 0


def _run_label(path: str) -> str:
    p = Path(path).resolve()
    return p.stem if p.suffix == ".json" else p.name


def report_name(results: Sequence[str], baseline: str | None) -> str:
    """The report's default file name: `<A>.html` for one RESULTS; parts of one run
    `<A>-and-<B>.html`; a comparison `<A>-vs-<B>.html`, A the baseline: never A's own."""
    if baseline is None:
        return "-and-".join(map(_run_label, results)) + ".html"
    others = [r for r in results if Path(r).resolve() != Path(baseline).resolve()] or [baseline]
    return "-vs-".join(map(_run_label, [baseline, *others])) + ".html"


REPORT_MARK = "<title>ffbench report:"


def check_report_target(out: Path, overwrite: bool) -> None:
    """A report replaces an ffbench report (rebuilt) or, with --overwrite, any file; any other
    existing file is refused in one line."""
    if overwrite or not out.is_file():
        return
    try:
        with open(out, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        head = ""
    if REPORT_MARK not in head:
        raise ConfigError(
            f"{out} exists and is not an ffbench report; give another --out-file or --overwrite"
        )


# -- the parser -----------------------------------------------------------------------


def add_executor_flags(parser: argparse.ArgumentParser) -> None:
    """--executor and the options of the Ray and SLURM executors (see README, 'Sweeps on a cluster')."""
    from .run.executors import EXECUTORS

    g = parser.add_argument_group("where each configuration runs")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: forked from a pre-imported template (default); subprocess: a fresh interpreter "
        "each; ray: a Ray task each (ffbench[ray]); slurm: one SLURM array job (ffbench[slurm])",
    )
    g.add_argument(
        "--allow-mixed-devices",
        action="store_true",
        help="accept records from another device model than the results folder's",
    )
    for cluster in ("ray", "slurm"):
        g.add_argument(
            f"--{cluster}-gpus-per-task", type=_typed("int0", 1024), help="default 1 (0 with --device cpu)"
        )
        g.add_argument(
            f"--{cluster}-cpus-per-task", type=_typed("int", 2**16), help="default: --threads, else 1"
        )
    g.add_argument("--ray-address", help="Ray cluster to join (default: start a local one)")
    g.add_argument("--ray-accelerator-type", help="only this GPU model, e.g. H100 (Ray accelerator_type)")
    g.add_argument("--slurm-partition", help="sbatch --partition")
    g.add_argument("--slurm-time", type=_typed("int", 10**7), help="minutes per array task (default 60)")
    g.add_argument(
        "--slurm-array-parallelism", type=_typed("int", 10**6), help="array tasks at once (default 64)"
    )
    g.add_argument("--slurm-folder", help="submitit's logs and pickles, on a shared file system")
    g.add_argument(
        "--slurm-option", action="append", metavar="KEY=VALUE", help="any sbatch option, e.g. account=abc"
    )
    g.add_argument("--slurm-setup", action="append", metavar="CMD", help="shell line run before the worker")


def add_out_flags(p: argparse.ArgumentParser, what: str, folder: str, file: str) -> None:
    """`--out DIR` (the name derived from the run) or `--out-file FILE`: the one rule."""
    group = p.add_argument_group("output").add_mutually_exclusive_group()
    group.add_argument("--out", metavar="DIR", help=f"write {what} into this folder, e.g. {folder}")
    group.add_argument("--out-file", metavar="FILE", help=f"write {what} to exactly this file, e.g. {file}")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out-file (kept intact until the new one is complete)",
    )


def add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (what would run, what is already recorded) and an estimated time; write nothing",
    )


def add_results_out(p: argparse.ArgumentParser) -> None:
    """`--out DIR` of a command that fills a results folder."""
    p.add_argument(
        "--out",
        metavar="DIR",
        help="results folder (default results/<date>-<device>-<name>/); re-run to resume",
    )


def add_run_flags(p: argparse.ArgumentParser, quiet: str, func) -> None:
    """What every command running configurations through an executor ends with: --dry-run,
    --quiet (`quiet`: what it silences), the executor's flags; `func` runs the command."""
    add_dry_run(p)
    p.add_argument("--quiet", action="store_true", help=quiet)
    add_executor_flags(p)
    p.set_defaults(func=func)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one configuration and report accuracy per epoch")
    add_config_flags(p)
    add_out_flags(p, "the JSON record of the run", "runs/", "runs/ff.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(func=cmd_train)


def _add_measure(sub) -> None:
    p = sub.add_parser("measure", help="measure memory and time of one configuration's training step")
    add_config_flags(p, exclude=("epochs", "target_accuracy"))
    memory_dataset_flag(p)
    p.add_argument(
        "--steps",
        type=steps_type,
        default=5,
        help="timed steps, at least: the timing protocol adds rounds until 0.25 s are measured "
        "(default %(default)s)",
    )
    p.add_argument(
        "--warmup",
        type=_typed(*SETTING_RULES["warmup"]),
        default=1,
        help="untimed warm-up steps (default %(default)s)",
    )
    p.add_argument(
        "--sites",
        type=_typed("int0", 1000),
        default=0,
        metavar="N",
        help="also record the N largest storages at the steady step's peak with the file:line that "
        "allocated each, and the peak's bytes per site (default 0: off; costs a stack walk per new tensor)",
    )
    add_out_flags(p, "the JSON record", "runs/", "runs/bp.json")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=cmd_measure)


def cmd_diff(args: argparse.Namespace) -> int:
    from .analysis.attribution import diff_lines
    from .results.store import read_json

    a, b = read_json(args.a, "A"), read_json(args.b, "B")
    print("\n".join(diff_lines(a, b, args.a, args.b, top=args.top)))
    return 0


def _add_diff(sub) -> None:
    p = sub.add_parser("diff", help="two measure records' peaks attributed to allocation sites")
    p.add_argument("a", metavar="A", help="a record measured with --sites (ffbench measure or ffbench.track)")
    p.add_argument("b", metavar="B", help="the record set against A (differences are B - A, in bytes)")
    p.add_argument("--top", type=_typed("int", 10000), default=20, help="sites listed (default %(default)s)")
    p.set_defaults(func=cmd_diff)


def cmd_export(args: argparse.Namespace) -> int:
    import json

    from .analysis import export
    from .results.store import walk, write_text_atomic

    out = check_out_file(args.out_file, "step.trace.json")
    if args.history and (
        args.format != "benchmark-action" or not Path(args.history).parent.resolve().is_dir()
    ):
        raise ConfigError(
            f"--history {args.history}: a file in an existing folder, with --format benchmark-action"
        )
    docs = walk(args.source)
    if args.format == "trace":
        if len(docs) != 1:
            raise ConfigError(f"--format trace: give one record, not {len(docs)} documents")
        data = export.trace_events(docs[0].data, docs[0].path.stem)
    else:
        commit = args.commit or export.current_commit()
        data = [e for d in docs for e in export.document_entries(d.data, d.path, commit)]
        if not data:
            raise ConfigError(
                f"{' '.join(args.source)}: no measure record or benchmark with tensor-level bytes"
            )
    text = json.dumps(data, indent=1) + "\n"
    if out is not None:
        write_text_atomic(out, text)
    else:
        sys.stdout.write(text)
    if args.format == "benchmark-action" and args.history:
        from .results.store import now

        export.append_history(args.history, data, f"{commit} {now()}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="a record for another tool: Perfetto trace, or github-action-benchmark")
    p.add_argument(
        "source", nargs="+", metavar="RESULTS", help="records, results folders or --benchmark-json files"
    )
    p.add_argument(
        "--format",
        choices=("trace", "benchmark-action"),
        required=True,
        help="trace: the steady step as Chrome trace events (open in ui.perfetto.dev); benchmark-action: "
        "github-action-benchmark's customSmallerIsBetter list (bytes; commit and machine in extra)",
    )
    p.add_argument("--out-file", help="the file to write (default: standard output)")
    p.add_argument(
        "--history",
        metavar="FILE",
        help="benchmark-action: also append the entries to this JSON-lines history",
    )
    p.add_argument(
        "--commit", help="benchmark-action: the commit measured (default $GITHUB_SHA, else git HEAD here)"
    )
    p.set_defaults(func=cmd_export)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="measure a grid of configurations, each in a fresh process (resumable)")
    s = argparse.SUPPRESS
    p.add_argument("--trainers", default=s, help="comma list, e.g. bp,ff (default: every trainer)")
    p.add_argument("--depths", default=s, help="comma list of hidden-layer counts (default 2)")
    p.add_argument("--widths", default=s, help="comma list of layer widths (default 500)")
    p.add_argument(
        "--batch-sizes", dest="batch_sizes", default=s, help="comma list of batch sizes (default 100)"
    )
    p.add_argument(
        "--micro-batches",
        dest="micro_batches",
        default=s,
        help="comma list of micro-batches, rows or fractions of the batch, e.g. 1/4,1/2,64 (64: rows; default: none)",
    )
    p.add_argument(
        "--sweep-file",
        help="JSON or TOML file with the same keys (trainers, depths, widths, batch_sizes, micro_batches, steps, "
        "memory_limit, timeout, configuration fields); flags given on the command line win",
    )
    p.add_argument(
        "--optimizers",
        default=s,
        help=f"comma list of optimizer settings to sweep: {', '.join(OPTIMIZER_SETTINGS)} (default: --optimizer's)",
    )
    p.add_argument(
        "--axis",
        action="append",
        type=axis_type,
        metavar="FIELD=V1,V2",
        help="sweep any configuration field too, e.g. --axis ff_pass=together,sequential (repeatable)",
    )
    add_config_flags(p, exclude=(*GRID_AXES.values(), "epochs", "target_accuracy"))
    memory_dataset_flag(p)
    p.add_argument(
        "--steps",
        type=steps_type,
        default=s,
        help="timed steps per configuration, at least: the trainers of one configuration are timed "
        "together, round-robin, until each has 0.25 s measured (default 5)",
    )
    p.add_argument(
        "--memory-limit", default=s, help="budget per configuration, e.g. 2GiB: over it is status 'oom'"
    )
    p.add_argument(
        "--timeout",
        type=timeout_type,
        default=s,
        help="seconds per configuration (worker start included): over it is status 'timeout'",
    )
    add_results_out(p)
    p.add_argument("--retry-errors", action="store_true", help="re-run configurations recorded as 'error'")
    add_run_flags(p, "no progress bar or summary", cmd_sweep)


def _add_maxbatch(sub) -> None:
    p = sub.add_parser(
        "maxbatch", help="largest batch that fits a memory budget, per trainer and depth (measured)"
    )
    p.add_argument("--memory-limit", required=True, help="budget, e.g. 8GiB (IEC units)")
    p.add_argument(
        "--budget",
        choices=("tensor", "process"),
        default="tensor",
        help="tensor: the training steps' tensor-level peak must fit (the algorithm's bytes, any "
        "machine); process: enforced on the worker process over its baseline (RLIMIT_DATA on CPU, "
        "the allocator cap on CUDA) (default %(default)s)",
    )
    p.add_argument("--include-eval", action="store_true", help="the budget also covers one evaluation chunk")
    p.add_argument("--trainers", default="bp,ff,ff-frugal", help="comma list (default %(default)s)")
    p.add_argument("--depths", default="2", help="comma list (default %(default)s)")
    add_config_flags(p, exclude=("trainer", "depth", "batch_size", "epochs", "target_accuracy"))
    memory_dataset_flag(p)
    p.add_argument(
        "--steps",
        type=_typed(*SETTING_RULES["steps"]),
        default=0,
        help="timed steps per probe (default %(default)s: memory only)",
    )
    p.add_argument(
        "--timeout",
        type=timeout_type,
        default=None,
        help="seconds per probe: over it counts as not fitting",
    )
    p.add_argument(
        "--max-batch",
        type=_typed(*SETTING_RULES["max_batch"]),
        default=2**22,
        help="largest batch tried (default %(default)s)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="stop when the bracket is within this fraction of the answer; 0 = exact (default %(default)s)",
    )
    add_results_out(p)
    add_run_flags(p, "no progress bar or table", cmd_maxbatch)


def _profile_name(text: str) -> str:
    """--profile's value, checked against the profiles only when given or defaulted (building
    them loads the trainers and torch, which `reproduce --help` does not need)."""
    from .run.reproduce import PROFILES

    if text not in PROFILES:
        listed = ", ".join(map(repr, PROFILES))
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {listed})")
    return text


def _add_reproduce(sub) -> None:
    p = sub.add_parser("reproduce", help="re-run the memory and accuracy claims and write a report")
    p.add_argument(
        "--profile",
        default="quick",
        type=_profile_name,
        metavar="PROFILE",
        help="quick (CPU, 2 cores; target 10 min, see --dry-run) or full (GPU, the paper's setting)",
    )
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="default %(default)s")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST raw files (else the usual search)")
    p.add_argument("--results", default="results", help="results root (default %(default)s)")
    p.add_argument("--reports", default="reports", help="reports root (default %(default)s)")
    p.add_argument("--name", default=None, help="run name (default <date>-<device>-<profile>)")
    p.add_argument("--yes", action="store_true", help="run the full profile on a CPU anyway")
    add_run_flags(p, "no progress bars or messages", cmd_reproduce)


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="one self-contained HTML report (figures, tables, claims with verdicts)"
    )
    p.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="results folders, run folders of 'ffbench reproduce', record JSON files or pytest-benchmark JSON files",
    )
    add_out_flags(
        p,
        "the HTML report (default reports/<RESULTS name>.html, <A>-and-<B>.html for parts of one run, "
        "<A>-vs-<B>.html with --baseline A; figures also go to <name>_files/); an existing file that is "
        "not an ffbench report is refused unless --overwrite",
        "reports/",
        "reports/run.html",
    )
    p.add_argument(
        "--baseline",
        metavar="RESULTS",
        help="compare runs: each RESULTS is a run of its own, shown side by side with per-configuration "
        "deltas (bytes exactly, time as a ratio; evaluation and whole-run figures only where evaluation "
        "ran alike) and what changed, against this one (one of the RESULTS, by path or name: "
        "report NEW OLD --baseline OLD)",
    )
    p.add_argument(
        "--readme",
        metavar="FILE",
        help="also rewrite the verdict paragraph between FILE's ffbench:verdicts markers",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing (no claim summary)")
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print each claim's numbers, test, evaluation chunk and figure (default: one line per claim)",
    )
    p.set_defaults(func=cmd_report)


DESCRIPTION = """\
Does Forward-Forward train with less memory than backprop, and at what cost in time and
accuracy? ffbench trains matched FF and backprop networks and measures every step: exact
tensor-level bytes (by category and phase), process RSS, CUDA allocator peaks, step time
(median and spread) and accuracy; then a report decides each claim with stated thresholds."""

EPILOG = """\
typical use:
  ffbench reproduce --profile quick            all claims on this machine, report at the end
  ffbench sweep --trainers bp,ff --depths 2,4,8 --dry-run   plan a sweep and its time
  ffbench measure --trainer ff --depth 4       one configuration: measured beside the model
  ffbench report results/RUN                   HTML report (reports/RUN.html)
  ffbench report results/A results/B --baseline results/A   two runs compared (reports/A-vs-B.html)

output: --out DIR is always a folder; --out-file FILE names one file.
Sizes: 512MiB, 8GiB (powers of 1024) or 500MB (powers of 1000).
'ffbench COMMAND --help' lists a command's options by group."""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ffbench",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"ffbench {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=OneLineParser, title="commands", metavar="COMMAND"
    )
    for add in (
        _add_train, _add_measure, _add_sweep, _add_maxbatch, _add_reproduce, _add_report, _add_diff, _add_export
    ):  # fmt: skip
        add(sub)
    return parser


PATH_ARGUMENTS = (
    "out",
    "out_file",
    "sweep_file",
    "results",
    "reports",
    "readme",
    "data_dir",
    "name",
    "baseline",
    "slurm_folder",
    "a",
    "b",
    "source",
    "history",
)


def check_path_arguments(args: argparse.Namespace) -> None:
    """Every path the user named is text ffbench can write into its files and messages."""
    for name in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        flag = "RESULTS" if isinstance(value, list) else "--" + name.replace("_", "-")
        for text in value if isinstance(value, list) else [value]:
            if text is not None:
                validate.path_text(text, flag)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. Exit status: 0 done; 2 the input is wrong (one line, nothing written);
    1 the machine failed (disk full, out of memory: one line naming the file or the size) or
    a bug (one line naming the file that holds the traceback); 130 interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_path_arguments(args)
        validate.environment()
        return args.func(args)
    except FfbenchError as exc:
        print(f"ffbench: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE if isinstance(exc, EnvironmentFault) else EXIT_USAGE
    except OSError as exc:  # a folder that cannot be written, a full disk, ...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"ffbench: error: {_one_line(exc.strerror or exc)}{where}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("ffbench: interrupted; nothing half-written was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - out of memory, or a bug: one line, the rest in a file
        return _unexpected(exc)


def _unexpected(exc: BaseException) -> int:
    from .run.statuses import is_oom

    if is_oom(exc):
        print(f"ffbench: error: out of memory: {_one_line(exc)[:300]}", file=sys.stderr)
        return EXIT_FAILURE
    import tempfile
    import traceback

    path = Path(tempfile.gettempdir()) / f"ffbench-traceback-{os.getpid()}.txt"
    try:
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        where = f"traceback in {path}"
    except OSError:
        where = "the traceback could not be saved"
    print(f"ffbench: internal error: {type(exc).__name__}: {_one_line(exc)[:300]}; {where}", file=sys.stderr)
    return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
