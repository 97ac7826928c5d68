"""Trainer registry: adding a trainer is one class and one line here."""

from __future__ import annotations

import torch

from ..config import RunConfig
from .base import Trainer, make_optimizer
from .bp import BPCheckpointTrainer, BPTrainer
from .ff import FFSummedTrainer, FFTrainer
from .frugal_bp import BPAccumTrainer, BPInBackwardTrainer, BPLocalTrainer

REGISTRY: dict[str, type[Trainer]] = {
    cls.name: cls
    for cls in (
        BPTrainer,
        BPCheckpointTrainer,
        FFTrainer,
        FFSummedTrainer,
        BPAccumTrainer,
        BPInBackwardTrainer,
        BPLocalTrainer,
    )
}


def build_trainer(config: RunConfig, in_features: int, num_classes: int, device: torch.device) -> Trainer:
    """Seed, then build: the same seed gives the same initial weights for a trainer."""
    torch.manual_seed(config.seed)
    return REGISTRY[config.trainer](config, in_features, num_classes, device)


__all__ = ["REGISTRY", "Trainer", "build_trainer", "make_optimizer"]
