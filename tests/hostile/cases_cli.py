"""Hostile flags and sweep files: each one line, exit 2, nothing written."""

from __future__ import annotations

import shlex
from pathlib import Path

from hostile import Case, cli, ffbench_sub

TINY = ("--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--quiet")
GRID = ("--trainers", "bp", "--depths", "1", "--widths", "16", "--batch-sizes", "4")
BIG = "1" + "0" * 400  # a 400-digit number


def _flag(command: str, name: str, issue: str, args: str, says: str) -> Case:
    extra = {
        "train": ("--out-file", "{tmp}/run.json"),
        "measure": ("--out-file", "{tmp}/m.json"),
        "sweep": (*GRID, "--out", "{tmp}/out"),
        "maxbatch": ("--memory-limit", "1GiB", "--trainers", "bp", "--depths", "1", "--out", "{tmp}/out"),
    }[command]
    argv = [a.replace("{big}", BIG) for a in shlex.split(args)]
    what = f"{command} {args}".replace("{big}", "<400 digits>")
    return Case("flags", f"{command}-{name}", what, cli(command, *TINY, *extra, *argv), 2, says, issue=issue)


def table(text: str) -> list[list[str]]:
    """Rows of a |-separated table, one per line."""
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


# command | case | issue | arguments (shell words; {big}: a 400-digit number) | what the line says
FLAGS = table("""
train | depth-0 | | --depth 0 | expected an integer >= 1
train | depth-negative | | --depth -1 | expected an integer >= 1
train | depth-text | | --depth two | expected an integer, got 'two'
train | depth-float | | --depth 1.5 | expected an integer
train | depth-huge | | --depth 10001 | at most 10000
train | width-0 | | --width 0 | expected an integer >= 1
train | width-huge | | --width 16777217 | at most 16777216
train | width-400-digits | | --width {big} | at most
train | batch-0 | | --batch-size 0 | expected an integer >= 1
train | batch-2**31 | | --batch-size 2147483648 | at most 2147483647
train | epochs-0 | | --epochs 0 | expected an integer >= 1
train | epochs-huge | | --epochs 1000001 | at most 1000000
train | lr-inf | 5 | --lr inf | expected a finite number > 0
train | lr-nan | | --lr nan | expected a finite number > 0
train | lr-negative | | --lr -1 | expected a finite number > 0
train | lr-0 | | --lr 0 | expected a finite number > 0
train | lr-text | | --lr fast | expected a number, got 'fast'
train | lr-1e400 | | --lr 1e400 | expected a finite number > 0
train | threshold-inf | 5 | --ff-threshold inf | expected a finite number > 0
train | momentum-negative | | --momentum -0.5 | expected a finite number >= 0
train | momentum-nan | | --momentum nan | expected a finite number >= 0
train | seed-negative | | --seed -1 | expected an integer >= 0
train | seed-2**70 | 7 | --seed 1180591620717411303424 | at most 9223372036854775807
train | seed-float | | --seed 1e3 | expected an integer
train | trainer-unknown | | --trainer magic | invalid choice: 'magic'
train | dataset-unknown | | --dataset imagenet | invalid choice: 'imagenet'
train | device-unknown | | --device tpu | invalid choice: 'tpu'
train | dtype-unknown | | --dtype float64 | invalid choice: 'float64'
train | optimizer-unknown | | --optimizer lbfgs | invalid choice: 'lbfgs'
train | threads-0 | | --threads 0 | expected an integer >= 1
train | threads-huge | | --threads 4097 | at most 4096
train | eval-chunk-0 | | --eval-chunk 0 | expected an integer >= 1
train | eval-chunk-2**31 | | --eval-chunk 2147483648 | at most 2147483647
train | val-size-negative | | --val-size -1 | expected an integer >= 0
train | eval-layers-0 | | --ff-eval-layers 0 | names a layer outside
train | eval-layers-text | | --ff-eval-layers abc | ff-eval-layers must be
train | eval-layers-empty | | --ff-eval-layers '' | ff-eval-layers must be
train | eval-layers-beyond | | --depth 2 --ff-eval-layers 3 | names a layer outside 1..2
train | segments-0 | | --checkpoint-segments 0 | expected an integer >= 1
train | micro-batch-0 | | --micro-batch 0 | expected rows (an integer >= 1
train | unknown-flag | | --depht 2 | unrecognized arguments
measure | warmup-negative | 5 | --warmup -1 | expected an integer >= 0
measure | steps-0 | | --steps 0 | expected an integer >= 1
measure | steps-huge | | --steps 10000001 | at most 1000000
measure | steps-text | | --steps x | expected an integer
sweep | timeout-inf | 5 | --timeout inf | expected a finite number > 0
sweep | timeout-nan | | --timeout nan | expected a finite number > 0
sweep | timeout-0 | | --timeout 0 | expected a finite number > 0
sweep | timeout-1e300 | | --timeout 1e300 | at most 10000000
sweep | steps-0 | | --steps 0 | expected an integer >= 1
sweep | limit-400-digits | 7 | --memory-limit {big} | larger than 1 EiB
sweep | limit-absurd | 7 | --memory-limit 99999999TiB | larger than 1 EiB
sweep | limit-1e400 | | --memory-limit 1e400 | cannot read size
sweep | limit-text | | --memory-limit lots | cannot read size 'lots'
sweep | limit-0 | | --memory-limit 0GiB | size must be positive
sweep | limit-negative | | --memory-limit=-5MiB | cannot read size
sweep | limit-half-byte | | --memory-limit 0.5 | size must be positive
sweep | trainers-unknown | | --trainers bp,magic | unknown trainer 'magic'
sweep | depths-0 | | --depths 1,0 | depths: expected positive integers
sweep | widths-text | | --widths wide | widths: expected positive integers
sweep | batches-negative | | --batch-sizes -4 | expected positive integers
sweep | widths-huge | 7 | --widths 99999999999 | at most 16777216
sweep | optimizers-unknown | | --optimizers adamw | unknown 'adamw'
sweep | axis-unknown | | --axis nofield=1 | expected FIELD=V1,V2
sweep | axis-inf | | --axis lr=inf | expected a finite number > 0
sweep | axis-depth-0 | | --axis depth=0 | expected an integer >= 1
sweep | seed-2**70 | 7 | --seed 1180591620717411303424 | at most
sweep | sweep-file-missing | | --sweep-file {tmp}/nope.toml | cannot read sweep file
maxbatch | limit-400-digits | 7 | --memory-limit {big} | larger than 1 EiB
maxbatch | limit-absurd | 7 | --memory-limit 99999999TiB | larger than 1 EiB
maxbatch | tolerance-1 | | --tolerance 1 | tolerance must be in [0, 1)
maxbatch | tolerance-nan | | --tolerance nan | tolerance
maxbatch | tolerance-negative | | --tolerance -0.1 | tolerance
maxbatch | max-batch-0 | | --max-batch 0 | expected an integer >= 1
maxbatch | timeout-inf | | --timeout inf | expected a finite number > 0
maxbatch | steps-negative | | --steps -1 | expected an integer >= 0
maxbatch | budget-unknown | | --budget magic | invalid choice
maxbatch | trainers-unknown | | --trainers magic | unknown trainer
maxbatch | depths-0 | | --depths 0 | expected positive integers
sweep | executor-unknown | | --executor magic | invalid choice: 'magic'
sweep | slurm-option-without-slurm | | --slurm-option account=a | goes with --executor slurm
sweep | ray-cpus-0 | | --executor ray --ray-cpus-per-task 0 | expected an integer >= 1
sweep | slurm-option-no-value | | --executor slurm --slurm-option account | expects KEY=VALUE
maxbatch | executor-unknown | | --executor magic | invalid choice: 'magic'
""")


def _out_cases() -> list[Case]:
    """Output paths that cannot be written, each refused before any work."""
    mk_dir = lambda tmp: (tmp / "adir").mkdir()  # noqa: E731
    mk_file = lambda tmp: (tmp / "afile").write_text("precious\n")  # noqa: E731

    def foreign(tmp: Path) -> None:
        (tmp / "thesis").mkdir()
        (tmp / "thesis" / "chapter1.tex").write_text("precious\n")

    bad = "{tmp}/" + "caf\udce9.json"  # a Latin-1 name: not UTF-8
    return [
        Case("flags", "train-out-file-folder", "train --out-file an existing folder",
             cli("train", *TINY, "--out-file", "{tmp}/adir"), 2, "is a folder", setup=mk_dir),
        Case("flags", "train-out-file-name", "train --out a file name (--out is a folder)",
             cli("train", *TINY, "--out", "{tmp}/run.json"), 2, "use --out-file"),
        Case("flags", "train-out-existing-file", "train --out an existing file",
             cli("train", *TINY, "--out", "{tmp}/afile"), 2, "is a file", setup=mk_file),
        Case("flags", "train-out-under-file", "train --out-file a path under a file",
             cli("train", *TINY, "--out-file", "{tmp}/afile/run.json"), 2, "cannot write", setup=mk_file),
        Case("flags", "train-out-not-utf8", "train --out-file a non-UTF-8 name",
             cli("train", *TINY, "--out-file", bad), 2, "not UTF-8", issue="7"),
        Case("flags", "measure-out-folder", "measure --out-file an existing folder",
             cli("measure", *TINY, "--out-file", "{tmp}/adir"), 2, "is a folder", setup=mk_dir),
        Case("flags", "measure-out-and-out-file", "measure --out DIR --out-file FILE (one or the other)",
             cli("measure", *TINY, "--out", "{tmp}/d", "--out-file", "{tmp}/m.json"), 2, "not allowed with"),
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
             cli("report", "{tmp}/nothing", "--out-file", "{tmp}/r.html"), 2, "does not exist"),
        Case("flags", "report-out-not-html", "report --out-file x.txt",
             cli("report", "{tmp}/adir", "--out-file", "{tmp}/r.txt"), 2, "give an .html file name", setup=mk_dir),
        Case("flags", "report-out-folder", "report --out-file an existing folder named .html",
             cli("report", "{tmp}/x.html", "--out-file", "{tmp}/x.html"), 2, "is a folder",
             setup=lambda tmp: (tmp / "x.html").mkdir()),
        Case("flags", "report-readme-missing", "report --readme a file that does not exist",
             cli("report", "{tmp}/adir", "--readme", "{tmp}/README.md", "--out-file", "{tmp}/r.html"), 2,
             "--readme", setup=mk_dir),
        Case("flags", "report-empty-folder", "report of an empty folder",
             cli("report", "{tmp}/adir", "--out-file", "{tmp}/r.html"), 2, "nothing to report", setup=mk_dir),
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
    return [_flag(*row) for row in FLAGS] + _out_cases()


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
