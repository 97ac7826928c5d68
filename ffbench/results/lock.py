"""One writer per results folder: the driver (sweep, maxbatch, reproduce) holds an exclusive
`flock` on `DIR/.lock` from before it writes anything in DIR until it is done.

    with FolderLock(folder):           # ConfigError naming the holder's pid if another has it
        ...write manifest, records...

The lock file holds the holder's pid while it is held and is emptied on release. The kernel
drops a lock when its process dies (kill -9 included), so a lock file still naming a process
that no longer runs is stale: it is taken over, with a note. `check_free` tells a command that
is only planning (writes nothing yet) that the folder is busy.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError

LOCK_NAME = ".lock"
_HELD: set[Path] = set()  # the folders this process holds (a second flock of its own would fail)


def _note(text: str) -> None:
    print(f"ffbench: note: {text}", file=sys.stderr)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and len(text) < 12 else None


def _busy(folder: Path, pid: int | None) -> ConfigError:
    who = f"pid {pid}" if pid is not None else "a process whose pid is not written yet"
    return ConfigError(
        f"{folder} is being written by another ffbench ({who}); wait for it to finish or choose another folder"
    )


def _not_a_lock(path: Path) -> ConfigError:
    what = "a symbolic link" if path.is_symlink() else "not a plain file"
    return ConfigError(f"{path} is {what}; ffbench's lock must be a plain file it creates: remove it")


def check_free(folder: str | Path) -> None:
    """ConfigError when another process holds `folder`'s lock (nothing is created)."""
    path = Path(folder) / LOCK_NAME
    if Path(folder).resolve() in _HELD:
        return
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise _not_a_lock(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(Path(folder), _holder(path)) from None
    finally:
        os.close(fd)


class FolderLock:
    """The exclusive lock of one results folder (created, with its parents, if missing)."""

    def __init__(self, folder: str | Path, note: Callable[[str], None] = _note):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.note = note
        self.fd: int | None = None
        self.created_folder = False

    def acquire(self) -> FolderLock:
        self.created_folder = not self.folder.exists()
        while self.fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)  # again if a releasing holder removed it
            try:  # never through a symbolic link: its target would be truncated
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                    raise _not_a_lock(self.path) from None
                raise
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise _not_a_lock(self.path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _busy(self.folder, _holder(self.path)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False  # removed by a releasing holder: lock the new file instead
            if same:
                self.fd = fd
            else:
                os.close(fd)
        previous = _holder(self.path)
        if previous is not None and previous != os.getpid() and not _alive(previous):
            self.note(f"{self.folder}: took over the lock of pid {previous}, which is no longer running")
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(self.folder.resolve())
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        _HELD.discard(self.folder.resolve())
        try:
            os.ftruncate(self.fd, 0)
            leftover = [p for p in self.folder.iterdir() if p.name != LOCK_NAME]
            if self.created_folder and not leftover:  # nothing was written: leave nothing
                self.path.unlink(missing_ok=True)
                self.folder.rmdir()
        except OSError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
