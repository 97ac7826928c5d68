"""`ff-frugal`: Forward-Forward's exact update with only the tensors the update needs.

The same parameter update as `ff` (Hinton, 2022; tested to float tolerance), written so that
no tensor is alive that the update does not need. Per layer j and row block (by default
`ff_pass="sequential"`: the B positive rows, then the B negative rows), under `no_grad`:

    n = normalise_(h)                  in place: the block's input storage becomes n (sec. 2.1)
    o = relu_(addmm(b, n, W^T))        the only rows x width allocation
    g = goodness_(o)                   one value per row (eq. 1)
    loss, c = loss_coefficients_(g)    in g's storage: dL/do = c * o
    n *= c; W.grad (+)= o^T n; b.grad (+)= o^T c
                                       goodness and ReLU backward fused: the goodness gradient
                                       2 * scale * dL/dg * o is already 0 wherever the ReLU is
                                       off, so ReLU's backward is the identity; no
                                       threshold_backward, no rows x width gradient tensor;
                                       the second block accumulates in place
    the block's input dies; o is kept only if a next layer needs it

then the layer's optimizer step and `zero_grad(set_to_none=True)`. The first layer's negative
input is embedded only after the positive block has died; the last layer's outputs die before
its optimizer step. No autograd graph is built: the layer-local gradient is written out, so the
tracker's saved-activation figure is 0 by construction and what the update holds (block inputs
and outputs) shows as "other".

Why layer-major: the next layer's inputs must be this layer's outputs under the pre-step
weights, so both output blocks (2 x B x W) live between layers. Running the whole chain for
the positives first would instead keep every layer's gradient alive (s x parameters), which
grows with depth.

Micro-batching (`--micro-batch m`): y_neg and the label values are made once for the whole
batch; each micro-batch's blocks are its m positive rows and its m negative rows (or one block
of 2m rows with `--ff-pass together`), each block's loss and gradient divided by the whole
batch (`loss_coefficients_`'s `batch`), so the accumulated gradient is `ff`'s.
`micro-batch-major` (default): each micro-batch through every layer (the first layer's
negatives embedded once its positives have died), every layer's gradient alive until the
steps at the end. `layer-major`: the schedule above with each block cut into micro-batches:
layer j's outputs for the whole batch (2 x B x W) are kept for layer j + 1, one layer's
gradient alive at a time.

Evaluation is the label loop with in-place normalisation and a fused goodness: predictions
equal `ff`'s, scores equal up to rounding (~5e-7 relative), so a near-tie could flip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..phases import phase
from .ff import EPS, FFTrainer, micro_slices, with_label
from .registry import register_trainer


def normalise_(h: torch.Tensor, kind: str) -> torch.Tensor:
    """Section 2.1's normalisation in place: one rows x 1 temporary (`vector_norm` reduces
    inside one kernel), the quotient overwrites h (the caller owns h and needs only n)."""
    r = torch.linalg.vector_norm(h, dim=1, keepdim=True)
    if kind == "rms":
        r.square_().div_(h.shape[1]).add_(EPS).sqrt_()
    else:
        r.add_(EPS)
    return h.div_(r)


def goodness_(o: torch.Tensor, kind: str) -> torch.Tensor:
    """Eq. 1's goodness, scale * sum_j o_j^2 per row: one rows-sized tensor, squared and scaled in place."""
    scale = 1.0 / o.shape[1] if kind == "mean" else 1.0
    return torch.linalg.vector_norm(o, dim=1).square_().mul_(scale)


def embed_(x: torch.Tensor, labels: torch.Tensor, value: torch.Tensor, num_classes: int) -> torch.Tensor:
    """`embed_label` for known labels with one allocation (the copy of x): the label inputs
    zeroed, the label's input set to `value` (the image maximum, rows x 1) by a scatter."""
    out = x.clone()
    head = out[:, :num_classes]
    head.zero_()
    head.scatter_(1, labels.unsqueeze(1), value)
    return out


def wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """`random_wrong_labels`, the same draw, computed in place (one int64 tensor)."""
    shift = torch.randint(1, num_classes, y.shape, device=y.device, generator=generator)
    return shift.add_(y).remainder_(num_classes)


def loss_coefficients_(
    g: torch.Tensor, n_pos: int, threshold: float, batch: int, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The block's share of the layer loss and, in g's storage, the per-row factor c with
    dL/do = c[:, None] * o (rows before n_pos positive, the rest negative).

    Positive rows: z = theta - g, loss softplus(z) / B, dL/dg = -sigmoid(z) / B.
    Negative rows: z = g - theta, loss softplus(z) / B, dL/dg = +sigmoid(z) / B.
    With g = scale * |o|^2: dL/do = 2 * scale * dL/dg * o."""
    rows = len(g)
    if n_pos:
        g[:n_pos].neg_().add_(threshold)
    if n_pos < rows:
        g[n_pos:].sub_(threshold)
    loss = F.softplus(g).sum().div_(batch)  # softplus(z) dies inside this line
    c = g.sigmoid_()
    if n_pos:
        c[:n_pos].mul_(-2.0 * scale / batch)
    if n_pos < rows:
        c[n_pos:].mul_(2.0 * scale / batch)
    return loss, c


def accumulate_grads_(linear: nn.Linear, o: torch.Tensor, n: torch.Tensor, c: torch.Tensor) -> None:
    """Linear -> ReLU -> goodness backward, fused: dL/dW = (c * o)^T n = o^T (c * n),
    dL/db = o^T c. `n` is scaled by c in place (the update needs it no more); a second block
    accumulates into .grad in place (addmm_/addmv_: no gradient-sized temporary)."""
    n.mul_(c.unsqueeze(1))
    w, b = linear.weight, linear.bias
    if w.grad is None:
        w.grad = torch.mm(o.t(), n)
        b.grad = torch.mv(o.t(), c)
    else:
        w.grad.addmm_(o.t(), n)
        b.grad.addmv_(o.t(), c)


@register_trainer
class FFFrugalTrainer(FFTrainer):
    name = "ff-frugal"
    default_pass = "sequential"
    micro_batch_passes = ("sequential", "together")  # each micro-batch's blocks in the pass chosen

    def _first_blocks(self, x, y, y_neg, value) -> tuple[list, list[int]]:
        """The first layer's input blocks and how many positive rows each holds. Sequential:
        the negatives (None) are embedded once the positives' block has died."""
        n, c = len(x), self.num_classes
        if self.ff_pass == "sequential":
            return [embed_(x, y, value, c), None], [n, 0]
        h = x.repeat(2, 1)
        for part, labels in ((h[:n], y), (h[n:], y_neg)):
            part[:, :c].zero_()
            part[:, :c].scatter_(1, labels.unsqueeze(1), value)
        return [h], [n]

    @torch.no_grad()
    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.micro_batching:
            return self._train_step_micro(x, y)
        cfg, n, c_ = self.config, len(x), self.num_classes
        if cfg.ff_negatives == "random":
            y_neg = wrong_labels(y, c_, self.generator)
        else:
            y_neg = self.negative_labels(x, y)
        value = x[:, c_:].amax(dim=1, keepdim=True)
        total = torch.zeros((), device=self.device)
        blocks, n_pos = self._first_blocks(x, y, y_neg, value)
        if self.ff_pass != "sequential":
            del y_neg, value
        depth = len(self.net.layers)
        for j, (layer, opt) in enumerate(zip(self.net.layers, self._optimizers)):
            outs = []
            for k in range(len(blocks)):
                with phase("forward", layer=j):
                    if blocks[k] is None:  # the first layer's negatives, embedded late
                        blocks[k] = embed_(x, y_neg, value, c_)
                        del y_neg, value
                    h = normalise_(blocks[k], cfg.ff_norm)
                    blocks[k] = None
                    o = torch.addmm(layer.linear.bias, h, layer.linear.weight.t()).relu_()
                    g = goodness_(o, cfg.ff_goodness)
                with phase("backward", layer=j):
                    scale = 1.0 / o.shape[1] if cfg.ff_goodness == "mean" else 1.0
                    loss, coef = loss_coefficients_(g, n_pos[k], cfg.ff_threshold, n, scale)
                    accumulate_grads_(layer.linear, o, h, coef)
                    del h, g, coef
                total += loss
                del loss
                if j < depth - 1:
                    outs.append(o)
                del o
            with phase("optimizer", layer=j):
                opt.step()
                opt.zero_grad(set_to_none=True)
            blocks = outs
        return total

    def _train_step_micro(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """`--micro-batch`: the blocks of every micro-batch, in `config.ff_micro_schedule`'s
        order (module docstring); one optimizer step per layer."""
        n, c_ = len(x), self.num_classes
        if self.config.ff_negatives == "random":
            y_neg = wrong_labels(y, c_, self.generator)
        else:
            y_neg = self.negative_labels(x, y)
        value = x[:, c_:].amax(dim=1, keepdim=True)
        total = torch.zeros((), device=self.device)
        slices = micro_slices(n, self.config.micro)
        depth, layers = len(self.net.layers), list(zip(self.net.layers, self._optimizers))
        if self.config.ff_micro_schedule == "layer-major":
            inputs: list = [None] * len(slices)  # each micro-batch's blocks for the current layer
            for j, (layer, opt) in enumerate(layers):
                for i, sl in enumerate(slices):
                    parts = (x[sl], y[sl], y_neg[sl], value[sl])
                    blocks, inputs[i] = inputs[i], None
                    inputs[i] = self._micro_layer(j, layer, blocks, parts, n, total, keep=j < depth - 1)
                    del blocks
                with phase("optimizer", layer=j):
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            return total
        for sl in slices:
            parts, blocks = (x[sl], y[sl], y_neg[sl], value[sl]), None
            for j, (layer, _) in enumerate(layers):
                blocks = self._micro_layer(j, layer, blocks, parts, n, total, keep=j < depth - 1)
            del blocks
        for j, opt in enumerate(self._optimizers):
            with phase("optimizer", layer=j):
                opt.step()
                opt.zero_grad(set_to_none=True)
        return total

    def _micro_layer(self, j, layer, blocks: list | None, parts: tuple, n: int, total, keep: bool):
        """One micro-batch's blocks through layer j (blocks None: the first layer, embedded
        from parts = its x, y, y_neg and value rows, the negatives once the positives have
        died); gradients accumulate, each block's loss divided by the batch n. Returns the
        outputs (the next layer's blocks) when `keep`."""
        cfg, c_ = self.config, self.num_classes
        rows = len(parts[0])
        if blocks is None:
            blocks = self._first_blocks(*parts)[0]
        n_pos = [rows, 0] if len(blocks) == 2 else [rows]
        outs = []
        for k in range(len(blocks)):
            with phase("forward", layer=j):
                if blocks[k] is None:  # the first layer's negatives, embedded late
                    blocks[k] = embed_(parts[0], parts[2], parts[3], c_)
                h = normalise_(blocks[k], cfg.ff_norm)
                blocks[k] = None
                o = torch.addmm(layer.linear.bias, h, layer.linear.weight.t()).relu_()
                g = goodness_(o, cfg.ff_goodness)
            with phase("backward", layer=j):
                scale = 1.0 / o.shape[1] if cfg.ff_goodness == "mean" else 1.0
                loss, coef = loss_coefficients_(g, n_pos[k], cfg.ff_threshold, n, scale)
                accumulate_grads_(layer.linear, o, h, coef)
                del h, g, coef
            total += loss
            del loss
            if keep:
                outs.append(o)
            del o
        return outs if keep else None

    def _label_scores_loop(self, x: torch.Tensor) -> torch.Tensor:
        """The label loop with in-place normalisation and a fused goodness."""
        n, c = len(x), self.num_classes
        scores = torch.zeros(n, c, device=x.device, dtype=torch.float32)
        value = x[:, c:].amax(dim=1, keepdim=True)
        for label in range(c):
            h = with_label(x, label, c, value)
            for j, layer in enumerate(self.net.layers):
                lin = layer.linear
                h = torch.addmm(lin.bias, normalise_(h, self.config.ff_norm), lin.weight.t()).relu_()
                if j in self.eval_layers:
                    scores[:, label].add_(goodness_(h, self.config.ff_goodness))
            del h
        return scores
