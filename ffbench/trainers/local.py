"""Locally connected trainers (`--arch local`): every conv trainer with `LocalConv2d` layers.

Hinton's CIFAR-10 experiments use locally connected layers (unshared weights at every output
position). The classes are conv.py's and conv_frugal.py's, registered again for `local`:
`images.make_layer` builds the layer from `config.arch`. Their memory cost is stated in
images.py: the unfolded patches are Ck^2/out times a layer's output, and the weights are
positions x Ck^2 x out (parameters, gradients and two Adam buffers).
"""

from __future__ import annotations

from .conv import (
    BPConvAccumTrainer,
    BPConvCheckpointTrainer,
    BPConvInBackwardTrainer,
    BPConvLocalTrainer,
    BPConvTrainer,
    FFConvSummedTrainer,
    FFConvTrainer,
)
from .conv_frugal import FFConvFrugalTrainer
from .registry import register_trainer

CONV_CLASSES = (
    BPConvTrainer,
    BPConvCheckpointTrainer,
    BPConvAccumTrainer,
    BPConvInBackwardTrainer,
    BPConvLocalTrainer,
    FFConvTrainer,
    FFConvSummedTrainer,
    FFConvFrugalTrainer,
)

LOCAL_CLASSES = tuple(
    register_trainer(
        type(cls.__name__.replace("Conv", "Local"), (cls,), {"arch": "local", "__module__": __name__})
    )
    for cls in CONV_CLASSES
)
