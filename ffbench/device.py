"""Device resolution. 'auto' means CUDA when available, else CPU."""

from __future__ import annotations

import torch

from .errors import ConfigError, DeviceUnavailableError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                "device 'cuda' requested but no CUDA GPU is available here; use --device cpu or auto"
            )
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}; choose from auto, cpu, cuda")


def resolve_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels; a no-op on CPU, where ops run synchronously."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
