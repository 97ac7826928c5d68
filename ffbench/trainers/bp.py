"""Backpropagation baselines: `bp` and `bp-checkpoint`.

Model: `depth` hidden layers Linear(width) + ReLU, then a linear classifier head over
`num_classes` outputs, trained with cross-entropy. The head is what BP has and FF does
not (FF reads labels from goodness, see ff.py); it adds width x classes parameters.

`--micro-batch m` (any BP trainer here): gradient accumulation -- the batch runs as
micro-batches of m real examples, each forward and backward with its loss scaled by its
share, then one optimizer step; the same update, one micro-batch's activations alive.

`bp-checkpoint` is the same network trained with activation checkpointing
(`torch.utils.checkpoint.checkpoint_sequential`, about sqrt(depth) segments): only the
segment boundaries are kept from the forward pass, each segment is recomputed during
backward. It is the memory saver a practitioner reaches for first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

from ..blackbox import BlackBox, StraightThrough
from ..phases import phase
from .base import Trainer, make_optimizer
from .registry import register_trainer


class MLP(nn.Module):
    """784 -> depth x (Linear + ReLU) -> Linear(num_classes)."""

    def __init__(
        self, in_features: int, width: int, depth: int, num_classes: int, box_after=None, ste=False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            # --black-box k: the box after hidden layer k's ReLU (same parameter names as without)
            act = nn.Sequential(nn.ReLU(), BlackBox(ste)) if i + 1 == box_after else nn.ReLU()
            layers += [nn.Linear(in_features if i == 0 else width, width), act]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor, segments: int = 0) -> torch.Tensor:
        if segments and self.training and torch.is_grad_enabled():
            h = checkpoint_sequential(self.body, segments, x, use_reentrant=False)
        else:
            h = self.body(x)
        return self.head(h)


@register_trainer
class BPTrainer(Trainer):
    name = "bp"
    family = "bp"
    checkpoint_segments = 0  # 0: plain backprop, every activation kept for backward
    micro_batch_support = True  # --micro-batch: gradient accumulation over micro-batches
    black_box_support = True  # no gradient crosses the box: the layers below keep their initial weights
    straight_through = False  # bp-ste: the identity as the box's gradient

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self.net = self.build_net(config, in_features, num_classes, device)
        self.optimizer = make_optimizer(self.net.parameters(), config)
        self._optimizers = [self.optimizer]

    def build_net(self, config, in_features, num_classes, device) -> nn.Module:
        """The network, on the device in the run's dtype (the conv trainers build theirs)."""
        net = MLP(
            in_features, config.width, config.depth, num_classes, config.black_box, self.straight_through
        )
        return net.to(device, self.dtype)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.micro_batching:
            return self._train_step_micro(x, y)
        with phase("forward"):
            loss = F.cross_entropy(self.net(x, self.checkpoint_segments), y)
        self.update(loss, self.optimizer)
        return loss.detach()

    def _train_step_micro(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Gradient accumulation (`--micro-batch`): each micro-batch of `config.micro` rows
        runs forward and backward with its loss scaled by its share of the batch, so the
        accumulated gradient is the batch mean's; then one optimizer step -- bp's update (up
        to float rounding), with one micro-batch's activations alive."""
        n, micro = len(x), self.config.micro
        total = torch.zeros((), device=self.device)
        for i in range(0, n, micro):
            xm, ym = x[i : i + micro], y[i : i + micro]
            with phase("forward", layer=None):
                # mean over the micro-batch, weighted by its share: sum = mean over the batch
                loss = F.cross_entropy(self.net(xm, self.checkpoint_segments), ym) * (len(xm) / n)
            with phase("backward"):
                loss.backward()
            total += loss.detach()
            del loss
        with phase("optimizer"):
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return total

    def predict_chunk(self, x: torch.Tensor) -> torch.Tensor:
        with phase("eval"):
            return self.net(x).argmax(dim=1)


@register_trainer
class BPCheckpointTrainer(BPTrainer):
    name = "bp-checkpoint"
    black_box_support = True

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self.checkpoint_segments = config.segments


@register_trainer
class BPStraightThroughTrainer(StraightThrough, BPTrainer):
    """`bp-ste`: backprop through the black box with a straight-through estimator."""

    black_box_support = True
