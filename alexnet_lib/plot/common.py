"""Fonts, the one zh/en label table, the page language and the provenance line every figure carries.

Chinese labels need a CJK font. :func:`setup_fonts` (called when the package is imported) puts a CJK font behind
matplotlib's default one, so Latin text keeps DejaVu Sans and Chinese characters fall back to Noto Sans CJK
(Debian/Ubuntu: ``apt-get install fonts-noto-cjk``; the README's setup installs it). Without one, it warns once.
"""
from __future__ import annotations

import warnings

import matplotlib
from matplotlib import font_manager

__all__ = ["CJK_FONTS", "LABELS", "setup_fonts", "set_lang", "page_lang", "t", "provenance"]

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC"]

# Every word a figure draws, in both languages: the one table. Figures look labels up with t(key, lang, **fields);
# a label may hold str.format fields ("epoch {epoch}"), filled in by the figure.
LABELS = {
    # training curves and recorded runs
    "epoch": {"en": "epoch", "zh": "轮"},
    "loss": {"en": "training loss", "zh": "训练损失"},
    "train_acc": {"en": "train acc", "zh": "训练准确率"},
    "test_acc": {"en": "test acc", "zh": "测试准确率"},
    "val_acc": {"en": "held-out acc", "zh": "验证集准确率"},
    "test_loss": {"en": "test loss", "zh": "测试损失"},
    "accuracy": {"en": "accuracy", "zh": "准确率"},
    "img_per_s": {"en": "images/s", "zh": "图像/秒"},
    "seconds": {"en": "seconds", "zh": "秒"},
    "recorded": {"en": "recorded run", "zh": "记录的运行"},
    "profile": {"en": "profile {name}", "zh": "配置 {name}"},
    "gap": {"en": "train acc − test acc", "zh": "训练准确率 − 测试准确率"},
    "epoch1_off_scale": {"en": "epoch 1 off the scale", "zh": "第 1 轮在图外"},
    "wall_s": {"en": "wall-clock time since the start (s)", "zh": "从开始运行算起的时间（秒）"},
    "reached_at": {"en": "epoch {epoch}, {seconds:.1f} s", "zh": "第 {epoch} 轮，{seconds:.1f} 秒"},
    # images, activations, dropout
    "original": {"en": "original", "zh": "原图"},
    "layer": {"en": "layer", "zh": "层"},
    "grad_norm": {"en": "‖∂loss/∂W‖ (log scale)", "zh": "‖∂损失/∂W‖（对数坐标）"},
    "activation_of": {"en": "activation f({arg})", "zh": "激活函数 f({arg})"},
    "derivative_of": {"en": "derivative d/dx f({arg})", "zh": "导数 d/dx f({arg})"},
    "saturated_share": {"en": "f′ < {saturation:g} on {share:.0%} of the range",
                        "zh": "f′ < {saturation:g}：占区间的 {share:.0%}"},
    "dropout_input": {"en": "input x, mean {mean:.3f}", "zh": "输入 x，均值 {mean:.3f}"},
    "dropout_mask": {"en": "mask (white = kept): {kept} of {n}, p = {p:g}", "zh": "掩码（白 = 保留）：{kept}/{n}，p = {p:g}"},
    "dropout_output": {"en": "output x·mask/(1−p), mean {mean:.3f}", "zh": "输出 x·掩码/(1−p)，均值 {mean:.3f}"},
    # inside a trained network
    "true_class": {"en": "true class", "zh": "真实类别"},
    "pred_class": {"en": "predicted class", "zh": "预测类别"},
    "input": {"en": "input", "zh": "输入"},
    # throughput and the roofline
    "train_img_per_s": {"en": "training images/s", "zh": "训练速度（图像/秒）"},
    "peak_measured": {"en": "bf16 peak {tflops:.0f} TFLOP/s (measured)", "zh": "bf16 峰值 {tflops:.0f} TFLOP/s（实测）"},
    "roof_peak": {"en": "measured bf16 peak {peak:.0f} TFLOP/s", "zh": "实测 bf16 峰值 {peak:.0f} TFLOP/s"},
    "roof_limit": {"en": "peak means {limit:,.0f} images/s", "zh": "峰值对应 {limit:,.0f} 图像/秒"},
    "roof_target": {"en": "target {target:,.0f} images/s", "zh": "目标 {target:,.0f} 图像/秒"},
    "achieved_tflops": {"en": "achieved TFLOP/s", "zh": "达到的 TFLOP/s"},
    "flops_per_image": {"en": " · training FLOPs per image {gflops:.2f} G", "zh": " · 每张图像训练 FLOPs {gflops:.2f} G"},
    # two GPUs
    "image": {"en": "image", "zh": "图像"},
    "reads_own": {"en": "reads only its own GPU's maps", "zh": "只读本 GPU 上的特征图"},
    "reads_both": {"en": "reads both GPUs' outputs (exchange first)", "zh": "读两块 GPU 的输出（先交换数据）"},
    "towers_title": {"en": "AlexNet in 2012: half of each layer's kernels or neurons on GPU 1, half on GPU 2",
                     "zh": "2012 年的 AlexNet：每层的卷积核或神经元一半在 GPU 1、一半在 GPU 2"},
    "one_gpu": {"en": "1 GPU, batch {per_gpu}", "zh": "1 块 GPU，批量 {per_gpu}"},
    "gpus": {"en": "{n} GPUs, {per_gpu} per GPU (global {total})", "zh": "{n} 块 GPU，每块 {per_gpu}（全局 {total}）"},
    "bench_row": {"en": "bench, {row}", "zh": "基准，{row}"},
    "training_row": {"en": "training, {row}", "zh": "训练，{row}"},
    "twice_one_gpu": {"en": "2 × one GPU (bench) ", "zh": "2 × 1 块 GPU（基准） "},
    "ddp_img_per_s": {"en": "training images/s (all GPUs together)", "zh": "训练速度（图像/秒，所有 GPU 合计）"},
    "bench": {"en": "bench", "zh": "基准"},
    "ddp_training_note": {"en": "training (median images/s from epoch 2 on): ", "zh": "训练（第 2 轮起每秒图像数的中位数）："},
}
# The explorers' controls and notes (alexnet_lib.widgets), the builders' names, and the shape-trace table's words.
LABELS.update({
    "ui:function": {"en": "function", "zh": "激活函数"},
    "ui:range": {"en": "input range ±", "zh": "输入范围 ±"},
    "ui:scale": {"en": "scale s", "zh": "缩放 s"},
    "ui:p": {"en": "dropout p", "zh": "丢弃概率 p"},
    "ui:seed": {"en": "seed", "zh": "随机种子"},
    "ui:preset": {"en": "preset", "zh": "预设"},
    "ui:path": {"en": "path", "zh": "实现"},
    "ui:model": {"en": "model", "zh": "模型"},
    "ui:side": {"en": "input side", "zh": "输入边长"},
    "ui:static": {"en": "Precomputed for the values offered here; run the notebook for live controls.",
                  "zh": "网页上的画面是按这里列出的取值预先算好的；运行笔记本可以得到实时更新的控件。"},
    "model:lenet": {"en": "LeNet", "zh": "LeNet"},
    "model:d2l_alexnet": {"en": "AlexNet (d2l)", "zh": "AlexNet（d2l 版）"},
    "model:half_alexnet": {"en": "AlexNet (d2l, half width)", "zh": "AlexNet（d2l 版，半宽）"},
    "model:paper_alexnet": {"en": "AlexNet (2012 paper)", "zh": "AlexNet（2012 年论文）"},
    "model:torchvision_alexnet": {"en": "AlexNet (torchvision)", "zh": "AlexNet（torchvision）"},
    "trace:type": {"en": "type", "zh": "类型"},
    "trace:shape": {"en": "output shape", "zh": "输出形状"},
    "trace:params": {"en": "params", "zh": "参数量"},
    "trace:flops": {"en": "FLOPs", "zh": "FLOPs"},
    "trace:total": {"en": "total", "zh": "合计"},
    "trace:breaks": {"en": "breaks here: input", "zh": "在这里出错：输入"},
    "trace:works": {"en": "This model takes sides {lo} to {hi}.", "zh": "这个模型接受的边长：{lo} 到 {hi}。"},
    "trace:works_open": {"en": "This model takes sides from {lo} up.", "zh": "这个模型接受 {lo} 及以上的边长。"},
    "trace:smallest": {"en": "Smallest side that works: {lo}.", "zh": "能运行的最小边长：{lo}。"},
    "trace:largest": {"en": "Largest side that works: {hi}.", "zh": "能运行的最大边长：{hi}。"},
    "trace:ok": {"en": "Runs: {flops} FLOPs per image, {params} parameters.",
                 "zh": "可以运行：每张图像 {flops} FLOPs，{params} 个参数。"},
})
# Bench rows, keyed "bench:" + alexnet_lib.bench's own row name; "+ batch {}" covers every batch size.
LABELS.update({f"bench:{en}": {"en": en, "zh": zh} for en, zh in [
    ("seeds' loop", "种子代码的循环"), ("+ GPU-resident data", "+ 数据常驻 GPU"),
    ("+ no .item() per step", "+ 不再每步 .item()"), ("+ bf16 autocast", "+ bf16 自动混合精度"),
    ("+ channels_last", "+ channels_last"), ("+ fused SGD", "+ 融合 SGD"), ("+ batch {}", "+ 批量 {}"),
    ("+ torch.compile", "+ torch.compile"), ("+ space-to-depth conv1", "+ space-to-depth 第一层卷积"),
    ("+ CUDA graphs", "+ CUDA graphs"), ("+ fused ReLU + max-pool", "+ 融合的 ReLU + 最大池化"),
    ("unfused ReLU + max-pool (compiled)", "ReLU + 最大池化不融合（编译）"),
    ("+ shift augmentation (grid_sample)", "+ 平移增广（grid_sample）"),
    ("+ shift augmentation at 28x28", "+ 在 28x28 上平移增广"),
    ("Lightning Trainer (peer)", "Lightning Trainer（对照）")]})


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

def t(key: str, lang: str | None = None, **fields) -> str:
    """The label ``key`` of :data:`LABELS` in ``lang`` (default: :func:`page_lang`), its ``{fields}`` filled in."""
    text = LABELS[key][lang or page_lang()]
    return text.format(**fields) if fields else text


def provenance(history: dict, lang: str | None = None) -> str:
    """'NVIDIA H100 80GB HBM3 · 2026-11-23 · torch 2.11.0 · full Fashion-MNIST 224px · bs 128 · sgd lr 0.01'."""
    s = history.get("settings", {})
    data = s.get("data", "")
    parts = [history.get("device_name", history.get("device", "?")), history.get("date", "?"),
             f"torch {history.get('torch', '?')}", t("profile", lang, name=history.get("profile") or "?")]
    if data:
        parts.append(data)
    if s.get("image_size"):
        parts.append(f"{s['image_size']}px")
    if s.get("batch_size"):
        parts.append(f"bs {s['batch_size']}")
    parts.append(f"{s.get('optimizer', '?')} lr {s.get('lr', '?')}")
    return " · ".join(str(p) for p in parts)

