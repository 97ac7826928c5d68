"""CIFAR-10 from small batch files in its documented pickle format (made here), found like MNIST;
synthetic data shaped as the configuration's images."""

from __future__ import annotations

import pickle

import pytest
import torch

from ffbench.config import RunConfig
from ffbench.data import CIFAR_FOLDER, CIFAR_TEST, CIFAR_TRAIN, load_config_dataset, load_dataset
from ffbench.errors import ConfigError, DataUnavailableError


def write_cifar(root, per_batch=12, seed=0, folder=True):
    g = torch.Generator().manual_seed(seed)
    out = root / CIFAR_FOLDER if folder else root
    out.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(CIFAR_TRAIN + CIFAR_TEST):
        data = torch.randint(0, 256, (per_batch, 3072), generator=g, dtype=torch.uint8).numpy()
        labels = [(i + j) % 10 for j in range(per_batch)]
        with open(out / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
    return out


def test_cifar10_from_data_dir(tmp_path):
    write_cifar(tmp_path)
    ds = load_dataset("cifar10", data_dir=tmp_path, val_size=10)
    assert ds.name == "cifar10" and ds.in_features == 3072 and ds.num_classes == 10
    assert len(ds.train_x) + len(ds.val_x) == 60 and len(ds.test_x) == 12
    assert 0.0 <= float(ds.train_x.min()) and float(ds.train_x.max()) <= 1.0
    assert ds.train_x.dtype == torch.float32 and ds.train_y.dtype == torch.int64


def test_cifar10_folder_itself_and_env_var(tmp_path, monkeypatch):
    folder = write_cifar(tmp_path / "x", folder=False)
    monkeypatch.setenv("FFBENCH_DATA", str(folder))
    ds = load_dataset("cifar10", val_size=0, download=False, cache_dir=tmp_path / "cache")
    assert len(ds.test_x) == 12


def test_cifar10_missing_names_the_places_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("FFBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError, match="cifar10 not found"):
        load_dataset("cifar10", data_dir=tmp_path / "empty", download=False, cache_dir=tmp_path / "cache")
    with pytest.raises(DataUnavailableError, match="--data-dir names where it must be"):  # never downloaded
        load_dataset("cifar10", data_dir=tmp_path / "empty", download=True, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.tar.gz"))
    with pytest.raises(ConfigError, match="does not exist"):  # an explicit folder is never passed over
        load_dataset("cifar10", data_dir=tmp_path / "nowhere", download=False, cache_dir=tmp_path / "cache")


def test_cifar10_corrupt_batch_is_data_unavailable(tmp_path):
    out = write_cifar(tmp_path)
    (out / CIFAR_TRAIN[2]).write_bytes(b"not a pickle")
    with pytest.raises(DataUnavailableError, match="not a CIFAR-10 batch"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_synthetic_takes_the_configurations_image_shape():
    cfg = RunConfig(trainer="bp", arch="conv", dataset="synthetic", image_shape="3x16x16", val_size=0)
    assert load_config_dataset(cfg, synthetic_train=8, synthetic_test=4).in_features == 768
    cfg = RunConfig(trainer="bp", arch="conv", dataset="synthetic", val_size=0)
    assert load_config_dataset(cfg, synthetic_train=8, synthetic_test=4).in_features == 3072
    cfg = RunConfig(trainer="bp", dataset="synthetic", val_size=0)
    assert load_config_dataset(cfg, synthetic_train=8, synthetic_test=4).in_features == 784
