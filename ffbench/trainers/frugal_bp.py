"""Frugal backprop baselines: is FF still ahead of backprop done with care for memory?

- `bp-accum`: `bp --micro-batch 1/4` (gradient accumulation, bp.py), kept as a name so
  committed runs stay loadable.
- `bp-inbackward`: the optimizer step fused into backward. A
  `register_post_accumulate_grad_hook` on every parameter steps that parameter's own
  optimizer and frees its gradient as soon as it is accumulated, so no full set of
  gradients ever exists (torch >= 2.1).
- `bp-local`: greedy layer-wise backprop. Each hidden layer has a small linear
  classifier of its own trained with cross-entropy on the layer's output; inputs are
  detached and each layer's backward and step run before the next layer's forward --
  FF's locality and schedule, with an ordinary supervised objective instead of FF's
  goodness. Prediction reads the last layer's classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..phases import phase
from .base import Trainer, make_optimizer
from .bp import BPTrainer
from .registry import register_trainer


@register_trainer
class BPAccumTrainer(BPTrainer):
    """`bp --micro-batch 1/4` under its earlier name (committed runs stay loadable): bp's
    micro-batched step (`BPTrainer._train_step_micro`), a quarter of the batch by default."""

    name = "bp-accum"


@register_trainer
class BPInBackwardTrainer(BPTrainer):
    name = "bp-inbackward"
    micro_batch_support = False
    no_micro_batching = "it steps each parameter inside backward, before the batch is complete"

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self._optimise_in_backward()

    def _optimise_in_backward(self) -> None:
        """One optimizer per parameter, stepped from that parameter's gradient hook."""
        self.param_optimizers = {p: make_optimizer([p], self.config) for p in self.net.parameters()}
        self.optimizer = None
        self._optimizers = list(self.param_optimizers.values())
        for p in self.net.parameters():
            p.register_post_accumulate_grad_hook(self._step_param)

    def _step_param(self, p: torch.Tensor) -> None:
        opt = self.param_optimizers[p]
        opt.step()
        opt.zero_grad(set_to_none=True)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with phase("forward"):
            loss = F.cross_entropy(self.net(x), y)
        with phase("backward"):  # the optimizer steps run inside, parameter by parameter
            loss.backward()
        return loss.detach()


class LocalNet(nn.Module):
    """Hidden layers, each with its own linear classifier head."""

    def __init__(self, in_features: int, width: int, depth: int, num_classes: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(in_features if i == 0 else width, width) for i in range(depth))
        self.heads = nn.ModuleList(nn.Linear(width, num_classes) for _ in range(depth))


@register_trainer
class BPLocalTrainer(Trainer):
    name = "bp-local"

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self.net = self.build_net(config, in_features, num_classes, device)
        self._optimizers = [
            make_optimizer(list(layer.parameters()) + list(head.parameters()), config)
            for layer, head in zip(self.net.layers, self.net.heads)
        ]

    def build_net(self, config, in_features, num_classes, device) -> nn.Module:
        """Layers with their heads, on the device in the run's dtype (the conv trainer builds its own)."""
        return LocalNet(in_features, config.width, config.depth, num_classes).to(device, self.dtype)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h, total = x, torch.zeros((), device=self.device)
        for i, (layer, head, opt) in enumerate(zip(self.net.layers, self.net.heads, self._optimizers)):
            with phase("forward", layer=i):
                out = F.relu(layer(h))
                loss = F.cross_entropy(head(out), y)
            self.update(loss, opt, layer=i)
            total += loss.detach()
            h = out.detach()  # no gradient into earlier layers
            del out, loss
        return total

    def predict_chunk(self, x: torch.Tensor) -> torch.Tensor:
        with phase("eval"):
            h = x
            for layer in self.net.layers:
                h = F.relu(layer(h))
            return self.net.heads[-1](h).argmax(dim=1)
