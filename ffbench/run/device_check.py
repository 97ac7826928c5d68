"""The GPU run in one command, with its own deadline: `python -m ffbench.run.device_check`.

A lent GPU comes with minutes, not hours: this runs the CUDA checks and measurements in
priority order, each phase a subprocess bounded by the time left, and packs everything it
wrote into one tar file (`ffbench-device-run.tar.gz`) even when the deadline cuts a phase
short (records are written one by one, atomically, so a cut phase keeps what it finished).

Phases, in order (each skipped when less than its minimum time is left):

1. `pytest -m cuda`: every CUDA test (none may skip on a GPU);
2. a CUDA sweep at width 2000: bp, bp-checkpoint, bp-inbackward, bp-local, ff, ff-frugal,
   ff-summed x depths 2/4/8/16 x batches 1024/5000 -- tensor-level and allocator peaks side
   by side, the analytic model beside both;
3. `maxbatch` on the GPU under a process budget (the allocator capped) for bp and ff-frugal
   (and ff) at depths 4 and 16;
4. FF 4 x 2000 on MNIST for as many epochs as fit (Hinton: 1.36 % test error after 60);
5. a bfloat16 column for bp and ff at one configuration;

then the report of everything measured, and the allocator check: for every sweep and
bfloat16 record, the predicted allocated peak (`cuda_allocated_predicted_bytes`,
ffbench/cuda_allocator.py) beside `torch.cuda.max_memory_allocated`'s
(`cuda_peak_allocated_bytes`), their difference in bytes and as a ratio, explained where the
difference is a whole number of cuBLAS/cuBLASLt workspaces or a sign the rule allows, with
step time and NVML energy per step beside them (`prediction-vs-allocator.json`, also in
`device-run.json`). `--revision` names the code that ran (the copied tree may have no git
history): it is recorded in `device-run.json` and in every record's environment when git
cannot say. `--tiny` shrinks every phase to seconds, for a rehearsal on CPU (`--device cpu
--tiny`), which the tests run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import cuda_allocator
from ..environment import REVISION_ENV

TAR_NAME = "ffbench-device-run.tar.gz"


@dataclass(frozen=True)
class Phase:
    name: str
    argv: list[str]  # after `python -m`
    min_seconds: float  # not started with less time left


SWEEP_TRAINERS = ("bp", "bp-checkpoint", "bp-inbackward", "bp-local", "ff", "ff-frugal", "ff-summed")


def phases(out: Path, device: str, data_dir: str | None, tiny: bool) -> list[Phase]:
    """The phases for `device`; `tiny` for a CPU rehearsal of the same commands."""
    width, depths, batches = ("32", "1", "16") if tiny else ("2000", "2,4,8,16", "1024,5000")
    common = ["--device", device] + (["--threads", "1"] if device == "cpu" else [])
    synthetic = ["--dataset", "synthetic", "--quiet", *common]
    sweep = ["--trainers", "bp,ff-frugal"] if tiny else ["--trainers", ",".join(SWEEP_TRAINERS)]
    sweep += ["--depths", depths, "--widths", width, "--batch-sizes", batches, "--steps", "2"]
    maxbatch = ["--memory-limit", "64MiB" if tiny else "8GiB", "--budget", "process", "--width", width]
    maxbatch += ["--trainers", "ff-frugal", "--depths", "1", "--max-batch", "32", "--tolerance", "0.5"] if tiny else [
        "--trainers", "bp,ff,ff-frugal", "--depths", "4,16"]  # fmt: skip
    net = (
        ["--depth", "1", "--width", "32", "--dataset", "digits"]
        if tiny
        else ["--depth", "4", "--width", "2000"]
    )
    fit = ["--trainer", "ff", *net, "--epochs", "1" if tiny else "60", "--lr", "5e-3"]
    fit += (["--data-dir", data_dir] if data_dir else []) + [
        "--out-file",
        str(out / "train" / "ff-accuracy.json"),
    ]
    bf16 = ["--trainers", "bp,ff", "--depths", "2", "--widths", width, "--batch-sizes", batches.split(",")[0]]
    bf16 += ["--dtype", "bfloat16", "--steps", "2"]
    return [
        Phase("cuda-tests", ["pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests"], 30),
        Phase("sweep", ["ffbench", "sweep", *sweep, "--out", str(out / "sweep"), *synthetic], 60),
        Phase("maxbatch", ["ffbench", "maxbatch", *maxbatch, "--out", str(out / "maxbatch"), *synthetic], 60),
        Phase("accuracy", ["ffbench", "train", *fit, "--quiet", *common], 60),
        Phase("bfloat16", ["ffbench", "sweep", *bf16, "--out", str(out / "bfloat16"), *synthetic], 30),
    ]


def run_phase(phase: Phase, seconds: float, log: Path) -> dict:
    """Run one phase bounded by `seconds`; returns what happened."""
    started = time.monotonic()
    with open(log, "w") as f:
        try:
            proc = subprocess.run([sys.executable, "-m", *phase.argv], stdout=f, stderr=subprocess.STDOUT,
                                  timeout=seconds, env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
            outcome = "ok" if proc.returncode == 0 else f"exit status {proc.returncode}"
        except subprocess.TimeoutExpired:
            outcome = f"cut at the deadline after {seconds:.0f} s (finished records kept)"
    return {"phase": phase.name, "outcome": outcome, "seconds": time.monotonic() - started, "log": log.name}


def _report(out: Path) -> dict:
    folders = [p for p in (out / "sweep", out / "maxbatch", out / "train", out / "bfloat16") if p.exists()]
    if not folders:
        return {"phase": "report", "outcome": "nothing to report"}
    argv = ["ffbench", "report", *map(str, folders), "--out-file", str(out / "report.html"), "--quiet"]
    proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=300)
    return {"phase": "report", "outcome": "ok" if proc.returncode == 0 else proc.stderr.strip()[-300:]}


def explain(predicted: int, measured: int | None, capability: tuple[int, int]) -> str:
    """Why the allocator's peak differs from the prediction, where the rule can say."""
    if measured is None:
        return "not measured: the record has no CUDA allocator figure (no GPU ran it)"
    diff = measured - predicted
    if diff == 0:
        return "equal to the byte"
    cublas, lt = cuda_allocator.workspace_sizes(capability)
    for n in range(-2, 3):
        for m in range(-2, 3):
            if (n or m) and diff == n * cublas + m * lt:
                return (
                    f"a whole number of workspaces: {n:+d} cuBLAS ({cublas:,} B) and {m:+d} cuBLASLt "
                    f"({lt:,} B) against the rule's count"
                )
    if diff > 0:
        return (
            "measured above the prediction (the rule is a lower bound): large blocks handed out "
            "unsplit (remainder <= 1 MiB), cuDNN workspaces or allocations the tracker does not see"
        )
    return "measured below the prediction: the rule over-counts here (workspaces or host scalars)"


def compare(out: Path, capability: tuple[int, int] | None = None) -> list[dict]:
    """Predicted vs measured allocated peak, with time and energy, for every measure record
    under `out`'s sweep and bfloat16 folders (sorted by file name)."""
    cap = capability or cuda_allocator.ASSUMED_CAPABILITY
    rows = []
    for folder in ("sweep", "bfloat16"):
        for path in sorted((out / folder / "records").glob("*.json")):
            record = json.loads(path.read_text())
            m = record.get("metrics") or {}
            predicted = m.get("cuda_allocated_predicted_bytes")
            if record.get("kind") != "measure" or predicted is None:
                continue
            measured = m.get("cuda_peak_allocated_bytes")
            rows.append({
                "record": f"{folder}/{path.name}",
                "predicted_bytes": predicted,
                "analytic_predicted_bytes": m.get("analytic_cuda_allocated_predicted_bytes"),
                "measured_bytes": measured,
                "difference_bytes": None if measured is None else measured - predicted,
                "ratio": None if measured is None else measured / predicted,
                "explanation": explain(predicted, measured, cap),
                "tensor_peak_bytes": m.get("tensor_peak_bytes"),
                "step_seconds_median": m.get("step_seconds_median"),
                "energy_joules_per_step": m.get("energy_joules_per_step"),
                "energy_unavailable": m.get("energy_unavailable"),
            })  # fmt: skip
    return rows


def comparison_table(rows: list[dict]) -> str:
    """The comparison as text: one line per record (MiB = 2^20 B; the difference in bytes)."""
    head = f"{'record':<60}{'predicted MiB':>14}{'allocator MiB':>14}{'difference B':>16}{'ratio':>8}"
    lines = [head]
    for r in rows:
        measured = "-" if r["measured_bytes"] is None else f"{r['measured_bytes'] / 2**20:.2f}"
        diff = "-" if r["difference_bytes"] is None else f"{r['difference_bytes']:+,}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.4f}"
        lines.append(
            f"{r['record']:<60}{r['predicted_bytes'] / 2**20:>14.2f}{measured:>14}{diff:>16}{ratio:>8}"
        )
        lines.append(f"    {r['explanation']}")
    return "\n".join(lines)


def _capability(device: str) -> tuple[int, int] | None:
    if device != "cuda":
        return None
    import torch

    return cuda_allocator.device_capability(torch.device("cuda", 0)) if torch.cuda.is_available() else None


def pack(out: Path, tar_dir: Path) -> Path:
    """Everything under `out` into one tar file (the device tool returns few files)."""
    tar_dir.mkdir(parents=True, exist_ok=True)
    path = tar_dir / TAR_NAME
    with tarfile.open(path, "w:gz") as tar:
        tar.add(out, arcname=out.name)
    return path


def _revision(text: str) -> str:
    if not text.strip() or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a revision without spaces, got {text!r}")
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ffbench.run.device_check", description=__doc__.splitlines()[0]
    )
    p.add_argument("--out", required=True, help="folder for everything the run writes")
    p.add_argument("--tar-dir", help="where the tar file goes (default: --out's parent)")
    p.add_argument(
        "--deadline", type=float, default=360, help="seconds for the whole run (default %(default)s)"
    )
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="default %(default)s")
    p.add_argument("--data-dir", help="folder holding MNIST raw files (accuracy phase)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: a rehearsal on CPU")
    p.add_argument(
        "--revision",
        required=True,
        type=_revision,
        help="the code's revision (e.g. `git rev-parse HEAD` where it was copied from): recorded in "
        "device-run.json and in each record's environment when the tree has no git history",
    )
    args = p.parse_args(argv)
    os.environ[REVISION_ENV] = args.revision  # the phases' records (ffbench.environment)
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + args.deadline
    done = []
    for phase in phases(out, args.device, args.data_dir, args.tiny):
        left = end - time.monotonic() - 20  # keep time to report and pack
        if left < phase.min_seconds:
            done.append({"phase": phase.name, "outcome": f"skipped: {left:.0f} s left"})
            continue
        done.append(run_phase(phase, left, out / "logs" / f"{phase.name}.log"))
        print(json.dumps(done[-1]), flush=True)
    done.append(_report(out))
    rows = compare(out, _capability(args.device))
    (out / "prediction-vs-allocator.json").write_text(json.dumps(rows, indent=2))
    print(comparison_table(rows), flush=True)
    summary = {
        "device": args.device,
        "revision": args.revision,
        "phases": done,
        "prediction_vs_allocator": rows,
    }
    (out / "device-run.json").write_text(json.dumps(summary, indent=2))
    tar = pack(out, Path(args.tar_dir) if args.tar_dir else out.parent)
    print(f"packed {tar}", flush=True)
    return 0 if all(d["outcome"] == "ok" or d["outcome"].startswith("skipped") for d in done) else 1


if __name__ == "__main__":
    sys.exit(main())
