"""Recorded runs: histories saved as JSON, written atomically, and found again by name.

A history is a plain dict (see :func:`alexnet_lib.train.train`): settings, device, torch version, date, and one
record per epoch. Full GPU runs of the course are committed under ``book/runs/``. A page names that folder once
(:func:`set_root`; the notebooks' setup cell does it with :func:`find_root`) or passes ``folder=``; chapters load
runs with :func:`load` and plot them with :func:`alexnet_lib.plot.plot_runs`, which writes the provenance on the
figure. The library itself never guesses the folder from the working directory or its own location.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .outputs import atomic_torch_save, atomic_write_text, load_json, save_json  # written whole, through links

__all__ = ["atomic_write_text", "save_json", "load_json", "atomic_torch_save", "set_root", "root", "find_root",
           "load", "available", "wall_clock", "time_to", "replicates", "seed_files", "final", "Comparison", "compare", "ALIASES"]

# Where a Colab or fresh kernel clones the course (the notebooks' setup cell; see book/make_notebooks.py).
CLONE_RUNS = Path("/tmp/alexnet-handson/book/runs")
_ROOT: dict[str, Path | None] = {"path": None}


def find_root(start: str | os.PathLike = ".") -> Path | None:
    """The recorded-runs folder for a page run from ``start``: ``start/runs``, ``start/../runs`` (a notebook in
    ``book/zh`` or ``book/en``), ``start/book/runs`` (the repository), then the Colab clone; ``None`` if there is
    none (an installed wheel alone has no recorded runs). An edge helper: the notebooks' setup cell calls it once and
    passes the answer to :func:`set_root`."""
    start = Path(start).resolve()
    for candidate in (start / "runs", start.parent / "runs", start / "book" / "runs", CLONE_RUNS):
        if candidate.is_dir():
            return candidate
    return None


def set_root(path: str | os.PathLike | None) -> Path | None:
    """Use ``path`` for every later :func:`load` and :func:`available` that is not given ``folder=``; ``None``
    leaves no folder set (then :func:`load` says how to get one)."""
    if path is not None:
        path = Path(path).resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is not a folder of recorded runs")
    _ROOT["path"] = path
    return path


def root() -> Path:
    """The folder set by :func:`set_root`."""
    if _ROOT["path"] is None:
        raise FileNotFoundError("no recorded-runs folder set: the recorded runs live in the course repository's "
                                "book/runs (git clone it), then pass folder= or call runs.set_root(that folder); the "
                                "notebooks' setup cell does runs.set_root(runs.find_root())")
    return _ROOT["path"]


def _runs_dir(folder: str | os.PathLike | None) -> Path:
    return Path(folder) if folder is not None else root()


def load(name: str, folder: str | os.PathLike | None = None) -> dict:
    """Load the recorded run ``name`` (e.g. ``"ch04/relu"``) from ``folder/name.json`` (default: :func:`root`)."""
    path = _runs_dir(folder) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"no recorded run {name!r} at {path}; recorded runs: {available(folder)}")
    return load_json(path)


def available(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of all recorded runs in ``folder`` (default: :func:`root`)."""
    base = _runs_dir(folder)
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.json"))


def wall_clock(history: dict) -> list[float]:
    """Seconds from the start of the run to the end of each epoch (its evaluation included).

    Histories written by :func:`alexnet_lib.experiments.run` carry ``setup_seconds`` (data loading, model building,
    importing the compiler) and each epoch's ``elapsed`` clock; older ones only per-epoch ``seconds`` and
    ``eval_seconds``, which are summed (their setup is not counted).
    """
    epochs = history["epochs"]
    if epochs and all("elapsed" in e for e in epochs) and "setup_seconds" in history:
        return [history["setup_seconds"] + e["elapsed"] for e in epochs]
    total, out = 0.0, []
    for e in epochs:
        total += e["seconds"] + e["eval_seconds"]
        out.append(total)
    return out


def time_to(history: dict, target: float, key: str = "test_acc") -> tuple[int | None, float | None]:
    """The first epoch whose test accuracy (or another accuracy ``key`` of the epochs, e.g. ``val_acc``) reaches
    ``target`` and :func:`wall_clock` at its end; (None, None) if none does."""
    for e, seconds in zip(history["epochs"], wall_clock(history)):
        if e[key] >= target:
            return e["epoch"], seconds
    return None, None


# --- Replicates: several seeds of one setting, and differences sized to their spread (helper D, issue 14) ---------
# A replicated run is a folder ``NAME/`` of histories ``seed0.json``, ``seed1.json``, ...; a run recorded once is the
# single file ``NAME.json``. ``ALIASES`` lets settings that are the same run share one recording.

#: runs with exactly the settings of another run: their seeds are recorded once, under the other name
ALIASES: dict[str, str] = {"ch04/relu": "ch02/alexnet", "zoo/d2l_alexnet": "ch02/alexnet",
                           "ch06/no_augment": "ch05/dropout"}


def seed_files(name: str, folder: str | os.PathLike | None = None) -> list[Path]:
    """The seed files ``folder/NAME/seed*.json`` of run ``name`` (or of the run it is an alias of), by seed."""
    base = _runs_dir(folder)
    for n in (name, ALIASES.get(name)):
        if n is not None:
            seeds = [p for p in (base / n).glob("seed*.json") if p.stem[4:].isdigit()]
            if seeds:
                return sorted(seeds, key=lambda p: int(p.stem[4:]))
    return []


def replicates(name: str, folder: str | os.PathLike | None = None) -> list[dict]:
    """Every recorded seed of run ``name``: the finished histories in ``folder/name/seed*.json`` (or those of the
    run in :data:`ALIASES` it equals), else the single ``folder/name.json`` as a list of one."""
    seeds = [h for h in map(load_json, seed_files(name, folder)) if h.get("status", "finished") == "finished"]
    return seeds or [load(name, folder)]


def final(history: dict, metric: str = "test_acc") -> float:
    """The metric at the last epoch."""
    return history["epochs"][-1][metric]


@dataclass(frozen=True)
class Comparison:
    """Two settings' replicates side by side: means, min-max ranges, difference and whether it exceeds the noise.

    ``verdict`` is ``"effect"`` when both sides have at least two runs, their ranges do not overlap and the
    difference of the means is larger than the run-to-run spread (the widest range of either side, or ``noise`` if
    that is wider); ``"noise"`` when the difference is within that spread; ``"unknown"`` otherwise: a single run per
    side cannot tell an effect from a lucky seed, even when the difference exceeds a ``noise`` measured elsewhere.
    """

    a: str
    b: str
    metric: str
    values_a: tuple[float, ...]
    values_b: tuple[float, ...]
    noise: float | None = None

    @property
    def mean_a(self) -> float:
        return sum(self.values_a) / len(self.values_a)

    @property
    def mean_b(self) -> float:
        return sum(self.values_b) / len(self.values_b)

    @property
    def diff(self) -> float:
        """mean(b) - mean(a)."""
        return self.mean_b - self.mean_a

    @property
    def spread(self) -> float:
        """The run-to-run spread the difference is measured against."""
        ranges = [max(v) - min(v) for v in (self.values_a, self.values_b) if len(v) > 1]
        return max(ranges + ([self.noise] if self.noise is not None else []), default=float("nan"))

    @property
    def n(self) -> tuple[int, int]:
        return len(self.values_a), len(self.values_b)

    @property
    def verdict(self) -> str:
        if self.spread != self.spread:  # nan: nothing to measure the noise with
            return "unknown"
        lo, hi = sorted((self.values_a, self.values_b), key=lambda v: sum(v) / len(v))
        separated = min(hi) > max(lo)
        if not (separated and abs(self.diff) > self.spread):
            return "noise"
        return "effect" if min(self.n) >= 2 else "unknown"

    def text(self, lang: str = "en", pct: bool = True) -> str:
        """One sentence for the page: the difference, the spread, and what they allow one to say."""
        f = (lambda x: f"{x * 100:.2f}") if pct else (lambda x: f"{x:,.3g}")
        unit = {"en": " pt" if pct else "", "zh": " 个百分点" if pct else ""}[lang]
        na, nb = self.n
        d, s = f(abs(self.diff)) + unit, f(self.spread) + unit
        if lang == "zh":
            runs_ = f"（{self.a} {na} 次、{self.b} {nb} 次运行）"
            return {"effect": f"{self.b} 比 {self.a} {'高' if self.diff > 0 else '低'} {d}，超过了运行间的波动 {s}"
                              f"{runs_}：这是一个效应。",
                    "noise": f"{self.b} 与 {self.a} 相差 {d}，没有超过运行间的波动 {s}{runs_}：分不出高低。",
                    "unknown": f"{self.b} 与 {self.a} 相差 {d}" + (f"，大于重复记录之间的 {s}" if self.spread == self.spread
                                                                  else "") +
                               f"，但运行次数太少{runs_}，不知道不同种子之间会差多少，还不能判断。"}[self.verdict]
        runs_ = f" ({na} run{'s' * (na != 1)} of {self.a}, {nb} of {self.b})"
        return {"effect": f"{self.b} is {d} {'higher' if self.diff > 0 else 'lower'} than {self.a}, more than the "
                          f"run-to-run spread of {s}{runs_}: an effect.",
                "noise": f"{self.b} and {self.a} differ by {d}, within the run-to-run spread of {s}{runs_}: "
                         "we cannot tell them apart.",
                "unknown": f"{self.b} and {self.a} differ by {d}" + (f", more than the {s} between repeated "
                                                                       "recordings" if self.spread == self.spread
                                                                       else "") +
                           f", but with so few runs{runs_} the spread between seeds is unknown: we cannot tell "
                           "yet."}[self.verdict]

    def __str__(self) -> str:
        rng = lambda v: f"{min(v):.4f}-{max(v):.4f}" if len(v) > 1 else f"{v[0]:.4f}"
        return (f"{self.metric}: {self.a} {self.mean_a:.4f} ({rng(self.values_a)}, n={self.n[0]}), "
                f"{self.b} {self.mean_b:.4f} ({rng(self.values_b)}, n={self.n[1]}); difference {self.diff:+.4f}, "
                f"spread {self.spread:.4f}: {self.verdict}")


def compare(a: str | list[dict], b: str | list[dict], metric: str = "test_acc", *, noise: float | None = None,
            folder: str | os.PathLike | None = None, names: tuple[str, str] | None = None) -> Comparison:
    """Compare the final ``metric`` of two settings over their seeds (run names or lists of histories).

    ``noise``: a run-to-run spread measured elsewhere (e.g. the range of a replicated baseline), used when it is
    wider than the ranges of ``a`` and ``b`` themselves.
    """
    label = lambda x, i: x if isinstance(x, str) else (names[i] if names else "ab"[i])
    ha = replicates(a, folder) if isinstance(a, str) else a
    hb = replicates(b, folder) if isinstance(b, str) else b
    return Comparison(label(a, 0), label(b, 1), metric, tuple(final(h, metric) for h in ha),
                      tuple(final(h, metric) for h in hb), noise)
