"""`ffbench` command line: argument parsing and one-line errors only.

Every command is a thin call into the library. Bad input ends with one line on stderr
(`ffbench: error: ...`) and exit status 2, before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import (
    DATASETS,
    DEVICES,
    DTYPES,
    FF_GOODNESS,
    FF_NEGATIVES,
    FF_NORMS,
    OPTIMIZER_IMPLS,
    OPTIMIZERS,
    TRAINERS,
    RunConfig,
)
from .errors import ConfigError, FfbenchError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one readable line (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"ffbench: error: {message} (see '{self.prog} --help')\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """Flags for one RunConfig (singular names). Choices are validated by RunConfig."""
    d = RunConfig()
    p.add_argument("--trainer", default=d.trainer, help=f"one of {', '.join(TRAINERS)} (default %(default)s)")
    p.add_argument("--depth", type=int, default=d.depth, help="hidden layers (default %(default)s)")
    p.add_argument("--width", type=int, default=d.width, help="units per hidden layer (default %(default)s)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="real examples per optimizer step; FF also forwards as many negatives (default %(default)s)",
    )
    add_shared_flags(p)


def add_shared_flags(p: argparse.ArgumentParser) -> None:
    d = RunConfig()
    p.add_argument("--epochs", type=int, default=d.epochs, help="default %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate (default %(default)s)")
    p.add_argument("--optimizer", default=d.optimizer, help=f"{'|'.join(OPTIMIZERS)} (default %(default)s)")
    p.add_argument(
        "--optimizer-impl",
        default=d.optimizer_impl,
        help=f"{'|'.join(OPTIMIZER_IMPLS)}; moves the memory peak (default %(default)s)",
    )
    p.add_argument("--dataset", default=d.dataset, help=f"{'|'.join(DATASETS)} (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST/Fashion-MNIST raw files")
    p.add_argument("--device", default=d.device, help=f"{'|'.join(DEVICES)} (default %(default)s)")
    p.add_argument("--dtype", default=d.dtype, help=f"{'|'.join(DTYPES)} (default %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument(
        "--val-size", type=int, default=d.val_size, help="validation examples carved from training set"
    )
    p.add_argument("--eval-chunk", type=int, default=None, help="evaluation chunk size (default: batch size)")
    p.add_argument("--ff-threshold", type=float, default=d.ff_threshold, help="FF goodness threshold theta")
    p.add_argument("--ff-goodness", default=d.ff_goodness, help=f"{'|'.join(FF_GOODNESS)}")
    p.add_argument("--ff-norm", default=d.ff_norm, help=f"{'|'.join(FF_NORMS)}")
    p.add_argument("--ff-negatives", default=d.ff_negatives, help=f"{'|'.join(FF_NEGATIVES)}")
    p.add_argument(
        "--ff-eval-layers",
        default=d.ff_eval_layers,
        help="layers whose goodness is summed at test time: all, skip-first, or e.g. 1,2",
    )
    p.add_argument(
        "--checkpoint-segments", type=int, default=None, help="bp-checkpoint segments (default ~sqrt(depth))"
    )
    p.add_argument(
        "--micro-batch",
        type=int,
        default=None,
        help="bp-accum examples per micro-batch (default batch size / 4)",
    )


# Every RunConfig field a flag can set (all but the free-form `extra`).
CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(RunConfig) if f.name != "extra")


def check_out_file(path: str | None, example: str) -> Path | None:
    """Refuse an --out file that could not be written, before any work is done."""
    if not path:
        return None
    out = Path(path)
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name such as {example}")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"--out {out}: cannot write in {parent}")
    return out


def config_from_args(args: argparse.Namespace, **overrides) -> RunConfig:
    values = {k: getattr(args, k) for k in CONFIG_KEYS if hasattr(args, k)}
    values.update(overrides)
    return RunConfig(**values)


# -- commands -------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from .analysis.results import write_json_atomic
    from .data import load_dataset
    from .device import resolve_device
    from .run.fit import fit

    config = config_from_args(args)
    resolve_device(config.device)  # fail before loading anything
    out = check_out_file(args.out, "run.json")
    dataset = load_dataset(config.dataset, data_dir=config.data_dir, val_size=config.val_size)
    echo = (lambda s: None) if args.quiet else print
    echo(
        f"ffbench train: {config.short_name()} on {dataset.name} ({dataset.source}), "
        f"{config.epochs} epoch(s), seed {config.seed}"
    )
    record = fit(config, dataset, progress=not args.quiet, echo=echo)
    if out is not None:
        write_json_atomic(out, record)
        echo(f"wrote {out}")
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from .analysis.results import write_json_atomic
    from .device import resolve_device
    from .measure import CATEGORIES
    from .run.harness import HarnessSettings, run_one
    from .units import format_bytes

    config = config_from_args(args)
    resolve_device(config.device)
    out = check_out_file(args.out, "measure.json")
    record = run_one(config, HarnessSettings(warmup_steps=args.warmup, timing_steps=args.steps))
    m = record["metrics"]
    if not args.quiet:
        print(
            f"{config.short_name()} on {record['dataset']['name']} ({record['environment']['device']}, "
            f"{record['threads']} threads; batch = real examples, FF forwards as many negatives)"
        )
        print(
            f"  tensor-level peak {format_bytes(m['tensor_peak_bytes'])}, alive at step start "
            f"{format_bytes(m['tensor_start_bytes'])}, transient {format_bytes(m['tensor_transient_bytes'])}"
        )
        parts = ", ".join(f"{c} {format_bytes(m[f'tensor_peak_{c}_bytes'])}" for c in CATEGORIES)
        print(f"  at the peak: {parts}")
        print(
            f"  first step peak {format_bytes(m['tensor_first_step_peak_bytes'])}, evaluation peak "
            f"{format_bytes(m['tensor_eval_peak_bytes'])} (chunk {config.chunk}), whole run "
            f"{format_bytes(m['tensor_whole_run_peak_bytes'])}"
        )
        print(f"  process RSS rise {format_bytes(m['rss_rise_bytes'])} ({record['allocator_setting']})")
        if "cuda_peak_allocated_bytes" in m:
            print(
                f"  CUDA allocator: peak {format_bytes(m['cuda_peak_allocated_bytes'])}, rise "
                f"{format_bytes(m['cuda_rise_allocated_bytes'])}, reserved {format_bytes(m['cuda_peak_reserved_bytes'])}"
            )
        print(
            f"  step {1000 * m['step_seconds_median']:.1f} ms (median of {len(record['step_seconds'])}), "
            f"{m['examples_per_second']:.0f} examples/s"
        )
    if out is not None:
        write_json_atomic(out, record)
    return 0


def _given_config_keys(args: argparse.Namespace) -> set[str]:
    """Configuration flags whose value differs from the default (they override a sweep file)."""
    d = RunConfig().to_dict()
    return {k for k in CONFIG_KEYS if hasattr(args, k) and getattr(args, k) != d.get(k)}


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def cmd_sweep(args: argparse.Namespace) -> int:
    from .run.sweep import plan_sweep, run_plan

    plan = plan_sweep(
        grid_cli={
            "trainers": args.trainers,
            "depths": args.depths,
            "widths": args.widths,
            "batch_sizes": args.batch_sizes,
        },
        config_cli={k: getattr(args, k) for k in CONFIG_KEYS if hasattr(args, k)},
        config_explicit=_given_config_keys(args),
        sweep_file=args.sweep_file,
        steps=args.steps,
        memory_limit=args.memory_limit,
        timeout=args.timeout,
        out=args.out,
    )
    run_plan(
        plan,
        progress=not args.quiet,
        retry_errors=args.retry_errors,
        echo=(lambda s: None) if args.quiet else print,
    )
    return 0


def cmd_maxbatch(args: argparse.Namespace) -> int:
    from .run.maxbatch import run_maxbatch, table
    from .run.sweep import parse_list
    from .units import parse_size

    budget = parse_size(args.memory_limit)
    trainers = parse_list(args.trainers, "trainers")
    depths = parse_list(args.depths, "depths")
    base = config_from_args(args, width=args.width, batch_size=1)
    if not 0 <= args.tolerance < 1:
        raise ConfigError(f"--tolerance must be in [0, 1), got {args.tolerance!r}")
    echo = (lambda s: None) if args.quiet else print
    results = run_maxbatch(
        base,
        trainers,
        depths,
        budget,
        out=args.out,
        steps=args.steps,
        timeout=args.timeout,
        cap=args.max_batch,
        tolerance=args.tolerance,
        progress=not args.quiet,
        echo=echo,
    )
    echo(table(results))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .run.reproduce import reproduce

    reproduce(
        args.profile,
        device=args.device,
        data_dir=args.data_dir,
        results_root=args.results,
        reports_root=args.reports,
        yes=args.yes,
        progress=not args.quiet,
        name=args.name,
        echo=(lambda s: None) if args.quiet else print,
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .analysis.report import build_report, print_claims

    first = Path(args.results[0]).resolve()
    out = (
        Path(args.out)
        if args.out
        else Path("reports") / f"{first.stem if first.suffix == '.json' else first.name}.html"
    )
    report = build_report(args.results, out)
    if not args.quiet:
        drawn = sum(1 for f in report.figures if f.file is not None)
        print(f"wrote {report.html_path} ({drawn} figures inline; also in {report.figures_dir}/)")
        print_claims(report.verdicts)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="ffbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    p = sub.add_parser("train", help="train one configuration and report accuracy per epoch")
    add_config_flags(p)
    p.add_argument("--out", help="write a JSON record of the run to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("measure", help="measure memory and time of one configuration's training step")
    add_config_flags(p)
    p.add_argument("--steps", type=positive_int, default=3, help="timed steps (default %(default)s)")
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up steps (default %(default)s)")
    p.add_argument("--out", help="write the JSON record to this file")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_measure)

    p = sub.add_parser("sweep", help="measure a grid of configurations, each in a fresh process (resumable)")
    p.add_argument("--trainers", help="comma list, e.g. bp,ff (default: every trainer)")
    p.add_argument("--depths", help="comma list of hidden-layer counts (default 2)")
    p.add_argument("--widths", help="comma list of layer widths (default 500)")
    p.add_argument("--batch-sizes", dest="batch_sizes", help="comma list of batch sizes (default 100)")
    p.add_argument(
        "--sweep-file",
        help="JSON or TOML file with the same keys (trainers, depths, widths, "
        "batch_sizes, steps, memory_limit, timeout, configuration fields); flags override it",
    )
    add_shared_flags(p)
    p.add_argument(
        "--steps", type=positive_int, default=None, help="timed steps per configuration (default 3)"
    )
    p.add_argument("--memory-limit", help="budget per configuration, e.g. 2GiB: over it is status 'oom'")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help="seconds per configuration (worker start included): over it is status 'timeout'",
    )
    p.add_argument("--out", help="results folder (default results/<date>-<device>-<name>/); re-run to resume")
    p.add_argument("--retry-errors", action="store_true", help="re-run configurations recorded as 'error'")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "maxbatch", help="largest batch that fits a memory budget, per trainer and depth (measured)"
    )
    p.add_argument("--memory-limit", required=True, help="budget, e.g. 8GiB (IEC units)")
    p.add_argument("--trainers", default="bp,ff,bp-inbackward", help="comma list (default %(default)s)")
    p.add_argument("--depths", default="2", help="comma list (default %(default)s)")
    p.add_argument(
        "--width", type=int, default=RunConfig().width, help="units per hidden layer (default %(default)s)"
    )
    add_shared_flags(p)
    p.add_argument(
        "--steps", type=positive_int, default=1, help="timed steps per probe (default %(default)s)"
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help="seconds per probe: over it counts as not fitting",
    )
    p.add_argument(
        "--max-batch", type=positive_int, default=2**22, help="largest batch tried (default %(default)s)"
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="stop when the bracket is within this fraction of the answer; 0 = exact (default %(default)s)",
    )
    p.add_argument("--out", help="results folder (default results/<date>-<device>-<name>/); re-run to resume")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_maxbatch)
    p = sub.add_parser("reproduce", help="re-run the memory and accuracy claims and write a report")
    p.add_argument(
        "--profile", default="quick", help="quick (CPU, < 20 min) or full (GPU, the paper's setting)"
    )
    p.add_argument("--device", default="auto", help="auto|cpu|cuda (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="folder holding MNIST raw files (else the usual search)")
    p.add_argument("--results", default="results", help="results root (default %(default)s)")
    p.add_argument("--reports", default="reports", help="reports root (default %(default)s)")
    p.add_argument("--name", default=None, help="run name (default <date>-<device>-<profile>)")
    p.add_argument("--yes", action="store_true", help="run the full profile on a CPU anyway")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser(
        "report", help="one self-contained HTML report (figures, tables, claims with verdicts)"
    )
    p.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="results folders, record JSON files or pytest-benchmark JSON files",
    )
    p.add_argument(
        "--out",
        help="the HTML file (default reports/<first RESULTS name>.html); figures also go to <name>_files/",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing (no claim summary)")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except FfbenchError as exc:
        print(f"ffbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a folder that cannot be written, a full disk, ...
        print(f"ffbench: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ffbench: interrupted; nothing half-written was kept", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
