"""This process's dealings with Linux and glibc, torch-free (a template process imports it
before torch): glibc's mmap threshold (`mallopt`), the `/proc/self/status` reader,
`die_with_parent` (`prctl`) and the CPU model (`/proc/cpuinfo`). Sizes in bytes.

Why the mmap threshold: glibc keeps most freed memory resident and reuses it, so RSS and
VmData would follow glibc's cache instead of live memory. With ``M_MMAP_THRESHOLD`` at
64 KiB every allocation of 64 KiB or more is its own mapping, returned to the OS when freed
(see ffbench/measure/process.py for what that does to the process-level figures).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
from pathlib import Path

STATUS = "/proc/self/status"
MMAP_THRESHOLD = 65536  # the M_MMAP_THRESHOLD every measuring process sets (64 KiB)
_M_MMAP_THRESHOLD = -3
# Largest value glibc accepts for M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE / 2).
_MMAP_THRESHOLD_MAX = 32 * 2**20

_mallopt_value: int | None = None


def read_status(*fields: str) -> dict[str, int] | None:
    """The given fields of /proc/self/status (``VmRSS``, ``VmHWM``, ``VmData``...) in bytes;
    None when the file cannot be read or one of the fields is missing."""
    try:
        with open(STATUS, "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in fields:
            parts = rest.split()
            if parts and parts[0].isdigit():
                found[name] = int(parts[0]) * 1024  # the kernel reports kB (KiB)
    return found if len(found) == len(fields) else None


def cpu_model() -> str:
    """This machine's CPU model (the first "model name" of /proc/cpuinfo), else what
    `platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (kill -9 included)."""
    if not parent_pid or not sys.platform.startswith("linux"):
        return
    try:
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


# -- malloc ----------------------------------------------------------------------------
def _glibc():
    """The C library as a ctypes handle if it is glibc, else None."""
    if glibc_version() is None:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
        return libc
    except (OSError, AttributeError):
        return None


def set_malloc_mmap_threshold(bytes: int = MMAP_THRESHOLD) -> bool:  # noqa: A002 (name from the design)
    """glibc ``mallopt(M_MMAP_THRESHOLD, bytes)``: allocations of at least ``bytes``
    get their own mmap and go back to the OS when freed, so VmHWM follows the
    program's live memory instead of glibc's cache. Call once, early (before the
    model is built). Returns False where glibc is absent or the value is refused
    (glibc accepts at most 32 MiB on 64-bit). Disables glibc's dynamic threshold.
    """
    global _mallopt_value
    value = int(bytes)
    if value < 0 or value > _MMAP_THRESHOLD_MAX:
        return False
    libc = _glibc()
    if libc is None:
        return False
    if libc.mallopt(_M_MMAP_THRESHOLD, value) != 1:
        return False
    # Memory freed before this call may sit in glibc's heap, resident; later small
    # allocations would reuse it without raising RSS. Give it back to the OS now.
    libc.malloc_trim(0)
    _mallopt_value = value
    return True


def allocator_setting() -> str:
    """One line describing the malloc configuration that shapes RSS figures."""
    parts = []
    preload = os.environ.get("LD_PRELOAD", "")
    for name in ("jemalloc", "tcmalloc", "mimalloc"):
        if name in preload:
            parts.append(f"{name} preloaded (LD_PRELOAD)")
            conf = os.environ.get("MALLOC_CONF") or os.environ.get("_RJEM_MALLOC_CONF")
            if name == "jemalloc" and conf:
                parts.append(f"MALLOC_CONF={conf}")
    libc = "glibc malloc" if glibc_version() else "non-glibc C library"
    if not parts:
        parts.append(libc)
    if _mallopt_value is not None:
        parts.append(f"M_MMAP_THRESHOLD={_mallopt_value} via mallopt")
    env = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    if env is not None:
        parts.append(f"MALLOC_MMAP_THRESHOLD_={env} (environment)")
    for var in ("MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_"):
        if os.environ.get(var) is not None:
            parts.append(f"{var}={os.environ[var]}")
    if _mallopt_value is None and env is None and libc == "glibc malloc" and len(parts) == 1:
        parts.append("default thresholds (freed memory may stay resident)")
    return ", ".join(parts)


def glibc_version() -> str | None:
    """``glibc 2.xx`` where the C library is glibc, else None."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    return version if version and version.startswith("glibc") else None
