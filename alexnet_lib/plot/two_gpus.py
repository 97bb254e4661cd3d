"""Two GPUs: the 2012 split of AlexNet over two GPUs, and data parallelism today (chapter 12)."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt

from .common import page_lang, provenance, t

__all__ = ["two_tower_layers", "draw_two_towers", "plot_ddp_throughput"]


def two_tower_layers(net=None) -> list[dict]:
    """The layers of a two-GPU AlexNet (default ``models.paper_alexnet()``) as the paper laid them out.

    One dict per convolution or dense layer: ``name`` (conv1..conv5, fc6..fc8, the paper's layer numbers),
    ``units`` (kernels or neurons), ``per_gpu`` (half of them, or None for the last layer, drawn as one), and
    ``reads``: ``"image"`` for the first layer, ``"own"`` where ``groups == 2`` (only the maps on the same GPU),
    ``"both"`` where the layer reads both GPUs' outputs, so they have to be exchanged first.
    """
    from torch import nn

    from ..models import paper_alexnet

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

    from ..models import paper_alexnet

    lang = lang or page_lang()
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
    box(-0.05, 0.5, 1.56, f"{t('image', lang)}\n{net.in_channels}×\n{size}×{size}", "0.92", width=0.8)
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
    ax.plot([], [], color="0.45", lw=1.2, label=t("reads_own", lang))
    ax.plot([], [], color="tab:red", lw=1.6, label=t("reads_both", lang))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=9.5, frameon=False)
    ax.set_xlim(-1.3, len(layers) + 0.45)
    ax.set_ylim(-0.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(t("towers_title", lang), fontsize=11)
    fig.tight_layout()
    return fig


def _ddp_row_label(world_size: int, per_gpu: int, lang: str) -> str:
    if world_size == 1:
        return t("one_gpu", lang, per_gpu=per_gpu)
    return t("gpus", lang, n=world_size, per_gpu=per_gpu, total=world_size * per_gpu)


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
    one = bench_1gpu["rows"][0]
    bars = [(t("bench_row", lang, row=_ddp_row_label(1, one["batch"], lang)), one["img_per_s"], one["img_per_s"])]
    bars += [(t("bench_row", lang, row=_ddp_row_label(r["world_size"], r["batch"], lang)), r["img_per_s"],
              one["img_per_s"]) for r in bench_2gpu["rows"]]
    ref = None
    for h in (runs or {}).values():
        s = h["settings"]
        med = statistics.median(e["img_per_s"] for e in h["epochs"][1:])
        ref = ref or med
        bars.append((t("training_row", lang, row=_ddp_row_label(s["world_size"], s["batch_size"], lang)), med, ref))
    fig, ax = plt.subplots(figsize=figsize)
    y = list(range(len(bars)))[::-1]
    colors = ["0.6" if v == r else "tab:blue" for _, v, r in bars]
    ax.barh(y, [v for _, v, _ in bars], color=colors)
    for yi, (_, v, r) in zip(y, bars):
        ax.text(v, yi, f"{v:,.0f}  ({v / r:.2f}×)  ", va="center", ha="right", fontsize=9.5, color="white",
                fontweight="bold")
    ax.axvline(2 * one["img_per_s"], color="tab:red", ls="--", lw=1)
    ax.text(2 * one["img_per_s"], y[0] + 0.45, t("twice_one_gpu", lang),
            color="tab:red", fontsize=8, ha="right")
    ax.set_yticks(y, [b[0] for b in bars], fontsize=10)
    ax.set_xlabel(t("ddp_img_per_s", lang))
    ax.set_xlim(0, 2.35 * one["img_per_s"])
    ax.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(-0.6, len(bars) - 0.1)
    ax.grid(alpha=0.3, axis="x")
    cfg = ", ".join(n for k, n in (("amp", "bf16"), ("channels_last", "channels_last"), ("fused", "fused SGD"))
                    if one.get(k))
    notes = [f"{t('bench', lang)}: {bench_1gpu.get('device_name', '?')} · {bench_1gpu.get('date', '?')} · "
             f"torch {bench_1gpu.get('torch', '?')} · {bench_1gpu.get('model', '?')} {bench_1gpu.get('image_size', '?')}px"
             f" · {cfg} · {one.get('steps', '?')} steps"]
    head = t("ddp_training_note", lang)
    notes += [head + p for p in sorted({provenance(h, lang) for h in (runs or {}).values()})]
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.03 + 0.03 * len(notes), 1, 1))
    return fig
