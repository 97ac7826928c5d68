"""Hostile flags and sweep files: each one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

from hostile import Case, cli, ffbench_sub

TINY = ("--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--quiet")
GRID = ("--trainers", "bp", "--depths", "1", "--widths", "16", "--batch-sizes", "4")
BIG = "1" + "0" * 400  # a 400-digit number


def _flag(command: str, name: str, args: tuple, says: str, what: str, issue: str = "", exit: int = 2) -> Case:
    extra = {
        "train": ("--out", "{tmp}/run.json"),
        "measure": ("--out", "{tmp}/m.json"),
        "sweep": (*GRID, "--out", "{tmp}/out"),
        "maxbatch": ("--trainers", "bp", "--depths", "1", "--out", "{tmp}/out"),
    }.get(command, ())
    base = TINY if command in ("train", "measure", "sweep", "maxbatch") else ()
    return Case(
        "flags", f"{command}-{name}", what, cli(command, *base, *extra, *args), exit, says, issue=issue
    )


TRAIN_FLAGS = [
    ("depth-0", ("--depth", "0"), "expected an integer >= 1", "--depth 0"),
    ("depth-negative", ("--depth", "-1"), "expected an integer >= 1", "--depth -1"),
    ("depth-text", ("--depth", "two"), "expected an integer, got 'two'", "--depth two"),
    ("depth-float", ("--depth", "1.5"), "expected an integer", "--depth 1.5"),
    ("depth-huge", ("--depth", "10001"), "at most 10000", "--depth 10001"),
    ("width-0", ("--width", "0"), "expected an integer >= 1", "--width 0"),
    ("width-huge", ("--width", str(2**24 + 1)), "at most 16777216", "--width 2**24+1"),
    ("width-400-digits", ("--width", BIG), "at most", "--width with 400 digits"),
    ("batch-0", ("--batch-size", "0"), "expected an integer >= 1", "--batch-size 0"),
    ("batch-2**31", ("--batch-size", str(2**31)), "at most 2147483647", "--batch-size 2**31"),
    ("epochs-0", ("--epochs", "0"), "expected an integer >= 1", "--epochs 0"),
    ("epochs-huge", ("--epochs", "1000001"), "at most 1000000", "--epochs 1000001"),
    ("lr-inf", ("--lr", "inf"), "expected a finite number > 0", "--lr inf"),
    ("lr-nan", ("--lr", "nan"), "expected a finite number > 0", "--lr nan"),
    ("lr-negative", ("--lr", "-1"), "expected a finite number > 0", "--lr -1"),
    ("lr-0", ("--lr", "0"), "expected a finite number > 0", "--lr 0"),
    ("lr-text", ("--lr", "fast"), "expected a number, got 'fast'", "--lr fast"),
    ("lr-1e400", ("--lr", "1e400"), "expected a finite number > 0", "--lr 1e400 (overflows to inf)"),
    ("threshold-inf", ("--ff-threshold", "inf"), "expected a finite number > 0", "--ff-threshold inf"),
    ("momentum-negative", ("--momentum", "-0.5"), "expected a finite number >= 0", "--momentum -0.5"),
    ("momentum-nan", ("--momentum", "nan"), "expected a finite number >= 0", "--momentum nan"),
    ("seed-negative", ("--seed", "-1"), "expected an integer >= 0", "--seed -1"),
    ("seed-2**70", ("--seed", str(2**70)), "at most 9223372036854775807", "--seed 2**70"),
    ("seed-float", ("--seed", "1e3"), "expected an integer", "--seed 1e3"),
    ("trainer-unknown", ("--trainer", "magic"), "invalid choice: 'magic'", "--trainer magic"),
    ("dataset-unknown", ("--dataset", "imagenet"), "invalid choice: 'imagenet'", "--dataset imagenet"),
    ("device-unknown", ("--device", "tpu"), "invalid choice: 'tpu'", "--device tpu"),
    ("dtype-unknown", ("--dtype", "float64"), "invalid choice: 'float64'", "--dtype float64"),
    ("optimizer-unknown", ("--optimizer", "lbfgs"), "invalid choice: 'lbfgs'", "--optimizer lbfgs"),
    ("threads-0", ("--threads", "0"), "expected an integer >= 1", "--threads 0"),
    ("threads-huge", ("--threads", "4097"), "at most 4096", "--threads 4097"),
    ("eval-chunk-0", ("--eval-chunk", "0"), "expected an integer >= 1", "--eval-chunk 0"),
    ("eval-chunk-2**31", ("--eval-chunk", str(2**31)), "at most 2147483647", "--eval-chunk 2**31"),
    ("val-size-negative", ("--val-size", "-1"), "expected an integer >= 0", "--val-size -1"),
    ("eval-layers-0", ("--ff-eval-layers", "0"), "names a layer outside", "--ff-eval-layers 0"),
    ("eval-layers-text", ("--ff-eval-layers", "abc"), "ff-eval-layers must be", "--ff-eval-layers abc"),
    ("eval-layers-empty", ("--ff-eval-layers", ""), "ff-eval-layers must be", "--ff-eval-layers ''"),
    (
        "eval-layers-beyond",
        ("--ff-eval-layers", "3"),
        "names a layer outside 1..2",
        "--ff-eval-layers 3 at depth 2",
    ),
    ("segments-0", ("--checkpoint-segments", "0"), "expected an integer >= 1", "--checkpoint-segments 0"),
    ("micro-batch-0", ("--micro-batch", "0"), "expected an integer >= 1", "--micro-batch 0"),
    ("unknown-flag", ("--depht", "2"), "unrecognized arguments", "a misspelt flag"),
]
MEASURE_FLAGS = [
    ("warmup-negative", ("--warmup", "-1"), "expected an integer >= 0", "--warmup -1", "5"),
    ("steps-0", ("--steps", "0"), "expected an integer >= 1", "--steps 0", ""),
    ("steps-huge", ("--steps", "10000001"), "at most 1000000", "--steps 10**7", ""),
    ("steps-text", ("--steps", "x"), "expected an integer", "--steps x", ""),
]
SWEEP_FLAGS = [
    ("timeout-inf", ("--timeout", "inf"), "expected a finite number > 0", "--timeout inf", "5"),
    ("timeout-nan", ("--timeout", "nan"), "expected a finite number > 0", "--timeout nan", ""),
    ("timeout-0", ("--timeout", "0"), "expected a finite number > 0", "--timeout 0", ""),
    ("timeout-1e300", ("--timeout", "1e300"), "at most 10000000", "--timeout 1e300 (timer overflow)", ""),
    ("steps-0", ("--steps", "0"), "expected an integer >= 1", "--steps 0", ""),
    ("limit-400-digits", ("--memory-limit", BIG), "larger than 1 EiB", "--memory-limit of 400 digits", "7"),
    (
        "limit-absurd",
        ("--memory-limit", "99999999TiB"),
        "larger than 1 EiB",
        "--memory-limit 99999999TiB",
        "7",
    ),
    ("limit-1e400", ("--memory-limit", "1e400"), "cannot read size", "--memory-limit 1e400", ""),
    ("limit-text", ("--memory-limit", "lots"), "cannot read size 'lots'", "--memory-limit lots", ""),
    ("limit-0", ("--memory-limit", "0GiB"), "size must be positive", "--memory-limit 0GiB", ""),
    ("limit-negative", ("--memory-limit=-5MiB",), "cannot read size", "--memory-limit -5MiB", ""),
    ("limit-half-byte", ("--memory-limit", "0.5"), "size must be positive", "--memory-limit 0.5", ""),
    ("trainers-unknown", ("--trainers", "bp,magic"), "unknown trainer 'magic'", "--trainers bp,magic", ""),
    ("depths-0", ("--depths", "1,0"), "depths: expected positive integers", "--depths 1,0", ""),
    ("widths-text", ("--widths", "wide"), "widths: expected positive integers", "--widths wide", ""),
    ("batches-negative", ("--batch-sizes", "-4"), "expected positive integers", "--batch-sizes -4", ""),
    ("widths-huge", ("--widths", "99999999999"), "at most 16777216", "--widths 99999999999", "7"),
    ("optimizers-unknown", ("--optimizers", "adamw"), "unknown 'adamw'", "--optimizers adamw", ""),
    ("axis-unknown", ("--axis", "nofield=1"), "expected FIELD=V1,V2", "--axis nofield=1", ""),
    ("axis-inf", ("--axis", "lr=inf"), "expected a finite number > 0", "--axis lr=inf", ""),
    ("axis-depth-0", ("--axis", "depth=0"), "expected an integer >= 1", "--axis depth=0", ""),
    ("seed-2**70", ("--seed", str(2**70)), "at most", "--seed 2**70", "7"),
    (
        "sweep-file-missing",
        ("--sweep-file", "{tmp}/nope.toml"),
        "cannot read sweep file",
        "a missing sweep file",
        "",
    ),
]
MAXBATCH_FLAGS = [
    ("limit-400-digits", ("--memory-limit", BIG), "larger than 1 EiB", "--memory-limit of 400 digits", "7"),
    (
        "limit-absurd",
        ("--memory-limit", "99999999TiB"),
        "larger than 1 EiB",
        "--memory-limit 99999999TiB",
        "7",
    ),
    (
        "tolerance-1",
        ("--memory-limit", "1GiB", "--tolerance", "1"),
        "tolerance must be in [0, 1)",
        "--tolerance 1",
        "",
    ),
    ("tolerance-nan", ("--memory-limit", "1GiB", "--tolerance", "nan"), "tolerance", "--tolerance nan", ""),
    (
        "tolerance-negative",
        ("--memory-limit", "1GiB", "--tolerance", "-0.1"),
        "tolerance",
        "--tolerance -0.1",
        "",
    ),
    (
        "max-batch-0",
        ("--memory-limit", "1GiB", "--max-batch", "0"),
        "expected an integer >= 1",
        "--max-batch 0",
        "",
    ),
    (
        "timeout-inf",
        ("--memory-limit", "1GiB", "--timeout", "inf"),
        "expected a finite number > 0",
        "--timeout inf",
        "",
    ),
    (
        "steps-negative",
        ("--memory-limit", "1GiB", "--steps", "-1"),
        "expected an integer >= 0",
        "--steps -1",
        "",
    ),
    (
        "budget-unknown",
        ("--memory-limit", "1GiB", "--budget", "magic"),
        "invalid choice",
        "--budget magic",
        "",
    ),
    (
        "trainers-unknown",
        ("--memory-limit", "1GiB", "--trainers", "magic"),
        "unknown trainer",
        "--trainers magic",
        "",
    ),
    ("depths-0", ("--memory-limit", "1GiB", "--depths", "0"), "expected positive integers", "--depths 0", ""),
]


def _out_cases() -> list[Case]:
    """Output paths that cannot be written, each refused before any work."""
    mk_dir = lambda tmp: (tmp / "adir").mkdir()  # noqa: E731
    mk_file = lambda tmp: (tmp / "afile").write_text("precious\n")  # noqa: E731

    def foreign(tmp: Path) -> None:
        (tmp / "thesis").mkdir()
        (tmp / "thesis" / "chapter1.tex").write_text("precious\n")

    bad = "{tmp}/" + "caf\udce9.json"  # a Latin-1 name: not UTF-8
    return [
        Case("flags", "train-out-folder", "train --out an existing folder",
             cli("train", *TINY, "--out", "{tmp}/adir"), 2, "is a folder", setup=mk_dir),
        Case("flags", "train-out-under-file", "train --out a path under a file",
             cli("train", *TINY, "--out", "{tmp}/afile/run.json"), 2, "cannot write", setup=mk_file),
        Case("flags", "train-out-not-utf8", "train --out a non-UTF-8 name",
             cli("train", *TINY, "--out", bad), 2, "not UTF-8", issue="7"),
        Case("flags", "measure-out-folder", "measure --out an existing folder",
             cli("measure", *TINY, "--out", "{tmp}/adir"), 2, "is a folder", setup=mk_dir),
        Case("flags", "sweep-out-file", "sweep --out an existing file",
             cli("sweep", *TINY, *GRID, "--out", "{tmp}/afile"), 2, "is a file", setup=mk_file),
        Case("flags", "sweep-out-under-file", "sweep --out a folder under a file",
             cli("sweep", *TINY, *GRID, "--out", "{tmp}/afile/out"), 2, "not a folder", setup=mk_file),
        Case("flags", "sweep-out-foreign", "sweep --out a folder of someone else's files",
             cli("sweep", *TINY, *GRID, "--out", "{tmp}/thesis"), 2, "not an ffbench results folder", setup=foreign),
        Case("flags", "sweep-out-not-utf8", "sweep --out a non-UTF-8 name (crashed after writing)",
             cli("sweep", *TINY, *GRID, "--out", "{tmp}/r\udce9s"), 2, "not UTF-8", issue="7"),
        Case("flags", "maxbatch-out-file", "maxbatch --out an existing file",
             cli("maxbatch", *TINY, "--memory-limit", "1GiB", "--out", "{tmp}/afile"), 2, "is a file", setup=mk_file),
        Case("flags", "report-missing", "report of a path that does not exist",
             cli("report", "{tmp}/nothing", "--out", "{tmp}/r.html"), 2, "does not exist"),
        Case("flags", "report-out-not-html", "report --out x.txt",
             cli("report", "{tmp}/adir", "--out", "{tmp}/r.txt"), 2, "give an .html file name", setup=mk_dir),
        Case("flags", "report-out-folder", "report --out an existing folder named .html",
             cli("report", "{tmp}/x.html", "--out", "{tmp}/x.html"), 2, "is a folder",
             setup=lambda tmp: (tmp / "x.html").mkdir()),
        Case("flags", "report-readme-missing", "report --readme a file that does not exist",
             cli("report", "{tmp}/adir", "--readme", "{tmp}/README.md", "--out", "{tmp}/r.html"), 2,
             "--readme", setup=mk_dir),
        Case("flags", "report-empty-folder", "report of an empty folder",
             cli("report", "{tmp}/adir", "--out", "{tmp}/r.html"), 2, "nothing to report", setup=mk_dir),
        Case("flags", "reproduce-profile", "reproduce --profile magic",
             cli("reproduce", "--profile", "magic"), 2, "invalid choice"),
        Case("flags", "reproduce-reports-file", "reproduce --reports an existing file (failed only at the end)",
             ffbench_sub("reproduce", "--device", "cpu", "--results", "{tmp}/res", "--reports", "{tmp}/afile",
                         "--quiet", timeout=120), 2, "afile", setup=mk_file, issue="6"),
        Case("flags", "reproduce-results-file", "reproduce --results an existing file",
             ffbench_sub("reproduce", "--device", "cpu", "--results", "{tmp}/afile", "--quiet", timeout=120), 2,
             "afile", setup=mk_file),
        Case("flags", "reproduce-device", "reproduce --device tpu",
             cli("reproduce", "--device", "tpu"), 2, "invalid choice"),
        Case("flags", "no-command", "ffbench with no command", cli(), 2, "required"),
        Case("flags", "unknown-command", "ffbench frobnicate", cli("frobnicate"), 2, "invalid choice"),
        Case("flags", "train-data-dir-missing", "train --data-dir a folder that does not exist (was ignored)",
             cli("train", "--quiet", "--dataset", "mnist", "--data-dir", "{tmp}/nowhere"), 2, "does not exist",
             issue="5"),
        Case("flags", "train-data-dir-file", "train --data-dir a file",
             cli("train", "--quiet", "--dataset", "mnist", "--data-dir", "{tmp}/afile"), 2, "is not a folder",
             setup=mk_file),
    ]  # fmt: skip


def flag_cases() -> list[Case]:
    cases = [_flag("train", n, a, s, f"train {w}") for n, a, s, w in TRAIN_FLAGS]
    cases += [_flag("measure", n, a, s, f"measure {w}", i) for n, a, s, w, i in MEASURE_FLAGS]
    cases += [_flag("sweep", n, a, s, f"sweep {w}", i) for n, a, s, w, i in SWEEP_FLAGS]
    cases += [_flag("maxbatch", n, a, s, f"maxbatch {w}", i) for n, a, s, w, i in MAXBATCH_FLAGS]
    return cases + _out_cases()


# -- sweep files ------------------------------------------------------------------------------

SWEEP_FILES = [
    ("seed-text", "s.toml", 'seed = "abc"\n', "seed must be an integer", "5"),
    ("threads-bool", "s.toml", "threads = true\n", "threads must be an integer >= 1", "5"),
    ("limit-bool", "s.toml", "memory_limit = true\n", "memory_limit must be a size", "5"),
    ("timeout-bool", "s.toml", "timeout = true\n", "timeout must be a finite number", "5"),
    ("steps-bool", "s.toml", "steps = true\n", "steps must be an integer", ""),
    ("steps-float", "s.toml", "steps = 1.5\n", "steps must be an integer", ""),
    ("steps-negative", "s.toml", "steps = -1\n", "steps must be an integer >= 0", ""),
    ("timeout-inf", "s.toml", "timeout = inf\n", "timeout must be a finite number", "5"),
    ("timeout-nan", "s.toml", "timeout = nan\n", "timeout must be a finite number", ""),
    ("timeout-0", "s.toml", "timeout = 0\n", "timeout must be a finite number > 0", ""),
    ("lr-inf", "s.toml", "lr = inf\n", "lr must be a finite number > 0", ""),
    ("lr-nan", "s.toml", "lr = nan\n", "lr must be a finite number > 0", ""),
    ("eval-layers-int", "s.toml", "ff_eval_layers = 5\n", "ff-eval-layers must be text", "7"),
    ("data-dir-int", "s.toml", "data_dir = 5\n", "data-dir must be text", "7"),
    ("data-dir-missing", "s.toml", 'data_dir = "/nonexistent/mnist"\n', "does not exist", "5"),
    ("limit-absurd", "s.toml", 'memory_limit = "99999999TiB"\n', "larger than 1 EiB", "7"),
    ("limit-float", "s.toml", "memory_limit = 1e300\n", "memory_limit must be a size", ""),
    ("limit-negative", "s.toml", "memory_limit = -5\n", "size must be positive", ""),
    ("widths-huge-float", "s.toml", "widths = [1e30]\n", "widths: expected positive integers", ""),
    ("trainers-int", "s.toml", "trainers = [5]\n", "unknown trainer 5", ""),
    ("depths-bool", "s.toml", "depths = [true]\n", "depths: expected positive integers", ""),
    ("depths-empty", "s.toml", "depths = []\n", "depths: empty list", ""),
    ("batches-text", "s.toml", 'batch_sizes = "a,b"\n', "batch-sizes: expected positive integers", ""),
    ("unknown-key", "s.toml", "lerning_rate = 0.1\n", "unknown key 'lerning_rate'", ""),
    ("eval-chunk-0", "s.toml", "eval_chunk = 0\n", "eval-chunk must be an integer >= 1", ""),
    ("val-size-negative", "s.toml", "val_size = -1\n", "val-size must be an integer >= 0", ""),
    ("device-unknown", "s.toml", 'device = "tpu"\n', "unknown device 'tpu'", ""),
    ("dtype-int", "s.toml", "dtype = 5\n", "unknown dtype 5", ""),
    ("optimizers-unknown", "s.toml", 'optimizers = ["adamw"]\n', "unknown 'adamw'", ""),
    ("seed-2**70", "s.json", '{"seed": 1180591620717411303424}', "out of range", "7"),
    ("toml-invalid", "s.toml", "trainers = [bp", "not valid TOML", ""),
    ("json-infinity", "s.json", '{"lr": Infinity}', "not valid JSON", "7"),
    ("json-1e30", "s.json", '{"widths": [1e30]}', "not valid JSON", "7"),
    ("json-deep", "s.json", "[" * 100_000 + "]" * 100_000, "not valid JSON", "7"),
    ("json-list", "s.json", "[1, 2]", "must hold a table", ""),
    ("json-truncated", "s.json", '{"trainers": ["bp"', "not valid JSON", ""),
]


def _file_case(name: str, file: str, body: str | bytes, says: str, issue: str) -> Case:
    def setup(tmp: Path) -> None:
        path = tmp / file
        path.write_bytes(body if isinstance(body, bytes) else body.encode("utf-8"))

    short = body if isinstance(body, bytes) or len(body) < 60 else body[:20] + "... (100k-deep)"
    return Case(
        "files",
        name,
        f"sweep file {file}: {short!r}".replace("\\n", ""),
        cli("sweep", *TINY, *GRID, "--sweep-file", f"{{tmp}}/{file}", "--out", "{tmp}/out"),
        2,
        says,
        setup=setup,
        issue=issue,
    )


def file_cases() -> list[Case]:
    cases = [_file_case(*spec) for spec in SWEEP_FILES]
    cases.append(_file_case("not-utf8", "s.toml", b"seed = 1\n\xff\xfe = 2\n", "not UTF-8", "7"))
    # a sweep file's grid key overridden on the command line is still refused (checked where it enters)
    return cases
