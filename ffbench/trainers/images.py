"""Building blocks of the image trainers (`--arch conv|local`, conv.py, conv_frugal.py, local.py).

Inputs stay flat rows (the datasets' format); every network starts with `ToImage`, which views
them as N x C x H x W (`ffbench.arch.image_shape`). Layers are "same"-padded k x k filters with
a stride (`ffbench.arch.layer_specs`), each followed by a ReLU:

* `conv`: `nn.Conv2d`. With `--memory-format channels_last` (default) weights and activations are
  NHWC: oneDNN then convolves them as they are. In NCHW it reorders each activation into a
  blocked layout and back *inside* the conv op, through the C++ allocator, so the tensor-level
  count misses one layer-sized buffer per conv (measured: about 25 % of a step's transient on
  CPU; `contiguous` keeps that layout to show it). `ToImage` makes the channels_last copy of a
  multi-channel input itself, as an aten op the tracker sees.
* `local`: `LocalConv2d`, a locally connected layer (a separate filter bank at every output
  position, Hinton's CIFAR-10 layers), written as unfold + bmm so that every buffer it needs is
  an aten op's output: the unfolded patches (N x Ck^2 x L), their L x N x Ck^2 copy (saved by
  bmm for the weight gradient), the L x N x out product and its N x out x L copy. The patch
  buffers are Ck^2/out times the layer output: its honest memory cost, well above conv's.

Forward-Forward on images (`FFImageLayer`): normalise the layer input over C,H,W (rms or l2,
`--ff-norm`), filter, add the label's bias, ReLU. Goodness is the mean (or sum) of squared
activities over C,H,W per example (`--ff-goodness-scope layer`) or over C at every position
(`position`, Hinton's local goodness), the loss then averaged over positions.

How the label enters: a learned class-conditional bias at every layer, E[label] (out channels
per class, scaled by `LABEL_SCALE`), added to the pre-activation at every position. Why:
* it *is* the one-hot-planes embedding (10 constant planes appended as input channels): a
  filter over a constant plane gives a constant per output channel, so planes are a
  class-conditional bias except at the zero-padded border. The bias drops what planes cost:
  10 extra input channels (11x MNIST's input, 4.3x CIFAR's, in every stored input copy), their
  MACs, and, for locally connected layers, 10 x k^2 weights per output position;
* writing the label into pixels (the MLP's first-10-inputs trick, or a border) reaches only
  the receptive fields that cover those pixels: with local goodness no other position sees
  the label (no conv variant learned with it in the prototype);
* it enters every layer, so every position of every layer is label-conditional at the cost of
  classes x channels parameters per layer;
* E starts at 0; under Adam its step is lr per step whatever its scale, so it is stored as
  E / LABEL_SCALE (an effective 10x learning rate on the label bias), which the prototype
  needed for the label to matter early.
Negatives carry a wrong label, y + U{1..C-1} mod C (never the true one), or the model's
hardest wrong one; positives and negatives are the same image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint_sequential

from ..arch import LayerSpec, image_shape, layer_specs

EPS = 1e-8
LABEL_SCALE = 10.0  # the label bias is LABEL_SCALE * E (see the module docstring)


def channels_last(config) -> bool:
    """Activations in NHWC: conv layers with --memory-format channels_last."""
    return config.arch == "conv" and config.memory_format == "channels_last"


class ToImage(nn.Module):
    """Flat rows -> N x C x H x W: a view, or (channels_last, C > 1) one visible NHWC copy."""

    def __init__(self, shape: tuple[int, int, int], nhwc: bool) -> None:
        super().__init__()
        self.shape, self.nhwc = tuple(shape), nhwc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img = x.view(len(x), *self.shape)
        return img.contiguous(memory_format=torch.channels_last) if self.nhwc else img


class FlattenImage(nn.Module):
    """N x C x H x W -> N x CHW as a view: NHWC order for channels_last activations."""

    def __init__(self, nhwc: bool) -> None:
        super().__init__()
        self.nhwc = nhwc

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h.permute(0, 2, 3, 1) if self.nhwc else h).flatten(1)


def unfold_patches(x: torch.Tensor, spec: LayerSpec) -> torch.Tensor:
    """L x N x Ck^2: every output position's input patch (F.unfold, then a contiguous copy)."""
    cols = F.unfold(x, spec.k, padding=spec.p, stride=spec.s)
    return cols.permute(2, 0, 1).contiguous()


class LocalConv2d(nn.Module):
    """Locally connected layer: an unshared Ck^2 x out filter bank at every output position."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.spec = spec
        bound = 1 / math.sqrt(spec.patch)  # nn.Conv2d's default range, per position
        self.weight = nn.Parameter(
            torch.empty(spec.positions, spec.patch, spec.out_c).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(spec.out_c, spec.ho, spec.wo).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.bmm(unfold_patches(x, self.spec), self.weight)  # L x N x out; the patches saved
        sp = self.spec
        return out.permute(1, 2, 0).reshape(len(x), sp.out_c, sp.ho, sp.wo) + self.bias


def make_layer(arch: str, spec: LayerSpec) -> nn.Module:
    if arch == "local":
        return LocalConv2d(spec)
    return nn.Conv2d(spec.in_c, spec.out_c, spec.k, stride=spec.s, padding=spec.p)


def specs_of(config, in_features: int) -> tuple[tuple[int, int, int], list[LayerSpec]]:
    return image_shape(config, in_features), layer_specs(config, in_features)


def finish(net: nn.Module, config, device, dtype) -> nn.Module:
    net = net.to(device, dtype)
    return net.to(memory_format=torch.channels_last) if channels_last(config) else net


class ImageNet(nn.Module):
    """BP's network: ToImage, depth x (layer + ReLU) in `body`, flatten + linear `head`."""

    def __init__(self, config, in_features: int, num_classes: int) -> None:
        super().__init__()
        shape, specs = specs_of(config, in_features)
        self.image = ToImage(shape, channels_last(config))
        mods: list[nn.Module] = []
        for spec in specs:
            mods += [make_layer(config.arch, spec), nn.ReLU()]
        self.body = nn.Sequential(*mods)
        self.head = nn.Sequential(
            FlattenImage(channels_last(config)), nn.Linear(specs[-1].out_numel, num_classes)
        )

    def forward(self, x: torch.Tensor, segments: int = 0) -> torch.Tensor:

        h = self.image(x)
        if segments and self.training and torch.is_grad_enabled():
            h = checkpoint_sequential(self.body, segments, h, use_reentrant=False)
        else:
            h = self.body(h)
        return self.head(h)


class ImageLocalNet(nn.Module):
    """bp-local's network: layer j (the first with ToImage in front) and a flatten + linear head
    per layer, so `BPLocalTrainer`'s step runs on it unchanged."""

    def __init__(self, config, in_features: int, num_classes: int) -> None:
        super().__init__()
        shape, specs = specs_of(config, in_features)
        nhwc = channels_last(config)
        layers = [make_layer(config.arch, spec) for spec in specs]
        layers[0] = nn.Sequential(ToImage(shape, nhwc), layers[0])
        self.layers = nn.ModuleList(layers)
        self.heads = nn.ModuleList(
            nn.Sequential(FlattenImage(nhwc), nn.Linear(spec.out_numel, num_classes)) for spec in specs
        )


# --------------------------------------------------------------------------------------
# Forward-Forward on images
# --------------------------------------------------------------------------------------
def normalise_image(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Only the direction of each example's C x H x W activities passes on (as ff.normalise)."""
    if kind == "rms":
        return x / torch.sqrt(x.pow(2).mean(dim=(1, 2, 3), keepdim=True) + EPS)
    return x / (torch.linalg.vector_norm(x, dim=(1, 2, 3), keepdim=True) + EPS)


def normalise_image_(h: torch.Tensor, kind: str) -> torch.Tensor:
    """`normalise_image` in place: one rows x 1 temporary, the quotient overwrites h."""
    r = torch.linalg.vector_norm(h, dim=(1, 2, 3), keepdim=True)
    if kind == "rms":
        r.square_().div_(h[0].numel()).add_(EPS).sqrt_()
    else:
        r.add_(EPS)
    return h.div_(r)


def goodness_dims(scope: str) -> tuple[int, ...]:
    return (1, 2, 3) if scope == "layer" else (1,)


def goodness_scale(h: torch.Tensor, scope: str, kind: str) -> float:
    """1 / units over which the goodness averages (mean), or 1 (sum)."""
    units = h[0].numel() if scope == "layer" else h.shape[1]
    return 1.0 / units if kind == "mean" else 1.0


class _SquaredNorm(torch.autograd.Function):
    """g = scale * sum h^2 over `dims`, with a one-temporary backward (as ff._SquaredNorm)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, dims: tuple[int, ...], scale: float) -> torch.Tensor:
        ctx.save_for_backward(h)
        ctx.dims, ctx.scale = dims, scale
        return torch.linalg.vector_norm(h, dim=dims).square() * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (h,) = ctx.saved_tensors
        g = grad * (2.0 * ctx.scale)
        return h * g.view(*g.shape[:1], *([1] * len(ctx.dims)), *g.shape[1:]), None, None


def image_goodness(h: torch.Tensor, scope: str, kind: str) -> torch.Tensor:
    """[N] (layer scope) or [N, H, W] (position scope)."""
    return _SquaredNorm.apply(h, goodness_dims(scope), goodness_scale(h, scope, kind))


def eval_score_(h: torch.Tensor, scope: str, kind: str) -> torch.Tensor:
    """One number per example for the label score: the goodness, averaged over positions
    with position scope. One rows-sized tensor (norm squared and scaled in place)."""
    scale = goodness_scale(h, scope, kind) / (h.shape[2] * h.shape[3] if scope == "position" else 1)
    return torch.linalg.vector_norm(h, dim=(1, 2, 3)).square_().mul_(scale)


class FFImageLayer(nn.Module):
    """normalise -> layer -> + label bias -> ReLU. Parameters: the layer's, then `label` (E)."""

    def __init__(self, layer: nn.Module, num_classes: int, out_c: int, norm: str) -> None:
        super().__init__()
        self.layer = layer
        self.label = nn.Parameter(torch.zeros(num_classes, out_c))
        self.norm = norm

    def label_bias(self, labels: torch.Tensor | None) -> torch.Tensor:
        """N x out x 1 x 1; labels None: the neutral label (the mean bias)."""
        e = self.label.mean(0, keepdim=True) if labels is None else self.label[labels]
        return (e * LABEL_SCALE)[:, :, None, None]

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        a = self.layer(normalise_image(x, self.norm))
        # in place: the layer's output is saved by nobody (conv saves its input)
        return F.relu(a.add_(self.label_bias(labels)))


class FFImageNet(nn.Module):
    """ToImage and `depth` FF layers in an nn.ModuleList."""

    def __init__(self, config, in_features: int, num_classes: int) -> None:
        super().__init__()
        shape, specs = specs_of(config, in_features)
        self.image = ToImage(shape, channels_last(config))
        self.specs = specs
        self.layers = nn.ModuleList(
            FFImageLayer(make_layer(config.arch, s), num_classes, s.out_c, config.ff_norm) for s in specs
        )
