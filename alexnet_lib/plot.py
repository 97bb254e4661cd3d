"""Plots of the course: training curves, recorded runs with their provenance, image grids.

Chinese labels need a CJK font. :func:`setup_fonts` (called on import) puts a CJK font behind matplotlib's default
one, so Latin text keeps DejaVu Sans and Chinese characters fall back to Noto Sans CJK (Debian/Ubuntu:
``apt-get install fonts-noto-cjk``; the README's setup installs it). Without one, it warns once, saying how to install it.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
from matplotlib import font_manager

__all__ = ["setup_fonts", "page_lang", "t", "plot_history", "plot_runs", "show_images", "provenance"]

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC"]

# Axis labels and legends in both languages; chapters pick with page_lang().
LABELS = {
    "epoch": {"en": "epoch", "zh": "迭代周期"},
    "loss": {"en": "training loss", "zh": "训练损失"},
    "train_acc": {"en": "train acc", "zh": "训练准确率"},
    "test_acc": {"en": "test acc", "zh": "测试准确率"},
    "accuracy": {"en": "accuracy", "zh": "准确率"},
    "img_per_s": {"en": "images/s", "zh": "图像/秒"},
    "seconds": {"en": "seconds", "zh": "秒"},
    "recorded": {"en": "recorded run", "zh": "记录的运行"},
}


def setup_fonts() -> str | None:
    """Use DejaVu Sans with a CJK fallback; return the CJK font's name, or None (with a warning) if none is found."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    cjk = next((name for name in CJK_FONTS if name in installed), None)
    if cjk is None:
        warnings.warn("no CJK font found, so Chinese labels would show as boxes; install one, e.g. "
                      "`apt-get install fonts-noto-cjk` (Debian/Ubuntu/Colab), then restart the kernel", stacklevel=2)
        return None
    # Each glyph falls back along font.family (matplotlib >= 3.6); a generic "sans-serif" entry would not fall back.
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", cjk]
    matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans", cjk]
    matplotlib.rcParams["axes.unicode_minus"] = False
    return cjk


def page_lang() -> str:
    """The language of the page being run: ``$ALEXNET_LANG``, else 'zh' inside ``book/zh``, else 'en'."""
    env = os.environ.get("ALEXNET_LANG")
    if env in ("zh", "en"):
        return env
    return "zh" if Path.cwd().name == "zh" else "en"


def t(key: str, lang: str | None = None) -> str:
    """A label from :data:`LABELS` in ``lang`` (default: :func:`page_lang`)."""
    return LABELS[key][lang or page_lang()]


def provenance(history: dict, lang: str | None = None) -> str:
    """'NVIDIA H100 80GB HBM3 · 2026-11-23 · torch 2.11.0 · full Fashion-MNIST 224px · bs 128 · sgd lr 0.01'."""
    s = history.get("settings", {})
    data = s.get("data", "")
    zh = (lang or page_lang()) == "zh"
    parts = [history.get("device_name", history.get("device", "?")), history.get("date", "?"),
             f"torch {history.get('torch', '?')}", ("配置 " if zh else "profile ") + history.get("profile", "?")]
    if data:
        parts.append(data)
    if s.get("image_size"):
        parts.append(f"{s['image_size']}px")
    if s.get("batch_size"):
        parts.append(f"bs {s['batch_size']}")
    parts.append(f"{s.get('optimizer', '?')} lr {s.get('lr', '?')}")
    return " · ".join(str(p) for p in parts)


def plot_history(history: dict, title: str | None = None, lang: str | None = None, ax=None):
    """Loss and train/test accuracy per epoch of one run."""
    lang = lang or page_lang()
    ep = [e["epoch"] for e in history["epochs"]]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.plot(ep, [e["loss"] for e in history["epochs"]], "-o", ms=3, label=t("loss", lang))
    ax.plot(ep, [e["train_acc"] for e in history["epochs"]], "--s", ms=3, label=t("train_acc", lang))
    ax.plot(ep, [e["test_acc"] for e in history["epochs"]], "-.^", ms=3, label=t("test_acc", lang))
    ax.set_xlabel(t("epoch", lang))
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_runs(runs: dict[str, dict], metrics: Sequence[str] = ("test_acc", "train_acc"), title: str | None = None,
              lang: str | None = None, figsize=(10, 3.8)):
    """Several runs on one figure, one panel per metric, with each run's provenance written under the figure.

    ``runs`` maps a legend label to a history (a recorded run from :func:`alexnet_lib.runs.load`, or a live one).
    """
    lang = lang or page_lang()
    fig, axes = plt.subplots(1, len(metrics), figsize=figsize, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, h in runs.items():
            ax.plot([e["epoch"] for e in h["epochs"]], [e[metric] for e in h["epochs"]], "-o", ms=3, label=label)
        ax.set_xlabel(t("epoch", lang))
        ax.set_ylabel(t(metric, lang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    notes = sorted({provenance(h, lang) for h in runs.values()})
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.04 + 0.03 * len(notes), 1, 1))
    return fig


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
        ax.imshow(img, cmap=cmap)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


setup_fonts()


# --- augmentation galleries and the train-test gap (chapter "Data augmentation") --------------------------------

__all__ += ["show_augmented", "plot_generalization"]
LABELS["gap"] = {"en": "train acc − test acc", "zh": "训练准确率 − 测试准确率"}
LABELS["original"] = {"en": "original", "zh": "原图"}


def show_augmented(image, name: str | None, n: int = 7, *, seed: int = 0, path: str = "v2", ncols: int = 8,
                   lang: str | None = None, scale: float = 1.3):
    """One image and ``n`` augmented versions of it (:func:`alexnet_lib.augment.augmented_versions`) in a grid.

    ``path`` is ``"v2"`` (torchvision preset) or ``"gpu"`` (batched tensor ops); the title names preset, path and seed.
    """
    import torch

    from .augment import augmented_versions

    lang = lang or page_lang()
    versions = augmented_versions(image, name, n, seed=seed, path=path)
    first = image.float().div(255) if image.dtype == torch.uint8 else image.float()
    fig = show_images([first, *versions], [t("original", lang)] + [f"#{i + 1}" for i in range(n)],
                      ncols=ncols, scale=scale)
    how = {"v2": "torchvision.transforms.v2", "gpu": "augment.gpu_augment"}[path]
    fig.suptitle(f"{name} · {how} · seed {seed}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_generalization(runs: dict[str, dict], title: str | None = None, lang: str | None = None,
                        figsize=(10, 3.8)):
    """Test accuracy and the train-test gap (``train_acc - test_acc``) per epoch of several runs, with provenance.

    The training accuracy in a history is the running accuracy of each epoch in training mode (dropout on,
    augmented images), so the gap is an indicator of overfitting, not an exact measure.
    """
    lang = lang or page_lang()
    with_gap = {label: {**h, "epochs": [{**e, "gap": e["train_acc"] - e["test_acc"]} for e in h["epochs"]]}
                for label, h in runs.items()}
    fig = plot_runs(with_gap, metrics=("test_acc", "gap"), title=title, lang=lang, figsize=figsize)
    fig.axes[1].axhline(0, color="0.5", lw=0.8)
    return fig
