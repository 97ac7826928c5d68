"""Where `train` and `measure` write their record: never over a file they did not create.

- `--out DIR`: a new file each run, `<short>-<config hash>-<kind>-<N>.json` with the first
  free run counter N (claimed with a hard link, so two runs never take the same name);
- `--out-file FILE`: exactly FILE. An existing FILE is refused (one line) unless
  `--overwrite`; then the run's copies go to `<FILE stem>.partial.json` beside it and FILE is
  replaced only by the complete record, so the previous record stays intact until then.

A record written before the run ends (after each epoch of `train`) has status `partial`.
No torch is imported here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .record import Record
from .results.store import _naming, record_name, write_json_atomic

PARTIAL_SUFFIX = ".partial.json"


def run_record_name(config: Any, kind: str, counter: int) -> str:
    """`bp-d2-w500-b100-<hash>-train-3.json`: the configuration's record name, the kind and
    the run counter."""
    return f"{record_name(config)[: -len('.json')]}-{kind}-{counter}.json"


def claim_new(path_for, data: Any, first: int = 1, limit: int = 10**6) -> Path:
    """Write `data` (JSON) to the first of path_for(first), path_for(first + 1), ... that does
    not exist, atomically and without ever replacing a file (the complete temporary file is
    hard-linked to the new name; linking fails when the name exists)."""
    probe = Path(path_for(first))
    probe.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=probe.parent, prefix=".claim.", suffix=".tmp")
    os.close(fd)
    try:
        write_json_atomic(tmp, data)
        for n in range(first, first + limit):
            path = Path(path_for(n))
            try:
                os.link(tmp, path)
                return path
            except FileExistsError:
                continue
            except OSError as exc:
                raise _naming(exc, path) from None
        raise ConfigError(f"{probe} appeared while this run wrote it; nothing was replaced")
    finally:
        Path(tmp).unlink(missing_ok=True)


class RecordOutput:
    """The file one `train` or `measure` run writes (see the module docstring). `write`
    stores the record so far (status `partial` until `final`); `kept` is the file a run cut
    short leaves behind (None when nothing was written)."""

    def __init__(self, *, folder: Path | None, file: Path | None, overwrite: bool, config: Any, kind: str):
        self.folder, self.file, self.config, self.kind = folder, file, config, kind
        self.kept: Path | None = None
        self.replacing = file is not None and file.exists()
        if self.replacing and not overwrite:
            raise ConfigError(
                f"--out-file {file} exists; ffbench never replaces a record unless told: give another "
                f"name, --out DIR (a new file each run) or --overwrite"
            )

    @property
    def active(self) -> bool:
        return self.folder is not None or self.file is not None

    def write(self, run: Record, final: bool = False) -> Path | None:
        """Store the record `run` (marked partial unless `final`); returns the file holding it."""
        if not self.active:
            return None
        record = (run if final else run.updated(status="partial", partial=True)).to_dict()
        if self.replacing:
            return self._write_beside(record, final)
        if self.kept is None:
            self.kept = self._claim(record)
        else:
            write_json_atomic(self.kept, record)
        return self.kept

    def _claim(self, record: dict) -> Path:
        if self.file is not None:  # exactly this name, which must still be free
            return claim_new(lambda n: self.file, record, limit=1)
        return claim_new(lambda n: self.folder / run_record_name(self.config, self.kind, n), record)

    def _write_beside(self, record: dict, final: bool) -> Path:
        partial = self.file.with_name(self.file.stem + PARTIAL_SUFFIX)
        if final:
            write_json_atomic(self.file, record)
            partial.unlink(missing_ok=True)
            self.kept = self.file
        else:
            write_json_atomic(partial, record)
            self.kept = partial
        return self.kept
