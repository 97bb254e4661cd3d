"""Checkpoints that know which run they belong to, and notice when they are damaged.

A checkpoint is an ordinary ``torch.save`` file (``torch.load(path, weights_only=True)`` reads it) holding the
training state (model, optimizer, scheduler, random generators, history) and three more entries:

* ``identity``: what the run was -- the model (builder name, its arguments, the layers as built), the training
  settings as a dict, the data, the library version. ``--resume`` compares it with the new command
  (:func:`check_same_run`) and refuses a different run with one line naming the settings that differ.
* ``sha256``: a checksum of everything else (:func:`digest`: every tensor's bytes, every number and string), so a
  truncated, empty or overwritten file is reported as damaged (:class:`CheckpointDamaged`) instead of loading
  silently wrong weights.
* ``format``: the version of this layout.

Loading never runs code from the file (``weights_only=True``).
"""
from __future__ import annotations

import datetime
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .outputs import atomic_torch_save, signals_deferred

__all__ = ["FORMAT", "CheckpointError", "CheckpointDamaged", "CheckpointMismatch", "digest", "architecture",
           "save", "load", "differences", "check_same_run", "describe", "FREE_TO_CHANGE"]

FORMAT = 2

# Settings that may differ between a run and its resumption: speed switches (same maths), labels, and the number of
# epochs (asking for more continues the run; see check_same_run for schedules planned for a number of epochs).
FREE_TO_CHANGE = frozenset({"epochs", "compile", "fused", "channels_last", "check_every", "item_every_step",
                            "num_workers", "description", "experiment", "name", "profile_changes", "quick"})


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


class CheckpointDamaged(CheckpointError):
    """The file is truncated, empty or changed after it was written (it fails to load or its checksum)."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint of another run or model, or not a checkpoint of :func:`alexnet_lib.train.train` at all."""


def _feed(h, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(b"D%d|" % len(obj))
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):  # a tuple may come back as a list: same checksum
        h.update(b"L%d|" % len(obj))
        for v in obj:
            _feed(h, v)
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(f"{type(obj).__name__}:{obj!r}|".encode())
    else:
        raise TypeError(f"cannot checksum a {type(obj).__name__} in a checkpoint")


def digest(state: dict) -> str:
    """SHA-256 of a checkpoint's contents (its ``sha256`` entry left out): tensors by their bytes, the rest by value."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "sha256"})
    return h.hexdigest()


def architecture(net: nn.Module) -> dict[str, str]:
    """The layers as built, ``{name: "Conv2d(1, 6, kernel_size=(5, 5), ...)"}``: tells a sigmoid LeNet from a ReLU
    one, and a dropout of 0.5 from 0.0, which the weights' shapes do not."""
    net = getattr(net, "_orig_mod", net)
    net = getattr(net, "module", net)
    return {name: f"{type(m).__name__}({m.extra_repr()})" for name, m in net.named_modules()
            if name and not list(m.children())}


def save(state: dict, path: str | os.PathLike, identity: dict) -> None:
    """Write ``state`` with its ``identity`` and checksum to ``path``, atomically; SIGINT/SIGTERM wait until it is
    written (so an interruption never leaves a checkpoint that a message has promised but that does not exist)."""
    from . import __version__

    payload = {**state, "identity": identity, "format": FORMAT, "library": __version__,
               "saved": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    payload["sha256"] = digest(payload)
    with signals_deferred():
        atomic_torch_save(payload, path)


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split(". ")[:1]).strip()
    return (text.splitlines() or [""])[0] or type(e).__name__


_REDO = "Start the run again without resuming (--overwrite on the command line replaces the file), or restore it."


def load(path: str | os.PathLike) -> dict:
    """Read and verify a checkpoint written by :func:`save` (on the CPU; no code runs from the file).

    Raises :class:`CheckpointDamaged` for a file that is empty, truncated or changed since it was written, and
    :class:`CheckpointMismatch` for a file that is not such a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"there is no checkpoint at {path}" + (" (it is a folder)" if path.is_dir() else "")
                              + ": check the path, or start without resuming.")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointDamaged(f"{path} is empty (0 bytes): the run that wrote it stopped before it saved anything, "
                                f"or the disk was full. {_REDO}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e):
            raise CheckpointDamaged(f"{path} is damaged: it cannot be read ({_first_line(e)}; {size:,} bytes). "
                                    f"{_REDO}") from None
        raise CheckpointMismatch(f"{path} is not a checkpoint saved by train(): it holds Python objects other than "
                                 "tensors, which are not loaded because loading them could run any code. Use a "
                                 "checkpoint written by train(checkpoint=...), or start without resume.") from None
    except Exception as e:  # truncated (no zip directory), bytes overwritten in the index or the pickle
        raise CheckpointDamaged(f"{path} is damaged: it cannot be read ({_first_line(e)}; {size:,} bytes). "
                                f"{_REDO}") from None
    if not isinstance(ckpt, dict) or not ({"signature", "identity"} & set(ckpt)):
        raise CheckpointMismatch(f"{path} is not a checkpoint saved by train() (it has no model signature). A bare "
                                 "state_dict loads with net.load_state_dict(torch.load(path, weights_only=True)).")
    if "sha256" not in ckpt or "identity" not in ckpt:
        raise CheckpointMismatch(f"{path} was saved by an older version of alexnet_lib, without the checksum and the "
                                 "description of its run that resuming needs; start the run again without resuming.")
    try:
        found = digest(ckpt)
    except TypeError as e:
        raise CheckpointDamaged(f"{path} is damaged: {e}. {_REDO}") from None
    if found != ckpt["sha256"]:
        raise CheckpointDamaged(f"{path} is damaged: its contents do not match the checksum stored in it (sha256 "
                                f"{str(ckpt['sha256'])[:12]}..., found {found[:12]}...), so bytes were changed after "
                                f"it was written. {_REDO}")
    return ckpt


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


class _NotSet:
    def __repr__(self) -> str:
        return "not given (the default)"


NOT_SET = _NotSet()  # a setting one side does not have, e.g. a model argument left at the builder's default


def differences(saved: dict, wanted: dict, ignore=FREE_TO_CHANGE, partial: bool = False
                ) -> list[tuple[str, Any, Any]]:
    """``[(setting, value in the checkpoint, value now)]`` for every setting that differs, nested dicts flattened
    to dotted names (``model_kwargs.activation``); settings named in ``ignore`` (last part of the name) skipped;
    ``partial``: only the settings that ``wanted`` has."""
    a, b = _flat(saved), _flat(wanted)
    out = []
    for k in sorted(set(b) if partial else set(a) | set(b)):
        if k.rsplit(".", 1)[-1] in ignore:
            continue
        x, y = a.get(k, NOT_SET), b.get(k, NOT_SET)
        if x != y and not (isinstance(x, float) and isinstance(y, float) and x != x and y != y):
            out.append((k, x, y))
    return out


def _short(name: str) -> str:
    for head in ("settings.", "architecture.", "data."):
        if name.startswith(head):
            return name[len(head):]
    return name


def check_same_run(ckpt: dict, identity: dict, path: str | os.PathLike, epochs: int | None = None,
                   partial: bool = False) -> None:
    """Raise :class:`CheckpointMismatch` unless ``identity`` (the new command's run) is the run saved in ``ckpt``.

    The number of epochs may grow (the run continues), unless a schedule planned for the old number (cosine,
    one-cycle) would then mean something else; ``epochs`` fewer than the checkpoint already holds is an error too.
    ``partial``: compare only what ``identity`` has (a check before the data is loaded).
    """
    saved = ckpt.get("identity", {})
    diff = differences(saved, identity, partial=partial)
    old_s, new_s = saved.get("settings", {}), identity.get("settings", {})
    if old_s.get("epochs") != new_s.get("epochs") and old_s.get("scheduler") in ("cosine", "onecycle"):
        diff.append(("epochs", old_s.get("epochs"), new_s.get("epochs")))
    layers = [d for d in diff if d[0].startswith("architecture.")]
    diff = [d for d in diff if not d[0].startswith("architecture.")]
    if layers and not diff:  # the settings agree but the layers do not (e.g. a bare train(net) of another net)
        k, x, y = layers[0]
        more = f", and {len(layers) - 1} more layer(s)" if len(layers) > 1 else ""
        diff = [(f"layer {_short(k)}{more}:", x, y)]
    if diff:
        shown = "; ".join(f"{_short(k)} {x!r} there, {y!r} now" for k, x, y in diff[:6])
        more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
        raise CheckpointMismatch(f"{path} holds another run, so it is not resumed: {shown}{more}. Resume it with "
                                 "the settings it was started with, or start a new run (another --checkpoint, or "
                                 "--overwrite to replace it).")
    done = len(ckpt.get("history", {}).get("epochs", []))
    if epochs is not None and epochs < done:
        raise CheckpointMismatch(f"{path} already holds {done} epochs, more than the {epochs} asked for; ask for "
                                 f"more epochs to continue it, or start a new run.")


def describe(path: str | os.PathLike) -> str:
    """A short description of the file at ``path`` for an error message (without loading it)."""
    st = Path(path).stat()
    when = datetime.datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M")
    return f"{st.st_size / 2**20:.1f} MB, written {when}"
