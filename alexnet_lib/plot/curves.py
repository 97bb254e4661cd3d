"""Training curves: one history, several recorded runs, the train-test gap, time to an accuracy."""
from __future__ import annotations

from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt

from .common import page_lang, provenance, t

__all__ = ["plot_history", "plot_runs", "plot_generalization", "plot_time_to_accuracy"]


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
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # epochs are whole numbers
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
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # epochs are whole numbers
        ax.set_ylabel(t(metric, lang))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    notes = sorted({provenance(h, lang) for h in runs.values()})
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35", va="bottom")
    fig.tight_layout(rect=(0, 0.04 + 0.03 * len(notes), 1, 1))
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
            ax.text(0.98, 0.03, t("epoch1_off_scale", lang), transform=ax.transAxes, fontsize=8, color="0.4", ha="right")
    return fig



def plot_time_to_accuracy(runs: dict[str, dict], target: float, lang: str | None = None, title: str | None = None,
                          figsize=(10, 3.9)):
    """Test accuracy of several runs per epoch (left) and against wall-clock time (right: :func:`.runs.wall_clock`,
    so the first epoch includes any compilation), with the target as a line and the first epoch reaching it
    starred; provenance below."""
    from ..runs import wall_clock

    lang = lang or page_lang()
    fig, (ax_e, ax_s) = plt.subplots(1, 2, figsize=figsize)
    lo = min(e["test_acc"] for h in runs.values() for e in h["epochs"])
    handles, labels = [], []
    for label, h in runs.items():
        ep = [e["epoch"] for e in h["epochs"]]
        secs = wall_clock(h)
        acc = [e["test_acc"] for e in h["epochs"]]
        hit = next((i for i, a in enumerate(acc) if a >= target), None)
        for ax, xs in ((ax_e, ep), (ax_s, secs)):
            line, = ax.plot(xs, acc, "-o", ms=3, label=label)
            if hit is not None:
                ax.plot(xs[hit], acc[hit], "*", ms=14, color=line.get_color())
        # when the target was reached goes into the legend below the panels, where it cannot cover a curve
        handles.append(line)
        labels.append(f"{label}: {t('reached_at', lang, epoch=hit + 1, seconds=secs[hit])}" if hit is not None
                      else label)
    for ax, xlabel in ((ax_e, t("epoch", lang)), (ax_s, t("wall_s", lang))):
        ax.axhline(target, color="0.4", ls="--", lw=1)
        ax.set_ylim(max(lo - 0.01, target - 0.2), target + 0.02)
        ax.text(ax.get_xlim()[0], target, f" {target:.0%}", va="bottom", fontsize=8, color="0.4")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(t("test_acc", lang))
        ax.grid(alpha=0.3)
    ax_e.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if title:
        fig.suptitle(title, fontsize=10)
    notes = sorted({provenance(h, lang) for h in runs.values()})
    fig.text(0.01, 0.01, "\n".join(notes), fontsize=7, color="0.35", va="bottom")
    rows = (len(handles) + 1) // 2
    bottom = 0.04 + 0.03 * len(notes)
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, bottom - 0.01))
    fig.tight_layout(rect=(0, bottom + 0.055 * rows, 1, 1))
    return fig

