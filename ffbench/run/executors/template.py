"""`--executor local` (the default): every job a child forked from a template process that
has already imported torch, so a configuration pays only for its own work.

Two templates serve a sweep, each ``python -m ffbench.run.executors.template`` started by
the driver and listening on an abstract Unix socket (only this user may connect: the peer's
uid is checked):

- the *measure* template lowers glibc's mmap threshold to 64 KiB (`mallopt`) **before**
  importing torch, so every chunk of 64 KiB or more its children allocate is its own mapping
  and RSS follows live memory (see ffbench.measure.process); CPU measurements fork from it;
- the *default* template keeps glibc's defaults: the harness's default-malloc timing child
  (`harness.time_with_default_malloc`, reached through ``FFBENCH_TIMING_TEMPLATE`` in the
  measure template's environment), accuracy runs and CUDA measurements fork from it, as a
  fresh interpreter would run them.

Both import torch, torchvision and the ffbench modules a worker uses, and nothing runs a
tensor op: torch's OpenMP pool is created by the first parallel op, so a forked child that
calls ``torch.set_num_threads(n)`` gets its own pool of n threads (checked by the tests);
CUDA is never initialised in a template (a child initialises it itself).

Isolation: a child starts from the template's memory (shared copy-on-write; a page it writes
is copied, which does not change its RSS), with its own allocator state from then on; it
measures its rises from its own starting point, as a fresh interpreter does (the tests check
that RSS rises agree within 1 MiB and tensor bytes to the byte). Its RSS and VmData at the
start are recorded (``worker.start_rss_bytes``, ``worker.start_vm_data_bytes``).

Lifetime: a template dies with the driver (PR_SET_PDEATHSIG, so a ``kill -9`` of the sweep
takes it down; the kernel ties that to the driver *thread* that started the template, so use
an executor from a thread that outlives it, as the CLI does), a child dies with its template, the default-malloc timing child is killed
when the worker that asked for it goes away. A child's exit status, or the signal that
killed it, is reported by its template (its parent) to whoever asked for it. One job at a
time: the driver waits for each.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ...proc import MMAP_THRESHOLD, die_with_parent, read_status, set_malloc_mmap_threshold
from ..statuses import oom_kill_count
from . import ENTRIES, BaseExecutor, Job, JobResult, collect, job_device, probe, worker_env, write_spec

TIMING_ENV = "FFBENCH_TIMING_TEMPLATE"  # set in the measure template: where timing children come from
PRELOAD = (
    "torch",
    "torchvision",
    "ffbench.run.worker",
    "ffbench.run.budget",
    "ffbench.run.harness",
    "ffbench.run.timing",
    "ffbench.run.fit",
    "ffbench.run.executors.probe",
)
# what a request may run: name -> (module, function taking argv)
TARGETS = {kind: (module, "main") for kind, module in ENTRIES.items()} | {
    "timing": ("ffbench.run.harness", "time_group_main"),
}
START_TIMEOUT = 600.0  # seconds a template may take to import torch on a loaded machine


# -- the template process -------------------------------------------------------------------


def preload() -> None:
    """Import what every worker imports; run nothing (no tensor op, no CUDA)."""
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # torchvision is optional here: a worker imports it if it needs it
            if name == "torch":
                raise


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1] == os.getuid()


def _redirect(stdout: str | None, stderr: str | None) -> None:
    for path, fd in ((stdout, 1), (stderr, 2)):
        if path:
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(target, fd)
            os.close(target)


def _child(request: dict, template_pid: int, report: int) -> None:
    """In the forked child: become the worker, run the target, exit with its status."""
    code = 1
    try:
        die_with_parent(template_pid)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        start = read_status("VmRSS", "VmData") or {}
        facts = {"start_rss_bytes": start.get("VmRSS"), "start_vm_data_bytes": start.get("VmData")}
        os.write(report, json.dumps(facts).encode())
        os.close(report)
        _redirect(request.get("stdout"), request.get("stderr"))
        module, function = TARGETS[request["target"]]
        args = [str(a) for a in request.get("args", [])]
        sys.argv = [module, *args]
        result = getattr(importlib.import_module(module), function)(args)
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:  # noqa: BLE001 - the child reports any failure through its exit status
        from ..statuses import WORKER_EXIT_ENVIRONMENT, environment_fault

        code = WORKER_EXIT_ENVIRONMENT if environment_fault(exc) else 1  # a full disk is no bug
        with contextlib.suppress(OSError):  # the log may be on the full disk
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _wait(pid: int, conn: socket.socket):
    """Wait for the child; kill it when the requester says `kill` or goes away."""
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    poller = select.poll()
    poller.register(conn, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    try:
        while True:
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got == pid:
                return status, usage
            for fd, _ in poller.poll(None if pidfd is not None else 50):
                if fd == conn.fileno():
                    data = conn.recv(64)
                    if not data or b"kill" in data:
                        os.kill(pid, signal.SIGKILL)  # our unreaped child: the pid is still its
                    if not data:
                        poller.unregister(conn)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:  # the requester went away; the child is already dealt with
        pass


def _handle(conn: socket.socket, listener: socket.socket) -> None:
    line = _LineReader(conn).readline(None)
    if not line:
        return
    request = json.loads(line)
    if request.get("target") == "ping":
        return _send(conn, {"ok": True, "pid": os.getpid()})
    if request.get("target") not in TARGETS:
        return _send(conn, {"error": f"unknown target {request.get('target')!r}"})
    read_end, write_end = os.pipe()
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        listener.close()
        conn.close()
        os.close(read_end)
        _child(request, me, write_end)  # never returns
    os.close(write_end)
    _send(conn, {"pid": pid})
    status, usage = _wait(pid, conn)
    with os.fdopen(read_end, "rb") as f:
        start = f.read()
    _send(
        conn,
        {
            "returncode": os.waitstatus_to_exitcode(status),
            "lifetime_peak_rss_bytes": usage.ru_maxrss * 1024,
            **(json.loads(start) if start else {}),
        },
    )


def serve(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ffbench.run.executors.template")
    parser.add_argument("--socket", required=True, help="abstract Unix socket name (no leading NUL)")
    parser.add_argument("--parent", type=int, required=True, help="the driver's pid: die with it")
    parser.add_argument("--mmap-threshold", type=int, default=None, help="mallopt before importing torch")
    args = parser.parse_args(argv)
    die_with_parent(args.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the driver and the worker
    if args.mmap_threshold is not None and not set_malloc_mmap_threshold(args.mmap_threshold):
        raise OSError(f"mallopt(M_MMAP_THRESHOLD, {args.mmap_threshold}) refused")
    preload()
    gc.collect()
    gc.freeze()  # what the template holds is permanent: children's collections skip it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind("\0" + args.socket)
    listener.listen(8)
    while True:
        conn, _ = listener.accept()
        with conn:
            if _same_user(conn):
                _handle(conn, listener)


# -- asking a template for a child ------------------------------------------------------------


class _LineReader:
    """Lines from a socket, with a deadline (a socket file object is unusable after a timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def readline(self, deadline: float | None) -> bytes | None:
        """A line; b"" at EOF; None when the deadline passes first."""
        while b"\n" not in self.buffer:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], wait)
            if not ready:
                continue
            data = self.sock.recv(65536)
            if not data:
                return b""
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


@dataclass(frozen=True)
class Reply:
    pid: int | None
    returncode: int | None  # None: the template went away before reporting
    timed_out: bool
    facts: dict  # start RSS / VmData, lifetime peak RSS


def call(address: str, request: dict, timeout: float | None = None) -> Reply:
    """Ask the template at `address` to fork a child for `request` and wait for its end;
    at `timeout` seconds (or on Ctrl-C) the template kills it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect("\0" + address)
        sock.sendall(json.dumps(request).encode() + b"\n")
        reader = _LineReader(sock)
        first = json.loads(reader.readline(None) or b"{}")
        if "pid" not in first:
            raise RuntimeError(first.get("error") or "the template went away")
        timed_out = False
        try:
            line = reader.readline(deadline)
            if line is None:
                timed_out = True
                sock.sendall(b"kill\n")
                line = reader.readline(None)
        except BaseException:  # Ctrl-C: the template kills the child when we hang up
            try:
                sock.sendall(b"kill\n")
            except OSError:
                pass
            raise
    facts = json.loads(line) if line else {}
    return Reply(first["pid"], facts.pop("returncode", None), timed_out, facts)


def default_malloc_timing(args: list[str]) -> subprocess.CompletedProcess | None:
    """Run the harness's default-malloc timing child from the default template, as a
    fresh interpreter would (`harness.time_with_default_malloc`); None when this process
    was not forked from the measure template (or it cannot be reached): start one then."""
    address = os.environ.get(TIMING_ENV)
    if not address:
        return None
    with tempfile.TemporaryDirectory(prefix="ffbench-timing-") as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        request = {"target": "timing", "args": args, "stdout": str(out), "stderr": str(err)}
        try:
            reply = call(address, request)
        except (OSError, RuntimeError):
            return None
        text = {p: p.read_text(errors="replace") if p.exists() else "" for p in (out, err)}
    code = 1 if reply.returncode is None else reply.returncode
    return subprocess.CompletedProcess(args, code, text[out], text[err])


# -- the driver's side ---------------------------------------------------------------------


class Template:
    """A template process started by this driver (see the module's docstring)."""

    def __init__(self, role: str, mmap_threshold: int | None, env: dict | None = None) -> None:
        self.address = f"ffbench-template-{os.getpid()}-{secrets.token_hex(6)}-{role}"
        command = [
            sys.executable,
            "-m",
            "ffbench.run.executors.template",
            "--socket",
            self.address,
            "--parent",
            str(os.getpid()),
        ]
        if mmap_threshold is not None:
            command += ["--mmap-threshold", str(mmap_threshold)]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=worker_env(env))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():  # killed while starting (kill -9, the OOM killer): the machine's fault
                from ...errors import EnvironmentFault

                raise EnvironmentFault(
                    f"the worker template process exited with status {self.proc.returncode} while "
                    "starting (killed?); nothing was lost: re-run to resume"
                )
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect("\0" + self.address)
                    sock.sendall(b'{"target": "ping"}\n')
                    if _LineReader(sock).readline(deadline):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the template process did not start within {timeout:g} s")
            time.sleep(0.05)


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()  # its children die with it (PR_SET_PDEATHSIG)
            proc.wait()


class TemplateExecutor(BaseExecutor):
    """Each job a child of a pre-imported template process (see the module's docstring)."""

    name = "local"

    def __init__(self, allow_mixed_devices: bool = False) -> None:
        super().__init__(allow_mixed_devices)
        self._templates: dict[str, Template] = {}
        self._where: dict | None = None
        self._finalizer = None
        self._starting = threading.Lock()  # threads asking at once share one pair of templates

    def templates(self) -> dict[str, Template]:
        """The two templates, started (again) if not running."""
        with self._starting:
            return self._start_templates()

    def _start_templates(self) -> dict[str, Template]:
        if self._templates and all(t.alive() for t in self._templates.values()):
            return self._templates
        self.close()
        default = Template("default", None)
        measure = Template("measure", MMAP_THRESHOLD, {TIMING_ENV: default.address})
        self._templates = {"default": default, "measure": measure}
        self._finalizer = weakref.finalize(self, _stop, [t.proc for t in self._templates.values()])
        for template in self._templates.values():
            template.wait_ready()
        return self._templates

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        for job in jobs:
            yield self.run_one(job)

    def _template_for(self, job: Job) -> Template:
        """CPU measurements: the mallopt template; everything else as a fresh interpreter."""
        templates = self.templates()
        if job.kind != "measure":
            return templates["default"]
        from ...device import resolve_device

        try:
            cpu = resolve_device(job_device(job)).type == "cpu"
        except Exception:  # noqa: BLE001 - the worker reports an unusable device itself
            cpu = True
        return templates["measure" if cpu else "default"]

    def run_one(self, job: Job) -> JobResult:
        if self._where is None:
            self._where = probe()
        template = self._template_for(job)
        log = write_spec(job, parent_pid=template.pid)
        output = None if job.stream_output else str(log)
        request = {
            "target": job.kind,
            "args": [job.spec_path, job.out_path],
            "stdout": output,
            "stderr": output,
        }
        request["args"] = [str(a) for a in request["args"]]
        started = time.perf_counter()
        kills_before = oom_kill_count()
        try:
            reply = call(template.address, request, job.timeout_seconds)
        except (OSError, RuntimeError) as exc:  # the template died under us
            reply = Reply(None, None, False, {"template_error": str(exc)})
        wall = time.perf_counter() - started
        kills = (kills_before, oom_kill_count())
        record, tail = collect(job, reply.timed_out)
        return JobResult(
            job,
            record,
            reply.returncode,
            wall,
            reply.timed_out,
            tail or reply.facts.get("template_error", ""),
            executor="local template (forked from a pre-imported interpreter)",
            probe=self._where,
            worker={"pid": reply.pid, **reply.facts},
            oom_kills=kills,
        )

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills the templates (once)
        self._templates = {}


if __name__ == "__main__":
    sys.exit(serve())
