"""The networks of the course: LeNet and four AlexNets.

Every model has ``features`` (convolutions and pooling) and ``classifier`` (the dense head), takes
``in_channels`` and ``num_classes``, and checks its input before running, so a wrong image size or channel count
gives an error that names the layer where it breaks and the input size that would work (see :mod:`.trace`).

| builder               | what it is                                                                   |
|-----------------------|------------------------------------------------------------------------------|
| ``lenet()``           | LeNet-5 as in d2l: 28x28 input, sigmoid, average pooling                     |
| ``d2l_alexnet()``     | d2l's AlexNet for Fashion-MNIST: 1x224x224, 96@11x11/4 ... 6400-4096-4096-10 |
| ``half_alexnet()``    | the d2l AlexNet with half the channels and 2048-wide dense layers            |
| ``paper_alexnet()``   | Krizhevsky et al. 2012: 3x227x227, LRN, ``groups=2`` for the two-GPU split   |
| ``torchvision_alexnet()`` | ``torchvision.models.alexnet`` (adaptive pooling, no LRN)                |
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from .trace import check_input

__all__ = ["LeNet", "AlexNet", "PaperAlexNet", "lenet", "d2l_alexnet", "half_alexnet", "paper_alexnet",
           "torchvision_alexnet", "MODELS", "build_model", "ACTIVATIONS"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


def _act(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


class _Checked(nn.Module):
    """Base class: ``features`` -> flatten -> ``classifier``, with an input check in eager mode."""

    in_channels: int
    image_size: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.compiler.is_compiling():
            check_input(self, x)
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class LeNet(_Checked):
    """LeNet-5 (LeCun et al. 1998) in d2l's form: two 5x5 convolutions, average pooling, three dense layers."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, activation: str = "sigmoid") -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, 28
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2), _act(activation),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), _act(activation),
            nn.AvgPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), _act(activation),
            nn.Linear(120, 84), _act(activation),
            nn.Linear(84, num_classes),
        )


class AlexNet(_Checked):
    """d2l's AlexNet (single tower, padding chosen for 224x224 input, no LRN).

    Args:
        in_channels: image channels (1 for Fashion-MNIST, 3 for CIFAR-10 / ImageNet).
        num_classes: size of the last layer.
        widths: output channels of the five convolutions.
        fc: width of the two hidden dense layers.
        dropout: dropout probability before each hidden dense layer (0 turns it off).
        activation: ``"relu"`` (the paper's choice), ``"sigmoid"`` or ``"tanh"``.
        image_size: side of the square input. The first dense layer is sized for it, so 224 gives d2l's
            6400 -> 4096; the quick profile uses a smaller side with the same convolutions.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: Sequence[int] = (96, 256, 384, 384, 256), fc: int = 4096,
                 dropout: float = 0.5, activation: str = "relu", image_size: int = 224) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.in_channels, self.image_size = in_channels, image_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=1), _act(activation),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2), _act(activation),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), _act(activation),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1), _act(activation),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1), _act(activation),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        flat = _flat_features(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Linear(flat, fc), _act(activation), nn.Dropout(dropout),
            nn.Linear(fc, fc), _act(activation), nn.Dropout(dropout),
            nn.Linear(fc, num_classes),
        )


class PaperAlexNet(_Checked):
    """The network of Krizhevsky, Sutskever & Hinton (NeurIPS 2012), as published.

    227x227 input (the paper's text says 224, but 227 is what makes its 55x55 first layer work out), local response
    normalisation after conv1 and conv2, overlapping 3/2 max-pooling, and the two-GPU split written as
    ``groups=2``: conv2, conv4 and conv5 only see the half of the channels that lived on their own GPU; conv3 and the
    dense layers connect across both.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5,
                 lrn: bool = True, image_size: int = 227) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size

        def norm() -> nn.Module:
            # The paper divides by (k + alpha * sum a^2)^beta; PyTorch divides alpha by the window size n,
            # so alpha = n * 1e-4 reproduces the paper's formula.
            return nn.LocalResponseNorm(size=5, alpha=5 * 1e-4, beta=0.75, k=2.0) if lrn else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4), nn.ReLU(inplace=True), norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2), nn.ReLU(inplace=True), norm(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        flat = _flat_features(self.features, in_channels, image_size)  # 256 * 6 * 6 at 227
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(flat, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )


def _flat_features(features: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features after ``features`` for one image, computed on the meta device (no arithmetic)."""
    from .trace import output_shape
    c, h, w = output_shape(features, (in_channels, image_size, image_size))
    return c * h * w


def lenet(in_channels: int = 1, num_classes: int = 10, activation: str = "sigmoid") -> LeNet:
    """LeNet-5 for 28x28 images."""
    return LeNet(in_channels, num_classes, activation)


def d2l_alexnet(in_channels: int = 1, num_classes: int = 10, *, dropout: float = 0.5,
                activation: str = "relu", image_size: int = 224) -> AlexNet:
    """d2l's AlexNet: 96@11x11/4, 256@5x5, 384, 384, 256 @3x3, then 6400 -> 4096 -> 4096 -> classes at 224."""
    return AlexNet(in_channels, num_classes, dropout=dropout, activation=activation, image_size=image_size)


def half_alexnet(in_channels: int = 1, num_classes: int = 10, *, dropout: float = 0.5,
                 activation: str = "relu", image_size: int = 224) -> AlexNet:
    """The d2l AlexNet at half width: 48/128/192/192/128 channels, 2048-wide dense layers."""
    return AlexNet(in_channels, num_classes, widths=(48, 128, 192, 192, 128), fc=2048,
                   dropout=dropout, activation=activation, image_size=image_size)


def paper_alexnet(in_channels: int = 3, num_classes: int = 1000, *, dropout: float = 0.5,
                  lrn: bool = True, image_size: int = 227) -> PaperAlexNet:
    """The 2012 paper's AlexNet (227x227, LRN, two-GPU groups); ``image_size`` only for the quick profile."""
    return PaperAlexNet(in_channels, num_classes, dropout=dropout, lrn=lrn, image_size=image_size)


def torchvision_alexnet(in_channels: int = 3, num_classes: int = 1000, *, dropout: float = 0.5,
                        weights: str | None = None) -> nn.Module:
    """``torchvision.models.alexnet`` with ``in_channels`` and ``num_classes`` as knobs.

    ``weights="DEFAULT"`` loads torchvision's ImageNet weights (needs the internet the first time, and the
    original 3 channels and 1000 classes); nothing else in the course needs them.
    """
    from torchvision.models import AlexNet_Weights, alexnet

    if weights is not None and (in_channels, num_classes) != (3, 1000):
        raise ValueError("ImageNet weights exist only for in_channels=3, num_classes=1000; "
                         "load them with those and replace the first/last layer yourself")
    try:
        net = alexnet(weights=AlexNet_Weights.verify(weights), num_classes=num_classes, dropout=dropout)
    except (OSError, RuntimeError) as e:  # urllib errors are OSErrors
        raise RuntimeError(f"could not load torchvision's AlexNet weights ({e}); they are downloaded on first use, "
                           "so this needs the internet once. Use weights=None to train from scratch.") from e
    if in_channels != 3:
        net.features[0] = nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2)
    net.in_channels, net.image_size = in_channels, 224
    return net


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet": lenet,
    "d2l_alexnet": d2l_alexnet,
    "half_alexnet": half_alexnet,
    "paper_alexnet": paper_alexnet,
    "torchvision_alexnet": torchvision_alexnet,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a model by its builder's name, e.g. ``build_model("d2l_alexnet", image_size=96)``."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return builder(**kwargs)
