"""Numbers that a page's text quotes, filled in from their source when the notebooks are generated.

A chapter's prose never types a number that a run or a cell produces. It writes a placeholder, and
``book/make_notebooks.py`` replaces it in both languages:

``{{name}}`` or ``{{name:spec}}``
    a value a code cell of the same chapter recorded with :func:`value` (``value("gap", 0.0123)``);
    ``{{00_preface.name}}`` one that another chapter recorded (read from its stored notebook);
``{{run:NAME:FIELD}}`` or ``{{run:NAME:FIELD:spec}}``
    a field of the recorded run ``book/runs/NAME.json`` (see :func:`run_field`).

``spec`` is a Python format spec (``.1%``, ``,.0f``, ``.2f``) or one of :data:`SPECS` (``pt1``: a difference of two
fractions in percentage points; ``err1``: an accuracy as its error rate, 0.913 -> 8.7%; ``M1``: millions, written 61.1M in English and 6,110万 in Chinese).

A measurement (a speed, a timing) differs from one run to the next, and the two pages of a chapter are two runs of
the same cells. :func:`shared` lets them show one measurement: where ``$ALEXNET_SHARE`` names a folder (the
notebook builder and the test suite each set one for their run), the first of the twins to measure saves the result
there and the other reads it; in a reader's kernel, where it is not set, every call measures.
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
from pathlib import Path
from statistics import mean, median
from typing import Any, Callable, TypeVar

from .outputs import SHARE_ENV, atomic_write_bytes, file_lock

__all__ = ["value", "recorded", "clear", "shared", "SHARE_ENV", "format_value", "run_field", "PLACEHOLDER", "resolve",
           "Unresolved", "SPECS"]

T = TypeVar("T")

_VALUES: dict[str, Any] = {}

#: ``{{ name }}``, ``{{ name:spec }}``, ``{{ run:ch02/alexnet:test_acc:.1% }}``
PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s][^{}]*?)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _plain(x: Any) -> Any:
    """A JSON-friendly scalar: numpy/torch scalars become Python numbers."""
    if isinstance(x, bool | str | int | float) or x is None:
        return x
    if isinstance(x, dict) and set(x) == {"en", "zh"} and all(isinstance(v, str) for v in x.values()):
        return dict(x)  # a phrase in each language
    if hasattr(x, "item"):
        return x.item()
    try:
        return float(x)
    except (TypeError, ValueError):
        raise TypeError(f"value() takes a number or a string, not {type(x).__name__}") from None


def value(name: str, x: Any) -> Any:
    """Record ``x`` under ``name`` for the page's text (``{{name}}`` in the prose) and return ``x`` unchanged.

    ``x`` is a number, a string, or ``{"en": ..., "zh": ...}`` (a phrase in each language, such as the verdict of
    :meth:`alexnet_lib.runs.Comparison.text`)."""
    if not _NAME.match(name):
        raise ValueError(f"value name {name!r}: use letters, digits and '_' (it appears as {{{{{name}}}}} in prose)")
    _VALUES[name] = _plain(x)
    return x


def shared(name: str, compute: Callable[[], T]) -> T:
    """``compute()``, measured once for both language versions of a page.

    Where ``$ALEXNET_SHARE`` names a folder (``book/make_notebooks.py`` and the test suite set one for the length of
    their run), the first call under ``name`` computes and saves the result there (pickled, atomically, under a lock)
    and every later call, the twin page's included, reads it back; a result that cannot be read is computed again.
    Anywhere else, a reader's kernel for one, it just returns ``compute()``: a new measurement each time."""
    folder = os.environ.get(SHARE_ENV)
    if not folder:
        return compute()
    path = Path(folder) / (hashlib.sha256(name.encode()).hexdigest()[:24] + ".pkl")
    with file_lock(path.with_suffix(".lock")):  # the twin waits here while the first one measures
        if path.exists():
            try:
                return pickle.loads(path.read_bytes())
            except Exception:  # noqa: BLE001 (a damaged file: measure again)
                pass
        result = compute()
        atomic_write_bytes(path, pickle.dumps(result))
        return result


def recorded() -> dict[str, Any]:
    """The values recorded so far in this process (what ``make_notebooks.py`` collects after running a page)."""
    return dict(_VALUES)


def clear() -> None:
    _VALUES.clear()


def _millions(x: float, lang: str, digits: int) -> str:
    if lang == "zh":  # 万 = 10^4
        return f"{x / 1e4:,.0f}万"
    return f"{x / 1e6:.{digits}f}M"


#: named specs: spec -> (value, lang) -> text
SPECS: dict[str, Callable[[Any, str], str]] = {
    "pt0": lambda x, lang: f"{x * 100:.0f}",
    "pt1": lambda x, lang: f"{x * 100:.1f}",
    "pt2": lambda x, lang: f"{x * 100:.2f}",
    "err0": lambda x, lang: f"{(1 - x) * 100:.0f}%",  # an accuracy written as its error rate
    "err1": lambda x, lang: f"{(1 - x) * 100:.1f}%",
    "M0": lambda x, lang: _millions(x, lang, 0),
    "M1": lambda x, lang: _millions(x, lang, 1),
}


def format_value(x: Any, spec: str | None, lang: str) -> str:
    """``x`` as the page in ``lang`` writes it (``spec``: a Python format spec or a key of :data:`SPECS`)."""
    if isinstance(x, dict):
        x = x[lang]
    if spec in SPECS:
        return SPECS[spec](x, lang)
    if spec is None:
        if isinstance(x, float):
            return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
        return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else str(x)
    text = format(x, spec)
    return text


def _epochs_field(epochs: list[dict], field: str) -> Any:
    """``test_acc`` (last epoch), ``best.test_acc``, ``min.loss``, ``mean.img_per_s``, ``median.seconds``,
    ``sum.seconds``, ``first.test_acc``, ``epoch3.test_acc``."""
    agg, _, key = field.rpartition(".")
    vals = [e[key] for e in epochs]
    if agg == "":
        return vals[-1]
    if agg == "first":
        return vals[0]
    if agg.startswith("epoch") and agg[5:].isdigit():
        k = int(agg[5:])
        return next(e[key] for e in epochs if e["epoch"] == k)
    fn = {"best": max, "max": max, "min": min, "mean": mean, "median": median, "sum": sum}.get(agg)
    if fn is None:
        raise KeyError(f"unknown aggregate {agg!r} in {field!r}")
    return fn(vals)


def run_field(history: dict, field: str) -> Any:
    """A number from a recorded history: an epoch field (see :func:`_epochs_field`), ``epochs`` (how many),
    a top-level key (``params``, ``device_name``, ``wall_seconds``) or ``settings.KEY``."""
    if field == "epochs":
        return len(history["epochs"])
    if field.startswith("settings."):
        return history["settings"][field[len("settings."):]]
    if field in history and not isinstance(history[field], dict | list):
        return history[field]
    return _epochs_field(history["epochs"], field)


class Unresolved(KeyError):
    """A placeholder that has no value: the message lists them."""


def resolve(text: str, lang: str, values: dict[str, Any], load_run: Callable[[str], Any] | None = None,
            used_runs: set[str] | None = None) -> str:
    """Replace every placeholder in ``text``; raise :class:`Unresolved` naming those without a value.

    ``load_run(name)`` returns a history, or a list of histories (the seeds of a replicated run, whose field is then
    their mean; ``n`` gives how many). ``used_runs`` collects the run names that were read.
    """
    missing: list[str] = []

    def one(m: re.Match) -> str:
        inner = m.group(1)
        try:
            if inner.startswith("run:"):
                parts = inner[4:].split(":")
                if len(parts) not in (2, 3) or load_run is None:
                    raise KeyError(inner)
                name, field, spec = parts[0], parts[1], (parts[2] if len(parts) == 3 else None)
                h = load_run(name)
                if used_runs is not None:
                    used_runs.add(name)
                if isinstance(h, list):
                    xs = [run_field(r, field) for r in h] if field != "n" else [len(h)]
                    if all(isinstance(v, str) for v in xs):  # device names, dates: the distinct ones
                        x = " / ".join(dict.fromkeys(xs))
                    else:
                        x = xs[0] if field == "n" else mean(xs)
                else:
                    x = 1 if field == "n" else run_field(h, field)
            else:
                name, _, spec = inner.partition(":")
                x = values[name.strip()]
                spec = spec or None
            if isinstance(x, float) and not math.isfinite(x):
                raise KeyError(inner)
            return format_value(x, spec, lang)
        except (KeyError, FileNotFoundError, StopIteration, IndexError) as e:
            missing.append(f"{{{{{inner}}}}} ({e.__class__.__name__}: {e})" if not isinstance(e, KeyError)
                           else f"{{{{{inner}}}}}")
            return m.group(0)

    out = PLACEHOLDER.sub(one, text)
    if missing:
        raise Unresolved("no value for " + ", ".join(missing))
    return out
