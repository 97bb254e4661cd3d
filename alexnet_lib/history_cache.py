"""A cache of training histories, so the same quick run is computed once and then read back.

The zh and en twin of a chapter run the same training cells with the same seeds, and the unit tests assert what those
runs show; without a cache each of them would train again. :func:`cached` stores a history under a key made of
everything that decides it::

    the run's full configuration (every setting, as it will run), the profile, the seed, the device type,
    the number of processes, the torch version, and a digest of the library code a training run executes and of
    the bundled sample

so a history is reused only by a run that would compute the same thing: change one setting, one line of the library
or the torch version, and the key changes (the old entry is simply never read again). Entries live in
``~/.cache/alexnet_lib/histories/`` (under ``$ALEXNET_CACHE`` when that is set, like the data cache), one JSON file
each, written atomically. Two processes asking for the same missing entry at once (the zh and en notebooks under
pytest-xdist) do not both train: the second waits on a file lock and then reads what the first wrote.

    history, hit = cached({"config": ..., "profile": "quick", "seed": 0, ...}, lambda: train(...))
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Callable

import torch

from .outputs import SHARE_ENV, atomic_copy, file_lock
from .runs import load_json, save_json

__all__ = ["default_folder", "source_digest", "key", "cached", "kept_weights"]

PACKAGE = Path(__file__).resolve().parent


def default_folder() -> Path:
    """``$ALEXNET_CACHE/histories`` if that is set, else ``~/.cache/alexnet_lib/histories``."""
    return Path(os.environ.get("ALEXNET_CACHE", Path.home() / ".cache" / "alexnet_lib")) / "histories"


def _imported(path: Path) -> set[str]:
    """The package's modules that ``path`` imports (``from . import x``, ``from .x import y``, at any depth)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            base = node.module or ""
            names |= {f"{base}.{a.name}".strip(".") for a in node.names} | ({base} if base else set())
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alexnet_lib."):
            names.add(node.module.removeprefix("alexnet_lib."))
    return names


def training_sources(root: str = "experiments") -> list[Path]:
    """The files a training run can execute: ``experiments.py`` and every module of the package it imports,
    directly or through others (found by reading the imports, so the answer does not depend on what else the
    process imported). Figures, widgets, the runner and the prose helpers are not among them."""
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        for path in (PACKAGE / f"{name.replace('.', '/')}.py", PACKAGE / name.replace(".", "/") / "__init__.py"):
            if path.exists() and path not in seen:
                seen.add(path)
                todo += sorted(_imported(path) if path.name != "__init__.py" else
                               {f"{name}.{m}" for m in _imported(path)})
    return sorted(seen)


def _code(path: Path) -> bytes:
    """The code of a module as its syntax tree without docstrings: comments, docstrings and layout do not count."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 of the code of :func:`training_sources` (see :func:`_code`) and the bundled sample's checksums: an
    edit to any code a training run executes changes it; a comment or a docstring does not."""
    h = hashlib.sha256()
    for path in training_sources():
        h.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + _code(path) + b"\0")
    h.update((PACKAGE / "sample" / "MD5SUMS.json").read_bytes())
    return h.hexdigest()


def key(fields: dict) -> str:
    """The cache key of a run described by ``fields`` (any JSON-able dict), the torch version and the source."""
    blob = json.dumps({"fields": fields, "torch": str(torch.__version__), "source": source_digest()},
                      sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def kept_weights(fields: dict) -> Path | None:
    """Where the trained weights of the run ``fields`` are kept for the length of one build of the book or one test
    run: a file in the ``$ALEXNET_SHARE`` folder that ``book/make_notebooks.py`` and the test suite make for their run
    (see :func:`.prose.shared`), so that a later page that looks inside the same network (chapter 11 inside chapter
    2's AlexNet) reads them back instead of training it again. ``None`` anywhere else: a reader's cache keeps no
    weights it was not asked for (an AlexNet's are 86 MB)."""
    if not os.environ.get(SHARE_ENV):
        return None
    folder = Path(os.environ[SHARE_ENV]) / "weights"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # nowhere to keep them: the page that needs them trains
        return None
    return folder / f"{key(fields)}.pt"


def cached(fields: dict, compute: Callable[[], dict], *, folder: str | os.PathLike | None = None,
           weights: str | os.PathLike | None = None, kept: str | os.PathLike | None = None) -> tuple[dict, bool]:
    """The history for ``fields``: read from the cache if a run with the same key finished before, else
    ``compute()`` (stored if its status is ``"finished"``). Returns ``(history, hit)``.

    ``weights``: the caller wants the trained weights there too (``compute`` writes them to that path). The cache
    keeps a copy beside the history (``KEY.pt``) and gives it back on a hit, or else the copy at ``kept``: where
    ``compute`` writes them when ``weights`` is None (:func:`kept_weights`, within one build or test run); an entry
    without its weights is computed again. A history read back carries ``"cache": {"key", "path"}``; one just
    computed is returned as ``compute`` gave it.
    """
    folder = Path(folder) if folder is not None else default_folder()
    k = key(fields)
    path, pt = folder / f"{k}.json", folder / f"{k}.pt"
    try:
        lock = file_lock(folder / f"{k}.lock")
    except OSError as e:  # a cache folder that cannot be written: train without it (the data cache says more)
        print(f"note: no history cache ({folder}: {e.strerror or e}); training", file=sys.stderr)
        return compute(), False
    with lock:  # closing the lock file releases the lock
        source = pt if pt.exists() else kept if kept is not None and os.path.exists(kept) else None
        if path.exists() and (weights is None or source is not None):
            try:
                history = load_json(path)
                if weights is not None and isinstance(history, dict) and history.get("status") == "finished":
                    atomic_copy(source, weights)
            except (OSError, ValueError):  # unreadable: compute it again
                history = None
            if isinstance(history, dict) and history.get("status") == "finished":
                return dict(history, cache={"key": k, "path": str(path)}), True
        history = compute()
        if history.get("status") == "finished":
            try:
                if weights is not None:
                    atomic_copy(weights, pt)
                save_json(history, path)  # last: a history in the cache always has its weights beside it
            except OSError as e:
                print(f"note: the history was not cached ({path}: {e.strerror or e})", file=sys.stderr)
    return history, False

