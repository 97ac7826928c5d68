"""Faults while measuring, concurrent writers, and the benchmark plugin's options.

Most faults are played by a fake executor (a worker's death, a full disk, the OOM killer's
evidence) so they cost no worker process; the issue's numbered cases use real workers: a
kill -9 by someone else, `ulimit -f`, two sweeps into one folder 0.3 s apart.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from hostile import Case, Outcome, child_env, cli, ffbench_sub, patched, run_main, run_sub

SWEEP = ("sweep", "--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--steps", "1", "--quiet",
         "--trainers", "bp", "--depths", "1", "--widths", "16")  # fmt: skip
ONE = ("--batch-sizes", "4")
TWO = ("--batch-sizes", "4,8")
GIB = 2**30


def statuses(folder: Path) -> list[str]:
    return sorted(json.loads(p.read_text()).get("status", "?") for p in (folder / "records").glob("*.json"))


def expect_statuses(*want: str):
    def state(tmp: Path) -> str | None:
        got = statuses(tmp / "out")
        return None if got == sorted(want) else f"records {got}, expected {sorted(want)}"

    return state


# -- a fake executor: a worker's fate without a worker ----------------------------------------


def fake_executor(fate: str):
    """An executor that plays every job as `fate`: 'ok', a signal ('sigkill', 'sigterm',
    'sigxfsz'), 'sigkill-oom' (with the cgroup's OOM count rising), 'exit75' (the worker could
    not write), 'error'."""
    from ffbench.run.executors import BaseExecutor, JobResult

    class FakeExecutor(BaseExecutor):
        name = "fake"

        def run(self, jobs):
            for job in jobs:
                record, code, tail, kills = None, 0, "", (0, 0)
                if fate == "ok":
                    record = {"kind": "measure", "status": "ok", "error": None, "config": job.spec["config"],
                              "metrics": {"tensor_peak_bytes": 1000}}  # fmt: skip
                elif fate.startswith("sig"):
                    code = -int(getattr(signal, fate.split("-")[0].upper()))
                    kills = (0, 1) if fate.endswith("-oom") else (None, None) if "unread" in fate else (0, 0)
                elif fate == "exit75":
                    code, tail = 75, f"ffbench worker: cannot write {job.out_path}: No space left on device\n"
                else:
                    code, tail = 1, "Traceback (most recent call last):\nValueError: boom\n"
                yield JobResult(job, record, code, 0.1, False, tail, executor="fake", oom_kills=kills)

    return FakeExecutor()


def executor_choice():
    """The module whose `get_executor` the commands call (the package itself in an older ffbench)."""
    try:
        import ffbench.run.executors.choice as choice
    except ImportError:
        import ffbench.run.executors as choice
    return choice


def faked(fate: str):
    """While it is entered, every command's executor is `fake_executor(fate)`."""
    return patched(executor_choice(), "get_executor", lambda *a, **k: fake_executor(fate))


def fake_sweep(tmp: Path, fate: str, *more: str) -> Outcome:
    with faked(fate):
        return run_main(tmp, [*SWEEP, *ONE, "--out", str(tmp / "out"), *more])


def fates(*steps: tuple[str, ...]):
    """An act: one fake sweep per step (fate and extra flags); the outcome of the first, with
    a note when a later one fails."""

    def act(tmp: Path) -> Outcome:
        first = fake_sweep(tmp, *steps[0])
        for step in steps[1:]:
            later = fake_sweep(tmp, *step)
            if later.code != 0:
                first.notes.append(f"the re-run exited {later.code}: {later.err.strip()[:200]}")
        return first

    return act


def _enospc_on_records(tmp: Path) -> Outcome:
    """A full disk when the driver writes a record: one line naming it, nothing half-written."""
    import ffbench.results.store as store

    real = store.os.replace

    def full(src, dst, *a, **k):
        if "records" in str(dst):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, *a, **k)

    with faked("ok"), patched(store.os, "replace", full):
        o = run_main(tmp, [*SWEEP, *ONE, "--out", str(tmp / "out")])
    if list((tmp / "out").rglob("*.tmp")):
        o.notes.append("a half-written temporary was left")
    if fake_sweep(tmp, "ok").code != 0 or statuses(tmp / "out") != ["ok"]:
        o.notes.append("the resume did not measure the configuration")
    return o


def _internal_error(tmp: Path) -> Outcome:
    import ffbench.run.sweep as sweep

    def bug(**kwargs):
        raise ZeroDivisionError("a bug")

    with patched(sweep, "plan_sweep", bug):
        o = run_main(tmp, [*SWEEP, *ONE, "--out", str(tmp / "out")])
    named = [w for w in o.err.split() if "traceback" in w and w.endswith(".txt")]
    if "traceback in" in o.err and not (named and Path(named[0]).is_file()):
        o.notes.append("the traceback file named does not exist")
    for name in named:
        Path(name).unlink(missing_ok=True)
    return o


def _interrupt(tmp: Path) -> Outcome:
    import ffbench.run.sweep as sweep

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    with patched(sweep, "plan_sweep", interrupted):
        return run_main(tmp, [*SWEEP, *ONE, "--out", str(tmp / "out")])


def _modes(tmp: Path) -> str | None:
    bad = [
        str(p.relative_to(tmp))
        for p in (tmp / "out").rglob("*")
        if p.is_file() and p.stat().st_mode & 0o044 != 0o044
    ]
    return f"not world-readable: {', '.join(bad[:3])}" if bad else None


def _umask_022(act):
    def wrapped(tmp: Path) -> Outcome:
        old = os.umask(0o022)
        try:
            return act(tmp)
        finally:
            os.umask(old)

    return wrapped


def fake_fault_cases() -> list[Case]:
    ok = expect_statuses("ok")
    return [
        Case("faults", "sigkill-resumed", "a worker SIGKILLed without OOM evidence: killed, re-measured on resume",
             fates(("sigkill",), ("ok",)), 0, state=ok, issue="4", one_line=False),
        Case("faults", "sigkill-is-killed", "a worker SIGKILLed, no OOM kill counted: status killed (was oom)",
             fates(("sigkill",)), 0, state=expect_statuses("killed"), issue="4", one_line=False),
        Case("faults", "sigkill-unreadable", "SIGKILL where the cgroup's OOM count cannot be read: killed",
             fates(("sigkill-unread",)), 0, state=expect_statuses("killed"), one_line=False),
        Case("faults", "oom-killer", "SIGKILL while the cgroup's oom_kill count rose: oom, kept on resume",
             fates(("sigkill-oom",), ("ok",)), 0, state=expect_statuses("oom"), one_line=False),
        Case("faults", "sigterm-resumed", "a worker SIGTERMed: killed, re-measured on resume",
             fates(("sigterm",), ("ok",)), 0, state=ok, one_line=False),
        Case("faults", "sigxfsz", "a worker killed by SIGXFSZ (ulimit -f): environment fault, exit 1, resumed",
             fates(("sigxfsz",), ("ok",)), 1, "environment fault", state=ok, issue="4"),
        Case("faults", "worker-disk-full", "the worker cannot write its record (disk full): exit 1 naming it, resumed",
             fates(("exit75",), ("ok",)), 1, "No space left on device", state=ok, issue="4"),
        Case("faults", "error-kept", "a worker's real error: kept on a plain resume",
             fates(("error",), ("ok",)), 0, state=expect_statuses("error"), one_line=False),
        Case("faults", "error-retried", "a worker's real error: re-measured with --retry-errors",
             fates(("error",), ("ok", "--retry-errors")), 0, state=ok, one_line=False),
        Case("faults", "record-disk-full", "the driver's record write fails with ENOSPC: one line naming the file",
             _enospc_on_records, 1, "records/bp-d1-w16-b4", state=lambda tmp: None, issue="4"),
        Case("faults", "internal-error", "a bug: exit 1, one line naming the traceback file",
             _internal_error, 1, "traceback in"),
        Case("faults", "ctrl-c", "Ctrl-C: exit 130, one line", _interrupt, 130, "interrupted"),
        Case("faults", "files-readable", "every result file is world-readable (was 0600)",
             _umask_022(lambda tmp: fake_sweep(tmp, "ok")), 0, state=_modes, issue="8", one_line=False),
    ]  # fmt: skip


# -- real workers ------------------------------------------------------------------------------


def _workers(tmp: Path, driver: int | None = None) -> list[int]:
    """The pids of live ffbench workers measuring into `tmp`: fresh interpreters (their
    command line names the job's files), or children forked from the measuring template of
    the `driver` (the default executor)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        words = proc.info["cmdline"] or []
        if "ffbench.run.worker" in words and any(str(tmp) in w for w in words):
            found.append(proc.info["pid"])
        elif (
            driver is not None
            and "ffbench.run.executors.template" in words
            and words[words.index("--parent") + 1 : words.index("--parent") + 2] == [str(driver)]
            and any(w.endswith("-measure") for w in words)
        ):
            try:
                found += [child.pid for child in proc.children()]
            except psutil.Error:
                pass
    return found


def _kill_worker(tmp: Path) -> Outcome:
    """Issue case 4: someone kill -9s the worker; the record says killed and a resume measures it."""
    cmd = [sys.executable, "-m", "ffbench", *SWEEP, *ONE, "--out", str(tmp / "out")]
    proc = subprocess.Popen(
        cmd, cwd=tmp, env=child_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 240
    while not _workers(tmp, proc.pid) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    for pid in _workers(tmp, proc.pid):
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    o = Outcome(proc.returncode, out, err)
    if statuses(tmp / "out") != ["killed"]:
        o.notes.append(f"after the kill: {statuses(tmp / 'out')}, expected ['killed']")
    again = run_main(tmp, [*SWEEP, *ONE, "--out", str(tmp / "out")])
    if again.code != 0 or statuses(tmp / "out") != ["ok"]:
        o.notes.append(f"the resume left {statuses(tmp / 'out')} (exit {again.code})")
    return o


def _ulimit_f(tmp: Path) -> Outcome:
    """Issue case 4: `ulimit -f` (4 KiB): one line naming the file; a plain resume measures it."""
    o = run_sub(tmp, [sys.executable, "-m", "ffbench", *SWEEP, *ONE, "--out", str(tmp / "out")],
                {resource.RLIMIT_FSIZE: 4096})  # fmt: skip
    if list((tmp / "out").rglob("*.tmp")):
        o.notes.append("half-written temporaries left")
    if [s for s in statuses(tmp / "out") if s not in ("error",)]:
        o.notes.append(f"records after the fault: {statuses(tmp / 'out')}")
    again = run_main(tmp, [*SWEEP, *ONE, "--out", str(tmp / "out")])
    if again.code != 0 or statuses(tmp / "out") != ["ok"]:
        o.notes.append(
            f"the resume left {statuses(tmp / 'out')} (exit {again.code}: {again.err.strip()[:200]})"
        )
    return o


def _maxbatch_timeout_state(tmp: Path) -> str | None:
    return None if (tmp / "out" / "maxbatch.json").is_file() else "no maxbatch.json"


def worker_cases() -> list[Case]:
    data_limit = {resource.RLIMIT_DATA: 8 * GIB}  # any impossible allocation fails at once, on any machine
    measure = "measure --dataset synthetic --device cpu --threads 1 --steps 1 --quiet".split()
    return [
        Case("faults", "kill-9-by-someone", "kill -9 of a worker by someone else: killed, re-measured on resume",
             _kill_worker, 0, issue="4", state=lambda tmp: None, one_line=False),
        Case("faults", "ulimit-f", "sweep under ulimit -f 4 KiB: exit 1 naming the file; resume measures it",
             _ulimit_f, 1, "out/", issue="4", state=lambda tmp: None),
        Case("faults", "budget-charges-the-run", "a 1.4 MiB configuration under a 16 MiB process budget is ok",
             cli(*SWEEP, *ONE, "--memory-limit", "16MiB", "--out", "{tmp}/out"), 0, state=expect_statuses("ok"),
             issue="3", one_line=False),
        Case("faults", "sweep-impossible-batch", "sweep --batch-sizes 2**31-1: an oom record, not a traceback",
             cli(*SWEEP, "--batch-sizes", str(2**31 - 1), "--out", "{tmp}/out"), 0, state=expect_statuses("oom"),
             issue="7", one_line=False),
        Case("faults", "measure-impossible-batch", "measure --batch-size 2**31-1: one line, out of memory",
             ffbench_sub(*measure, "--batch-size", str(2**31 - 1), limits=data_limit), 1, "out of memory", issue="7"),
        Case("faults", "measure-huge-width", "measure --width 2**24: one line, out of memory",
             ffbench_sub(*measure, "--width", str(2**24), limits=data_limit), 1, "out of memory", issue="7"),
        Case("faults", "measure-huge-eval-chunk", "measure --eval-chunk 2**31-1: one line, out of memory",
             ffbench_sub(*measure, "--eval-chunk", str(2**31 - 1), limits=data_limit), 1, "out of memory",
             issue="7"),
        Case("faults", "maxbatch-timeout-1", "maxbatch --timeout shorter than any probe (the issue's --timeout 1 "
             "with a fresh interpreter per probe): says nothing was measured",
             cli("maxbatch", "--dataset", "synthetic", "--device", "cpu", "--threads", "1", "--memory-limit", "1GiB",
                 "--trainers", "bp", "--depths", "1", "--timeout", "0.01", "--out", "{tmp}/out"), 0,
             "nothing was measured", issue="8", state=_maxbatch_timeout_state, one_line=False),
    ]  # fmt: skip


# -- concurrency ------------------------------------------------------------------------------


def _two_sweeps(tmp: Path) -> Outcome:
    """Issue case 1: the same sweep twice into one folder, 0.3 s apart. One of them refuses
    (usually the second; on a loaded machine the first may reach the lock later), the other
    measures both configurations."""
    cmd = [sys.executable, "-m", "ffbench", *SWEEP, *TWO, "--out", str(tmp / "out")]
    opts = dict(cwd=tmp, env=child_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = subprocess.Popen(cmd, **opts)
    time.sleep(0.3)
    second = subprocess.Popen(cmd, **opts)
    out2, err2 = second.communicate(timeout=300)
    out1, err1 = first.communicate(timeout=300)
    ran, refused = (
        ((first, err1), (second, (out2, err2)))
        if second.returncode != 0
        else ((second, err2), (first, (out1, err1)))
    )
    o = Outcome(refused[0].returncode, *refused[1])
    if ran[0].returncode != 0 or statuses(tmp / "out") != ["ok", "ok"]:
        o.notes.append(
            f"the sweep that ran: exit {ran[0].returncode}, records {statuses(tmp / 'out')}: {ran[1][-200:]}"
        )
    return o


HOLD = (
    "import fcntl, os, sys, time\n"
    "os.makedirs(sys.argv[1], exist_ok=True)\n"
    "fd = os.open(os.path.join(sys.argv[1], '.lock'), os.O_RDWR | os.O_CREAT, 0o644)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "os.write(fd, str(os.getpid()).encode())\n"
    "print('locked', flush=True)\n"
    "time.sleep(600)\n"
)


def held(folder: str, argv: tuple[str, ...], subprocess_timeout: float | None = None):
    """An act: `ffbench ARGV` while another process holds `folder`'s lock (in a subprocess
    with a timeout when the command would run for long if it did not refuse)."""

    def act(tmp: Path) -> Outcome:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(tmp / folder)], stdout=subprocess.PIPE, text=True
        )
        try:
            holder.stdout.readline()
            if subprocess_timeout:
                o = ffbench_sub(*argv, timeout=subprocess_timeout)(tmp)
            else:
                o = run_main(tmp, [a.replace("{tmp}", str(tmp)) for a in argv])
            if str(holder.pid) not in o.err and o.code == 2:
                o.complaints.append("the holder's pid is not named")
            return o
        finally:
            holder.kill()
            holder.wait()

    return act


def only_lock(folder: str):
    def state(tmp: Path) -> str | None:
        names = sorted(p.name for p in (tmp / folder).iterdir())
        return None if names == [".lock"] else f"{folder} holds {names}"

    return state


def _stale_lock(tmp: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp / "out").mkdir()
    (tmp / "out" / ".lock").write_text(dead.stdout.strip() + "\n")


def _foreign_svg(tmp: Path) -> None:
    from cases_data import measure_record

    (tmp / "recs").mkdir()
    (tmp / "recs" / "r.json").write_text(json.dumps(measure_record()))
    (tmp / "r_files").mkdir()
    (tmp / "r_files" / "my-diagram.svg").write_text("<svg>mine</svg>")


def concurrency_cases() -> list[Case]:
    lock_says = "being written by another ffbench (pid"
    repro = (
        "reproduce",
        "--device",
        "cpu",
        "--results",
        "{tmp}/res",
        "--reports",
        "{tmp}/rep",
        "--name",
        "run",
        "--quiet",
    )
    return [
        Case("concurrency", "two-sweeps", "two sweeps into one folder 0.3 s apart: one refuses (pid named), the other measures both",
             _two_sweeps, 2, lock_says, issue="1", state=lambda tmp: None),
        Case("concurrency", "sweep-held", "sweep into a folder another process holds", held("out", (
            *SWEEP, *ONE, "--out", "{tmp}/out")), 2, lock_says, state=only_lock("out"), issue="1"),
        Case("concurrency", "maxbatch-held", "maxbatch into a folder another process holds", held("out", (
            "maxbatch", "--dataset", "synthetic", "--memory-limit", "1GiB", "--out", "{tmp}/out")), 2, lock_says,
            state=only_lock("out")),
        Case("concurrency", "reproduce-held", "reproduce into a run folder another process holds",
             held("res/run", repro, subprocess_timeout=120), 2, lock_says, state=only_lock("res/run")),
        Case("concurrency", "stale-lock", "a lock file of a dead process: taken over, with a note",
             lambda tmp: fake_sweep(tmp, "ok"), 0, "took over the lock", setup=_stale_lock,
             state=expect_statuses("ok"), one_line=False),
        Case("concurrency", "report-foreign-svg", "report --out-file r.html keeps an SVG in r_files/ it did not draw",
             cli("report", "{tmp}/recs", "--out-file", "{tmp}/r.html", "--quiet"), 0, setup=_foreign_svg, issue="6",
             state=lambda tmp: None if (tmp / "r_files" / "my-diagram.svg").is_file() else "deleted my-diagram.svg",
             one_line=False),
    ]  # fmt: skip


# -- the pytest plugin's options --------------------------------------------------------------


def pytest_with(*options: str, **env: str):
    def act(tmp: Path) -> Outcome:
        opts = [o.replace("{tmp}", str(tmp)) for o in options]
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--co",
            "-q",
            *opts,
            "test_nothing.py",
        ]
        return run_sub(tmp, cmd, **{k: v.replace("{tmp}", str(tmp)) for k, v in env.items()})

    return act


def plugin_cases() -> list[Case]:
    import torch

    cuda = torch.cuda.is_available()
    usage = 4  # pytest's exit status for a usage error
    specs = [
        (
            "valid",
            "valid options (control)",
            ("--ffbench-threads", "2", "--ffbench-rounds", "3"),
            0,
            "",
            "",
            {},
        ),
        ("threads-0", "--ffbench-threads 0", ("--ffbench-threads", "0"), usage, "threads must be", "7", {}),
        (
            "threads-negative",
            "--ffbench-threads -2",
            ("--ffbench-threads", "-2"),
            usage,
            "threads must be",
            "",
            {},
        ),
        (
            "threads-huge",
            "--ffbench-threads 5000",
            ("--ffbench-threads", "5000"),
            usage,
            "at most 4096",
            "",
            {},
        ),
        ("rounds-0", "--ffbench-rounds 0", ("--ffbench-rounds", "0"), usage, "rounds must be", "7", {}),
        (
            "rounds-negative",
            "--ffbench-rounds -1",
            ("--ffbench-rounds", "-1"),
            usage,
            "rounds must be",
            "",
            {},
        ),
        (
            "device-cuda",
            "--ffbench-device cuda without a GPU",
            ("--ffbench-device", "cuda"),
            0 if cuda else usage,
            "" if cuda else "no CUDA GPU",
            "7",
            {},
        ),
        (
            "limit-text",
            "--ffbench-memory-limit lots",
            ("--ffbench-memory-limit", "lots"),
            usage,
            "cannot read size",
            "",
            {},
        ),
        (
            "limit-400-digits",
            "--ffbench-memory-limit of 400 digits",
            ("--ffbench-memory-limit", "1" + "0" * 400),
            usage,
            "larger than 1 EiB",
            "",
            {},
        ),
        (
            "limit-0",
            "--ffbench-memory-limit 0",
            ("--ffbench-memory-limit", "0"),
            usage,
            "size must be positive",
            "",
            {},
        ),
        (
            "data-dir-missing",
            "--ffbench-data-dir a folder that does not exist",
            ("--ffbench-data-dir", "{tmp}/nope"),
            usage,
            "does not exist",
            "",
            {},
        ),
        (
            "env-data-file",
            "$FFBENCH_DATA naming a file",
            (),
            usage,
            "is not a folder",
            "",
            {"FFBENCH_DATA": "{tmp}/test_nothing.py"},
        ),
    ]
    return [
        Case("plugin", n, w, pytest_with(*o, **env), x, s, setup=_test_file, issue=i, one_line=x != 0)
        for n, w, o, x, s, i, env in specs
    ]


def _test_file(tmp: Path) -> None:
    (tmp / "test_nothing.py").write_text("def test_nothing():\n    pass\n")


def run_cases() -> list[Case]:
    return fake_fault_cases() + worker_cases() + concurrency_cases() + plugin_cases()
