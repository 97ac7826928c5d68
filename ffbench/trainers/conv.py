"""Convolutional trainers (`--arch conv`): the MLP trainers' algorithms on image layers.

Building blocks, the label embedding and the memory-format choice are in images.py. Each class
reuses its MLP counterpart's step where the code is the same (the network takes flat rows):

* `bp`, `bp-checkpoint`, `bp-accum`, `bp-inbackward`: `ImageNet` (depth x (conv + ReLU), flatten
  + linear head, cross-entropy), with bp.py / frugal_bp.py's steps.
* `bp-local`: every layer has its own flatten + linear classifier; inputs detached.
* `ff`, `ff-summed`: Forward-Forward (`FFImageLayer`), positives and negatives as one block of
  2B rows (the same image twice, with the true and a wrong label), layer-local updates (`ff`)
  or one backward over the summed layer losses (`ff-summed`). `--ff-loss threshold` is
  Hinton's loss; `symba` is SymBa's softplus(-alpha (g_pos - g_neg)) (Lee & Song, 2023) on
  the paired rows. **Conv FF trains with SymBa**: with the threshold loss every conv variant
  the prototype tried (thresholds 1-8, lr 1e-3..1e-2, any label embedding, layer or position
  goodness) sat at loss 2 ln 2, g_pos = g_neg = theta, for the whole budget, while the same
  code with one full-image kernel learned at once: small receptive fields barely separate
  classes, and the threshold loss's symmetric start escapes slowly. SymBa's loss carries only
  the label-dependent part. The threshold loss stays available.
* `ff-frugal`: conv_frugal.py.

Evaluation: every label in turn (label loop) or all at once (replicated), goodness summed over
`--ff-eval-layers` (averaged over positions with position scope), highest wins.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .bp import BPTrainer
from .ff import NO_SUMMED_MICRO, FFTrainer, ff_loss
from .frugal_bp import BPInBackwardTrainer, BPLocalTrainer
from .images import FFImageNet, ImageLocalNet, ImageNet, eval_score_, finish, image_goodness, normalise_image
from .registry import register_trainer


# --------------------------------------------------------------------------------------
# Backprop
# --------------------------------------------------------------------------------------
@register_trainer
class BPConvTrainer(BPTrainer):
    name, arch = "bp", "conv"

    def build_net(self, config, in_features, num_classes, device) -> nn.Module:
        return finish(ImageNet(config, in_features, num_classes), config, device, self.dtype)


@register_trainer
class BPConvCheckpointTrainer(BPConvTrainer):
    name = "bp-checkpoint"

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self.checkpoint_segments = config.segments


@register_trainer
class BPConvAccumTrainer(BPConvTrainer):
    name = "bp-accum"  # bp --micro-batch 1/4 (frugal_bp.BPAccumTrainer)


@register_trainer
class BPConvInBackwardTrainer(BPConvTrainer):
    name = "bp-inbackward"
    micro_batch_support = BPInBackwardTrainer.micro_batch_support
    no_micro_batching = BPInBackwardTrainer.no_micro_batching
    train_step = BPInBackwardTrainer.train_step
    _step_param = BPInBackwardTrainer._step_param
    _optimise_in_backward = BPInBackwardTrainer._optimise_in_backward

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self._optimise_in_backward()


@register_trainer
class BPConvLocalTrainer(BPLocalTrainer):
    name, arch = "bp-local", "conv"

    def build_net(self, config, in_features, num_classes, device) -> nn.Module:
        return finish(ImageLocalNet(config, in_features, num_classes), config, device, self.dtype)


# --------------------------------------------------------------------------------------
# Forward-Forward
# --------------------------------------------------------------------------------------
def symba_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, alpha: float) -> torch.Tensor:
    """SymBa: softplus(-alpha (g_pos - g_neg)), averaged (rows, and positions)."""
    return F.softplus(-alpha * (g_pos - g_neg)).mean()


@register_trainer
class FFConvTrainer(FFTrainer):
    name, arch = "ff", "conv"

    def build_net(self, config, in_features, num_classes, device) -> nn.Module:
        return finish(FFImageNet(config, in_features, num_classes), config, device, self.dtype)

    def choose_pass(self, config) -> str:
        if config.ff_pass not in (None, "together"):
            raise ConfigError(
                f"{self.name} --arch {config.arch} forwards positives and negatives together; "
                f"ff-frugal runs the sequential pass"
            )
        return "together"

    def layer_loss(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.ff_loss == "symba":
            return symba_loss(g_pos, g_neg, cfg.ff_alpha)
        return ff_loss(g_pos, g_neg, cfg.ff_threshold)

    def together_input(
        self, x: torch.Tensor, y: torch.Tensor, y_neg: torch.Tensor
    ) -> tuple[torch.Tensor, tuple]:
        """2B rows: the same image with the true and a wrong label; every layer takes the labels."""
        labels = torch.cat([y, y_neg])
        img = self.net.image(x)
        return torch.cat([img, img]), (labels,)

    def goodness(self, out: torch.Tensor) -> torch.Tensor:
        return image_goodness(out, self.config.ff_goodness_scope, self.config.ff_goodness)

    def _label_scores_loop(self, x: torch.Tensor) -> torch.Tensor:
        """One label at a time: the image, then each layer (`_forward_eval`)."""
        cfg, n, c = self.config, len(x), self.num_classes
        scores = torch.zeros(n, c, device=x.device, dtype=torch.float32)
        img = self.net.image(x)
        for label in range(c):
            labels = torch.full((n,), label, dtype=torch.long, device=x.device)
            h = None
            for i, layer in enumerate(self.net.layers):
                h = self._forward_eval(layer, h, img, labels)
                if i in self.eval_layers:
                    scores[:, label].add_(eval_score_(h, cfg.ff_goodness_scope, cfg.ff_goodness))
            del h, labels
        return scores

    def _forward_eval(self, layer, h, img, labels) -> torch.Tensor:
        """One layer of the label loop (h None: the first layer, from the image)."""
        return layer(img if h is None else h, labels)

    def _label_scores_replicated(self, x: torch.Tensor) -> torch.Tensor:
        """All labels of the chunk at once: num_classes x n rows."""
        cfg, n, c = self.config, len(x), self.num_classes
        labels = torch.arange(c, device=x.device).repeat_interleave(n)
        h = self.net.image(x).repeat(c, 1, 1, 1)
        scores = torch.zeros(c * n, device=x.device, dtype=torch.float32)
        for i, layer in enumerate(self.net.layers):
            h = layer(h, labels)
            if i in self.eval_layers:
                scores += eval_score_(h, cfg.ff_goodness_scope, cfg.ff_goodness).float()
        return scores.view(c, n).t()

    @torch.no_grad()
    def readout_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised activities of every layer for the neutral label (the mean label bias)."""
        h = self.net.image(x.to(self.device, self.dtype))
        feats = []
        for layer in self.net.layers:
            h = layer(h, None)
            feats.append(normalise_image(h, self.config.ff_norm).flatten(1))
        return torch.cat(feats, dim=1)


@register_trainer
class FFConvSummedTrainer(FFConvTrainer):
    name = "ff-summed"
    summed = True
    micro_batch_support = False
    no_micro_batching = NO_SUMMED_MICRO
