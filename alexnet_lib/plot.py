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
    augmented images), so the gap is an indicator of overfitting, not an exact measure. The first epoch's running
    accuracy is far below its end-of-epoch test accuracy, so the gap axis is scaled to the later epochs and says so
    when the first epoch falls outside it.
    """
    lang = lang or page_lang()
    with_gap = {label: {**h, "epochs": [{**e, "gap": e["train_acc"] - e["test_acc"]} for e in h["epochs"]]}
                for label, h in runs.items()}
    fig = plot_runs(with_gap, metrics=("test_acc", "gap"), title=title, lang=lang, figsize=figsize)
    ax = fig.axes[1]
    ax.axhline(0, color="0.5", lw=0.8)
    later = [e["gap"] for h in with_gap.values() for e in h["epochs"][1:]]
    if len(later) >= 2:
        lo, hi = min(later + [0.0]), max(later + [0.0])
        pad = 0.1 * (hi - lo) or 0.01
        ax.set_ylim(lo - pad, hi + pad)
        if any(not lo - pad <= h["epochs"][0]["gap"] <= hi + pad for h in with_gap.values()):
            note = "第 1 个迭代周期在图外" if lang == "zh" else "epoch 1 off the scale"
            ax.text(0.98, 0.03, note, transform=ax.transAxes, fontsize=8, color="0.4", ha="right")
    return fig


# --- activation functions and dropout (chapters "Activation functions" and "Dropout") ------------------------------

__all__ += ["ACTIVATION_LABELS", "plot_activations", "plot_grad_norms", "plot_dropout"]
ACTIVATION_LABELS = {"relu": "ReLU", "sigmoid": "sigmoid", "tanh": "tanh"}
LABELS["layer"] = {"en": "layer", "zh": "层"}
LABELS["grad_norm"] = {"en": "‖∂loss/∂W‖ (log scale)", "zh": "‖∂损失/∂W‖（对数坐标）"}


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
    zh = lang == "zh"
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
            note = (f"f′ < {saturation:g}：占区间的 {share:.0%}" if zh
                    else f"f′ < {saturation:g} on {share:.0%} of the range")
            ax_d.text(0.02, 0.97, note, transform=ax_d.transAxes, va="top", fontsize=9, color="tab:red")
    arg = "x" if scale == 1 else f"{scale:g}·x"
    ax_f.set_title(f"{'激活函数' if zh else 'activation'} f({arg})")
    ax_d.set_title(f"{'导数' if zh else 'derivative'} d/dx f({arg})")
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
    zh = lang == "zh"
    x = torch.as_tensor(x, dtype=torch.float32)
    x2 = x.reshape(1, -1) if x.dim() == 1 else x
    keep = torch.rand(x2.shape, generator=torch.Generator().manual_seed(seed)) >= p
    out = x2 * keep / (1 - p) if p < 1 else torch.zeros_like(x2)
    lo, hi = min(0.0, x2.min().item()), max(out.max().item(), x2.max().item())
    vector = x2.shape[0] == 1
    fig, axes = plt.subplots(1, 3, figsize=figsize or ((11, 1.5) if vector else (9, 3.2)), layout="constrained")
    n, k = keep.numel(), int(keep.sum())
    titles = ((f"输入 x，均值 {x2.mean():.3f}", f"掩码（白 = 保留）：{k}/{n}，p = {p:g}",
               f"输出 x·掩码/(1−p)，均值 {out.mean():.3f}") if zh else
              (f"input x, mean {x2.mean():.3f}", f"mask (white = kept): {k} of {n}, p = {p:g}",
               f"output x·mask/(1−p), mean {out.mean():.3f}"))
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


# --- filters, feature maps, confusion matrix (chapter "Seeing inside AlexNet") -------------------------------------

__all__ += ["plot_filters", "plot_feature_maps", "plot_layer_maps", "plot_confusion_matrix"]
LABELS["true_class"] = {"en": "true class", "zh": "真实类别"}
LABELS["pred_class"] = {"en": "predicted class", "zh": "预测类别"}
LABELS["input"] = {"en": "input", "zh": "输入"}


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


# --- throughput, FLOP/s against the peak, time to an accuracy (chapter "Making AlexNet fast") ---------------------

__all__ += ["BENCH_NAMES", "bench_provenance", "plot_bench", "plot_roofline", "plot_time_to_accuracy"]
BENCH_NAMES = {  # alexnet_lib.bench.CONFIGS names in Chinese (English: the names themselves)
    "seeds' loop": "种子代码的循环",
    "+ GPU-resident data": "+ 数据常驻 GPU",
    "+ no .item() per step": "+ 不再每步 .item()",
    "+ bf16 autocast": "+ bf16 自动混合精度",
    "+ channels_last": "+ channels_last",
    "+ fused SGD": "+ 融合 SGD",
    "+ batch 512": "+ 批量 512",
    "+ torch.compile": "+ torch.compile",
    "+ CUDA graphs": "+ CUDA graphs",
}
LABELS["train_img_per_s"] = {"en": "training images/s", "zh": "训练速度（图像/秒）"}
LABELS["wall_s"] = {"en": "wall-clock time since the start (s)", "zh": "从开始运行算起的时间（秒）"}


def bench_provenance(result: dict, lang: str | None = None) -> str:
    """'NVIDIA H100 80GB HBM3 · 2026-11-23 · torch 2.11.0+cu130 · d2l_alexnet 224px · bf16 peak 774 TFLOP/s (measured)'."""
    zh = (lang or page_lang()) == "zh"
    parts = [result.get("device_name", "?"), result.get("date", "?"), f"torch {result.get('torch', '?')}",
             f"{result.get('model', '?')} {result.get('image_size', '?')}px"]
    if result.get("peak_bf16_tflops"):
        parts.append(f"bf16 峰值 {result['peak_bf16_tflops']:.0f} TFLOP/s（实测）" if zh
                     else f"bf16 peak {result['peak_bf16_tflops']:.0f} TFLOP/s (measured)")
    return " · ".join(str(p) for p in parts)


def _bench_name(name: str, lang: str) -> str:
    return BENCH_NAMES.get(name, name) if lang == "zh" else name


def plot_bench(result: dict, lang: str | None = None, title: str | None = None, figsize=(8, 4.2)):
    """Training images/s per configuration of :func:`alexnet_lib.bench.run_bench` (one bar each, top to bottom in
    the order they were added), each bar labelled with images/s and the ratio to the first row; provenance below."""
    lang = lang or page_lang()
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=figsize)
    y = list(range(len(rows)))[::-1]
    vals = [r["img_per_s"] for r in rows]
    ax.barh(y, vals, color=["0.6"] + ["tab:blue"] * (len(rows) - 1))
    for yi, r in zip(y, rows):
        ax.text(r["img_per_s"], yi, f"  {r['img_per_s']:,.0f}  ({r['x_seeds']:.1f}×)", va="center", fontsize=9)
    ax.set_yticks(y, [_bench_name(r["name"], lang) for r in rows], fontsize=10)
    ax.set_xlabel(t("train_img_per_s", lang))
    ax.set_xlim(0, max(vals) * 1.28)
    ax.grid(alpha=0.3, axis="x")
    if title:
        ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, bench_provenance(result, lang), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def plot_roofline(result: dict, target_img_per_s: float | None = None, lang: str | None = None,
                  title: str | None = None, figsize=(8, 5.2)):
    """Roofline-style picture of a bench result: achieved TFLOP/s (= training FLOPs per image x images/s) against
    images/s on log-log axes. Every configuration lies on the line of slope FLOPs/image; the roof is the measured bf16
    peak, so the line meets it at the most images/s the FLOP count allows. Points are numbered as the table rows."""
    import numpy as np

    lang = lang or page_lang()
    zh = lang == "zh"
    flops, peak = result["train_flops_per_image"], result["peak_bf16_tflops"]
    rows = result["rows"]
    limit = peak * 1e12 / flops  # images/s at 100% of the peak
    fig, ax = plt.subplots(figsize=figsize)
    x = np.geomspace(min(r["img_per_s"] for r in rows) / 5, limit * 2, 200)
    ax.loglog(x, np.minimum(x * flops / 1e12, peak), color="0.3", lw=1.5)
    ax.axhline(peak, color="tab:red", ls="--", lw=1,
               label=(f"实测 bf16 峰值 {peak:.0f} TFLOP/s" if zh else f"measured bf16 peak {peak:.0f} TFLOP/s"))
    ax.axvline(limit, color="tab:red", ls=":", lw=1,
               label=(f"峰值对应 {limit:,.0f} 图像/秒" if zh else f"peak means {limit:,.0f} images/s"))
    if target_img_per_s:
        ax.axvline(target_img_per_s, color="tab:green", ls="-.", lw=1,
                   label=(f"目标 {target_img_per_s:,.0f} 图像/秒" if zh else f"target {target_img_per_s:,.0f} images/s"))
    for i, r in enumerate(rows, 1):
        tf = r["img_per_s"] * flops / 1e12
        ax.plot(r["img_per_s"], tf, "o", ms=6, color="0.6" if i == 1 else "tab:blue")
        ax.annotate(str(i), (r["img_per_s"], tf), textcoords="offset points", xytext=(-4, 7 if i % 2 else -14),
                    fontsize=8)
    legend = "\n".join(f"{i}  {_bench_name(r['name'], lang)}: {r['img_per_s'] * flops / 1e12:.0f} TFLOP/s "
                       f"({r['img_per_s'] * flops / 1e10 / peak:.0f}%)" for i, r in enumerate(rows, 1))
    ax.text(0.02, 0.97, legend, transform=ax.transAxes, va="top", fontsize=8.5, linespacing=1.4,
            bbox=dict(facecolor="white", edgecolor="0.8", alpha=0.9))
    ax.set_xlabel(t("train_img_per_s", lang))
    ax.set_ylabel("达到的 TFLOP/s" if zh else "achieved TFLOP/s")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, bench_provenance(result, lang) + (f" · 每张图像训练 FLOPs {flops / 1e9:.2f} G" if zh else
             f" · training FLOPs per image {flops / 1e9:.2f} G"), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def plot_time_to_accuracy(runs: dict[str, dict], target: float, lang: str | None = None, title: str | None = None,
                          figsize=(10, 3.9)):
    """Test accuracy of several runs per epoch (left) and against wall-clock time (right: :func:`.runs.wall_clock`,
    so the first epoch includes any compilation), with the target as a line and the first epoch reaching it
    starred; provenance below."""
    from .runs import wall_clock

    lang = lang or page_lang()
    zh = lang == "zh"
    fig, (ax_e, ax_s) = plt.subplots(1, 2, figsize=figsize)
    lo = min(e["test_acc"] for h in runs.values() for e in h["epochs"])
    hits = 0
    for label, h in runs.items():
        ep = [e["epoch"] for e in h["epochs"]]
        secs = wall_clock(h)
        acc = [e["test_acc"] for e in h["epochs"]]
        hit = next((i for i, a in enumerate(acc) if a >= target), None)
        for ax, xs in ((ax_e, ep), (ax_s, secs)):
            line, = ax.plot(xs, acc, "-o", ms=3, label=label)
            if hit is not None:
                ax.plot(xs[hit], acc[hit], "*", ms=14, color=line.get_color())
        if hit is not None:  # labels stacked below and to the right of the stars, so several runs don't overlap
            ax_s.annotate((f"第 {hit + 1} 轮，{secs[hit]:.1f} 秒" if zh else f"epoch {hit + 1}, {secs[hit]:.1f} s"),
                          (secs[hit], acc[hit]), textcoords="offset points", xytext=(10, -14 - 11 * hits),
                          ha="left", fontsize=8, color=line.get_color())
            hits += 1
    for ax, xlabel in ((ax_e, t("epoch", lang)), (ax_s, t("wall_s", lang))):
        ax.axhline(target, color="0.4", ls="--", lw=1)
        ax.set_ylim(max(lo - 0.01, target - 0.2), target + 0.02)
        ax.text(ax.get_xlim()[0], target, f" {target:.0%}", va="bottom", fontsize=8, color="0.4")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(t("test_acc", lang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    ax_e.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=10)
    notes = sorted({provenance(h, lang) for h in runs.values()})
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.04 + 0.03 * len(notes), 1, 1))
    return fig


# --- two GPUs: the 2012 split and data parallelism today (chapter "Two GPUs, 2012 and now") ------------------------

__all__ += ["two_tower_layers", "draw_two_towers", "plot_ddp_throughput"]


def two_tower_layers(net=None) -> list[dict]:
    """The layers of a two-GPU AlexNet (default ``models.paper_alexnet()``) as the paper laid them out.

    One dict per convolution or dense layer: ``name`` (conv1..conv5, fc6..fc8, the paper's layer numbers),
    ``units`` (kernels or neurons), ``per_gpu`` (half of them, or None for the last layer, drawn as one), and
    ``reads``: ``"image"`` for the first layer, ``"own"`` where ``groups == 2`` (only the maps on the same GPU),
    ``"both"`` where the layer reads both GPUs' outputs, so they have to be exchanged first.
    """
    from torch import nn

    from .models import paper_alexnet

    net = paper_alexnet() if net is None else net
    convs = [m for m in net.features.modules() if isinstance(m, nn.Conv2d)]
    dense = [m for m in net.classifier.modules() if isinstance(m, nn.Linear)]
    layers = [{"name": f"conv{i}", "units": m.out_channels, "per_gpu": m.out_channels // 2,
               "reads": "image" if i == 1 else "own" if m.groups == 2 else "both"} for i, m in enumerate(convs, 1)]
    layers += [{"name": f"fc{len(convs) + i}", "units": m.out_features,
                "per_gpu": m.out_features // 2 if i < len(dense) else None, "reads": "both"}
               for i, m in enumerate(dense, 1)]
    return layers


def draw_two_towers(net=None, lang: str | None = None, figsize=(9, 3.2)):
    """The two towers of the 2012 AlexNet, left to right: one row per GPU, a box per layer with its kernels or
    neurons on that GPU, grey arrows within a GPU and red arrows where a layer reads the other GPU's maps (computed
    from the model's ``groups``, see :func:`two_tower_layers`)."""
    from matplotlib.patches import FancyBboxPatch

    from .models import paper_alexnet

    lang = lang or page_lang()
    zh = lang == "zh"
    net = paper_alexnet() if net is None else net
    layers = two_tower_layers(net)
    rows = {1: 1.0, 2: 0.0}  # GPU -> y
    w, h = 0.7, 0.56
    fig, ax = plt.subplots(figsize=figsize)

    def box(x, y, height, text, color, width=w):
        ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                    fc=color, ec="0.3", lw=1))
        ax.text(x, y, text, ha="center", va="center", fontsize=9.5)

    def arrow(x0, y0, x1, y1, cross):
        ax.annotate("", (x1 - w / 2, y1), (x0 + w / 2, y0), arrowprops=dict(
            arrowstyle="-|>", color="tab:red" if cross else "0.45", lw=1.6 if cross else 1.2, shrinkA=1, shrinkB=1))

    size = getattr(net, "image_size", 227)
    box(-0.05, 0.5, 1.56, f"{'图像' if zh else 'image'}\n{net.in_channels}×\n{size}×{size}", "0.92", width=0.8)
    for i, layer in enumerate(layers, 1):
        split = layer["per_gpu"] is not None
        color = "#cfe3f5" if layer["name"].startswith("conv") else "#f6dcc4"
        if split:
            for y in rows.values():
                box(i, y, h, f"{layer['name']}\n{layer['per_gpu']:,}", color)
        else:
            box(i, 0.5, 1.5, f"{layer['name']}\n{layer['units']:,}", color)
        targets = list(rows.values()) if split else [0.5]
        sources = [0.5] if i == 1 else list(rows.values())
        for y1 in targets:
            for y0 in sources:
                cross = layer["reads"] == "both" and (y0 != y1 or not split)
                if i == 1 or y0 == y1 or layer["reads"] == "both":
                    arrow(i - 1, y0, i, y1, cross)
        if layer["reads"] == "own":
            ax.text(i, 0.5, "groups=2", ha="center", va="center", fontsize=8.5, color="0.35")
    for g, y in rows.items():
        ax.text(-0.5, y, f"GPU {g}", ha="right", va="center", fontsize=11, fontweight="bold")
    ax.plot([], [], color="0.45", lw=1.2, label="只读本 GPU 上的特征图" if zh else "reads only its own GPU's maps")
    ax.plot([], [], color="tab:red", lw=1.6, label="读两块 GPU 的输出（先交换数据）" if zh
            else "reads both GPUs' outputs (exchange first)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=9.5, frameon=False)
    ax.set_xlim(-1.3, len(layers) + 0.45)
    ax.set_ylim(-0.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("2012 年的 AlexNet：每层的卷积核或神经元一半在 GPU 1、一半在 GPU 2" if zh else
                 "AlexNet in 2012: half of each layer's kernels or neurons on GPU 1, half on GPU 2", fontsize=11)
    fig.tight_layout()
    return fig


def _ddp_row_label(world_size: int, per_gpu: int, zh: bool) -> str:
    if world_size == 1:
        return f"1 块 GPU，批量 {per_gpu}" if zh else f"1 GPU, batch {per_gpu}"
    g = world_size * per_gpu
    return (f"{world_size} 块 GPU，每块 {per_gpu}（全局 {g}）" if zh
            else f"{world_size} GPUs, {per_gpu} per GPU (global {g})")


def plot_ddp_throughput(bench_1gpu: dict, bench_2gpu: dict, runs: dict[str, dict] | None = None,
                        lang: str | None = None, figsize=(9, 4.4)):
    """Training images/s on one GPU and on N GPUs, one bar each, labelled with the ratio to one GPU.

    ``bench_1gpu`` is ``python -m alexnet_lib bench --only "+ batch 512"``'s result, ``bench_2gpu`` that of
    ``torchrun ... bench --ddp`` (same per-GPU batch and same global batch). ``runs`` adds training histories (one on
    1 GPU first), shown by their median images/s from epoch 2 on (epoch 1 includes compilation). Images/s count all
    GPUs together. Device, date and settings are written under the figure.
    """
    import statistics

    lang = lang or page_lang()
    zh = lang == "zh"
    one = bench_1gpu["rows"][0]
    bars = [(("基准，" if zh else "bench, ") + _ddp_row_label(1, one["batch"], zh), one["img_per_s"], one["img_per_s"])]
    bars += [(("基准，" if zh else "bench, ") + _ddp_row_label(r["world_size"], r["batch"], zh), r["img_per_s"],
              one["img_per_s"]) for r in bench_2gpu["rows"]]
    ref = None
    for h in (runs or {}).values():
        s = h["settings"]
        med = statistics.median(e["img_per_s"] for e in h["epochs"][1:])
        ref = ref or med
        bars.append((("训练，" if zh else "training, ") + _ddp_row_label(s["world_size"], s["batch_size"], zh), med, ref))
    fig, ax = plt.subplots(figsize=figsize)
    y = list(range(len(bars)))[::-1]
    colors = ["0.6" if v == r else "tab:blue" for _, v, r in bars]
    ax.barh(y, [v for _, v, _ in bars], color=colors)
    for yi, (_, v, r) in zip(y, bars):
        ax.text(v, yi, f"{v:,.0f}  ({v / r:.2f}×)  ", va="center", ha="right", fontsize=9.5, color="white",
                fontweight="bold")
    ax.axvline(2 * one["img_per_s"], color="tab:red", ls="--", lw=1)
    ax.text(2 * one["img_per_s"], y[0] + 0.45, "2 × 1 块 GPU（基准） " if zh else "2 × one GPU (bench) ",
            color="tab:red", fontsize=8, ha="right")
    ax.set_yticks(y, [b[0] for b in bars], fontsize=10)
    ax.set_xlabel("训练速度（图像/秒，所有 GPU 合计）" if zh else "training images/s (all GPUs together)")
    ax.set_xlim(0, 2.35 * one["img_per_s"])
    ax.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(-0.6, len(bars) - 0.1)
    ax.grid(alpha=0.3, axis="x")
    cfg = ", ".join(n for k, n in (("amp", "bf16"), ("channels_last", "channels_last"), ("fused", "fused SGD"))
                    if one.get(k))
    notes = [f"{'基准' if zh else 'bench'}: {bench_1gpu.get('device_name', '?')} · {bench_1gpu.get('date', '?')} · "
             f"torch {bench_1gpu.get('torch', '?')} · {bench_1gpu.get('model', '?')} {bench_1gpu.get('image_size', '?')}px"
             f" · {cfg} · {one.get('steps', '?')} steps"]
    head = "训练（第 2 轮起每秒图像数的中位数）：" if zh else "training (median images/s from epoch 2 on): "
    notes += [head + p for p in sorted({provenance(h, lang) for h in (runs or {}).values()})]
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.03 + 0.03 * len(notes), 1, 1))
    return fig
