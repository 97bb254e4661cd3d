"""Replicated runs: every seed of each setting, their mean and min-max range, so a difference can be read against
the run-to-run spread (see :func:`alexnet_lib.runs.replicates` and :func:`alexnet_lib.runs.compare`)."""
from __future__ import annotations

from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt

from .common import page_lang, provenance, t

__all__ = ["plot_seeds", "plot_final_spread"]

_N = {"en": "{n} seed{s}", "zh": "{n} 个种子"}


def _label(name: str, n: int, lang: str) -> str:
    return f"{name} ({_N[lang].format(n=n, s='s' * (n != 1))})"


def plot_seeds(groups: dict[str, list[dict]], metrics: Sequence[str] = ("test_acc",), title: str | None = None,
               lang: str | None = None, figsize=(10, 3.8), ylim: tuple[float, float] | None = None):
    """One panel per metric; per setting, each seed as a thin line, the mean over seeds as a thick one and the
    min-max range as a band. ``groups`` maps a legend label to the histories of one setting (its seeds)."""
    lang = lang or page_lang()
    fig, axes = plt.subplots(1, len(metrics), figsize=figsize, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, (name, hs) in enumerate(groups.items()):
            color = f"C{i}"
            n_ep = min(len(h["epochs"]) for h in hs)
            ep = [e["epoch"] for e in hs[0]["epochs"][:n_ep]]
            vals = [[h["epochs"][k][metric] for h in hs] for k in range(n_ep)]
            for h in hs:
                ax.plot(ep, [e[metric] for e in h["epochs"][:n_ep]], "-", lw=0.8, alpha=0.5, color=color)
            ax.plot(ep, [sum(v) / len(v) for v in vals], "-o", ms=3, lw=2, color=color,
                    label=_label(name, len(hs), lang))
            if len(hs) > 1:
                ax.fill_between(ep, [min(v) for v in vals], [max(v) for v in vals], color=color, alpha=0.15)
        ax.set_xlabel(t("epoch", lang))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(t(metric, lang))
        if ylim:
            ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    notes = sorted({provenance(h, lang) for hs in groups.values() for h in hs})
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.04 + 0.03 * len(notes), 1, 1))
    return fig


def plot_final_spread(groups: dict[str, list[dict]], metric: str = "test_acc", title: str | None = None,
                      lang: str | None = None, ax=None):
    """The final ``metric`` of every seed as a dot, per setting, with the mean as a bar: the spread at a glance."""
    lang = lang or page_lang()
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 1.1 * len(groups), 3.4))
    for i, (name, hs) in enumerate(groups.items()):
        finals = [h["epochs"][-1][metric] for h in hs]
        ax.scatter([i] * len(finals), finals, color=f"C{i}", zorder=3, s=18)
        ax.hlines(sum(finals) / len(finals), i - 0.25, i + 0.25, color=f"C{i}", lw=2)
    ax.set_xticks(range(len(groups)), [_label(n, len(hs), lang) for n, hs in groups.items()], fontsize=8,
                  rotation=15)
    ax.set_ylabel(t(metric, lang))
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    return ax
