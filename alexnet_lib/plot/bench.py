"""Throughput per bench row and the roofline picture (chapter "Making AlexNet fast")."""
from __future__ import annotations

import re

import matplotlib.pyplot as plt

from .common import page_lang, t

__all__ = ["bench_provenance", "bench_label", "plot_bench", "plot_roofline"]


def bench_provenance(result: dict, lang: str | None = None) -> str:
    """'NVIDIA H100 80GB HBM3 · 2026-11-23 · torch 2.11.0+cu130 · d2l_alexnet 224px · bf16 peak 774 TFLOP/s (measured)'."""
    parts = [result.get("device_name", "?"), result.get("date", "?"), f"torch {result.get('torch', '?')}",
             f"{result.get('model', '?')} {result.get('image_size', '?')}px"]
    if result.get("peak_bf16_tflops"):
        parts.append(t("peak_measured", lang, tflops=result["peak_bf16_tflops"]))
    return " · ".join(str(p) for p in parts)


def bench_label(name: str, lang: str | None = None) -> str:
    """A bench row's name (``alexnet_lib.bench.CONFIGS``) in ``lang``, from the label table (key ``"bench:" + name``);
    a number in the name (``"+ batch 2048"``) is carried over. An unknown name is a KeyError, so a new row cannot
    stay English on a Chinese chart."""
    numbers = re.findall(r"\b\d+\b", name)
    return t("bench:" + re.sub(r"\b\d+\b", "{}", name), lang).format(*numbers)


def plot_bench(result: dict, lang: str | None = None, title: str | None = None, figsize=(8, 4.2)):
    """Training images/s per configuration of :func:`alexnet_lib.bench.run_bench` (one bar each, top to bottom in
    the order they were added), each bar labelled with images/s and the ratio to the first row, with the range of
    the timed windows as an error bar where the result has one; provenance below."""
    lang = lang or page_lang()
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=figsize)
    y = list(range(len(rows)))[::-1]
    vals = [r["img_per_s"] for r in rows]
    ranged = all("img_per_s_min" in r for r in rows)  # timed over several windows: draw their range
    err = [[r["img_per_s"] - r["img_per_s_min"] for r in rows], [r["img_per_s_max"] - r["img_per_s"] for r in rows]] \
        if ranged else None
    ax.barh(y, vals, xerr=err, capsize=2, error_kw={"elinewidth": 0.8},
            color=["0.6"] + ["tab:blue"] * (len(rows) - 1))
    for yi, r in zip(y, rows):
        ratio = f"  ({r['x_seeds']:.1f}×)" if r.get("x_seeds") is not None else ""  # None: the first row failed
        ax.text(r.get("img_per_s_max", r["img_per_s"]), yi, f"  {r['img_per_s']:,.0f}{ratio}", va="center", fontsize=9)
    ax.set_yticks(y, [bench_label(r["name"], lang) for r in rows], fontsize=10)
    ax.set_xlabel(t("train_img_per_s", lang))
    ax.set_xlim(0, max(vals) * 1.28)
    ax.grid(alpha=0.3, axis="x")
    if title:
        ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, bench_provenance(result, lang), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def plot_roofline(result: dict, target_img_per_s: float | None = None, lang: str | None = None,
                  title: str | None = None, figsize=(11, 5.2)):
    """Roofline-style picture of a bench result: achieved TFLOP/s (= training FLOPs per image x images/s) against
    images/s on log-log axes. Every configuration lies on the line of slope FLOPs/image; the roof is the measured bf16
    peak, so the line meets it at the most images/s the FLOP count allows. Points are numbered as the table rows."""
    import numpy as np

    lang = lang or page_lang()
    flops, peak = result["train_flops_per_image"], result["peak_bf16_tflops"]
    rows = result["rows"]
    limit = peak * 1e12 / flops  # images/s at 100% of the peak
    fig, ax = plt.subplots(figsize=figsize)
    x = np.geomspace(min(r["img_per_s"] for r in rows) / 5, limit * 2, 200)
    ax.loglog(x, np.minimum(x * flops / 1e12, peak), color="0.3", lw=1.5)
    ax.axhline(peak, color="tab:red", ls="--", lw=1,
               label=t("roof_peak", lang, peak=peak))
    ax.axvline(limit, color="tab:red", ls=":", lw=1,
               label=t("roof_limit", lang, limit=limit))
    if target_img_per_s:
        ax.axvline(target_img_per_s, color="tab:green", ls="-.", lw=1,
                   label=t("roof_target", lang, target=target_img_per_s))
    for i, r in enumerate(rows, 1):
        tf = r["img_per_s"] * flops / 1e12
        ax.plot(r["img_per_s"], tf, "o", ms=6, color="0.6" if i == 1 else "tab:blue")
        ax.annotate(str(i), (r["img_per_s"], tf), textcoords="offset points", xytext=(-4, 7 if i % 2 else -14),
                    fontsize=8)
    legend = "\n".join(f"{i}  {bench_label(r['name'], lang)}: {r['img_per_s'] * flops / 1e12:.0f} TFLOP/s "
                       f"({r['img_per_s'] * flops / 1e10 / peak:.1f}%)" for i, r in enumerate(rows, 1))
    ax.text(1.03, 1.0, legend, transform=ax.transAxes, va="top", fontsize=8.5, linespacing=1.4)  # beside the axes
    ax.set_xlabel(t("train_img_per_s", lang))
    ax.set_ylabel(t("achieved_tflops", lang))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    fig.text(0.01, 0.01, bench_provenance(result, lang) + t("flops_per_image", lang, gflops=flops / 1e9),
             fontsize=7, color="0.35", va="bottom")
    fig.subplots_adjust(left=0.08, right=0.6, bottom=0.16, top=0.93)  # the numbered list to the right
    return fig

