"""The networks of the course: LeNet, four AlexNets, and AlexNet's dense head alone.

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
| ``dense_head()``      | AlexNet's dense head (the layers with dropout) alone, on the 28x28 pixels    |

``pool="2x2"`` (d2l and paper AlexNets) replaces the paper's overlapping 3x3, stride-2 max-pooling by the
non-overlapping 2x2, stride 2 it was compared with (the paper's section 3.4); :func:`paper_init` is the paper's
initialisation (section 5).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .trace import check_input

__all__ = ["LeNet", "AlexNet", "PaperAlexNet", "lenet", "d2l_alexnet", "half_alexnet", "paper_alexnet",
           "torchvision_alexnet", "MODELS", "build_model", "ACTIVATIONS", "POOLS", "paper_init", "SpaceToDepthConv2d",
           "space_to_depth_stem", "DenseHead", "dense_head"]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


#: max-pooling windows: the paper's overlapping 3x3 windows 2 pixels apart, and the traditional 2x2 ones
POOLS: dict[str, tuple[int, int]] = {"3x3": (3, 2), "2x2": (2, 2)}


def _pool(name: str) -> nn.Module:
    try:
        k, s = POOLS[name]
    except KeyError:
        raise ValueError(f"unknown pool {name!r}; choose one of {sorted(POOLS)}") from None
    return nn.MaxPool2d(kernel_size=k, stride=s)


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
        dropout: dropout probability on the output of each hidden dense layer (0 turns it off).
        activation: ``"relu"`` (the paper's choice), ``"sigmoid"`` or ``"tanh"``.
        image_size: side of the square input. The first dense layer is sized for it, so 224 gives d2l's
            6400 -> 4096; the quick profile uses a smaller side with the same convolutions.
        pool: ``"3x3"`` (overlapping 3x3 windows, stride 2, as in the paper) or ``"2x2"`` (2x2, stride 2). At 224
            the 2x2 windows leave 6x6 instead of 5x5 positions after the last pooling, so the first dense layer
            takes 9216 features instead of 6400.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 widths: Sequence[int] = (96, 256, 384, 384, 256), fc: int = 4096,
                 dropout: float = 0.5, activation: str = "relu", image_size: int = 224, pool: str = "3x3") -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths
        self.in_channels, self.image_size = in_channels, image_size
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=1), _act(activation),
            _pool(pool),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2), _act(activation),
            _pool(pool),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), _act(activation),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1), _act(activation),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1), _act(activation),
            _pool(pool),
        )
        flat = _flat_features(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(
            nn.Linear(flat, fc), _act(activation), nn.Dropout(dropout),
            nn.Linear(fc, fc), _act(activation), nn.Dropout(dropout),
            nn.Linear(fc, num_classes),
        )


class DenseHead(_Checked):
    """AlexNet's dense head on its own, fed the raw 28x28 pixels: (Linear, ReLU, Dropout) twice, then the output
    layer, the part of AlexNet where dropout acts. Without the convolutions it trains about ten times as fast, so it
    can overfit a few hundred images within a minute on a CPU (chapter 5's quick run)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 4096, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, 28
        self.features = nn.Identity()
        self.classifier = nn.Sequential(
            nn.Linear(in_channels * 28 * 28, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, num_classes),
        )


class PaperAlexNet(_Checked):
    """The network of Krizhevsky, Sutskever & Hinton (NeurIPS 2012), as published.

    227x227 input (the paper's text says 224, but 227 is what makes its 55x55 first layer work out), local response
    normalisation after conv1 and conv2, overlapping 3/2 max-pooling, and the two-GPU split written as
    ``groups=2``: conv2, conv4 and conv5 only see the half of the channels that lived on their own GPU; conv3 and the
    dense layers connect across both. Dropout zeroes the outputs of the two hidden dense layers (FC6 and FC7), as
    the paper says ("in the first two fully-connected layers") and the 2012 code does (its ``hs1``/``hs2`` layers
    follow ``fc2048a`` and ``fc2048ba`` in ``layers-145.cfg``); torchvision's AlexNet drops the inputs of FC6 and FC7
    instead. ``pool="2x2"``: non-overlapping 2x2, stride-2 pooling (same output sizes here: 55 -> 27 -> 13 -> 6).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, dropout: float = 0.5,
                 lrn: bool = True, image_size: int = 227, pool: str = "3x3") -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size

        def norm() -> nn.Module:
            # The paper divides by (k + alpha * sum a^2)^beta; PyTorch divides alpha by the window size n,
            # so alpha = n * 1e-4 reproduces the paper's formula.
            return nn.LocalResponseNorm(size=5, alpha=5 * 1e-4, beta=0.75, k=2.0) if lrn else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 96, kernel_size=11, stride=4), nn.ReLU(inplace=True), norm(),
            _pool(pool),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2), nn.ReLU(inplace=True), norm(),
            _pool(pool),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2), nn.ReLU(inplace=True),
            _pool(pool),
        )
        flat = _flat_features(self.features, in_channels, image_size)  # 256 * 6 * 6 at 227
        self.classifier = nn.Sequential(  # dropout on the outputs of FC6 and FC7, as published
            nn.Linear(flat, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )


@torch.no_grad()
def paper_init(net: nn.Module) -> nn.Module:
    """The 2012 paper's initialisation (its section 5), in place: every weight from N(0, 0.01^2); the biases of the
    second, fourth and fifth convolutional layers and of the hidden dense layers set to 1 ("this initialization
    accelerates the early stages of learning by providing the ReLUs with positive inputs"), all other biases 0.

    (The 2012 code's ``layers-145.cfg`` has the same biases, but draws conv3-conv5's weights with standard deviation
    0.03 (``initW=0.03``); this follows the paper's text.) Works for every AlexNet of :data:`MODELS`: the layers
    are found in order, the five convolutions and the three dense layers.
    """
    convs = [m for m in net.features.modules() if isinstance(m, nn.Conv2d)]
    dense = [m for m in net.classifier.modules() if isinstance(m, nn.Linear)]
    if len(convs) != 5 or len(dense) != 3:
        raise ValueError(f"paper_init needs AlexNet's 5 convolutions and 3 dense layers, "
                         f"{type(net).__name__} has {len(convs)} and {len(dense)}")
    ones = {id(convs[1]), id(convs[3]), id(convs[4]), id(dense[0]), id(dense[1])}
    for m in convs + dense:
        nn.init.normal_(m.weight, mean=0.0, std=0.01)
        nn.init.constant_(m.bias, 1.0 if id(m) in ones else 0.0)
    return net


def _flat_features(features: nn.Module, in_channels: int, image_size: int) -> int:
    """Number of features after ``features`` for one image, computed on the meta device (no arithmetic)."""
    from .trace import output_shape
    c, h, w = output_shape(features, (in_channels, image_size, image_size))
    return c * h * w


def lenet(in_channels: int = 1, num_classes: int = 10, activation: str = "sigmoid") -> LeNet:
    """LeNet-5 for 28x28 images."""
    return LeNet(in_channels, num_classes, activation)


def d2l_alexnet(in_channels: int = 1, num_classes: int = 10, *, dropout: float = 0.5,
                activation: str = "relu", image_size: int = 224, pool: str = "3x3") -> AlexNet:
    """d2l's AlexNet: 96@11x11/4, 256@5x5, 384, 384, 256 @3x3, then 6400 -> 4096 -> 4096 -> classes at 224."""
    return AlexNet(in_channels, num_classes, dropout=dropout, activation=activation, image_size=image_size,
                   pool=pool)


def half_alexnet(in_channels: int = 1, num_classes: int = 10, *, dropout: float = 0.5,
                 activation: str = "relu", image_size: int = 224) -> AlexNet:
    """The d2l AlexNet at half width: 48/128/192/192/128 channels, 2048-wide dense layers."""
    return AlexNet(in_channels, num_classes, widths=(48, 128, 192, 192, 128), fc=2048,
                   dropout=dropout, activation=activation, image_size=image_size)


def paper_alexnet(in_channels: int = 3, num_classes: int = 1000, *, dropout: float = 0.5,
                  lrn: bool = True, image_size: int = 227, pool: str = "3x3") -> PaperAlexNet:
    """The 2012 paper's AlexNet (227x227, LRN, two-GPU groups); ``image_size`` only for the quick profile."""
    return PaperAlexNet(in_channels, num_classes, dropout=dropout, lrn=lrn, image_size=image_size, pool=pool)


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


class SpaceToDepthConv2d(nn.Module):
    """A strided convolution computed as ``pixel_unshuffle`` followed by a stride-1 convolution: same weights,
    same result (up to rounding), a shape the GPU's matrix units like.

    AlexNet's first layer (11x11, stride 4) sees 1 or 3 input channels, so each output pixel's dot product runs over
    a thin, oddly sized window that tensor cores handle poorly. Cutting the padded image into 4x4 blocks and stacking
    each block's 16 pixels as channels turns it into a 3x3 convolution over 16 (or 48) channels with stride 1; the
    11x11 kernel is zero-padded to 12x12 and rearranged the same way. The parameters stay ``weight`` (C_out, C_in,
    11, 11) and ``bias``, so checkpoints load either way.
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        (k, k2), (s, s2), (p, p2) = conv.kernel_size, conv.stride, conv.padding
        if k != k2 or s != s2 or p != p2 or conv.groups != 1 or conv.dilation != (1, 1) or s < 2:
            raise ValueError("SpaceToDepthConv2d needs a square, strided, ungrouped, undilated convolution")
        self.weight, self.bias = conv.weight, conv.bias
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = k, s, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p = self.kernel_size, self.stride, self.padding
        blocks = -(-k // s)  # kernel side in blocks of s pixels
        h, w = x.shape[-2:]
        out_h, out_w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        need_h, need_w = s * (out_h - 1 + blocks), s * (out_w - 1 + blocks)
        # pad on the left/top as the convolution does; pad or crop on the right/bottom to whole blocks
        x = F.pad(x, (p, need_w - w - p, p, need_h - h - p))
        x = F.pixel_unshuffle(x, s)  # (N, C*s*s, need_h/s, need_w/s); channel c*s*s + dy*s + dx
        wt = F.pad(self.weight, (0, blocks * s - k, 0, blocks * s - k))
        o, c = wt.shape[:2]
        wt = wt.view(o, c, blocks, s, blocks, s).permute(0, 1, 3, 5, 2, 4).reshape(o, c * s * s, blocks, blocks)
        return F.conv2d(x, wt, self.bias)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, computed as pixel_unshuffle({self.stride}) + "
                f"{-(-self.kernel_size // self.stride)}x{-(-self.kernel_size // self.stride)} stride-1 conv")


def space_to_depth_stem(net: nn.Module) -> nn.Module:
    """Replace the first convolution of ``net.features`` by its :class:`SpaceToDepthConv2d` twin (in place)."""
    first = net.features[0]
    if isinstance(first, nn.Conv2d):
        net.features[0] = SpaceToDepthConv2d(first)
    elif not isinstance(first, SpaceToDepthConv2d):
        raise ValueError(f"{type(net).__name__}.features[0] is a {type(first).__name__}, not a convolution")
    return net


def dense_head(in_channels: int = 1, num_classes: int = 10, *, width: int = 4096, dropout: float = 0.5) -> DenseHead:
    """AlexNet's dense head (``width`` wide, 4096 as in the paper) on 28x28 images, without the convolutions."""
    return DenseHead(in_channels, num_classes, width=width, dropout=dropout)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet": lenet,
    "d2l_alexnet": d2l_alexnet,
    "half_alexnet": half_alexnet,
    "paper_alexnet": paper_alexnet,
    "torchvision_alexnet": torchvision_alexnet,
    "dense_head": dense_head,
}


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a model by its builder's name, e.g. ``build_model("d2l_alexnet", image_size=96)``."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None
    return builder(**kwargs)
