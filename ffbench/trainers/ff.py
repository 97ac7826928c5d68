"""Supervised Forward-Forward (Hinton, 2022, "The Forward-Forward Algorithm").

Every hidden layer has its own objective and its own optimizer:
- Positive data: the image with its true label one-hot in the first `num_classes`
  inputs (value = the image's maximum, so the label is as bright as the ink).
- Negative data: the same image with a *wrong* label, drawn uniformly from the
  num_classes - 1 wrong ones (never the true one), or the model's own hardest wrong
  label (`ff_negatives="hard"`, section 3.3 of the paper).
- Before each layer the input is normalised so only its direction passes on
  (section 2.1): `rms` divides by the root mean square (unit mean square; activities
  keep a scale that suits a threshold of order 1), `l2` by the Euclidean norm.
- Goodness g = mean (or sum) over units of the squared ReLU activities (eq. 1:
  p(positive) = sigma(sum_j y_j^2 - theta)); the layer loss is
  softplus(theta - g_pos) + softplus(g_neg - theta) = -log p(pos) - log(1 - p(neg)),
  averaged over the batch.
- A layer's input is detached: no gradient flows between layers.

Schedules (the one detail the memory claim rests on):
- `ff`: each layer's backward and optimizer step run before the next layer's
  forward, so only one layer's autograd graph is alive at any time.
- `ff-summed`: all layer losses are summed and one backward() runs at the end -- the
  pattern of many public FF codes; every layer's graph stays alive until then. The
  parameter update is mathematically identical (inputs are detached either way).

Row blocks (`ff_pass`): `together` forwards the 2B positive and negative rows as one
block; `sequential` forwards and back-propagates the B positive rows, then the B negative
rows (gradients accumulate), then takes the one optimizer step. The same update: the layer
loss separates into a positive and a negative sum and a row's goodness depends on that row
alone, and every layer's forward uses the weights from before the step.

Micro-batching (`--micro-batch m`, `ff` and its conv / local classes): the negatives are drawn
once for the whole batch (hard ones from the model before the step), then the batch runs as
micro-batches of m real examples and their m negatives (positives and negatives together),
each micro-batch's layer loss scaled by its share of the batch mean, gradients accumulating.
Every layer's forward uses the weights from before the step, so the update is `ff`'s.
`--ff-micro-schedule micro-batch-major` (default): each micro-batch through every layer, every
layer's gradient accumulating, then every layer's step; `layer-major`: layer by layer, its input
m rows at a time, the layer's outputs for the whole batch kept for the next layer, then its step.

Evaluation (section 3.3): try every label, sum goodness over the chosen layers
(`ff_eval_layers`), pick the highest. `ff_eval="label-loop"` (default) runs one label at a
time, so evaluation memory does not grow with the number of classes; `replicated` forwards
all labels of a chunk at once (num_classes x chunk rows: the label replication cost). Both
give bit-identical scores (the same rows through the same kernels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..blackbox import black_box
from ..errors import ConfigError
from ..phases import phase
from .base import Trainer, make_optimizer
from .registry import register_trainer

EPS = 1e-8


def normalise(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Keep only the direction of each row: unit mean square (rms) or unit length (l2)."""
    if kind == "rms":
        return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + EPS)
    return x / (x.norm(dim=1, keepdim=True) + EPS)


class _SquaredNorm(torch.autograd.Function):
    """g = scale * sum_j h_j^2 per row, with a one-temporary backward.

    Autograd's own `h.pow(2).mean(1)` materialises four rows x units tensors in
    backward (the mean's expand/divide, and pow_backward's pow(h, 1), x2 and x grad),
    which is not what an FF implementation needs: dg/dh = 2 * scale * h, one tensor.
    Written out so FF's measured memory is not inflated by an autograd formula.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(h)
        ctx.scale = scale
        # the norm is reduced inside one kernel: no rows x units temporary
        return torch.linalg.vector_norm(h, dim=1).square() * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (h,) = ctx.saved_tensors
        return h * (grad * (2.0 * ctx.scale)).unsqueeze(1), None


def goodness(h: torch.Tensor, kind: str) -> torch.Tensor:
    """Eq. 1's goodness: mean or sum over units of squared activities, one per row."""
    return _SquaredNorm.apply(h, 1.0 / h.shape[1] if kind == "mean" else 1.0)


def ff_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, threshold: float) -> torch.Tensor:
    """-log sigma(g_pos - theta) - log(1 - sigma(g_neg - theta)), batch mean."""
    return (F.softplus(threshold - g_pos) + F.softplus(g_neg - threshold)).mean()


class FFLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, norm: str, box: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = norm
        self.box = box  # the input comes through the black box (ffbench/blackbox.py)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.box:
            x = black_box(x)
        return F.relu(self.linear(normalise(x, self.norm)))


class FFNet(nn.Module):
    """`depth` FF layers in an nn.ModuleList, so state_dict holds every layer."""

    def __init__(
        self, in_features: int, width: int, depth: int, norm: str, box_after: int | None = None
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            FFLayer(in_features if i == 0 else width, width, norm, box=i == box_after) for i in range(depth)
        )


def embed_label(x: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Write labels one-hot into the first `num_classes` inputs (value = image max).
    `labels` may hold -1 for the neutral label (1/num_classes in every label input)."""
    out = x.clone()
    value = x[:, num_classes:].amax(dim=1)
    out[:, :num_classes] = 0
    known = labels >= 0
    rows = torch.arange(len(x), device=x.device)
    out[rows[known], labels[known]] = value[known]
    if (~known).any():
        out[~known, :num_classes] = (value[~known] / num_classes).unsqueeze(1)
    return out


def with_label(x: torch.Tensor, label: int, num_classes: int, value: torch.Tensor) -> torch.Tensor:
    """A fresh copy of `x` with `label` written one-hot (`value`: each row's image max, [n, 1])
    into the first `num_classes` inputs: one pass of the evaluation's label loop."""
    h = x.clone()
    h[:, :num_classes].zero_()
    h[:, label : label + 1].copy_(value)
    return h


def random_wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform over the num_classes - 1 wrong labels: y + U{1..C-1} mod C is never y."""
    shift = torch.randint(1, num_classes, y.shape, device=y.device, generator=generator)
    return (y + shift) % num_classes


@register_trainer
class FFTrainer(Trainer):
    name = "ff"
    family = "ff"
    summed = False  # True: one backward over the summed layer losses (ff-summed)
    default_pass = "together"  # --ff-pass when not given
    micro_batch_support = True  # --micro-batch: FF's update over micro-batches (both schedules)
    micro_batch_passes = ("together",)  # the micro-batched step forwards positives and negatives together
    black_box_support = True  # --black-box k: layer k + 1's input comes through the box

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self.net = self.build_net(config, in_features, num_classes, device)
        # One optimizer per layer: a layer's step must be able to run on its own.
        self._optimizers = [make_optimizer(layer.parameters(), config) for layer in self.net.layers]
        self.eval_layers = config.eval_layer_indices()
        self.ff_pass = self.choose_pass(config)

    def build_net(self, config, in_features, num_classes, device) -> nn.Module:
        """The network, on the device in the run's dtype (the conv trainers build theirs)."""
        if in_features <= num_classes:
            raise ValueError("FF needs more inputs than classes to embed the label")
        net = FFNet(in_features, config.width, config.depth, config.ff_norm, box_after=config.black_box)
        return net.to(device, self.dtype)

    def choose_pass(self, config) -> str:
        """--ff-pass, else the trainer's default; the sequential pass only with FF's own loss."""
        ff_pass = config.ff_pass or self.default_pass
        if ff_pass == "sequential" and type(self).layer_loss is not FFTrainer.layer_loss:
            raise ConfigError(
                f"--ff-pass sequential needs FF's loss, which separates into a positive and a negative "
                f"part; {self.name} defines its own layer_loss: use --ff-pass together"
            )
        return ff_pass

    # -- data ------------------------------------------------------------------
    def negative_labels(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.ff_negatives == "random":
            return random_wrong_labels(y, self.num_classes, self.generator)
        with torch.no_grad():  # hard negatives: sample wrong labels by the model's own scores
            scores = self.label_scores(x)
            scores[torch.arange(len(y), device=y.device), y] = float("-inf")
            probs = torch.softmax(scores.float(), dim=1)
            return torch.multinomial(probs, 1, generator=self.generator).squeeze(1)

    # -- training ----------------------------------------------------------------
    def layer_loss(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> torch.Tensor:
        """One layer's loss from the goodness of its positive and negative rows (a variant
        of FF overrides this; see docs/adding-a-trainer.md)."""
        return ff_loss(g_pos, g_neg, self.config.ff_threshold)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.micro_batching:
            return self._train_step_micro(x, y)
        if self.ff_pass == "sequential" and not self.summed:
            return self._train_step_sequential(x, y)
        return self._train_step_together(x, y)

    def _train_step_sequential(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per layer: positives forward + backward, negatives forward + backward (gradients
        accumulate), one optimizer step. The blocks are separate tensors, so each dies on its own."""
        cfg = self.config
        y_neg = self.negative_labels(x, y)
        blocks = [embed_label(x, y, self.num_classes), embed_label(x, y_neg, self.num_classes)]
        total = torch.zeros((), device=self.device)
        for i, (layer, opt) in enumerate(zip(self.net.layers, self._optimizers)):
            outs = []
            for k in range(2):
                with phase("forward", layer=i):
                    out = layer(blocks[k])
                    blocks[k] = None  # the layer saved its normalised copy
                    g = goodness(out, cfg.ff_goodness)
                    # this block's share of the batch-mean loss (B rows each: mean = sum / B)
                    loss = F.softplus(cfg.ff_threshold - g if k == 0 else g - cfg.ff_threshold).mean()
                with phase("backward", layer=i):
                    loss.backward()
                total += loss.detach()
                outs.append(out.detach())
                del out, g, loss
            with phase("optimizer", layer=i):
                opt.step()
                opt.zero_grad(set_to_none=True)
            blocks = outs
        return total

    def together_input(
        self, x: torch.Tensor, y: torch.Tensor, y_neg: torch.Tensor
    ) -> tuple[torch.Tensor, tuple]:
        """The together pass's 2 x batch_size rows (positives then negatives) and what every
        layer takes besides them (nothing: the MLP's layers read the label embedded in x)."""
        return torch.cat([embed_label(x, y, self.num_classes), embed_label(x, y_neg, self.num_classes)]), ()

    def goodness(self, out: torch.Tensor) -> torch.Tensor:
        """A layer's goodness per row."""
        return goodness(out, self.config.ff_goodness)

    def _train_step_together(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(x)
        y_neg = self.negative_labels(x, y)
        h, layer_args = self.together_input(x, y, y_neg)
        total = torch.zeros((), device=self.device)
        pending = []
        for i, (layer, opt) in enumerate(zip(self.net.layers, self._optimizers)):
            with phase("forward", layer=i):
                out = layer(h, *layer_args)
                del h  # the layer saved its normalised copy; the input itself is not needed
                g = self.goodness(out)
                loss = self.layer_loss(g[:n], g[n:])
            if self.summed:
                pending.append(loss)
            else:
                self.update(loss, opt, layer=i)
            total += loss.detach()
            h = out.detach()  # noqa: F841 - the next input (and, after the loop, alive to the end)
            del out, g, loss
        if self.summed:
            with phase("backward"):
                torch.stack(pending).sum().backward()
            del pending
            with phase("optimizer"):
                for opt in self._optimizers:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
        return total

    # -- micro-batching ----------------------------------------------------------
    def _train_step_micro(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """`--micro-batch`: FF's update, one micro-batch (m positive + m negative rows) at a
        time, in the order `config.ff_micro_schedule` says (module docstring)."""
        n = len(x)
        y_neg = self.negative_labels(x, y)  # once, for the whole batch, by the pre-step model
        slices = micro_slices(n, self.config.micro)
        total = torch.zeros((), device=self.device)
        depth = len(self.net.layers)
        if self.config.ff_micro_schedule == "layer-major":
            blocks: list = [None] * len(slices)  # each micro-batch's input to the current layer
            args: list = [None] * len(slices)
            for i, (layer, opt) in enumerate(zip(self.net.layers, self._optimizers)):
                for k, sl in enumerate(slices):
                    if i == 0:
                        blocks[k], args[k] = self.together_input(x[sl], y[sl], y_neg[sl])
                    self._micro_layer(i, layer, blocks, k, args[k], n, total, keep=i < depth - 1)
                with phase("optimizer", layer=i):
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            return total
        for sl in slices:
            block, args = self.together_input(x[sl], y[sl], y_neg[sl])
            blocks = [block]
            del block
            for i, layer in enumerate(self.net.layers):
                self._micro_layer(i, layer, blocks, 0, args, n, total, keep=i < depth - 1)
            del blocks, args
        for i, opt in enumerate(self._optimizers):
            with phase("optimizer", layer=i):
                opt.step()
                opt.zero_grad(set_to_none=True)
        return total

    def _micro_layer(self, i, layer, blocks: list, k: int, args, n: int, total, keep: bool) -> None:
        """Micro-batch k through layer i: forward, its loss scaled by its share of the batch
        (rows / n), backward into the accumulating gradients; blocks[k] becomes the detached
        output (None when no later layer needs it)."""
        h, blocks[k] = blocks[k], None
        rows = len(h) // 2
        with phase("forward", layer=i):
            out = layer(h, *args)
            del h  # the layer saved its normalised copy
            g = self.goodness(out)
            loss = self.layer_loss(g[:rows], g[rows:]) * (rows / n)
        with phase("backward", layer=i):
            loss.backward()
        total += loss.detach()
        blocks[k] = out.detach() if keep else None

    # -- evaluation --------------------------------------------------------------
    def label_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Summed goodness of the evaluation layers for every label: [n, num_classes] float32."""
        if self.config.ff_eval == "replicated":
            return self._label_scores_replicated(x)
        return self._label_scores_loop(x)

    def _label_scores_loop(self, x: torch.Tensor) -> torch.Tensor:
        """One label at a time through the layers' own ops: one chunk-sized forward alive."""
        n, c = len(x), self.num_classes
        scores = torch.zeros(n, c, device=x.device, dtype=torch.float32)
        value = x[:, c:].amax(dim=1, keepdim=True)
        for label in range(c):
            h = with_label(
                x, label, c, value
            )  # a fresh copy per label; it dies once the first layer's output exists
            for i, layer in enumerate(self.net.layers):
                h = layer(h)
                if i in self.eval_layers:
                    scores[:, label].add_(goodness(h, self.config.ff_goodness))
            del h
        return scores

    def _label_scores_replicated(self, x: torch.Tensor) -> torch.Tensor:
        """All labels of the chunk at once: num_classes x n rows (the label replication)."""
        n, c = len(x), self.num_classes
        labels = torch.arange(c, device=x.device).repeat_interleave(n)
        h = embed_label(x.repeat(c, 1), labels, c)  # c x n rows: the label replication
        scores = torch.zeros(c * n, device=x.device, dtype=torch.float32)
        for i, layer in enumerate(self.net.layers):
            h = layer(h)
            if i in self.eval_layers:
                scores += goodness(h, self.config.ff_goodness).float()
        return scores.view(c, n).t()

    def predict_chunk(self, x: torch.Tensor) -> torch.Tensor:
        with phase("eval"):
            return self.label_scores(x).argmax(dim=1)

    @torch.no_grad()
    def readout_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised activities of every layer for the neutral label (for a linear read-out)."""
        x = x.to(self.device, self.dtype)
        h = embed_label(x, torch.full((len(x),), -1, device=x.device), self.num_classes)
        feats = []
        for layer in self.net.layers:
            h = layer(h)
            feats.append(normalise(h, self.config.ff_norm))
        return torch.cat(feats, dim=1)


def micro_slices(n: int, micro: int) -> list[slice]:
    """The batch's rows in micro-batches of `micro` (the last may be shorter)."""
    return [slice(i, min(i + micro, n)) for i in range(0, n, micro)]


NO_SUMMED_MICRO = (
    "its one backward over every layer's summed loss is its schedule; ff and ff-frugal make "
    "the same update micro-batched"
)


@register_trainer
class FFSummedTrainer(FFTrainer):
    name = "ff-summed"
    summed = True
    micro_batch_support = False
    no_micro_batching = NO_SUMMED_MICRO
