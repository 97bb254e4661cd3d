"""Image grids: samples, augmented versions of one image."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt

from .common import page_lang, t

__all__ = ["show_images", "show_augmented"]


def show_images(images, titles: Sequence[str] | None = None, ncols: int = 8, scale: float = 1.3, cmap="gray"):
    """A grid of images (tensors C x H x W or H x W, or PIL images) with optional titles."""
    import torch

    n = len(images)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if isinstance(img, torch.Tensor):
            img = img.detach().float().cpu()
            img = img.squeeze(0) if img.dim() == 3 and img.shape[0] == 1 else img
            img = img.permute(1, 2, 0) if img.dim() == 3 else img
            img = img.numpy()  # matplotlib wants an array; a tensor's __array__ lacks NumPy 2's copy keyword
        ax.imshow(img, cmap=cmap)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def show_augmented(image, name: str | None, n: int = 7, *, seed: int = 0, path: str = "v2", ncols: int = 8,
                   lang: str | None = None, scale: float = 1.3):
    """One image and ``n`` augmented versions of it (:func:`alexnet_lib.augment.augmented_versions`) in a grid.

    ``path`` is ``"v2"`` (torchvision preset) or ``"gpu"`` (batched tensor ops); the title names preset, path and seed.
    """
    import torch

    from ..augment import augmented_versions

    lang = lang or page_lang()
    versions = augmented_versions(image, name, n, seed=seed, path=path)
    first = image.float().div(255) if image.dtype == torch.uint8 else image.float()
    fig = show_images([first, *versions], [t("original", lang)] + [f"#{i + 1}" for i in range(n)],
                      ncols=ncols, scale=scale)
    how = {"v2": "torchvision.transforms.v2", "gpu": "augment.gpu_augment"}[path]
    fig.suptitle(f"{name} · {how} · seed {seed}", fontsize=10)
    fig.tight_layout()
    return fig

