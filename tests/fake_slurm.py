"""A fake SLURM for tests: `sbatch`, `srun`, `sacct` and `scancel` on PATH, run on this machine.

`install(bin_dir, state_dir)` writes the four commands into `bin_dir` (each calls this file
with its name). State lives in `state_dir`: a job counter and, per array task, a file holding
its SLURM state and the pid of its process group.

- sbatch SCRIPT: reads ``#SBATCH --array=0-N%P``; starts one detached runner that executes
  the array's tasks (`bash SCRIPT` with SLURM_* variables set), P at a time; prints
  ``Submitted batch job ID``.
- srun [--unbuffered] [--output F] [--error F] CMD...: runs CMD with its output appended to
  F (``%A`` ``%a`` ``%j`` ``%t`` expanded), exit status passed on.
- sacct -o JobID,State,NodeList --parsable2 -j ID...: one line per array task.
- scancel ID|ID_I...: marks the tasks CANCELLED and kills their process groups.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ.get("FAKE_SLURM_STATE", "/nonexistent"))


def install(bin_dir: Path, state_dir: Path) -> dict:
    """Write the fake commands; returns the environment variables that make them the ones found."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in ("sbatch", "srun", "sacct", "scancel"):
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" {name} "$@"\n')
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_SLURM_STATE": str(state_dir)}


def _task_file(job: str, index: int) -> Path:
    return STATE / f"{job}_{index}"


def _write(job: str, index: int, state: str, pgid: int | None = None) -> None:
    path = _task_file(job, index)
    old = path.read_text().split() if path.exists() else []
    if old and old[0] == "CANCELLED":
        return  # cancelled is final
    pgid = pgid if pgid is not None else (int(old[1]) if len(old) > 1 else 0)
    path.write_text(f"{state} {pgid}\n")


def sbatch(args: list[str]) -> int:
    script = Path(args[-1])
    text = script.read_text()
    found = re.search(r"#SBATCH --array=0-(\d+)(?:%(\d+))?", text)
    count, parallel = (int(found.group(1)) + 1, int(found.group(2) or 1)) if found else (1, 1)
    counter = STATE / "next_id"
    job = str(int(counter.read_text()) if counter.exists() else 1000)
    counter.write_text(str(int(job) + 1))
    (STATE / f"{job}.sh").write_text(text)  # what was submitted, for the tests to read
    for i in range(count):
        _write(job, i, "PENDING")
    if found:
        (STATE / f"{job}.array").touch()
    subprocess.Popen(
        [sys.executable, __file__, "_runner", job, str(count), str(parallel), str(script), str(bool(found))],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ,
    )
    print(f"Submitted batch job {job}")
    return 0


def _start(job: str, index: int, array: bool, script: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "SLURM_JOB_ID": str(int(job) * 1000 + index) if array else job,
        "SLURM_ARRAY_JOB_ID": job if array else "",
        "SLURM_ARRAY_TASK_ID": str(index) if array else "",
        "SLURM_NTASKS": "1",
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NODEID": "0",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_JOB_NODELIST": "localhost",
        "FAKE_SLURM_TASK": f"{job} {index}",
    }
    env = {k: v for k, v in env.items() if v != ""}
    proc = subprocess.Popen(["bash", script], env=env, start_new_session=True, stdin=subprocess.DEVNULL)
    _write(job, index, "RUNNING", proc.pid)
    return proc


def _runner(job: str, count: int, parallel: int, script: str, array: bool) -> int:
    waiting, running = list(range(count)), {}
    while waiting or running:
        while waiting and len(running) < parallel:
            index = waiting.pop(0)
            if _task_file(job, index).read_text().startswith("CANCELLED"):
                continue
            running[index] = _start(job, index, array, script)
        for index, proc in list(running.items()):
            code = proc.poll()
            if code is not None:
                del running[index]
                _write(job, index, "COMPLETED" if code == 0 else "FAILED")
        time.sleep(0.1)
    return 0


def srun(args: list[str]) -> int:
    outputs = {"--output": None, "--error": None}
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag in outputs:
            outputs[flag] = args.pop(0)
    job, index = os.environ["FAKE_SLURM_TASK"].split()
    names = {"%A": job, "%a": index, "%j": os.environ["SLURM_JOB_ID"], "%t": "0"}
    files = {}
    for flag, path in outputs.items():
        if path:
            for key, value in names.items():
                path = path.replace(key, value)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            files[flag] = open(path, "a")
    return subprocess.call(
        args, stdout=files.get("--output"), stderr=files.get("--error") or files.get("--output")
    )


def sacct(args: list[str]) -> int:
    jobs = [args[i + 1] for i, a in enumerate(args) if a == "-j"]
    print("JobID|State|NodeList")
    for job in jobs:
        for path in sorted(STATE.glob(f"{job.split('_')[0]}_[0-9]*")):
            state = path.read_text().split()[0]
            name = path.name if (STATE / f"{path.name.split('_')[0]}.array").exists() else path.name[:-2]
            print(f"{name}|{state}|localhost")
    return 0


def scancel(args: list[str]) -> int:
    for target in (a for a in args if not a.startswith("-")):
        pattern = target if "_" in target else f"{target}_*"
        for path in STATE.glob(pattern):
            parts = path.read_text().split()
            path.write_text(f"CANCELLED {parts[1] if len(parts) > 1 else 0}\n")
            if len(parts) > 1 and parts[0] == "RUNNING" and int(parts[1]):
                try:
                    os.killpg(int(parts[1]), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return 0


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "_runner":
        sys.exit(_runner(rest[0], int(rest[1]), int(rest[2]), rest[3], rest[4] == "True"))
    sys.exit({"sbatch": sbatch, "srun": srun, "sacct": sacct, "scancel": scancel}[command](rest))
