"""Forward-Forward in time against backpropagation through time (`--arch recurrent`).

Hinton's recurrent network (2022, section 4, "modelling top-down effects in perception"):
a static image is shown as a "boring video" for T = `time_steps` steps. Layers, bottom to
top: the image x (fixed), hidden layers h_1 .. h_D (width W), the label (one-hot, clamped).
Each hidden layer's next state comes from the normalised states of the layers below and
above at the previous step, damped (the paper's 0.3 old + 0.7 new):

    h_l(t) = 0.3 h_l(t-1) + 0.7 relu(U_l n(h_{l-1}(t-1)) + b_l + V_l n(h_{l+1}(t-1)))

with h_0 = x and h_{D+1} = the label; n() is FF's normalisation (`ff_norm`), and the label
layer enters already normalised (a one-hot scaled to unit mean square: sqrt(C) at the
label, unit length for l2). Step 0 is one bottom-up pass (the paper's initialisation): no
damping, no top-down input except the label into the top layer. Below and above are
normalised separately (two weight matrices, U_l with bias and V_l without).

Goodness of layer l at step t: FF's goodness of h_l(t) (the damped state, the layer's
activity); its loss FF's `ff_loss(g_pos, g_neg) / T` (positives: the true label clamped;
negatives: a wrong one), every layer at every step, step 0 included.

Trainers (same network, parameters and seed; one optimizer step per batch after T steps):
- `ff`: each layer-step's loss is back-propagated at once into `.grad` (accumulating over
  the T steps) from *detached* inputs, and only the detached new state is kept: at most one
  layer-step's graph is alive, and nothing but the states survives a step, so memory does
  not grow with T. One optimizer per layer (Adam is per parameter: the same update as one).
- `bp`: the same loss summed over steps and layers, nothing detached: gradients flow back
  through time and across layers; one backward after T steps (full BPTT), or every
  `bptt_window` steps with the states detached in between (truncated BPTT).
- `bp-checkpoint`: full BPTT with each time step checkpointed (non-reentrant): only each
  step's input states are kept, a step's inside is recomputed in backward. The gradients
  are full BPTT's.
- `bp-ste`: `bp` with a straight-through estimator at the black box.
- `bp-ce`: the discriminative baseline reported beside them for accuracy: no label is
  clamped; a linear head reads n(h_D(t)) at every step, cross-entropy averaged over steps,
  and the head's soft-max output, normalised, is fed back as the label layer of the next
  step (through the same V_D). Full BPTT on the B real rows (no negatives).

Micro-batching (`--micro-batch m`, `ff`, `bp`, `bp-checkpoint`, `bp-ste`): the negatives are
drawn once for the whole batch (hard ones by the model before the step); each micro-batch of
m real rows and their m negatives runs all T steps, its losses scaled by its share m / B
(gradients accumulate; rows never interact), then the one optimizer step: FF's and (full or
truncated) BPTT's update, with one micro-batch's states and graph alive. Recurrent FF runs
micro-batch-major only: every layer at step t reads its neighbours at step t - 1.

Evaluation (`predict`): the label loop -- one label clamped at a time, the net run for the
last evaluation step + 1 steps, the goodness of the evaluation layers (`ff_eval_layers`)
summed over the evaluation steps (`eval_steps`, 1-based, paper: 3 to 5), highest wins.
Memory is one run's, whatever the number of classes or T. `bp-ce`: logits summed over the
evaluation steps.

Negatives: `random` (uniform over the wrong labels) or `hard`: a wrong label drawn in
proportion to softmax(goodness of the top layer after the bottom-up pass), one label at a
time (a cheap stand-in for the paper's "one forward pass to get class probabilities").

Black box (`--black-box k`, see ffbench/blackbox.py): hidden layer k's state passes through
the box wherever a neighbour reads it (up to layer k + 1, down to layer k - 1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..blackbox import StraightThrough, black_box
from ..errors import ConfigError
from ..phases import phase
from .base import Trainer, make_optimizer
from .ff import ff_loss, goodness, micro_slices, normalise, random_wrong_labels
from .registry import register_trainer

DAMPING = 0.3  # the paper's: 0.3 of the old state, 0.7 of the new


class RecurrentNet(nn.Module):
    """up[l]: bottom-up Linear (with bias); down[l]: top-down Linear (no bias) from layer l + 1
    (the label layer for the top one); `head` (bp-ce only): width -> classes."""

    def __init__(
        self, in_features: int, width: int, depth: int, num_classes: int, head: bool = False
    ) -> None:
        super().__init__()
        self.depth = depth
        self.up = nn.ModuleList(nn.Linear(in_features if i == 0 else width, width) for i in range(depth))
        self.down = nn.ModuleList(
            nn.Linear(width if i < depth - 1 else num_classes, width, bias=False) for i in range(depth)
        )
        if head:
            self.head = nn.Linear(width, num_classes)

    def layer_params(self, i: int) -> list[nn.Parameter]:
        """Layer i's own parameters: what its local (FF) loss trains."""
        return [self.up[i].weight, self.up[i].bias, self.down[i].weight]


def label_input(labels: torch.Tensor, num_classes: int, norm: str, dtype: torch.dtype) -> torch.Tensor:
    """The clamped label layer, normalised: one-hot x sqrt(C) (rms) or x 1 (l2)."""
    scale = math.sqrt(num_classes) if norm == "rms" else 1.0
    return F.one_hot(labels, num_classes).to(dtype).mul_(scale)


def layer_update(
    net: RecurrentNet, i: int, below: torch.Tensor, above: torch.Tensor | None, prev: torch.Tensor | None
) -> torch.Tensor:
    """Hidden layer i's new state from its normalised neighbours (above None: no top-down
    input; prev None: no damping -- the bottom-up pass)."""
    a = net.up[i](below)
    if above is not None:
        a = a + net.down[i](above)
    new = F.relu(a)
    del a
    if prev is None:
        return new
    # DAMPING * prev + (1 - DAMPING) * new, with no scaled copy of prev in the graph
    return torch.add(new * (1.0 - DAMPING), prev, alpha=DAMPING)


class RecurrentBase(Trainer):
    """What every recurrent trainer shares: the net, the label layer, the black box,
    negatives, the time step and evaluation."""

    arch = "recurrent"
    straight_through = False  # bp-ste: the identity as the black box's gradient
    head = False

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        if config.ff_eval != "label-loop":
            raise ConfigError("--arch recurrent evaluates in a label loop only (ff-eval label-loop)")
        self.steps = config.time_steps
        self.eval_steps = config.eval_step_indices()
        self.eval_layers = config.eval_layer_indices()
        self.boxed = None if config.black_box is None else config.black_box - 1  # 0-based layer
        net = RecurrentNet(in_features, config.width, config.depth, num_classes, head=self.head)
        self.net = net.to(device, self.dtype)
        self._optimizers = self.make_optimizers()

    def make_optimizers(self) -> list[torch.optim.Optimizer]:
        """One optimizer over every parameter (backprop); FF has one per layer."""
        return [make_optimizer(self.net.parameters(), self.config)]

    def labels_in(self, labels: torch.Tensor) -> torch.Tensor:
        return label_input(labels, self.num_classes, self.config.ff_norm, self.dtype)

    def seen(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Hidden layer i's state as its neighbours read it: normalised, through the box if
        layer i is the boxed one."""
        if i == self.boxed:
            h = black_box(h, self.straight_through)
        return normalise(h, self.config.ff_norm)

    def step(self, xn: torch.Tensor, lab: torch.Tensor | None, states: list | None) -> list[torch.Tensor]:
        """Every hidden layer's next state (states None: the bottom-up pass; lab None: no
        label). Differentiable end to end."""
        depth, new = self.net.depth, []
        if states is None:
            for i in range(depth):
                below = xn if i == 0 else self.seen(i - 1, new[i - 1])
                new.append(layer_update(self.net, i, below, lab if i == depth - 1 else None, None))
            return new
        seen = [self.seen(i, s) for i, s in enumerate(states)]
        for i in range(depth):
            above = lab if i == depth - 1 else seen[i + 1]
            new.append(layer_update(self.net, i, xn if i == 0 else seen[i - 1], above, states[i]))
        return new

    def layer_loss(self, h: torch.Tensor, n: int) -> torch.Tensor:
        g = goodness(h, self.config.ff_goodness)
        return ff_loss(g[:n], g[n:], self.config.ff_threshold) / self.steps

    def micro_batches(self, x: torch.Tensor, y: torch.Tensor):
        """`--micro-batch`: (2m training rows, their labels, m, share m / B) per micro-batch,
        the negatives drawn once for the whole batch first."""
        n = len(x)
        with phase("negatives"):
            y_neg = self.negative_labels(x, y)
        for sl in micro_slices(n, self.config.micro):
            xn = normalise(x[sl], self.config.ff_norm).repeat(2, 1)
            lab = self.labels_in(torch.cat([y[sl], y_neg[sl]]))
            rows = sl.stop - sl.start
            yield xn, lab, rows, rows / n
            del xn, lab

    def _train_step_micro(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """`--micro-batch`: every micro-batch's T steps (the trainer's `_run`, losses scaled by
        its share), then the one optimizer step."""
        total = torch.zeros((), device=self.device)
        for xn, lab, n, share in self.micro_batches(x, y):
            self._run(xn, lab, n, total, share)
            del xn, lab
        self.step_optimizers()
        return total

    def batch_inputs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 2B training rows: normalised images twice, the true then a wrong label."""
        with phase("negatives"):
            y_neg = self.negative_labels(x, y)
        xn = normalise(x, self.config.ff_norm).repeat(2, 1)
        return xn, self.labels_in(torch.cat([y, y_neg]))

    # -- negatives ---------------------------------------------------------------
    def negative_labels(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.ff_negatives == "hard":
            return self.hard_negative_labels(x, y)
        return random_wrong_labels(y, self.num_classes, self.generator)

    @torch.no_grad()
    def hard_negative_labels(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Wrong labels drawn in proportion to softmax(top-layer goodness) after the bottom-up
        pass, one label at a time (B x W per label, no label replication)."""
        n, c, net = len(x), self.num_classes, self.net
        below = normalise(x, self.config.ff_norm)
        for i in range(net.depth - 1):
            below = self.seen(i, layer_update(net, i, below, None, None))
        base = net.up[-1](below)
        del below
        scale = math.sqrt(c) if self.config.ff_norm == "rms" else 1.0
        scores = torch.empty(n, c, device=x.device, dtype=torch.float32)
        for label in range(c):
            top = F.relu(base + net.down[-1].weight[:, label] * scale)
            scores[:, label] = goodness(top, self.config.ff_goodness)
        scores[torch.arange(n, device=x.device), y] = float("-inf")
        return torch.multinomial(torch.softmax(scores, dim=1), 1, generator=self.generator).squeeze(1)

    # -- evaluation --------------------------------------------------------------
    def label_scores(self, x: torch.Tensor) -> torch.Tensor:
        """[n, C] goodness of the evaluation layers summed over the evaluation steps, one
        label at a time: memory is one n-row run, whatever C and T."""
        n, c = len(x), self.num_classes
        scores = torch.zeros(n, c, device=x.device, dtype=torch.float32)
        xn = normalise(x, self.config.ff_norm)
        wanted = set(self.eval_steps)
        for label in range(c):
            lab = self.labels_in(torch.full((n,), label, device=x.device))
            states = None
            for t in range(max(self.eval_steps) + 1):
                states = self.step(xn, lab, states)
                if t in wanted:
                    for i in self.eval_layers:
                        scores[:, label].add_(goodness(states[i], self.config.ff_goodness))
            del states, lab
        return scores

    def predict_chunk(self, x: torch.Tensor) -> torch.Tensor:
        with phase("eval"):
            return self.label_scores(x).argmax(dim=1)

    @torch.no_grad()
    def readout_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised states of every layer after T steps with no label clamped (for a linear
        read-out)."""
        x = x.to(self.device, self.dtype)
        xn = normalise(x, self.config.ff_norm)
        lab = torch.zeros(len(x), self.num_classes, device=x.device, dtype=self.dtype)
        states = None
        for _ in range(self.steps):
            states = self.step(xn, lab, states)
        return torch.cat([normalise(s, self.config.ff_norm) for s in states], dim=1)


@register_trainer
class RecurrentFFTrainer(RecurrentBase):
    name = "ff"
    family = "ff"
    black_box_support = True  # each class says so for itself (config checks the class's own attributes)

    def make_optimizers(self) -> list[torch.optim.Optimizer]:
        return [make_optimizer(self.net.layer_params(i), self.config) for i in range(self.net.depth)]

    micro_batch_support = True

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.micro_batching:
            return self._train_step_micro(x, y)
        xn, lab = self.batch_inputs(x, y)
        total = torch.zeros((), device=self.device)
        last = self._run(xn, lab, len(x), total)  # noqa: F841 - the last states live through the step
        self.step_optimizers()
        return total

    def _run(self, xn, lab, n: int, total: torch.Tensor, share: float | None = None) -> list:
        """All T steps of the 2n rows xn (labels lab), each layer-step's loss (scaled by the
        micro-batch's share) back-propagated into .grad at once; returns the last states."""
        depth = self.net.depth
        states: list | None = None  # detached states of the previous step
        for _t in range(self.steps):
            seen = None if states is None else [self.seen(i, s) for i, s in enumerate(states)]
            new: list[torch.Tensor] = []
            for i in range(depth):
                if seen is None:  # the bottom-up pass: the layer below is already at step 0
                    below = xn if i == 0 else self.seen(i - 1, new[i - 1])
                    above, prev = (lab if i == depth - 1 else None), None
                else:
                    below = xn if i == 0 else seen[i - 1]
                    above, prev = (lab if i == depth - 1 else seen[i + 1]), states[i]
                with phase("forward", layer=i):
                    h = layer_update(self.net, i, below, above, prev)
                    loss = self.layer_loss(h, n)
                    if share is not None:
                        loss = loss * share
                with phase("backward", layer=i):
                    loss.backward()  # into .grad (accumulating over the steps); frees the graph
                total += loss.detach()
                new.append(h.detach())
                del h, loss, below, above, prev
            del seen
            states = new
        return states


@register_trainer
class BPTTTrainer(RecurrentBase):
    """Full BPTT; truncated with `bptt_window`; checkpointed per step in `bp-checkpoint`."""

    name = "bp"
    family = "bp"  # full BPTT; --bptt-window (truncated BPTT) approximates the gradient: "other"
    black_box_support = True
    micro_batch_support = True
    checkpointed = False

    def __init__(self, config, in_features, num_classes, device) -> None:
        super().__init__(config, in_features, num_classes, device)
        self.window = config.bptt_window or self.steps

    def _time_step(self, xn, lab, n, *states):
        """One time step of every layer and the sum of its layer losses (a pure function of
        its inputs, so it can be checkpointed); no states: the bottom-up pass."""
        new = self.step(xn, lab, list(states) or None)
        loss = self.layer_loss(new[0], n)
        for h in new[1:]:
            loss = loss + self.layer_loss(h, n)
        return (loss, *new)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.micro_batching:
            return self._train_step_micro(x, y)
        xn, lab = self.batch_inputs(x, y)
        total = torch.zeros((), device=self.device)
        self._run(xn, lab, len(x), total)
        self.step_optimizers()
        return total

    def _run(self, xn, lab, n: int, total: torch.Tensor, share: float | None = None) -> None:
        """All T steps of the 2n rows xn (labels lab), back-propagated every window (the
        summed loss scaled by the micro-batch's share)."""
        states: tuple = ()
        pending = None  # the window's summed loss, not yet back-propagated
        for t in range(self.steps):
            with phase("forward"):
                if self.checkpointed:
                    loss, *new = checkpoint(self._time_step, xn, lab, n, *states, use_reentrant=False)
                else:
                    loss, *new = self._time_step(xn, lab, n, *states)
                if share is not None:
                    loss = loss * share
                states = tuple(new)
                del new
                pending = loss if pending is None else pending + loss
                total += loss.detach()
                del loss
            if (t + 1) % self.window == 0 or t == self.steps - 1:
                with phase("backward"):
                    pending.backward()
                pending = None
                states = tuple(s.detach() for s in states)  # the truncation point
        del states


@register_trainer
class CheckpointBPTTTrainer(BPTTTrainer):
    name = "bp-checkpoint"
    black_box_support = True
    checkpointed = True


@register_trainer
class StraightThroughBPTTTrainer(StraightThrough, BPTTTrainer):
    """BPTT with a straight-through estimator at the black box (needs --black-box)."""

    black_box_support = True


@register_trainer
class ReadoutBPTTTrainer(RecurrentBase):
    """`bp-ce`: the same hidden layers with a soft-max head instead of a clamped label."""

    name = "bp-ce"
    head = True

    def logits(self, x: torch.Tensor, steps: int) -> list[torch.Tensor]:
        """The head's logits at every step (differentiable through time)."""
        xn, states, fed_back, out = normalise(x, self.config.ff_norm), None, None, []
        for _ in range(steps):
            states = self.step(xn, fed_back, states)
            z = self.net.head(normalise(states[-1], self.config.ff_norm))
            out.append(z)
            fed_back = normalise(torch.softmax(z, dim=1), self.config.ff_norm)
        return out

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with phase("forward"):
            loss = sum(F.cross_entropy(z, y) for z in self.logits(x, self.steps)) / self.steps
        self.update(loss, self._optimizers[0])
        return loss.detach()

    def predict_chunk(self, x: torch.Tensor) -> torch.Tensor:
        with phase("eval"):
            z = self.logits(x, max(self.eval_steps) + 1)
            return torch.stack([z[t] for t in self.eval_steps]).sum(dim=0).argmax(dim=1)
