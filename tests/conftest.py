"""Shared test configuration: tests marked `cuda` run only where a CUDA GPU is present
(`pytest -m cuda` selects them; on a CPU-only machine they are skipped with a reason)."""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's tests (byte-exact ledgers; no thread pool noise)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
