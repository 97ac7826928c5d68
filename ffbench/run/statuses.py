"""What happened to a configuration: the record statuses, and which of them a resume re-measures.

- ``ok``: measured (under a budget, `record["budget"]["fits"]` says whether it fit);
- ``oom``: memory caused it, and only then: an allocation failed (under a process budget,
  CUDA's ``OutOfMemoryError``, ``MemoryError``) or the kernel's OOM killer ended the worker
  (its cgroup's ``oom_kill`` count rose while the worker ran);
- ``timeout``: no result within the folder's ``--timeout``;
- ``killed``: the worker died by a signal with no evidence of memory (someone's kill -9, a
  SIGKILL where the OOM count cannot be read, a SIGTERM): not a result of the configuration;
- ``partial``: a `train` run cut short (its epochs so far; never counted as a finished run);
- ``error``: anything else, with its reason in ``error``. An error the environment caused
  (disk full ``ENOSPC``, quota ``EDQUOT``, file-size limit ``EFBIG``/``SIGXFSZ``) carries
  ``"fault": "environment"``.

A plain re-run (resume) measures again every configuration without a record, ``killed`` and
environment faults; ``--retry-errors`` also the other errors. ``ok``, ``oom`` and ``timeout``
are results and stay. The status words and that rule (`needs_measuring`) live in
ffbench/schema.py, below everything that reads records; this module classifies failures.
"""

from __future__ import annotations

import errno
import signal
from pathlib import Path

from ..schema import ENVIRONMENT_FAULT

ENVIRONMENT_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
                      errno.EFBIG: "file size limit exceeded"}  # fmt: skip
WORKER_EXIT_ENVIRONMENT = 75  # the worker could not write its record (EX_TEMPFAIL)


def _chain(exc: BaseException | None, depth: int = 20):
    """`exc` and what caused it (at most `depth` links)."""
    while exc is not None and depth > 0:
        yield exc
        exc, depth = exc.__cause__ or exc.__context__, depth - 1


def is_oom(exc: BaseException, limited: bool = False) -> bool:
    """Whether an exception (or its cause) is an allocation failure: MemoryError, CUDA's
    OutOfMemoryError, an allocator's "can't allocate memory"; under a process budget
    (`limited`) also ENOMEM and CPython's SystemError from a failed malloc."""
    for e in _chain(exc):
        if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
            return True
        text = str(e)
        if isinstance(e, RuntimeError) and (
            "can't allocate memory" in text or "out of memory" in text.lower()
        ):
            return True
        if limited and isinstance(e, OSError) and e.errno == errno.ENOMEM:
            return True
        if limited and isinstance(e, SystemError) and "without exception set" in text:
            return True
    return False


def environment_fault(exc: BaseException | None) -> str | None:
    """'disk full' etc. when `exc` (or what caused it) is a fault of the machine."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in ENVIRONMENT_ERRNOS:
            return ENVIRONMENT_ERRNOS[e.errno]
    return None


def disk_full(path: str | Path, spare: int = 64 * 1024) -> bool:
    """Whether the file system holding `path` (or its nearest existing folder) has less than
    `spare` bytes free for this user: a worker that failed there silently could not write."""
    import os

    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < spare


# -- the kernel's OOM killer -----------------------------------------------------------


def _cgroup_files() -> list[Path]:
    """Where this process's memory cgroup counts OOM kills (v2 memory.events, v1 oom_control)."""
    root = Path("/sys/fs/cgroup")
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    files = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        rel = path.lstrip("/")
        if controllers == "":
            files += [root / rel / "memory.events", root / "unified" / rel / "memory.events"]
        elif "memory" in controllers.split(","):
            files += [root / "memory" / rel / "memory.oom_control", root / "memory" / "memory.oom_control"]
    return files + [root / "memory.events"]


def oom_kill_count() -> int | None:
    """The cgroup's count of processes the OOM killer ended; None when it cannot be read."""
    for path in _cgroup_files():
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def death(returncode: int | None, oom_kills: tuple[int | None, int | None]) -> tuple[str, str, dict]:
    """(status, reason, extra record fields) of a worker that ended by a signal without a record."""
    sig = -returncode if returncode is not None and returncode < 0 else None
    name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
    before, after = oom_kills
    if sig == signal.SIGXFSZ:
        return (
            "error",
            "worker exceeded the file size limit (SIGXFSZ, ulimit -f)",
            {"fault": ENVIRONMENT_FAULT},
        )
    if before is not None and after is not None and after > before:
        return (
            "oom",
            f"worker killed by the kernel's OOM killer ({name}; cgroup oom_kill {before} -> {after})",
            {},
        )
    if sig == signal.SIGKILL:
        why = (
            "no OOM kill counted in its cgroup"
            if before is not None
            else "the cgroup's OOM count is unreadable"
        )
        return "killed", f"worker killed by SIGKILL ({why}): re-measured on resume", {}
    return "killed", f"worker killed by {name}: re-measured on resume", {}
