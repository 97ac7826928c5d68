"""`ff-frugal` on images (`--arch conv|local`): conv FF's exact update with only the tensors it needs.

The same parameter update as conv `ff` (conv.py; tested to float tolerance), written without
autograd, as ff_frugal.py does for the MLP. Per layer j and row block (the B positive rows, the
B negative rows), under `no_grad`:

    n = normalise_(h)        in place (the first layer normalises a copy of the image: the
                             batch is the caller's, and both blocks start from it)
    o = relu_(layer(n) + b + E[label])          the output; bias and ReLU in place
    g = goodness_(o)         per example (layer scope) or per position (position scope)
    loss, c                  dL/do = c * o (c per example or per position; in g's storage)
    weight gradient          layer scope: c is one number per example, so it moves onto the
                             input, n *= c in place, and the weight gradient is the layer's
                             weight-gradient op on (grad = o, input = n): no layer-sized
                             gradient tensor. position scope: dA = c * o, a new tensor (in o
                             itself when no later layer needs o)
    bias, label gradients    per-example channel sums of dA (B x out), summed / scattered

Threshold loss (`--ff-loss threshold`): the loss separates into a positive and a negative part,
so by default (`--ff-pass sequential`) each block runs forward and backward before the next
(gradients accumulate), then one optimizer step: at most one block's input, both blocks'
outputs (the next layer's inputs) and, with position scope, one gradient block are alive.
SymBa (`--ff-loss symba`) couples each positive row to its negative, so both blocks run forward
before either runs backward (`--ff-pass together`, the only pass it allows).

Micro-batching (`--micro-batch m`): y_neg drawn once for the whole batch; each micro-batch is
a positive and a negative block of m rows, its loss and coefficients divided by the whole
batch's count (rows x positions), so the accumulated gradients are `ff`'s. `micro-batch-major`
(default): each micro-batch through every layer, then every layer's step; `layer-major`: each
layer over every micro-batch (its outputs for the whole batch kept), then its step.

The weight-gradient op: `aten.convolution_backward` with only grad_weight requested (conv), or
bmm of the unfolded patches with the gradient (local; both made as visible copies).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..phases import phase
from .conv import FFConvTrainer
from .ff import micro_slices
from .ff_frugal import loss_coefficients_, wrong_labels
from .images import (
    LABEL_SCALE,
    LocalConv2d,
    goodness_dims,
    goodness_scale,
    normalise_image_,
    unfold_patches,
)
from .registry import register_trainer


def weight_grad(layer: torch.nn.Module, inp: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
    """dL/dW of the layer's weight alone, from its input and the gradient of its output."""
    if isinstance(layer, LocalConv2d):
        cols = unfold_patches(inp, layer.spec)  # L x N x Ck^2
        g = grad_out.flatten(2).permute(2, 0, 1).contiguous()  # L x N x out
        return torch.bmm(cols.transpose(1, 2), g)
    return torch.ops.aten.convolution_backward(
        grad_out, inp, layer.weight, None, layer.stride, layer.padding, layer.dilation,
        False, [0, 0], layer.groups, [False, True, False],
    )[1]  # fmt: skip


def bias_grad(
    layer: torch.nn.Module, o: torch.Tensor, c: torch.Tensor | None, sums: torch.Tensor
) -> torch.Tensor:
    """dL/db: layer scope (c per example, o the output): sum_r c_r o_r over the bias's
    positions; position scope (c None, o = dA): dA summed over rows (and positions for conv).
    `sums`: the per-example channel sums of o (layer scope) or dA."""
    if c is None:
        return o.sum(0) if isinstance(layer, LocalConv2d) else sums.sum(0)
    if isinstance(layer, LocalConv2d):
        return torch.mv(o.reshape(len(o), -1).t(), c).view_as(layer.bias)
    return torch.mv(sums.t(), c)


def symba_coefficients_(
    g_pos: torch.Tensor, g_neg: torch.Tensor, alpha: float, scale: float, m: int | None = None
):
    """SymBa's loss and the factors c with dL/do = c * o: z = -alpha (g_pos - g_neg) in g_pos's
    storage, loss = softplus(z) summed / M, dL/dg_pos = -alpha sigmoid(z) / M = -dL/dg_neg
    (M: g_pos's count, or the whole batch's when micro-batched)."""
    m = g_pos.numel() if m is None else m
    z = g_pos.sub_(g_neg).mul_(-alpha)
    loss = F.softplus(z).sum().div_(m)
    c = z.sigmoid_().mul_(2.0 * scale * alpha / m)
    c_neg = g_neg.copy_(c)
    return loss, c.neg_(), c_neg


def set_or_add(p: torch.nn.Parameter, grad: torch.Tensor) -> None:
    if p.grad is None:
        p.grad = grad
    else:
        p.grad.add_(grad)


@register_trainer
class FFConvFrugalTrainer(FFConvTrainer):
    name = "ff-frugal"
    micro_batch_passes = ("together", "sequential")  # the pass choose_pass allows, per micro-batch
    _batch: int | None = None  # micro-batched: the whole batch's rows (the loss's divisor)

    def _count(self, g: torch.Tensor) -> int:
        """The loss's divisor: g's count (rows x positions), or the whole batch's when micro-batched."""
        return g.numel() if self._batch is None else g.numel() // len(g) * self._batch

    def choose_pass(self, config) -> str:
        if config.ff_loss == "symba":
            if config.ff_pass == "sequential":
                raise ConfigError("--ff-pass sequential needs a loss that separates; SymBa couples each "
                                  "positive with its negative: use --ff-pass together")  # fmt: skip
            return "together"
        return config.ff_pass or "sequential"

    def _forward(self, layer, h: torch.Tensor | None, img: torch.Tensor, labels: torch.Tensor):
        """(n, o, g) of one block; h None: the first layer, which normalises a copy of img."""
        cfg = self.config
        n = normalise_image_(img.clone() if h is None else h, cfg.ff_norm)
        o = layer.layer(n).add_(layer.label_bias(labels)).relu_()
        scale = goodness_scale(o, cfg.ff_goodness_scope, cfg.ff_goodness)
        dims = goodness_dims(cfg.ff_goodness_scope)
        return n, o, torch.linalg.vector_norm(o, dim=dims).square_().mul_(scale)

    def _backward(self, layer, n, o, c, labels, keep: bool) -> None:
        """Accumulate the layer's gradients from the block's (n, o, c); n is consumed."""
        if self.config.ff_goodness_scope == "layer":
            sums = o.sum(dim=(2, 3))  # B x out
            n.mul_(c.view(-1, 1, 1, 1))
            gw = weight_grad(layer.layer, n, o)
            gb = bias_grad(layer.layer, o, c, sums)
            sums.mul_(c.unsqueeze(1))
        else:
            d = o.mul_(c.unsqueeze(1)) if not keep else o * c.unsqueeze(1)  # dA
            gw = weight_grad(layer.layer, n, d)
            sums = d.sum(dim=(2, 3))
            gb = bias_grad(layer.layer, d, None, sums)
            del d
        ge = torch.zeros_like(layer.label).index_add_(0, labels, sums, alpha=LABEL_SCALE)
        del sums
        for p, grad in ((layer.layer.weight, gw), (layer.layer.bias, gb), (layer.label, ge)):
            set_or_add(p, grad)

    def _threshold_coefficients(self, g: torch.Tensor, positive: bool):
        m = g.numel()
        loss, c = loss_coefficients_(
            g.view(-1), m if positive else 0, self.config.ff_threshold, self._count(g), self._scale
        )
        return loss, c.view_as(g)

    def _layer(
        self, j: int, layer, blocks: list, img, labels: tuple, keep: bool, total: torch.Tensor
    ) -> list:
        """One layer's blocks, forward and backward; returns the outputs (the next blocks)."""
        outs = []
        if self.ff_pass == "sequential":
            for k in range(2):
                with phase("forward", layer=j):
                    n, o, g = self._forward(layer, blocks[k], img, labels[k])
                    blocks[k] = None
                with phase("backward", layer=j):
                    loss, c = self._threshold_coefficients(g, positive=k == 0)
                    self._backward(layer, n, o, c, labels[k], keep)
                    del n, g, c
                total += loss
                outs.append(o if keep else None)
                del o
            return outs
        with phase("forward", layer=j):
            fw = [self._forward(layer, blocks[k], img, labels[k]) for k in range(2)]
            blocks[0] = blocks[1] = None
        with phase("backward", layer=j):
            if self.config.ff_loss == "symba":
                g_pos, g_neg = fw[0][2], fw[1][2]
                loss, *cs = symba_coefficients_(
                    g_pos, g_neg, self.config.ff_alpha, self._scale, self._count(g_pos)
                )
                del g_pos, g_neg
            else:
                (l0, c0), (l1, c1) = (self._threshold_coefficients(fw[k][2], k == 0) for k in range(2))
                loss, cs = l0.add_(l1), [c0, c1]
            for k in range(2):
                n, o, _ = fw[k]
                fw[k] = None
                self._backward(layer, n, o, cs[k], labels[k], keep)
                outs.append(o if keep else None)
                del n, o
            del cs
        total += loss
        return outs

    def _negatives(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.ff_negatives == "random":
            return wrong_labels(y, self.num_classes, self.generator)
        return self.negative_labels(x, y)

    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.micro_batching:
            return self._train_step_micro(x, y)
        y_neg = self._negatives(x, y)
        img = self.net.image(x)
        total = torch.zeros((), device=self.device)
        blocks: list = [None, None]  # None: the first layer starts from the image
        depth = len(self.net.layers)
        for j, (layer, opt) in enumerate(zip(self.net.layers, self._optimizers)):
            self._scale = goodness_scale_of(self.net.specs[j], cfg)
            blocks = self._layer(j, layer, blocks, img, (y, y_neg), j < depth - 1, total)
            if j == 0:
                del img
                img = None
            with phase("optimizer", layer=j):
                opt.step()
                opt.zero_grad(set_to_none=True)
        return total

    def _train_step_micro(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """`--micro-batch`: every micro-batch's blocks in `config.ff_micro_schedule`'s order."""
        cfg, n = self.config, len(x)
        y_neg = self._negatives(x, y)
        total = torch.zeros((), device=self.device)
        slices, depth = micro_slices(n, cfg.micro), len(self.net.layers)
        layers = list(zip(self.net.layers, self._optimizers))
        self._batch = n
        try:
            if cfg.ff_micro_schedule == "layer-major":
                inputs: list = [[None, None] for _ in slices]  # each micro-batch's blocks
                for j, (layer, opt) in enumerate(layers):
                    self._scale = goodness_scale_of(self.net.specs[j], cfg)
                    for i, sl in enumerate(slices):
                        img = self.net.image(x[sl]) if j == 0 else None
                        blocks, inputs[i] = inputs[i], None
                        inputs[i] = self._layer(
                            j, layer, blocks, img, (y[sl], y_neg[sl]), j < depth - 1, total
                        )
                        del blocks, img
                    with phase("optimizer", layer=j):
                        opt.step()
                        opt.zero_grad(set_to_none=True)
                return total
            for sl in slices:
                img, blocks = self.net.image(x[sl]), [None, None]
                for j, (layer, _) in enumerate(layers):
                    self._scale = goodness_scale_of(self.net.specs[j], cfg)
                    blocks = self._layer(j, layer, blocks, img, (y[sl], y_neg[sl]), j < depth - 1, total)
                    img = None
                del blocks
        finally:
            self._batch = None
        for j, opt in enumerate(self._optimizers):
            with phase("optimizer", layer=j):
                opt.step()
                opt.zero_grad(set_to_none=True)
        return total

    def _forward_eval(self, layer, h, img, labels) -> torch.Tensor:
        """The label loop's layer with in-place normalisation, bias and ReLU."""
        n = normalise_image_(img.clone() if h is None else h, self.config.ff_norm)
        o = layer.layer(n).add_(layer.label_bias(labels)).relu_()
        return o


def goodness_scale_of(spec, cfg) -> float:
    """2 x the goodness scale is dL/do's factor: 1/units (mean) or 1 (sum)."""
    units = spec.out_numel if cfg.ff_goodness_scope == "layer" else spec.out_c
    return 1.0 / units if cfg.ff_goodness == "mean" else 1.0
