"""Measurement: memory and time trackers, each a context manager with a ``.result()``.

Every result is a small frozen dataclass with sizes in bytes (ints) and a
``method`` string saying how the figure was obtained. Tensor-level, process
(RSS) and CUDA-allocator figures come from separate trackers and are never
blended. Trackers know nothing about trainers; the harness passes them what
they need (parameters, optimizers, inputs, device) and owns resets and syncs.
"""

from .cuda import CudaMemory, CudaPeakTracker
from .energy import Energy, EnergyMeter
from .process import ProcessMemory, ProcessPeakTracker
from .protocol import set_threads
from .tensors import CATEGORIES, PhasePeak, TensorMemory, TensorTracker
from .timer import StepTime, StepTimer, available_cores

__all__ = [
    "CATEGORIES",
    "CudaMemory",
    "CudaPeakTracker",
    "Energy",
    "EnergyMeter",
    "PhasePeak",
    "ProcessMemory",
    "ProcessPeakTracker",
    "StepTime",
    "StepTimer",
    "TensorMemory",
    "TensorTracker",
    "available_cores",
    "set_threads",
]
