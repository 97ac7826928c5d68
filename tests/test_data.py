"""Tests for ffbench.data: finding, caching and splitting the datasets (CPU, offline)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import torch

from ffbench import data
from ffbench.data import Dataset, load_dataset
from ffbench.errors import ConfigError, DataUnavailableError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_RAW = SHARED_DATA / "MNIST" / "raw"
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
REAL_SYSTEM_DIRS = data.SYSTEM_DATA_DIRS

needs_mnist = pytest.mark.skipif(
    not all((MNIST_RAW / f"{f}.gz").is_file() for f in IDX_FILES),
    reason=f"MNIST gz files not found in {MNIST_RAW} (the shared read-only test data)",
)
needs_fashion = pytest.mark.skipif(
    not all((DEBIAN_FASHION / f"{f}.gz").is_file() for f in IDX_FILES),
    reason=f"Debian package dataset-fashion-mnist not installed ({DEBIAN_FASHION})",
)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No $FFBENCH_DATA, an empty cwd, no system folders, and a throwaway default cache."""
    monkeypatch.delenv("FFBENCH_DATA", raising=False)
    monkeypatch.setenv("FFBENCH_CACHE", str(tmp_path / "env-cache"))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", ())


@pytest.fixture(scope="module")
def plain_mnist(tmp_path_factory):
    """Uncompressed MNIST in torchvision's layout: <root>/MNIST/raw/<files>."""
    if not MNIST_RAW.is_dir():
        pytest.skip(f"MNIST gz files not found in {MNIST_RAW}")
    root = tmp_path_factory.mktemp("plain")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        with gzip.open(MNIST_RAW / f"{name}.gz", "rb") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


def cached_raw(cache: Path, cls: str = "MNIST") -> Path:
    """The one cache entry (filed under the source files' content) holding `cls`'s files."""
    entries = sorted((cache / "by-content").glob(f"{cls}-*"))
    assert len(entries) == 1, entries
    return entries[0] / cls / "raw"


def check_mnist_like(ds: Dataset, val_size: int) -> None:
    assert (len(ds.train_x), len(ds.val_x), len(ds.test_x)) == (60000 - val_size, val_size, 10000)
    assert (len(ds.train_y), len(ds.val_y), len(ds.test_y)) == (60000 - val_size, val_size, 10000)
    assert ds.in_features == 784 and ds.num_classes == 10 and not ds.synthetic
    for x, y in ((ds.train_x, ds.train_y), (ds.val_x, ds.val_y), (ds.test_x, ds.test_y)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1] == 784
        assert x.min() >= 0 and x.max() <= 1
        assert set(y.unique().tolist()) == set(range(10))


def check_partition(ds: Dataset, full_x: torch.Tensor) -> None:
    """train + val is exactly the official training set (as a multiset), so they are disjoint."""
    w = torch.randn(full_x.shape[1], generator=torch.Generator().manual_seed(1))
    keys = lambda x: torch.sort(x @ w).values  # noqa: E731
    assert torch.allclose(keys(torch.cat([ds.train_x, ds.val_x])), keys(full_x))


def mnist_train_x(root: Path) -> torch.Tensor:
    import torchvision

    raw = torchvision.datasets.MNIST(str(root), train=True, download=False).data
    return raw.reshape(len(raw), -1).float() / 255


# -- MNIST from the shared read-only gz files -------------------------------------


@needs_mnist
def test_mnist_from_readonly_gz_via_data_dir(tmp_path):
    cache = tmp_path / "cache"
    ds = load_dataset("mnist", data_dir=SHARED_DATA, cache_dir=cache, download=False)
    assert ds.name == "mnist" and ds.source == str(MNIST_RAW)
    check_mnist_like(ds, 5000)
    assert sorted(p.name for p in cached_raw(cache).iterdir()) == sorted(IDX_FILES)
    assert ds.describe()["content_key"] == cached_raw(cache).parent.parent.name.split("-")[1]
    check_partition(ds, mnist_train_x(cached_raw(cache).parent.parent))


@needs_mnist
def test_mnist_via_env_var_pointing_at_the_files(tmp_path, monkeypatch):
    # $FFBENCH_DATA pointing straight at the folder holding the gz files (layout root/<files>).
    monkeypatch.setenv("FFBENCH_DATA", str(MNIST_RAW))
    ds = load_dataset("mnist", cache_dir=tmp_path / "cache", val_size=1000, download=False)
    assert ds.source == str(MNIST_RAW)
    check_mnist_like(ds, 1000)


@needs_mnist
def test_default_cache_comes_from_env(tmp_path):
    ds = load_dataset("mnist", data_dir=SHARED_DATA, download=False, val_size=0)
    assert (cached_raw(tmp_path / "env-cache") / "train-images-idx3-ubyte").is_file()
    assert ds.val_x.shape == (0, 784) and ds.val_y.shape == (0,) and len(ds.train_x) == 60000


@needs_mnist
def test_cache_reused_and_half_written_cache_repaired(tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset("mnist", data_dir=SHARED_DATA, cache_dir=cache, download=False)
    raw = cached_raw(cache)
    mtimes = {p.name: p.stat().st_mtime_ns for p in raw.iterdir()}
    second = load_dataset("mnist", data_dir=SHARED_DATA, cache_dir=cache, download=False)
    assert {p.name: p.stat().st_mtime_ns for p in raw.iterdir()} == mtimes  # not re-extracted
    assert torch.equal(first.val_y, second.val_y) and torch.equal(first.val_x, second.val_x)
    assert torch.equal(first.train_y, second.train_y)

    # Simulate an interrupted extraction: a truncated file must be rewritten, not used.
    victim = raw / "train-images-idx3-ubyte"
    with open(victim, "r+b") as f:
        f.truncate(1000)
    third = load_dataset("mnist", data_dir=SHARED_DATA, cache_dir=cache, download=False)
    assert victim.stat().st_size == 16 + 60000 * 784
    assert torch.equal(third.train_x, first.train_x)
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)  # no temp files left


@needs_mnist
def test_corrupt_gz_raises_and_leaves_no_partial_file(tmp_path):
    root = tmp_path / "corrupt" / "MNIST" / "raw"
    root.mkdir(parents=True)
    for name in IDX_FILES:
        shutil.copy(MNIST_RAW / f"{name}.gz", root / f"{name}.gz")
    whole = (root / "train-images-idx3-ubyte.gz").read_bytes()
    (root / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    cache = tmp_path / "cache"
    with pytest.raises(DataUnavailableError, match="could not prepare mnist"):
        load_dataset("mnist", data_dir=tmp_path / "corrupt", cache_dir=cache, download=False)
    assert not list(cache.rglob("train-images-idx3-ubyte"))
    assert not list(cache.rglob("*.part"))


# -- uncompressed files ----------------------------------------------------------


def test_uncompressed_root_raw_layout(plain_mnist, tmp_path):
    cache = tmp_path / "cache"
    ds = load_dataset("mnist", data_dir=plain_mnist / "MNIST", cache_dir=cache, val_size=2000, download=False)
    assert ds.source == str(plain_mnist / "MNIST" / "raw")
    check_mnist_like(ds, 2000)
    check_partition(ds, mnist_train_x(plain_mnist))


def test_uncompressed_torchvision_layout_is_read_in_place(plain_mnist, tmp_path):
    cache = tmp_path / "cache"
    ds = load_dataset("mnist", data_dir=plain_mnist, cache_dir=cache, val_size=100, download=False)
    check_mnist_like(ds, 100)
    assert not cache.exists()  # nothing copied


# -- auto --------------------------------------------------------------------------


@needs_mnist
def test_auto_picks_mnist_when_a_root_has_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FFBENCH_DATA", str(SHARED_DATA))
    ds = load_dataset(cache_dir=tmp_path / "cache")
    assert ds.name == "mnist" and ds.source == str(MNIST_RAW)
    check_mnist_like(ds, 5000)


@needs_mnist
def test_auto_finds_mnist_in_cwd_data(tmp_path):
    Path("data").symlink_to(SHARED_DATA)
    ds = load_dataset("auto", cache_dir=tmp_path / "cache", val_size=10)
    assert ds.name == "mnist" and ds.source == str(Path.cwd() / "data" / "MNIST" / "raw")


def test_auto_falls_back_to_digits_without_downloading(tmp_path, monkeypatch):
    import torchvision

    def no_download(self):
        raise AssertionError("auto must not download")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_download)
    ds = load_dataset("auto", cache_dir=tmp_path / "cache")
    assert ds.name == "digits" and ds.source == "scikit-learn bundled digits"
    (tmp_path / "empty").mkdir()  # an explicit folder without the files is an error, not digits
    with pytest.raises(DataUnavailableError, match="holds neither MNIST nor Fashion-MNIST"):
        load_dataset("auto", data_dir=tmp_path / "empty", cache_dir=tmp_path / "cache")


@needs_fashion
def test_auto_picks_fashion_from_system_folder_when_no_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", REAL_SYSTEM_DIRS)
    ds = load_dataset("auto", cache_dir=tmp_path / "cache", val_size=500)
    assert ds.name == "fashion-mnist" and ds.source == str(DEBIAN_FASHION)


# -- Fashion-MNIST -----------------------------------------------------------------


@needs_fashion
def test_fashion_mnist_from_debian_system_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", REAL_SYSTEM_DIRS)
    cache = tmp_path / "cache"
    ds = load_dataset("fashion-mnist", cache_dir=cache, download=False)
    assert ds.name == "fashion-mnist" and ds.source == str(DEBIAN_FASHION)
    check_mnist_like(ds, 5000)
    assert (cached_raw(cache, "FashionMNIST") / "train-images-idx3-ubyte").is_file()
    assert ds.test_y[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # Fashion, not MNIST


@needs_fashion
def test_fashion_files_are_not_taken_for_mnist(tmp_path):
    with pytest.raises(DataUnavailableError):
        load_dataset("mnist", data_dir=DEBIAN_FASHION, cache_dir=tmp_path / "cache", download=False)


# -- digits and synthetic ------------------------------------------------------------


def test_digits_shapes_range_and_fixed_split():
    ds = load_dataset("digits")
    assert (len(ds.train_x), len(ds.val_x), len(ds.test_x)) == (
        1151,
        287,
        359,
    )  # 1797: 80/20, val capped at 20 %
    assert ds.in_features == 64 and ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64
    all_x = torch.cat([ds.train_x, ds.val_x, ds.test_x])
    assert all_x.min() == 0 and all_x.max() == 1
    assert set(torch.cat([ds.train_y, ds.val_y, ds.test_y]).tolist()) == set(range(10))
    again = load_dataset("digits", val_size=5000)
    for a, b in zip(
        (ds.train_x, ds.val_x, ds.test_x, ds.val_y), (again.train_x, again.val_x, again.test_x, again.val_y)
    ):
        assert torch.equal(a, b)
    assert len(load_dataset("digits", val_size=100).val_x) == 100


def test_digits_val_does_not_depend_on_global_seed():
    torch.manual_seed(123)
    a = load_dataset("digits", val_size=50)
    torch.manual_seed(456)
    b = load_dataset("digits", val_size=50)
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)


def test_synthetic_is_flagged_and_shaped():
    ds = load_dataset("synthetic", synthetic_features=32, synthetic_train=100, synthetic_test=40, val_size=10)
    assert ds.synthetic and ds.name == "synthetic" and ds.source == "synthetic (random tensors)"
    assert ds.train_x.shape == (90, 32) and ds.val_x.shape == (10, 32) and ds.test_x.shape == (40, 32)
    assert ds.train_x.min() >= 0 and ds.train_x.max() < 1 and ds.train_y.max() <= 9 and ds.train_y.min() >= 0
    assert len(load_dataset("synthetic", val_size=5000).val_x) == int(0.2 * 2048)
    assert not load_dataset("digits").synthetic
    with pytest.raises(ConfigError):
        load_dataset("synthetic", synthetic_features=0)


def test_describe_and_to():
    ds = load_dataset("synthetic", synthetic_features=8, synthetic_train=50, synthetic_test=10, val_size=5)
    info = ds.describe()
    assert json.loads(json.dumps(info)) == info
    assert info == {
        "name": "synthetic",
        "source": "synthetic (random tensors)",
        "synthetic": True,
        "train_size": 45,
        "val_size": 5,
        "test_size": 10,
        "in_features": 8,
        "num_classes": 10,
    }
    moved = ds.to("cpu")
    assert moved is not ds and moved.describe() == info and moved.train_x.device.type == "cpu"


# -- errors -------------------------------------------------------------------------


def test_missing_data_without_download_names_searched_places(tmp_path, monkeypatch):
    monkeypatch.setenv("FFBENCH_DATA", str(tmp_path / "env-data"))
    monkeypatch.setattr(data, "SYSTEM_DATA_DIRS", (("mnist", "/nonexistent/system/mnist"),))
    with pytest.raises(ConfigError) as info:
        load_dataset("mnist", data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache", download=False)
    assert f"--data-dir {tmp_path / 'nowhere'} does not exist" in str(info.value)
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("mnist", cache_dir=tmp_path / "cache", download=False)
    msg = str(info.value)
    assert "\n" not in msg
    for place in (
        f"$FFBENCH_DATA={tmp_path / 'env-data'}",
        "./data",
        "/nonexistent/system/mnist",
        str(tmp_path / "cache"),
        "download disabled",
        "--data-dir",
        "--dataset digits",
        "--dataset synthetic",
    ):
        assert place in msg


def test_failed_download_becomes_data_unavailable(tmp_path, monkeypatch):
    import torchvision

    def offline(self):
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried https://example/, got: no network"
        )

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", offline)
    with pytest.raises(DataUnavailableError) as info:
        load_dataset("fashion-mnist", cache_dir=tmp_path / "cache", download=True)
    msg = str(info.value)
    assert (
        "\n" not in msg
        and "download failed (Error downloading train-images-idx3-ubyte.gz: Tried https://example/" in msg
    )


def test_unknown_name_is_config_error():
    with pytest.raises(ConfigError) as info:
        load_dataset("imagenet")
    msg = str(info.value)
    assert "\n" not in msg and "imagenet" in msg
    for name in ("auto", "mnist", "fashion-mnist", "digits", "synthetic"):
        assert name in msg
    with pytest.raises(ConfigError):
        load_dataset("digits", val_size=-1)
