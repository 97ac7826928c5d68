"""Trainers: each one owns its model, loss and update (see base.py); found by registry.py."""

from __future__ import annotations

from .registry import architectures, register_trainer, trainer_class, trainer_names


def build_trainer(config, in_features: int, num_classes: int, device):
    """Seed, then build: the same seed gives the same initial weights for a trainer."""
    import torch

    torch.manual_seed(config.seed)
    return trainer_class(config.trainer, config.arch)(config, in_features, num_classes, device)


__all__ = ["architectures", "build_trainer", "register_trainer", "trainer_class", "trainer_names"]
