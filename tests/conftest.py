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
