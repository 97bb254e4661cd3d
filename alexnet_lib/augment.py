"""Image augmentation, twice: ``torchvision.transforms.v2`` presets for the DataLoader path, and the same ideas
as batched tensor operations for the GPU-resident path (:mod:`.gpu_data`), where images never leave the GPU.

Presets (by name, for both paths):

| name       | what it does                                                                             |
|------------|------------------------------------------------------------------------------------------|
| ``flip``   | horizontal flip with probability 1/2                                                     |
| ``shift``  | flip + random translation by up to 2 pixels of the 28x28 image (pad and crop)            |
| ``crop``   | flip + random resized crop (scale 0.6-1, aspect 3/4-4/3), the paper's idea of many crops |
| ``jitter`` | flip + brightness/contrast jitter of +-30%                                               |
| ``all``    | flip + crop + jitter                                                                     |

Besides a preset, Cutout (``erase``, :func:`erase_squares`): one square per training image set to the background.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["PRESETS", "transform", "gpu_augment", "gpu_resize", "erase_squares", "erasing", "augmented_versions"]

PRESETS = ("flip", "shift", "crop", "jitter", "all")


def transform(name: str | None, size: int = 28):
    """A ``torchvision.transforms.v2`` transform for preset ``name`` on PIL images of side ``size`` (before resize)."""
    from torchvision.transforms import v2  # here, not at the top: see alexnet_lib.data

    if name is None:
        return None
    if name not in PRESETS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {PRESETS} or None")
    steps = [v2.RandomHorizontalFlip()]
    if name == "shift":
        steps.append(v2.RandomCrop(size, padding=2))
    if name in ("crop", "all"):
        steps.append(v2.RandomResizedCrop(size, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), antialias=True))
    if name in ("jitter", "all"):
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3))
    return v2.Compose(steps)


def erase_squares(x: torch.Tensor, side: int, generator: torch.Generator | None = None, *, border: int = 0
                  ) -> torch.Tensor:
    """Cutout on a batch (N, C, H, W): in each image one square of ``side`` pixels set to 0 (the background of
    Fashion-MNIST, before normalising), placed uniformly among the places where it lies wholly inside the image.
    ``border`` pixels on each side are padding around the image and never erased. The batched twin of
    :func:`erasing` (the same squares, drawn from another generator)."""
    if side <= 0:
        return x
    n, _, h, w = x.shape
    if side > min(h, w) - 2 * border:
        raise ValueError(f"an erased square of {side} pixels does not fit in images of {h - 2 * border} x "
                         f"{w - 2 * border}")
    dev = x.device
    top = border + torch.randint(0, h - 2 * border - side + 1, (n, 1), device=dev, generator=generator)
    left = border + torch.randint(0, w - 2 * border - side + 1, (n, 1), device=dev, generator=generator)
    r, c = torch.arange(h, device=dev), torch.arange(w, device=dev)
    rows, cols = (r >= top) & (r < top + side), (c >= left) & (c < left + side)  # (N, H), (N, W)
    keep = ~(rows[:, :, None] & cols[:, None, :])
    return x * keep[:, None].to(x.dtype)


def erasing(side: int):
    """Cutout for the DataLoader path: ``RandomErasing`` of one ``side`` x ``side`` square of a 28x28 image, always
    applied, filled with 0; for tensors in [0, 1] (before normalising) of any size, the square scaled with them."""
    from torchvision import transforms

    area = (side / 28) ** 2
    return transforms.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0)


def gpu_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of a float batch (N, C, H, W), like ``transforms.Resize`` for upsampling."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def gpu_augment(x: torch.Tensor, name: str | None, size: int, generator: torch.Generator | None = None
                ) -> torch.Tensor:
    """Augment a float batch (N, C, 28, 28) in [0, 1] and resize it to ``size``, all as batched tensor ops.

    Crops, shifts and the resize are one ``grid_sample`` per batch: each image gets its own affine map from the
    output grid to the source, so cropping and resizing cost the same as resizing alone.
    """
    if name is None:
        return gpu_resize(x, size)
    if name not in PRESETS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {PRESETS} or None")
    n, dev = x.shape[0], x.device
    rand = lambda *shape: torch.rand(*shape, device=dev, generator=generator)
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    sx = sy = torch.ones(n, device=dev)
    tx = ty = torch.zeros(n, device=dev)
    h = x.shape[-1]
    if name == "shift":  # up to 2 pixels each way; one pixel is 2 / h in normalised [-1, 1] coordinates
        tx = (torch.randint(-2, 3, (n,), device=dev, generator=generator) * 2 / h).float()
        ty = (torch.randint(-2, 3, (n,), device=dev, generator=generator) * 2 / h).float()
    if name in ("crop", "all"):
        area = 0.6 + 0.4 * rand(n)
        log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * rand(n)
        ratio = torch.exp(log_r)
        sx = torch.sqrt(area * ratio).clamp(max=1.0)
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        tx = (1 - sx) * (2 * rand(n) - 1)
        ty = (1 - sy) * (2 * rand(n) - 1)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 2] = sx * flip, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if name in ("jitter", "all"):
        b = 0.7 + 0.6 * rand(n, 1, 1, 1)
        c = 0.7 + 0.6 * rand(n, 1, 1, 1)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = ((out * b - mean * b) * c + mean * b).clamp_(0, 1)
    return out


def augmented_versions(image: torch.Tensor, name: str | None, n: int = 8, *, seed: int = 0, path: str = "v2"
                       ) -> torch.Tensor:
    """``n`` augmented versions of one image, as a float batch (n, 1, H, W) in [0, 1] (for galleries and checks).

    Args:
        image: one grey image, uint8 in [0, 255] or float in [0, 1], shaped (H, W) or (1, H, W).
        name: a preset (see :data:`PRESETS`), or None for ``n`` unchanged copies.
        seed: the same seed gives the same versions; the global random state is left as it was.
        path: ``"v2"`` draws each version with the torchvision preset (:func:`transform`), one image at a time;
            ``"gpu"`` draws all of them in one call of :func:`gpu_augment` on the image's device, at the same size.
    """
    if path not in ("v2", "gpu"):
        raise ValueError(f"path must be 'v2' or 'gpu', not {path!r}")
    x = image if image.dim() == 3 else image.unsqueeze(0)
    x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
    if name is None:
        return x.unsqueeze(0).repeat(n, 1, 1, 1)
    if path == "gpu":
        g = torch.Generator(device=x.device).manual_seed(seed)
        return gpu_augment(x.unsqueeze(0).repeat(n, 1, 1, 1), name, x.shape[-1], generator=g)
    tf = transform(name, x.shape[-1])
    with torch.random.fork_rng(devices=[]):  # v2 draws from the global generator: seed it without side effects
        torch.manual_seed(seed)
        return torch.stack([tf(x) for _ in range(n)])
