"""The black box: a non-differentiable operation in the forward pass, outside autograd.

Hinton (2022, section 1): "If we introduce a black box into the forward pass,
back-propagation becomes unfeasible unless we can develop a differentiable model for that
black box ... for the Forward-Forward Algorithm, the presence of a black box doesn't alter
the learning." `--black-box k` puts one between hidden layer k and the layer(s) it feeds.

The operation, fixed before any run (not a tunable): in NumPy, the layer's output h is
RMS-normalised (unit mean square per row, as FF normalises) and rounded to 4 levels
(2-bit quantisation):

    q = floor(clip(h / rms(h), 0, 3) + 1/2)        levels {0, 1, 2, 3} x the row's RMS

Level 0 keeps ReLU's exact zeros; `floor(x + 1/2)` is round-half-up (NumPy's `round` is
half-to-even). It is called as an outsider's function would be: tensor -> NumPy -> tensor.
Calling `.numpy()` on a tensor that requires grad raises, so the box must detach its input:
that detach *is* the cut. The result is a new leaf with no autograd history.

- FF needs nothing from the box: every layer's input is detached anyway.
- Plain backprop: no gradient crosses the box, so the layers below it keep `.grad` None and
  their initial weights (a result to report, not a crash: the layers above still learn).
- `straight_through=True` (the `bp-ste` trainers): forward value q, backward the identity,
  written h + (q - h).detach() -- a stated estimator, not the box's gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import ConfigError

LEVELS = 4  # 2-bit
EPS = 1e-8


def quantise_np(h: np.ndarray) -> np.ndarray:
    """floor(clip(h / rms(h), 0, LEVELS - 1) + 1/2) per row, in h's dtype (NumPy only)."""
    rms = np.sqrt(np.mean(h * h, axis=1, keepdims=True) + EPS)
    return np.floor(np.clip(h / rms, 0.0, LEVELS - 1) + 0.5).astype(h.dtype, copy=False)


def black_box(h: torch.Tensor, straight_through: bool = False) -> torch.Tensor:
    """h through the box (see the module docstring): a tensor with no autograd history, or,
    with `straight_through`, the box's value with the identity as its gradient."""
    q = quantise_np(h.detach().cpu().float().numpy())
    out = torch.from_numpy(q).to(h.device, h.dtype)
    return h + (out - h).detach() if straight_through else out


class StraightThrough:
    """Mixin of the `bp-ste` trainers (MLP and recurrent): backprop with the identity as the
    box's gradient. Without a box such a trainer would be plain backprop, so it needs one."""

    name = "bp-ste"
    family = "other"  # the identity for the box's gradient: not backprop's gradient
    straight_through = True
    needs_black_box = True

    def __init__(self, config, *args, **kwargs) -> None:
        if config.black_box is None:
            raise ConfigError(
                "bp-ste is backprop with a straight-through estimator at the black box: give --black-box"
            )
        super().__init__(config, *args, **kwargs)


class BlackBox(torch.nn.Module):
    """The box as a layer of an `nn.Sequential` (backprop's MLP)."""

    def __init__(self, straight_through: bool = False) -> None:
        super().__init__()
        self.straight_through = straight_through

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return black_box(h, self.straight_through)


def weight_changes(trainer, control) -> list[dict]:
    """Per parameter tensor of `trainer`'s model: the largest absolute change from the same
    seed's initial weights (`control`, a freshly built trainer). A parameter below the box
    that plain backprop never reaches keeps 0.0."""
    start = dict(control.model.named_parameters())
    return [
        {"parameter": name, "max_abs_change": float((p.detach() - start[name].detach()).abs().max())}
        for name, p in trainer.model.named_parameters()
    ]
