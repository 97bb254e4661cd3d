"""Gradient statistics: how large each layer's weight gradient is after one backward pass.

The chapter on activation functions uses :func:`gradient_norms` to show vanishing gradients at initialisation: with
sigmoid units the first convolution of the d2l AlexNet gets a gradient millions of times smaller than the last dense
layer, with ReLU or tanh it does not.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["layer_names", "gradient_norms"]


def layer_names(net: nn.Module) -> dict[str, str]:
    """Short names of the weighted layers, in order: ``{"features.0": "conv1", ..., "classifier.6": "fc3"}``.

    Convolutions are numbered ``conv1, conv2, ...`` and dense layers ``fc1, fc2, ...``, as in the paper.
    """
    names, counts = {}, {"conv": 0, "fc": 0}
    for path, m in net.named_modules():
        kind = "conv" if isinstance(m, nn.Conv2d) else "fc" if isinstance(m, nn.Linear) else None
        if kind is not None:
            counts[kind] += 1
            names[path] = f"{kind}{counts[kind]}"
    return names


def gradient_norms(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy
                   ) -> dict[str, float]:
    """L2 norm of each convolution's and dense layer's weight gradient after one forward/backward pass on ``(x, y)``.

    Returns ``{"conv1": ..., "fc3": ...}`` in the order of the layers (see :func:`layer_names`). The network runs in
    the mode it is in (``net.train()``: dropout active, as in training), and the gradients are computed with
    :func:`torch.autograd.grad`, so the parameters' ``.grad`` fields are left as they were.
    """
    names = layer_names(net)
    modules = dict(net.named_modules())
    weights = [modules[path].weight for path in names]
    loss = loss_fn(net(x), y)
    grads = torch.autograd.grad(loss, weights)
    return {short: g.norm().item() for short, g in zip(names.values(), grads)}
