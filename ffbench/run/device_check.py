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

then the report of everything measured. `--tiny` shrinks every phase to seconds, for a
rehearsal on CPU (`--device cpu --tiny`), which the tests run.
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


def pack(out: Path, tar_dir: Path) -> Path:
    """Everything under `out` into one tar file (the device tool returns few files)."""
    tar_dir.mkdir(parents=True, exist_ok=True)
    path = tar_dir / TAR_NAME
    with tarfile.open(path, "w:gz") as tar:
        tar.add(out, arcname=out.name)
    return path


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
    args = p.parse_args(argv)
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
    (out / "device-run.json").write_text(json.dumps({"device": args.device, "phases": done}, indent=2))
    tar = pack(out, Path(args.tar_dir) if args.tar_dir else out.parent)
    print(f"packed {tar}", flush=True)
    return 0 if all(d["outcome"] == "ok" or d["outcome"].startswith("skipped") for d in done) else 1


if __name__ == "__main__":
    sys.exit(main())
