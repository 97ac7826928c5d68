"""The lock is opened with O_NOFOLLOW (issue 24): a symlinked lock is refused, its target intact."""

import os

import pytest

from ffbench.errors import ConfigError
from ffbench.results.lock import FolderLock, check_free


@pytest.mark.parametrize("make", ["symlink", "dangling", "folder", "fifo"])
def test_a_lock_that_is_not_a_plain_file_is_refused(tmp_path, make):
    notes = tmp_path / "notes.txt"
    notes.write_text("eighteen bytes....")
    folder = tmp_path / "g"
    folder.mkdir()
    lock = folder / ".lock"
    if make == "symlink":
        lock.symlink_to("../notes.txt")
    elif make == "dangling":
        lock.symlink_to("../nowhere.txt")
    elif make == "folder":
        lock.mkdir()
    else:
        os.mkfifo(lock)
    with pytest.raises(ConfigError, match="lock must be a plain file"):
        check_free(folder)
    with pytest.raises(ConfigError, match="lock must be a plain file"):
        FolderLock(folder).acquire()
    assert notes.read_text() == "eighteen bytes...." and not (tmp_path / "nowhere.txt").exists()
