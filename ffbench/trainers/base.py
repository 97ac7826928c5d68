"""The trainer interface every algorithm implements.

A trainer owns its model, loss and update rule -- nothing else. It never touches a
clock, a memory tracker or a device sync: the harness does that around its calls.
It only marks what it is doing with `ffbench.phases.phase(...)` so trackers can
attribute memory to forward / backward / optimizer work.

Conventions shared by all trainers:
- `batch_size` = real examples per optimizer step (FF forwards as many negatives too).
- Gradients are freed right after each optimizer step (`zero_grad(set_to_none=True)`),
  so no gradient is alive between steps.
- One optimizer class and implementation for all trainers (RunConfig.optimizer /
  optimizer_impl; single-tensor `foreach=False` by default, the smallest temporaries).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

import torch
from torch import nn

from ..config import RunConfig
from ..device import resolve_dtype
from ..phases import phase


def make_optimizer(params: Iterable[nn.Parameter], config: RunConfig) -> torch.optim.Optimizer:
    """The one optimizer factory: same class and implementation for every trainer."""
    impl = {"single-tensor": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}[
        config.optimizer_impl
    ]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, **impl)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, **impl)


class Trainer(abc.ABC):
    """Build with a config; call `train_step` per batch and `predict` to evaluate."""

    name: str = ""
    # The update a trainer makes decides its family (not its name): "bp" (backprop's exact
    # gradient of the whole network's loss), "ff" (Forward-Forward's layer-local update), or
    # "other" (another learning rule: reported beside both, never either side's best).
    family: str = "other"

    def __init__(self, config: RunConfig, in_features: int, num_classes: int, device: torch.device) -> None:
        self.config = config
        self.in_features = in_features
        self.num_classes = num_classes
        self.device = device
        self.dtype = resolve_dtype(config.dtype)
        # Private generator for the trainer's own randomness (FF negative labels), seeded
        # from the run seed so runs are reproducible independently of global RNG use.
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(config.seed + 1)

    # Set by every trainer's __init__: the network and every optimizer it steps.
    net: nn.Module
    _optimizers: list[torch.optim.Optimizer]

    @property
    def model(self) -> nn.Module:
        """The trained network; its state_dict holds every layer."""
        return self.net

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer the trainer steps (FF: one per layer)."""
        return list(self._optimizers)

    @staticmethod
    def update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, layer: int | None = None) -> None:
        """Backward of `loss`, then the optimizer step; gradients freed right after."""
        with phase("backward", layer=layer):
            loss.backward()
        with phase("optimizer", layer=layer):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    def step_optimizers(self) -> None:
        """Every optimizer's step, each followed by freeing its gradients (one step per batch
        for trainers that accumulate gradients first)."""
        with phase("optimizer"):
            for opt in self._optimizers:
                opt.step()
                opt.zero_grad(set_to_none=True)

    @abc.abstractmethod
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step on a batch of real examples; returns the detached loss."""

    @abc.abstractmethod
    def predict_chunk(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels for one chunk of examples (no gradients)."""

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted labels, evaluated in chunks of `config.chunk` examples."""
        was_training = self.model.training
        self.model.eval()
        try:
            parts = [
                self.predict_chunk(x[i : i + self.config.chunk].to(self.device, self.dtype))
                for i in range(0, len(x), self.config.chunk)
            ]
        finally:
            self.model.train(was_training)
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.long, device=self.device)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        if len(x) == 0:
            return float("nan")
        return (self.predict(x) == y.to(self.device)).float().mean().item()

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
