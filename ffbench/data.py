"""Datasets for ffbench: MNIST, Fashion-MNIST, scikit-learn's digits, or synthetic tensors.

Every dataset comes back as a `Dataset` of flat float32 inputs in [0, 1] and int64 labels,
with a validation split carved from the official training set by a fixed permutation
(seed `SPLIT_SEED`, independent of the run seed, so every run and trainer sees the same split).

Where MNIST / Fashion-MNIST are looked for: an explicit `data_dir` (`--data-dir`) is the only
place searched (it must exist and hold the files: never silently passed over). Without one,
first hit wins:

1. (the `data_dir` argument, when given: alone);
2. `$FFBENCH_DATA` (one directory, or several separated by `os.pathsep`);
3. `./data` in the current working directory;
4. system dataset folders, `SYSTEM_DATA_DIRS` (Debian's `dataset-fashion-mnist` package
   installs `/usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz`);
5. the cache (see below), which also holds earlier downloads.

In each root the four IDX files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
`t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally `.gz`) are accepted in
`root/MNIST/raw/` (`root/FashionMNIST/raw/` for Fashion-MNIST), `root/raw/` or `root/`.
MNIST and Fashion-MNIST share file names, so in the last two layouts the first training
labels are checked to tell them apart.

Roots may be read-only. Unless the files already sit uncompressed in a `<Class>/raw` folder,
they are gunzipped / copied into the cache (`cache_dir`, `$FFBENCH_CACHE`, or
`~/.cache/ffbench`) as `cache/by-content/<Class>-<key>/<Class>/raw/<file>`, the key a hash of
the source files' names, sizes and bytes (`idx.content_key`): two folders of different data
never share an entry, so a record's `dataset.source` (the folder the files came from) and
`dataset.content_key` say what was trained on. Each file is written to a temporary file and
renamed. Every file's IDX header, size and labels (0..9) are checked before anything trains
(`ffbench.idx`). torchvision's dataset class then reads them with `download=False`.

If nothing is found, an explicitly named dataset is downloaded by torchvision into the cache
when `download=True`. `auto` never downloads: it takes MNIST if found locally, else
Fashion-MNIST if found locally, else the bundled digits, and records its choice in `name`.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import idx, validate
from .config import DATASETS
from .errors import ConfigError, DataUnavailableError
from .results.store import make_readable

DATASET_NAMES = DATASETS
SPLIT_SEED = 0  # fixed: the train/val split (and digits/synthetic data) never depend on the run seed
MAX_VAL_FRACTION = 0.2  # val_size is capped at this fraction of the training set

# (dataset name, directory) pairs searched after data_dir, $FFBENCH_DATA and ./data.
SYSTEM_DATA_DIRS: tuple[tuple[str, str], ...] = (("fashion-mnist", "/usr/share/datasets/fashion-mnist"),)

_TV_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # torchvision class = folder name
# First ten training labels: tells MNIST from Fashion-MNIST in folders that do not name them.
_FINGERPRINT = {
    "mnist": bytes([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]),
    "fashion-mnist": bytes([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]),
}


@dataclass(frozen=True)
class Dataset:
    name: str  # 'mnist', 'fashion-mnist', 'digits' or 'synthetic'
    source: str  # a path, 'torchvision download', 'scikit-learn bundled digits', 'synthetic (random tensors)'
    synthetic: bool  # True only for 'synthetic': results must be labelled as such
    train_x: Tensor  # float32 [N, D] in [0, 1]
    train_y: Tensor  # int64 [N]
    val_x: Tensor  # carved from the official training set
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int = 10
    content_key: str | None = None  # the cache entry (hash of the source files) it was read from

    @property
    def in_features(self) -> int:
        return self.train_x.shape[1]

    def to(self, device: torch.device | str) -> Dataset:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), Tensor)
        }
        return dataclasses.replace(self, **moved)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "synthetic": self.synthetic,
            "train_size": len(self.train_y),
            "val_size": len(self.val_y),
            "test_size": len(self.test_y),
            "in_features": self.in_features,
            "num_classes": self.num_classes,
            **({"content_key": self.content_key} if self.content_key else {}),
        }


def load_dataset(
    name: str = "auto",
    *,
    data_dir: str | Path | None = None,
    val_size: int = 5000,
    download: bool = True,
    cache_dir: str | Path | None = None,
    synthetic_features: int = 784,
    synthetic_train: int = 2048,
    synthetic_test: int = 512,
) -> Dataset:
    if name not in DATASET_NAMES:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(DATASET_NAMES)}")
    if not isinstance(val_size, int) or val_size < 0:
        raise ConfigError(f"val-size must be an integer >= 0, got {val_size!r}")
    if data_dir is not None:
        data_dir = validate.data_dir(data_dir, advice=ADVICE)
    cache = _cache_root(cache_dir)

    if name == "auto":
        for candidate in ("mnist", "fashion-mnist"):
            found, searched = _find_idx(candidate, data_dir, cache)
            if found is not None:
                return _idx_dataset(candidate, found, cache, val_size)
        if data_dir is not None:
            raise DataUnavailableError(
                f"--data-dir {data_dir} holds neither MNIST nor Fashion-MNIST IDX files (searched "
                f"{'; '.join(searched)}); {ADVICE}"
            )
        name = "digits"
    if name == "digits":
        return _digits(val_size)
    if name == "synthetic":
        return _synthetic(val_size, synthetic_features, synthetic_train, synthetic_test)
    if name == "cifar10":
        return load_cifar10(data_dir=data_dir, val_size=val_size, download=download, cache=cache)

    found, searched = _find_idx(name, data_dir, cache)
    if found is not None:
        return _idx_dataset(name, found, cache, val_size)
    reason = "download disabled" if data_dir is None else "--data-dir names where it must be"
    if download and data_dir is None:
        try:
            return _download(name, cache, val_size)
        except Exception as exc:  # noqa: BLE001 - offline, proxy, bad mirror, ...: all end in the same advice
            reason = f"download failed ({_one_line(exc)[:200]})"
    raise DataUnavailableError(f"{name} not found in {'; '.join(searched)} and {reason}; {ADVICE}")


ADVICE = (
    "point --data-dir or $FFBENCH_DATA at its files (MNIST: IDX; CIFAR-10: python batches), or use --dataset digits (bundled, offline) "
    "or --dataset synthetic"
)


# -- locating and caching IDX files ----------------------------------------------


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is None:
        env = validate.env_folders("FFBENCH_CACHE", must_exist=False)
        cache_dir = env[0] if env else Path.home() / ".cache" / "ffbench"
    return Path(cache_dir).expanduser()


def _roots(name: str, data_dir: Path | None, cache: Path) -> list[tuple[Path, str]]:
    """(root, label for error messages), in search order: an explicit data_dir alone, else
    $FFBENCH_DATA, ./data, the system folders and the cache."""
    if data_dir is not None:
        return [(data_dir, f"--data-dir {data_dir}")]
    roots = [(p, f"$FFBENCH_DATA={p}") for p in validate.env_folders("FFBENCH_DATA", must_exist=False)]
    roots.append((Path.cwd() / "data", f"./data ({Path.cwd() / 'data'})"))
    roots += [(Path(d), d) for ds, d in SYSTEM_DATA_DIRS if ds == name]
    roots.append((cache, f"cache {cache}"))
    return roots


def _idx_file(folder: Path, base: str) -> Path | None:
    """The uncompressed file if it is complete, else the .gz if present, else None."""
    plain, gz = folder / base, folder / (base + ".gz")
    if plain.is_file() and _complete(plain, base):
        return plain
    return gz if gz.is_file() else (plain if plain.is_file() else None)


def _complete(path: Path, base: str) -> bool:
    """Whether an uncompressed IDX file has the size its header announces."""
    try:
        with open(path, "rb") as f:
            return path.stat().st_size == idx.expected_size(base, f.read(idx.header_size(base)), path)
    except (OSError, DataUnavailableError):
        return False


def _train_labels_head(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return f.read(18)[8:]
    except (OSError, EOFError, zlib.error):
        return b""


def _find_idx(
    name: str, data_dir: str | Path | None, cache: Path
) -> tuple[dict[str, Path] | None, list[str]]:
    """Paths of the four IDX files for `name`, or None, plus the places searched."""
    cls = _TV_CLASS[name]
    searched = []
    for root, label in _roots(name, data_dir, cache):
        searched.append(label)
        for folder, named in ((root / cls / "raw", True), (root / "raw", False), (root, False)):
            files = {base: _idx_file(folder, base) for base in idx.NAMES}
            if None in files.values():
                continue
            if not named and _train_labels_head(files["train-labels-idx1-ubyte"]) != _FINGERPRINT[name]:
                continue  # e.g. Fashion-MNIST files where MNIST was asked for
            return files, searched
    return None, searched


def _materialise(name: str, files: dict[str, Path], cache: Path) -> tuple[Path, str | None]:
    """A root torchvision can read with download=False -- the files' own, or their copy in the
    cache filed under the files' content (`idx.content_key`) -- and that key (None in place)."""
    cls = _TV_CLASS[name]
    folder = files["train-images-idx3-ubyte"].parent
    if folder.name == "raw" and folder.parent.name == cls and all(p.suffix != ".gz" for p in files.values()):
        idx.check_plain(files)
        return folder.parent.parent, None  # already in torchvision's layout
    try:
        key = idx.content_key(files)
        root = cache / "by-content" / f"{cls}-{key}"
        raw = root / cls / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for base, src in files.items():
            _copy_idx(src, raw / base, base)
    except (OSError, EOFError, zlib.error) as exc:  # unwritable cache, truncated or corrupt gzip, ...
        raise DataUnavailableError(
            f"could not prepare {name} in cache {cache}: {' '.join(str(exc).split())}; set $FFBENCH_CACHE "
            f"to a writable folder or check the source files"
        ) from exc
    idx.check_plain({base: raw / base for base in files}, shown=files)
    return root, key


def _copy_idx(src: Path, dst: Path, base: str) -> None:
    """Uncompress or copy `src` to `dst` (a temporary file renamed when complete); a complete
    `dst` from an earlier call is kept."""
    if dst.is_file() and _complete(dst, base):
        return
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{base}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, (gzip.open if src.suffix == ".gz" else open)(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        with open(tmp, "rb") as f:
            want = idx.expected_size(base, f.read(idx.header_size(base)), src)
        if os.path.getsize(tmp) != want:
            raise DataUnavailableError(
                f"{src} holds {os.path.getsize(tmp)} bytes uncompressed where its header says {want}: "
                f"truncated or corrupt"
            )
        make_readable(tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _download(name: str, cache: Path, val_size: int) -> Dataset:
    import torchvision

    tv_class = getattr(torchvision.datasets, _TV_CLASS[name])
    tv_class(str(cache), train=True, download=True)
    tv_class(str(cache), train=False, download=True)
    raw = cache / _TV_CLASS[name] / "raw"
    files = {base: raw / base for base in idx.NAMES}
    bad = [str(p) for base, p in files.items() if not p.is_file() or not _complete(p, base)]
    if bad:
        raise RuntimeError(f"incomplete download: {', '.join(bad)}")
    return _idx_dataset(name, files, cache, val_size, source="torchvision download")


def _idx_dataset(
    name: str, files: dict[str, Path], cache: Path, val_size: int, source: str | None = None
) -> Dataset:
    import torchvision

    root, key = _materialise(name, files, cache)
    tv_class = getattr(torchvision.datasets, _TV_CLASS[name])
    splits = []
    for train in (True, False):
        ds = tv_class(str(root), train=train, download=False)
        idx.check_labels(ds.targets, str(files[f"{'train' if train else 't10k'}-labels-idx1-ubyte"]))
        splits.append((ds.data.reshape(len(ds.data), -1).to(torch.float32).div_(255), ds.targets.long()))
    (x, y), (test_x, test_y) = splits
    src = source or str(files["train-images-idx3-ubyte"].parent)
    return dataclasses.replace(_split(name, src, False, x, y, test_x, test_y, val_size), content_key=key)


# -- bundled and synthetic data ---------------------------------------------------


def _digits(val_size: int) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(0.2 * len(y))
    test, train = perm[:n_test], perm[n_test:]
    return _split(
        "digits", "scikit-learn bundled digits", False, x[train], y[train], x[test], y[test], val_size
    )


def _synthetic(val_size: int, features: int, n_train: int, n_test: int) -> Dataset:
    for label, value in (
        ("synthetic_features", features),
        ("synthetic_train", n_train),
        ("synthetic_test", n_test),
    ):
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{label} must be a positive integer, got {value!r}")
    g = torch.Generator().manual_seed(SPLIT_SEED)
    x = torch.rand(n_train + n_test, features, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return _split(
        "synthetic",
        "synthetic (random tensors)",
        True,
        x[:n_train],
        y[:n_train],
        x[n_train:],
        y[n_train:],
        val_size,
    )


def _split(
    name: str,
    source: str,
    synthetic: bool,
    x: Tensor,
    y: Tensor,
    test_x: Tensor,
    test_y: Tensor,
    val_size: int,
) -> Dataset:
    """Last min(val_size, 20 %) examples of a fixed permutation of the training set -> validation."""
    n_val = min(val_size, int(MAX_VAL_FRACTION * len(y)))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(SPLIT_SEED))
    train, val = perm[: len(y) - n_val], perm[len(y) - n_val :]
    return Dataset(
        name=name,
        source=source,
        synthetic=synthetic,
        train_x=x[train],
        train_y=y[train],
        val_x=x[val],
        val_y=y[val],
        test_x=test_x,
        test_y=test_y,
    )


# -- CIFAR-10 and image datasets ----------------------------------------------------------
# torchvision's CIFAR10 layout: <root>/cifar-10-batches-py/ with five training batches and one
# test batch, each a pickled dict {b"data": uint8 N x 3072 (the R, G, B planes of 32 x 32
# pixels: a flat 3x32x32 image in C order), b"labels": N ints}.
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)
CIFAR_FEATURES = 3 * 32 * 32


def load_config_dataset(config, **kwargs) -> Dataset:
    """`load_dataset` for a RunConfig: its dataset, data folder and validation size; synthetic
    data shaped as the configuration's images under --arch conv|local (3x32x32 by default)."""
    from .arch import synthetic_features

    kwargs.setdefault("synthetic_features", synthetic_features(config))
    return load_dataset(config.dataset, data_dir=config.data_dir, val_size=config.val_size, **kwargs)


def _find_cifar10(data_dir: str | Path | None, cache: Path) -> tuple[Path | None, list[str]]:
    """The first cifar-10-batches-py folder holding all six batches, in MNIST's search order
    (data_dir, $FFBENCH_DATA, ./data, the cache): `root/cifar-10-batches-py` or `root` itself."""
    searched = []
    for root, label in _roots("cifar10", data_dir, cache):
        searched.append(label)
        for folder in (root / CIFAR_FOLDER, root):
            if all((folder / f).is_file() for f in CIFAR_TRAIN + CIFAR_TEST):
                return folder, searched
    return None, searched


# What a CIFAR-10 batch's pickle may name: numpy's array reconstruction (and the codec
# Python 2 pickles use for byte strings); anything else would run code from the data folder.
CIFAR_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}  # fmt: skip
CIFAR_CLASSES = 10


def _unpickle_batch(path: Path) -> Any:
    """A pickled batch read with an unpickler that builds only dicts, lists, strings, bytes,
    numbers and numpy arrays (`CIFAR_PICKLE_GLOBALS`): nothing in the file can run code."""
    import pickle

    class Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) not in CIFAR_PICKLE_GLOBALS:
                raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never does")
            return super().find_class(module, name)

    with open(path, "rb") as f:
        return Restricted(f, encoding="latin1").load()


def _cifar_batch(path: Path) -> tuple[Tensor, Tensor]:
    """One batch checked like MNIST's files: a dict whose `data` is uint8 N x 3072 (pixel
    values 0..255) and whose `labels` are N integers in 0..9."""
    import pickle

    import numpy as np

    try:
        entry = _unpickle_batch(path)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, IndexError,
            KeyError, RecursionError, MemoryError) as exc:  # fmt: skip
        raise DataUnavailableError(f"{path} is not a CIFAR-10 batch: {_one_line(exc)[:200]}") from None
    if not isinstance(entry, dict):
        raise DataUnavailableError(
            f"{path} is not a CIFAR-10 batch: it holds {type(entry).__name__}, not a dict"
        )
    data = entry.get("data", entry.get(b"data"))
    labels = entry.get("labels", entry.get(b"labels"))
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != CIFAR_FEATURES
    ):
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataUnavailableError(
            f"{path}: 'data' is {what}, expected uint8 N x {CIFAR_FEATURES} (pixel values 0..255)"
        )
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data):
        raise DataUnavailableError(f"{path} holds {len(data)} images but not as many labels")
    if not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < CIFAR_CLASSES
        for v in labels
    ):
        bad = next(v for v in labels if not (isinstance(v, (int, np.integer)) and 0 <= v < CIFAR_CLASSES))
        raise DataUnavailableError(
            f"{path}: label {repr(bad)[:40]} is not a CIFAR-10 class (integers 0..9; CIFAR-100 is not CIFAR-10)"
        )
    return torch.from_numpy(data.copy()), torch.as_tensor(np.asarray(labels, dtype=np.int64))


def _read_cifar_batches(folder: Path, names: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """Flat float32 images in [0, 1] (N x 3072) and int64 labels from pickled batches."""
    xs, ys = [], []
    for name in names:
        x, y = _cifar_batch(folder / name)
        xs.append(x.to(torch.float32).div_(255))
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def load_cifar10(
    *,
    data_dir: str | Path | None = None,
    val_size: int = 5000,
    download: bool = True,
    cache: Path,
) -> Dataset:
    """CIFAR-10 as flat 3x32x32 rows. Found locally in the search order of `_find_cifar10`; else,
    when `download`, torchvision's `CIFAR10(cache, download=True)` fetches and checks it into the
    cache. The batches are read from their documented pickle format (so small batch files made
    by the tests load as the real ones do)."""
    folder, searched = _find_cifar10(data_dir, cache)
    source = None
    if folder is None:  # as for MNIST: an explicit --data-dir is where it must be
        reason = "download disabled" if data_dir is None else "--data-dir names where it must be"
        if download and data_dir is None:
            try:
                import torchvision

                torchvision.datasets.CIFAR10(str(cache), train=True, download=True)
                folder, source = cache / CIFAR_FOLDER, "torchvision download"
            except Exception as exc:  # noqa: BLE001 - offline, proxy, bad mirror: one line of advice
                reason = f"download failed ({_one_line(exc)[:200]})"
        if folder is None:
            raise DataUnavailableError(
                f"cifar10 not found in {'; '.join(searched)} and {reason}; point --data-dir or "
                f"$FFBENCH_DATA at a folder holding {CIFAR_FOLDER}/, or use --dataset synthetic"
            )
    x, y = _read_cifar_batches(folder, CIFAR_TRAIN)
    test_x, test_y = _read_cifar_batches(folder, CIFAR_TEST)
    return _split("cifar10", source or str(folder), False, x, y, test_x, test_y, val_size)
