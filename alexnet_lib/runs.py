"""Recorded runs: histories saved as JSON, written atomically, and found again by name.

A history is a plain dict (see :func:`alexnet_lib.train.train`): settings, device, torch version, date, and one
record per epoch. Full GPU runs of the course are committed under ``book/runs/``. A page names that folder once
(:func:`set_root`; the notebooks' setup cell does it with :func:`find_root`) or passes ``folder=``; chapters load
runs with :func:`load` and plot them with :func:`alexnet_lib.plot.plot_runs`, which writes the provenance on the
figure. The library itself never guesses the folder from the working directory or its own location.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_write_text", "save_json", "load_json", "atomic_torch_save", "set_root", "root", "find_root",
           "load", "available", "wall_clock", "time_to"]

# Where a Colab or fresh kernel clones the course (the notebooks' setup cell; see book/make_notebooks.py).
CLONE_RUNS = Path("/tmp/alexnet-handson/book/runs")
_ROOT: dict[str, Path | None] = {"path": None}


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a kill never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a history is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_json(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def find_root(start: str | os.PathLike = ".") -> Path:
    """The recorded-runs folder for a page run from ``start``: ``start/runs``, ``start/../runs`` (a notebook in
    ``book/zh`` or ``book/en``), ``start/book/runs`` (the repository), then the Colab clone. An edge helper: the
    notebooks' setup cell calls it once and passes the answer to :func:`set_root`."""
    start = Path(start).resolve()
    candidates = [start / "runs", start.parent / "runs", start / "book" / "runs", CLONE_RUNS]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no recorded-runs folder in {', '.join(map(str, candidates))}; clone the course "
                            "repository (its book/runs holds them) and pass that folder to runs.set_root()")


def set_root(path: str | os.PathLike) -> Path:
    """Use ``path`` for every later :func:`load` and :func:`available` that is not given ``root=``."""
    path = Path(path).resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder of recorded runs")
    _ROOT["path"] = path
    return path


def root() -> Path:
    """The folder set by :func:`set_root`."""
    if _ROOT["path"] is None:
        raise FileNotFoundError("no recorded-runs folder set: pass root= or call runs.set_root(folder) first "
                                "(the notebooks' setup cell calls runs.set_root(runs.find_root()))")
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


def time_to(history: dict, target: float) -> tuple[int | None, float | None]:
    """The first epoch whose test accuracy reaches ``target`` and :func:`wall_clock` at its end; (None, None) if
    none does."""
    for e, seconds in zip(history["epochs"], wall_clock(history)):
        if e["test_acc"] >= target:
            return e["epoch"], seconds
    return None, None
