"""Activation functions and their derivatives, gradient norms per layer, a dropout mask (chapters 4 and 5)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt

from .common import page_lang, t

__all__ = ["ACTIVATION_LABELS", "plot_activations", "plot_grad_norms", "plot_dropout"]

ACTIVATION_LABELS = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}


def _activation_curve(name: str, x, scale: float = 1.0):
    """f(scale * x) and its derivative with respect to x (by autograd), for name in ACTIVATION_LABELS."""
    import torch

    fn = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[name]
    x = x.detach().clone().requires_grad_(True)
    y = fn(scale * x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), dy


def plot_activations(names: Sequence[str] = ("relu", "sigmoid", "tanh"), x_max: float = 6.0, scale: float = 1.0,
                     highlight: str | None = None, saturation: float = 0.01, lang: str | None = None,
                     figsize=(10, 3.6)):
    """Activation functions (left) and their derivatives (right) on ``[-x_max, x_max]``.

    ``scale`` plots ``f(scale * x)`` and its derivative ``scale * f'(scale * x)`` (larger weights push inputs into
    saturation sooner). With ``highlight`` one function is drawn bold and the stretches where its derivative is
    below ``saturation`` are shaded, with their share of the plotted range written on the figure.
    """
    import torch

    lang = lang or page_lang()
    x = torch.linspace(-x_max, x_max, 1201)
    fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=figsize)
    for name in names:
        y, dy = _activation_curve(name, x, scale)
        bold = highlight is None or name == highlight
        style = dict(lw=2.2 if highlight == name else 1.6, alpha=1.0 if bold else 0.35, label=ACTIVATION_LABELS[name])
        ax_f.plot(x, y, **style)
        ax_d.plot(x, dy, **style)
        if name == highlight:
            flat = (dy.abs() < saturation).numpy()
            for ax in (ax_f, ax_d):
                ax.fill_between(x.numpy(), 0, 1, where=flat, transform=ax.get_xaxis_transform(), color="tab:red",
                                alpha=0.10, lw=0)
            share = flat.mean()
            note = t("saturated_share", lang, saturation=saturation, share=share)
            ax_d.text(0.02, 0.97, note, transform=ax_d.transAxes, va="top", fontsize=9, color="tab:red")
    arg = "x" if scale == 1 else f"{scale:g}·x"
    ax_f.set_title(t("activation_of", lang, arg=arg))
    ax_d.set_title(t("derivative_of", lang, arg=arg))
    for ax in (ax_f, ax_d):
        ax.set_xlabel("x")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left" if ax is ax_f else "center right")
    fig.tight_layout()
    return fig


def plot_grad_norms(norms: dict[str, dict[str, float]], title: str | None = None, lang: str | None = None,
                    figsize=(7, 3.6)):
    """Per-layer gradient norms of several networks on a log scale; ``norms`` maps a legend label to the dict
    returned by :func:`alexnet_lib.grads.gradient_norms` (``{"conv1": ..., "fc3": ...}``)."""
    lang = lang or page_lang()
    fig, ax = plt.subplots(figsize=figsize)
    for label, layers in norms.items():
        ax.semilogy(list(layers), list(layers.values()), "-o", ms=4, label=label)
    ax.set_xlabel(t("layer", lang))
    ax.set_ylabel(t("grad_norm", lang))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_dropout(x, p: float, seed: int = 0, lang: str | None = None, figsize=None):
    """Inverted dropout on an activation map or vector ``x``: the input, a random mask that keeps each value with
    probability ``1 - p``, and the output ``x * mask / (1 - p)`` (what ``nn.Dropout(p)`` computes in training mode),
    with the means before and after. ``seed`` picks the mask.
    """
    import torch

    lang = lang or page_lang()
    x = torch.as_tensor(x, dtype=torch.float32)
    x2 = x.reshape(1, -1) if x.dim() == 1 else x
    keep = torch.rand(x2.shape, generator=torch.Generator().manual_seed(seed)) >= p
    out = x2 * keep / (1 - p) if p < 1 else torch.zeros_like(x2)
    lo, hi = min(0.0, x2.min().item()), max(out.max().item(), x2.max().item())
    vector = x2.shape[0] == 1
    fig, axes = plt.subplots(1, 3, figsize=figsize or ((11, 1.5) if vector else (9, 3.2)), layout="constrained")
    n, k = keep.numel(), int(keep.sum())
    titles = (t("dropout_input", lang, mean=x2.mean().item()), t("dropout_mask", lang, kept=k, n=n, p=p),
              t("dropout_output", lang, mean=out.mean().item()))
    panels = [(x2, "viridis", lo, hi), (keep.float(), "gray", 0, 1), (out, "viridis", lo, hi)]
    for ax, (img, cmap, vmin, vmax), title in zip(axes, panels, titles):
        ax.imshow(img.numpy(), cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if vector and x2.shape[1] <= 16:  # a short vector: write the numbers in
            for j, v in enumerate(img[0].tolist()):
                ax.text(j, 0, f"{v:.2g}", ha="center", va="center", fontsize=7,
                        color="white" if v < vmin + 0.6 * (vmax - vmin) else "black")
    if not vector:
        fig.colorbar(axes[2].images[0], ax=axes[2], shrink=0.8)
    return fig

