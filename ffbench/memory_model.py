"""Public entry point for the analytic memory model (implementation: :mod:`ffbench.model`)."""

from .model import MemoryPrediction, max_batch_size, predict

__all__ = ["MemoryPrediction", "max_batch_size", "predict"]
