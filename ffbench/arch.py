"""Image architectures (`--arch conv|local`): the input image's shape and every layer's geometry.

Torch-free, so the analytic model (ffbench.model) and the configuration can use it.

* `image_shape(config, in_features)`: C x H x W of the (flat) inputs. `--image-shape` when
  given, else inferred from the dataset's feature count: 784 -> 1x28x28 (MNIST,
  Fashion-MNIST), 3072 -> 3x32x32 (CIFAR-10, and `synthetic` under --arch conv|local),
  64 -> 1x8x8 (scikit-learn digits); a square grey image otherwise.
* `layer_specs(config, in_features)`: per layer (in_c, out_c, k, s, p, H, W, Ho, Wo) with
  "same" padding p = k // 2 (so stride 1 keeps H x W): `--channels`, `--kernel` and `--stride`
  each give one value for every layer or one per layer (e.g. 32,64,128).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError

IMAGE_ARCHS = ("conv", "local")


def is_image(arch) -> bool:
    """An image body (conv, local): its size is its layers' channels, not a width."""
    return arch in IMAGE_ARCHS


DEFAULT_IMAGE = (3, 32, 32)  # CIFAR-10's shape: synthetic data under --arch conv|local
_BY_FEATURES = {784: (1, 28, 28), 3072: (3, 32, 32), 64: (1, 8, 8)}


MAX_LAYER_SIZE = 2**24  # channels, kernel, stride or image side: as --width's limit


def parse_shape(text: str) -> tuple[int, int, int]:
    """'3x32x32' -> (3, 32, 32); ConfigError otherwise."""
    parts = str(text).lower().replace("×", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ConfigError(f"image-shape must be CxHxW with positive integers (e.g. 3x32x32), got {text!r}")
    if max(dims) > MAX_LAYER_SIZE:
        raise ConfigError(
            f"image-shape {text!r}: a side beyond {MAX_LAYER_SIZE} is no image ffbench can build"
        )
    return dims  # type: ignore[return-value]


def parse_ints(name: str, value) -> tuple[int, ...]:
    """One positive int or a comma list of them ('32,64,128'); ConfigError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    else:
        try:
            items = [int(p) for p in str(value).split(",")]
        except ValueError:
            items = []
    if not items or min(items) < 1:
        raise ConfigError(f"{name} must be a positive integer or a list like 32,64,128, got {value!r}")
    if max(items) > MAX_LAYER_SIZE:
        raise ConfigError(
            f"{name} {max(items)} is beyond any layer ffbench can build (at most {MAX_LAYER_SIZE})"
        )
    return tuple(items)


def per_layer(name: str, value, depth: int) -> tuple[int, ...]:
    """The value of every layer: one value repeated, or exactly `depth` values."""
    items = parse_ints(name, value)
    if len(items) == 1:
        return items * depth
    if len(items) != depth:
        raise ConfigError(f"{name} lists {len(items)} values for depth {depth}: give one or {depth}")
    return items


def image_shape(config, in_features: int | None = None) -> tuple[int, int, int]:
    """The input image's C x H x W (see the module docstring)."""
    if config.image_shape:
        shape = parse_shape(config.image_shape)
    elif in_features is None:
        shape = DEFAULT_IMAGE
    elif in_features in _BY_FEATURES:
        shape = _BY_FEATURES[in_features]
    else:
        side = math.isqrt(in_features)
        if side * side != in_features:
            raise ConfigError(f"cannot read {in_features} inputs as an image: give --image-shape CxHxW")
        shape = (1, side, side)
    if in_features is not None and math.prod(shape) != in_features:
        raise ConfigError(
            f"image-shape {'x'.join(map(str, shape))} does not hold the data's {in_features} inputs"
        )
    return shape


def synthetic_features(config) -> int:
    """Features of synthetic data for `config`: an image's under --arch conv|local, else 784."""
    if is_image(config.arch):
        return math.prod(image_shape(config))
    return 784


@dataclass(frozen=True)
class LayerSpec:
    in_c: int
    out_c: int
    k: int
    s: int
    p: int
    h: int  # input height / width
    w: int
    ho: int  # output height / width
    wo: int

    @property
    def out_numel(self) -> int:
        """Elements of one example's output (out_c x Ho x Wo)."""
        return self.out_c * self.ho * self.wo

    @property
    def positions(self) -> int:
        return self.ho * self.wo

    @property
    def patch(self) -> int:
        """Inputs of one filter (in_c x k x k): a locally connected layer's fan-in."""
        return self.in_c * self.k * self.k


def layer_specs(config, in_features: int | None = None) -> list[LayerSpec]:
    """Every layer's geometry (see the module docstring); ConfigError if an image vanishes."""
    c, h, w = image_shape(config, in_features)
    specs = []
    channels = per_layer("channels", config.channels, config.depth)
    kernels = per_layer("kernel", config.kernel, config.depth)
    strides = per_layer("stride", config.stride, config.depth)
    for i, (oc, k, s) in enumerate(zip(channels, kernels, strides)):
        p = k // 2
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if ho < 1 or wo < 1:
            raise ConfigError(f"layer {i + 1} (kernel {k}, stride {s}) leaves no output from a {h}x{w} input")
        specs.append(LayerSpec(c, oc, k, s, p, h, w, ho, wo))
        c, h, w = oc, ho, wo
    return specs
