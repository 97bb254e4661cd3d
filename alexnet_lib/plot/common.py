"""Fonts, the one zh/en label table, the page language and the provenance line every figure carries.

Chinese labels need a CJK font. :func:`setup_fonts` (called when the package is imported) puts a CJK font behind
matplotlib's default one, so Latin text keeps DejaVu Sans and Chinese characters fall back to Noto Sans CJK
(Debian/Ubuntu: ``apt-get install fonts-noto-cjk``; the README's setup installs it). Without one, it warns once.
"""
from __future__ import annotations

import warnings

import matplotlib
from matplotlib import font_manager

__all__ = ["CJK_FONTS", "LABELS", "BENCH_LABELS", "setup_fonts", "set_lang", "page_lang", "t", "provenance"]

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC"]

# Every label a figure draws, in both languages: the one table (figures look up t(key, lang)).
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
LABELS["gap"] = {"en": "train acc − test acc", "zh": "训练准确率 − 测试准确率"}
LABELS["original"] = {"en": "original", "zh": "原图"}
LABELS["layer"] = {"en": "layer", "zh": "层"}
LABELS["grad_norm"] = {"en": "‖∂loss/∂W‖ (log scale)", "zh": "‖∂损失/∂W‖（对数坐标）"}
LABELS["true_class"] = {"en": "true class", "zh": "真实类别"}
LABELS["pred_class"] = {"en": "predicted class", "zh": "预测类别"}
LABELS["input"] = {"en": "input", "zh": "输入"}
# Bench rows (alexnet_lib.bench.CONFIGS): "+ batch N" is one entry, so a new batch size is translated too.
BENCH_LABELS = {
    "seeds' loop": {"en": "seeds' loop", "zh": "种子代码的循环"},
    "+ GPU-resident data": {"en": "+ GPU-resident data", "zh": "+ 数据常驻 GPU"},
    "+ no .item() per step": {"en": "+ no .item() per step", "zh": "+ 不再每步 .item()"},
    "+ bf16 autocast": {"en": "+ bf16 autocast", "zh": "+ bf16 自动混合精度"},
    "+ channels_last": {"en": "+ channels_last", "zh": "+ channels_last"},
    "+ fused SGD": {"en": "+ fused SGD", "zh": "+ 融合 SGD"},
    "+ batch {}": {"en": "+ batch {}", "zh": "+ 批量 {}"},
    "+ torch.compile": {"en": "+ torch.compile", "zh": "+ torch.compile"},
    "+ space-to-depth conv1": {"en": "+ space-to-depth conv1", "zh": "+ space-to-depth 第一层卷积"},
    "+ CUDA graphs": {"en": "+ CUDA graphs", "zh": "+ CUDA graphs"},
}
LABELS["train_img_per_s"] = {"en": "training images/s", "zh": "训练速度（图像/秒）"}
LABELS["wall_s"] = {"en": "wall-clock time since the start (s)", "zh": "从开始运行算起的时间（秒）"}


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



_LANG = {"lang": "en"}


def set_lang(lang: str) -> str:
    """Set the page's language (``"zh"`` or ``"en"``) for every later figure; the notebooks' setup cell calls it."""
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', not {lang!r}")
    _LANG["lang"] = lang
    return lang


def page_lang() -> str:
    """The language set by :func:`set_lang` (``"en"`` until then). Figures take ``lang=`` to override it."""
    return _LANG["lang"]

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

