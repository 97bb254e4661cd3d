"""Architecture diagrams drawn from the models themselves (chapters "The AlexNet architecture" and "From LeNet to
AlexNet"): one column of boxes per network, a box per convolution, pooling, normalisation or dense layer, labelled
from the module's own settings and annotated with the output shape that :func:`alexnet_lib.trace.trace` computes.
Nothing is typed in by hand, so a diagram cannot drift from the code. The paper's two towers are
:func:`alexnet_lib.plot.draw_two_towers`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from .common import page_lang

__all__ = ["architecture_blocks", "draw_architectures"]

_COLORS = {"conv": "#cfe3f5", "pool": "#d9efd3", "norm": "#ececec", "dense": "#f6dcc4", "input": "#f2f2f2"}
_WORDS = {
    "en": {"conv": "{k} conv, {c}", "stride": "stride {s}", "pad": "pad {p}", "max": "{k} max pool", "avg": "{k} avg pool",
           "adaptive": "adaptive avg pool to {o}", "lrn": "local response norm", "dense": "dense {n}",
           "dropout": "dropout {p:g}", "image": "image", "groups": "groups {g}"},
    "zh": {"conv": "{k} 卷积层，{c} 通道", "stride": "步幅 {s}", "pad": "填充 {p}", "max": "{k} 最大池化层",
           "avg": "{k} 平均池化层", "adaptive": "自适应平均池化到 {o}", "lrn": "局部响应归一化", "dense": "全连接层 {n}",
           "dropout": "丢弃法 {p:g}", "image": "图像", "groups": "分组 {g}"},
}


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _size(v) -> str:
    a, b = _pair(v)
    return f"{a}×{b}"


def architecture_blocks(net, input_size: tuple[int, int, int] | None = None, lang: str | None = None) -> list[dict]:
    """The boxes of ``net``'s diagram, top to bottom: dicts with ``kind`` (input, conv, pool, norm, dense), ``text``
    (from the module's settings, in ``lang``; an activation or dropout that follows is added to its box) and
    ``shape`` (the output shape from :func:`alexnet_lib.trace.trace` at ``input_size``, default the model's own)."""
    from torch import nn

    from ..trace import trace

    lang = lang or page_lang()
    w = _WORDS[lang]
    tr = trace(net, input_size)
    modules = dict(net.named_modules())
    blocks = [{"kind": "input", "text": w["image"], "shape": tr.input_shape, "layer": ""}]
    for row in tr.rows:
        m = modules[row["layer"]]
        if isinstance(m, nn.Conv2d):
            parts = [w["conv"].format(k=_size(m.kernel_size), c=m.out_channels)]
            if _pair(m.stride) != (1, 1):
                parts.append(w["stride"].format(s=_pair(m.stride)[0]))
            if _pair(m.padding) != (0, 0):
                parts.append(w["pad"].format(p=_pair(m.padding)[0]))
            if m.groups > 1:
                parts.append(w["groups"].format(g=m.groups))
            blocks.append({"kind": "conv", "text": ", ".join(parts) if lang != "zh" else "，".join(parts)})
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            key = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            text = w[key].format(k=_size(m.kernel_size))
            if _pair(m.stride) != _pair(m.kernel_size):
                text += (", " if lang != "zh" else "，") + w["stride"].format(s=_pair(m.stride)[0])
            blocks.append({"kind": "pool", "text": text})
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            blocks.append({"kind": "pool", "text": w["adaptive"].format(o=_size(m.output_size))})
        elif isinstance(m, nn.LocalResponseNorm):
            blocks.append({"kind": "norm", "text": w["lrn"]})
        elif isinstance(m, nn.Linear):
            blocks.append({"kind": "dense", "text": w["dense"].format(n=m.out_features)})
        elif isinstance(m, nn.Dropout) and blocks[-1]["kind"] == "dense":
            blocks[-1]["text"] += (", " if lang != "zh" else "，") + w["dropout"].format(p=m.p)
            continue
        elif isinstance(m, nn.Dropout):  # before a dense layer (torchvision): said in the next box
            blocks.append({"kind": "dropout_pending", "text": w["dropout"].format(p=m.p)})
            continue
        elif isinstance(m, nn.Flatten):
            continue
        elif len(blocks) > 1 and not list(m.parameters()):  # an activation: named in the box it follows
            blocks[-1]["text"] += f" + {type(m).__name__}"
            continue
        else:
            blocks.append({"kind": "norm", "text": type(m).__name__})
        if len(blocks) > 2 and blocks[-2]["kind"] == "dropout_pending":
            pending = blocks.pop(-2)
            blocks[-1]["text"] = pending["text"] + (", " if lang != "zh" else "，") + blocks[-1]["text"]
        blocks[-1]["shape"], blocks[-1]["layer"] = row["shape"], row["layer"]
    for b in blocks:  # shapes of boxes whose activation came last: the shape is the same
        b.setdefault("shape", tr.rows[-1]["shape"])
    return blocks


def draw_architectures(nets: dict, lang: str | None = None, input_sizes: dict | None = None, title: str | None = None,
                       row_height: float = 0.36, width: float = 4.6):
    """Diagrams of the networks in ``nets`` ({label: model}) side by side, top (input) to bottom (output): a box
    per layer (:func:`architecture_blocks`), its output shape to the right, the same height per box in every
    column, so a deeper network is a longer column. ``input_sizes`` ({label: (C, H, W)}) overrides a model's own
    input size."""
    from matplotlib.patches import FancyBboxPatch

    lang = lang or page_lang()
    columns = {label: architecture_blocks(net, (input_sizes or {}).get(label), lang) for label, net in nets.items()}
    rows = max(len(b) for b in columns.values())
    fig, axes = plt.subplots(1, len(columns), figsize=(width * len(columns), row_height * rows + 0.8), squeeze=False)
    for ax, (label, blocks) in zip(axes[0], columns.items()):
        for i, b in enumerate(blocks):
            y = rows - i
            ax.add_patch(FancyBboxPatch((0.02, y - 0.4), 0.66, 0.8, boxstyle="round,pad=0.0,rounding_size=0.12",
                                        fc=_COLORS[b["kind"]], ec="0.45", lw=0.8))
            ax.text(0.35, y, b["text"], ha="center", va="center", fontsize=8.2)
            ax.text(0.71, y, "×".join(map(str, b["shape"])), ha="left", va="center", fontsize=7.8, color="0.3",
                    family="monospace")
            if i:
                ax.annotate("", (0.35, y + 0.4), (0.35, y + 0.6),
                            arrowprops=dict(arrowstyle="-|>", color="0.5", lw=0.8, shrinkA=0, shrinkB=0))
        ax.set_xlim(0, 1)
        ax.set_ylim(0.45, rows + 0.6)
        ax.axis("off")
        ax.set_title(label, fontsize=11)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
