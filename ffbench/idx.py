"""IDX files (MNIST, Fashion-MNIST) checked before anything trains on them, and the content
key the dataset cache is filed under.

An images file is `0x00000803, n, 28, 28` then n x 784 bytes; a labels file `0x00000801, n`
then n bytes, each a class 0..9. `check_plain` refuses (DataUnavailableError, one line naming
the file) a bad header, a size that does not match it, and a split whose images and labels
disagree in number; `check_labels` a label outside 0..9. `content_key` hashes the source
files' names, sizes and bytes: two folders holding different data never share a cache entry.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from .errors import DataUnavailableError

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
SIDE = 28
NUM_CLASSES = 10
NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def is_images(base: str) -> bool:
    return "-images-" in base


def header_size(base: str) -> int:
    return 16 if is_images(base) else 8


def expected_size(base: str, head: bytes, path: Path | str) -> int:
    """The size an uncompressed IDX file with this header must have; DataUnavailableError
    naming `path` for a header that is not MNIST's."""
    need = header_size(base)
    what = f"28 x 28 image{'s' if is_images(base) else ' labels'}"
    if len(head) < need:
        raise DataUnavailableError(f"{path}: too short for an IDX header ({len(head)} bytes): not {what}")
    magic, count = struct.unpack(">II", head[:8])
    ok = magic == (IMAGE_MAGIC if is_images(base) else LABEL_MAGIC) and count > 0
    if ok and is_images(base):
        ok = struct.unpack(">II", head[8:16]) == (SIDE, SIDE)
    if not ok:
        raise DataUnavailableError(f"{path}: bad IDX header (magic {magic:#010x}, count {count}): not {what}")
    return need + count * (SIDE * SIDE if is_images(base) else 1)


def count(path: Path) -> int:
    with open(path, "rb") as f:
        return struct.unpack(">II", f.read(8))[1]


def check_plain(files: dict[str, Path], shown: dict[str, Path] | None = None) -> None:
    """The four uncompressed files: headers, sizes, and as many labels as images per split.
    `shown`: the names to give in messages (the source files of copies in the cache)."""
    shown = shown or files
    for base, path in files.items():
        with open(path, "rb") as f:
            head = f.read(header_size(base))
        size, want = path.stat().st_size, expected_size(base, head, shown[base])
        if size != want:
            raise DataUnavailableError(
                f"{shown[base]}: {size} bytes uncompressed where its header says {want}: truncated or corrupt"
            )
    for split in ("train", "t10k"):
        n_x, n_y = count(files[f"{split}-images-idx3-ubyte"]), count(files[f"{split}-labels-idx1-ubyte"])
        if n_x != n_y:
            raise DataUnavailableError(
                f"{shown[f'{split}-labels-idx1-ubyte']}: {n_y} labels for {n_x} images in the {split} split"
            )


def check_labels(labels, path: str) -> None:
    """A labels tensor (uint8/int64) holds only classes 0..NUM_CLASSES-1."""
    bad = (labels >= NUM_CLASSES).nonzero()
    if len(bad):
        i = int(bad[0][0])
        raise DataUnavailableError(
            f"{path}: label {int(labels[i])} at index {i} is outside 0..{NUM_CLASSES - 1}: not MNIST labels"
        )


def content_key(files: dict[str, Path]) -> str:
    """16 hex digits over the files' names, sizes and bytes (as found: compressed or not)."""
    h = hashlib.sha256()
    for base in sorted(files):
        path = files[base]
        h.update(f"{base}:{path.name}:{path.stat().st_size}\n".encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]
