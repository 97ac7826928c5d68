"""Linear softmax read-out on frozen features (one pass over the training set).

Used for FF's second evaluation: a linear classifier on the detached, normalised
activities. The same read-out on an *untrained* network is reported beside it as a
control, because random ReLU features alone already score high on MNIST.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def linear_readout_accuracy(
    features: Callable[[torch.Tensor], torch.Tensor],
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    *,
    num_classes: int,
    batch_size: int,
    seed: int,
    lr: float = 1e-3,
    epochs: int = 1,
) -> float:
    """Train a linear softmax classifier on `features(x)` (no gradient into the
    features) for `epochs` passes, return its accuracy on the test tensors."""
    device = train_x.device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        dim = features(train_x[:1]).shape[1]
    torch.manual_seed(seed)
    head = nn.Linear(dim, num_classes).to(device)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=gen).to(device)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            with torch.no_grad():
                f = features(train_x[idx]).float()
            loss = F.cross_entropy(head(f), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test_x), batch_size):
            pred = head(features(test_x[i : i + batch_size]).float()).argmax(dim=1)
            correct += (pred == test_y[i : i + batch_size]).sum().item()
    return correct / max(1, len(test_x))
