"""Inside a trained network: filters, feature maps, the confusion matrix (chapter "Seeing inside AlexNet")."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt

from .common import page_lang, t

__all__ = ["plot_filters", "plot_feature_maps", "plot_layer_maps", "plot_confusion_matrix"]


def _unit(x):
    """Scale a tensor to [0, 1] by its own min and max (a constant tensor becomes 0.5)."""
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else x * 0 + 0.5


def _mosaic(kernels, ncols: int, pad: int = 1):
    """Kernels (N, C, h, w) with C in (1, 3), each scaled to [0, 1], tiled into one (H, W) or (H, W, 3) image."""
    import torch

    n, c, h, w = kernels.shape
    nrows = (n + ncols - 1) // ncols
    out = torch.ones(c, nrows * (h + pad) + pad, ncols * (w + pad) + pad)
    for i in range(n):
        r, q = divmod(i, ncols)
        out[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = \
            _unit(kernels[i])
    return out[0] if c == 1 else out.permute(1, 2, 0)


def plot_filters(weight, ncols: int = 16, title: str | None = None, ax=None, scale: float = 0.42):
    """Convolution kernels ``weight`` (O, I, kh, kw) tiled into one image, like the paper's Figure 3.

    Each kernel is scaled to its own min..max, so the pattern shows whatever the weights' size: grey for one input
    channel, colour for three (RGB), else the mean over input channels. White lines separate the kernels. With ``ax``
    the mosaic is drawn there (e.g. two panels side by side); returns the figure.
    """
    w = weight.detach().float().cpu()
    if w.shape[1] not in (1, 3):
        w = w.mean(1, keepdim=True)
    mosaic = _mosaic(w, ncols)
    if ax is None:
        rows = (w.shape[0] + ncols - 1) // ncols
        _, ax = plt.subplots(figsize=(ncols * scale, rows * scale + (0.3 if title else 0)))
    ax.imshow(mosaic.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def plot_feature_maps(maps, image=None, n: int = 32, ncols: int = 8, title: str | None = None,
                      scale: float = 1.1, lang: str | None = None):
    """The first ``n`` channels of one feature map ``maps`` (C, H, W), each scaled to its own range (dark: 0).

    With ``image`` (C, H, W) the input is drawn first, for reference; each channel is titled with its index.
    """
    lang = lang or page_lang()
    m = maps.detach().float().cpu()
    n = min(n, m.shape[0])
    extra = 1 if image is not None else 0
    nrows = (n + extra + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.12 + (0.3 if title else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if image is not None:
        img = image.detach().float().cpu()
        img = img[0] if img.dim() == 3 and img.shape[0] == 1 else img
        axes.flat[0].imshow((img.permute(1, 2, 0) if img.dim() == 3 else img).numpy(), cmap="gray")
        axes.flat[0].set_title(t("input", lang), fontsize=8, color="tab:blue")
    for i in range(n):
        ax = axes.flat[i + extra]
        ax.imshow((_unit(m[i]) if m[i].max() > 0 else m[i]).numpy(), cmap="magma", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(f"#{i}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.3)
    return fig


def plot_layer_maps(maps: dict, image=None, n: int = 8, labels: Sequence[str] | None = None, scale: float = 1.05,
                    lang: str | None = None):
    """One row per layer: the first ``n`` channels of each feature map in ``maps`` ({name: (C, H, W)}), one image.

    With ``image`` the input is drawn at the start of the first row. Each row is titled with its label (default: the
    layer name) and the map's shape, so the shrinking resolution and growing depth are visible at a glance.
    """
    lang = lang or page_lang()
    names = list(maps)
    labels = list(labels) if labels is not None else names
    extra = 1 if image is not None else 0
    fig, axes = plt.subplots(len(names), n + extra, figsize=((n + extra) * scale, len(names) * scale * 1.05),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([]); ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    if image is not None:
        img = image.detach().float().cpu()
        img = img[0] if img.dim() == 3 and img.shape[0] == 1 else img
        axes[0, 0].imshow((img.permute(1, 2, 0) if img.dim() == 3 else img).numpy(), cmap="gray")
        axes[0, 0].set_title(t("input", lang), fontsize=8, color="tab:blue")
    for r, (name, label) in enumerate(zip(names, labels)):
        m = maps[name].detach().float().cpu()
        for i in range(min(n, m.shape[0])):
            ax = axes[r, i + extra]
            ax.imshow((_unit(m[i]) if m[i].max() > 0 else m[i]).numpy(), cmap="magma", vmin=0, vmax=1,
                      interpolation="nearest")
        axes[r, extra].set_title(f"{label} · {'×'.join(map(str, m.shape))}", fontsize=8, loc="left")
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.3)
    return fig


def plot_confusion_matrix(cm, class_names: Sequence[str], normalize: bool = True, title: str | None = None,
                          lang: str | None = None, ax=None, figsize=(6.4, 5.6)):
    """A confusion matrix (rows: true class, columns: predicted class) with the count in every cell.

    ``normalize=True`` colours each row by its share (each true class sums to 1), so classes of different sizes
    compare; the numbers written in the cells stay counts.
    """
    import torch

    lang = lang or page_lang()
    cm = torch.as_tensor(cm)
    share = cm.float() / cm.sum(1, keepdim=True).clamp(min=1) if normalize else cm.float()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    k = len(class_names)
    top = share.max().item() or 1
    for i in range(k):
        for j in range(k):
            v = int(cm[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.55 * top else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel(t("pred_class", lang))
    ax.set_ylabel(t("true_class", lang))
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax.figure

