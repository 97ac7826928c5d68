"""CIFAR-10 batches are untrusted input (issue 24): a restricted unpickler (nothing in the file
runs code), and dtype, shape, range and label checks like MNIST's."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from test_data_cifar import write_cifar

from ffbench.data import CIFAR_TRAIN, load_dataset
from ffbench.errors import DataUnavailableError


def replace_batch(folder, entry, protocol=pickle.DEFAULT_PROTOCOL):
    with open(folder / CIFAR_TRAIN[0], "wb") as f:
        pickle.dump(entry, f, protocol=protocol)


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def good(n=12):
    return {b"data": np.zeros((n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}


def test_a_batch_that_would_run_code_is_refused_before_it_runs(tmp_path):
    folder = write_cifar(tmp_path)
    marker = tmp_path / "ran"
    replace_batch(folder, {b"data": RunsACommand(marker), b"labels": []})
    with pytest.raises(DataUnavailableError, match="which a CIFAR-10 batch never does"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "entry,fragment",
    [
        ({**good(), b"data": np.zeros((12, 3072), dtype=np.float32)}, "'data' is float32"),
        ({**good(), b"data": np.zeros((12, 3071), dtype=np.uint8)}, "expected uint8 N x 3072"),
        ({**good(), b"labels": [10] * 12}, "label 10 is not a CIFAR-10 class"),
        ({**good(), b"labels": [-1] * 12}, "label -1 is not a CIFAR-10 class"),
        ({**good(), b"labels": ["cat"] * 12}, "label 'cat' is not a CIFAR-10 class"),
        ({b"data": good()[b"data"], b"fine_labels": [50] * 12}, "not as many labels"),
        ({**good(), b"labels": [1] * 11}, "not as many labels"),
        ([1, 2, 3], "holds list, not a dict"),
    ],
)
def test_batches_that_are_not_cifar10_are_refused(tmp_path, entry, fragment):
    folder = write_cifar(tmp_path)
    replace_batch(folder, entry)
    with pytest.raises(DataUnavailableError, match=fragment):
        load_dataset("cifar10", data_dir=tmp_path)


def test_protocol_2_batches_as_python_2_wrote_them_still_load(tmp_path):
    folder = write_cifar(tmp_path)
    replace_batch(folder, {**good(), b"batch_label": b"training batch 1 of 5"}, protocol=2)
    assert len(load_dataset("cifar10", data_dir=tmp_path, val_size=0).train_x) == 60
