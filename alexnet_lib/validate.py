"""Errors before work: every value, device and output path of a run is checked before data is loaded or a step taken.

Two kinds of error, each one line that says what is wrong and how to fix it:

* :class:`BadArgument` (a ``ValueError``): a value the user gave cannot work -- ``lr=inf``, ``momentum=-1``,
  ``dropout=2``, a seed beyond 64 bits, ``--device bogus``, ``--out`` naming a folder or the checkpoint's file.
  The command line exits with code 2.
* :class:`BadEnvironment` (a ``RuntimeError``): the value is fine but this machine cannot do it -- no GPU for
  ``--device cuda``, a read-only or full disk, a folder that cannot be created. The command line exits with code 1.
"""
from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from .outputs import os_reason, real_target

__all__ = ["BadArgument", "BadEnvironment", "RULES", "check_values", "check_device", "check_outputs",
           "check_space", "check_data_args", "option"]

SEED_LIMIT = 2**64  # torch.manual_seed takes 0 .. 2**64 - 1


class BadArgument(ValueError):
    """A value that cannot work; ``.field`` names the setting (``lr``, ``device``, ``out``, ...)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class BadEnvironment(RuntimeError):
    """This machine cannot do what was asked (no GPU, a read-only or full disk, ...)."""


def option(field: str, cli: bool) -> str:
    """How the user wrote a setting: ``--weight-decay`` on the command line, ``weight_decay=`` in Python."""
    return f"--{field.replace('_', '-')}" if cli else f"{field}="


# field: (kind, low, high, low included, high included, hint); kind "int" or "float" (finite), None bound = open
RULES: dict[str, tuple] = {
    "epochs": ("int", 1, None, True, False, ""),
    "batch_size": ("int", 1, None, True, False, ""),
    "lr": ("float", 0.0, None, False, False, "a learning rate such as 0.01"),
    "momentum": ("float", 0.0, 1.0, True, False, "0 (plain SGD) or a value such as 0.9"),
    "weight_decay": ("float", 0.0, None, True, False, "0 or a value such as 5e-4"),
    "label_smoothing": ("float", 0.0, 1.0, True, False, "0 or a value such as 0.1"),
    "dropout": ("float", 0.0, 1.0, True, False, "the probability of dropping a unit, e.g. 0.5"),
    "warmup": ("int", 0, None, True, False, "a number of steps"),
    "seed": ("int", 0, SEED_LIMIT, True, False, "a whole number from 0 to 2**64 - 1"),
    "train_limit": ("int", 1, None, True, False, "a number of images, or None for all"),
    "test_limit": ("int", 1, None, True, False, "a number of images, or None for all"),
    "image_size": ("int", 1, None, True, False, "a side in pixels, or None for the model's own"),
    "check_every": ("int", 1, None, True, False, ""),
    "num_workers": ("int", 0, None, True, False, ""),
}


def _interval(low, high, low_in, high_in) -> str:
    if high is None:
        return f"{'at least' if low_in else 'greater than'} {low}"
    high_text = "2**64" if high == SEED_LIMIT else high
    return f"in {'[' if low_in else '('}{low}, {high_text}{']' if high_in else ')'}"


def check_value(field: str, value: Any, cli: bool = False) -> None:
    """Raise :class:`BadArgument` unless ``value`` is valid for ``field`` (see :data:`RULES`); ``None`` passes."""
    if value is None or field not in RULES:
        return
    kind, low, high, low_in, high_in, hint = RULES[field]
    name = option(field, cli)
    ok_type = (isinstance(value, int) and not isinstance(value, bool)) if kind == "int" else (
        isinstance(value, (int, float)) and not isinstance(value, bool))
    if not ok_type:
        raise BadArgument(f"{name} must be a {'whole number' if kind == 'int' else 'number'}, got {value!r}", field)
    finite = kind == "int" or math.isfinite(value)
    ok = finite and (low is None or (value >= low if low_in else value > low)) and (
        high is None or (value <= high if high_in else value < high))
    if not ok:
        why = "" if finite else " (not a finite number)"
        raise BadArgument(f"{name} must be {_interval(low, high, low_in, high_in)}, got {value!r}{why}"
                          + (f"; use {hint}" if hint else ""), field)


def check_values(values: Mapping[str, Any], cli: bool = False) -> None:
    """Check every known setting in ``values`` (a TrainConfig as a dict, or keyword arguments); nested
    ``model_kwargs`` (``dropout``) too."""
    for field, value in values.items():
        if field == "model_kwargs" and isinstance(value, Mapping):
            check_values(value, cli)
        else:
            check_value(field, value, cli)


def check_data_args(batch_size: Any, image_size: Any, channels: Any) -> None:
    """The arguments of the data functions that would otherwise fail late (at the first batch) or be ignored."""
    check_value("batch_size", batch_size)
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise BadArgument(f"image_size must be None (keep 28x28) or a side of at least 1 pixel, got {image_size!r}",
                          "image_size")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise BadArgument(f"channels must be 1 (grey, as stored) or 3 (the grey channel repeated, for RGB models), "
                          f"got {channels!r}", "channels")


def check_device(device: Any, cli: bool = False):
    """The ``torch.device`` for ``device`` (``None``: CUDA, else MPS, else CPU), or a one-line error:
    :class:`BadArgument` for a name PyTorch does not know, :class:`BadEnvironment` for a device this machine lacks."""
    import torch

    name = option("device", cli)
    if device is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps") if mps and mps.is_available() else torch.device("cpu")
    try:
        d = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise BadArgument(f"{name} {device!r} is not a device PyTorch knows; use cpu, cuda, cuda:N or mps",
                          "device") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this PyTorch build has no CUDA support" if torch.version.cuda is None
                   else "no NVIDIA GPU or driver is visible (torch.cuda.is_available() is False)")
            raise BadEnvironment(f"{name} {device!r}: {why}; use {option('device', cli)} cpu, or run on a machine "
                                 "with a GPU")
        n = torch.cuda.device_count()
        if d.index is not None and d.index >= n:
            raise BadEnvironment(f"{name} {device!r}: this machine has {n} GPU(s), cuda:0 to cuda:{n - 1}")
    elif d.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if not (mps and mps.is_available()):
            raise BadEnvironment(f"{name} {device!r}: Apple's MPS is not available on this machine; use cpu")
    elif d.type != "cpu":
        raise BadArgument(f"{name} {device!r}: training runs on cpu, cuda or mps", "device")
    return d


def _probe(folder: Path, name: str, what: str) -> None:
    """Create the folder and a small temporary file in it (removed again): the write a run will make later."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadEnvironment(f"{what}: cannot create the folder {folder}: {os_reason(e)}; choose a folder you can "
                             "write to") from None
    import tempfile
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        fix = ("free some space or choose a folder on another disk" if e.errno in (errno.ENOSPC, errno.EDQUOT)
               else "choose a folder you can write to")
        raise BadEnvironment(f"{what}: cannot write in {folder}: {os_reason(e)}; {fix}") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _looks_like_history(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(1).lstrip()
    except OSError:
        return False
    return head in (b"{", b"")


def check_outputs(outputs: Mapping[str, Any], *, checkpoint: str | None = None, resume: bool | str = False,
                  overwrite: bool = False, cli: bool = False) -> None:
    """Check the output paths of a run before it starts.

    ``outputs`` maps a setting name (``"out"``, ``"checkpoint"``) to its path (``None``: not written). Each must be a
    file name (not empty, not a folder), different from the others, in a folder that exists or can be created, where
    a file can be written. ``checkpoint`` names the entry that is the checkpoint: an existing file there belongs to
    an earlier run and is only used with ``resume`` or replaced with ``overwrite``. An existing file at another output
    that is not a JSON history is only replaced with ``overwrite``. ``resume=True`` needs the checkpoint to exist;
    ``resume="or-start"`` starts a new run when it does not. Symbolic links are followed (they are written through).
    """
    seen: dict[str, str] = {}
    for field, value in outputs.items():
        if value is None:
            continue
        name = option(field, cli).rstrip("=")
        text = os.fspath(value)
        if not text.strip():
            example = "runs/run.pt" if field == checkpoint else "runs/run.json"
            raise BadArgument(f"{name} is empty; give a file name, e.g. {example}", field)
        path = real_target(Path(text).expanduser())
        if path.is_dir() or text.endswith(os.sep):
            raise BadArgument(f"{name} {text} is a folder; give a file name in it, e.g. "
                              f"{Path(text) / ('run.pt' if field == checkpoint else 'run.json')}", field)
        key = os.path.realpath(path)
        if key in seen:
            raise BadArgument(f"{option(seen[key], cli).rstrip('=')} and {name} are the same file ({text}): one "
                              "would overwrite the other every epoch; give each its own name, e.g. run.json and "
                              "run.pt", field)
        seen[key] = field
        if path.exists() and not path.is_file():
            raise BadArgument(f"{name} {text} exists and is not a regular file; choose another name", field)
        _probe(path.parent, path.name, f"{name} {text}")
        if path.exists() and not overwrite:
            from .checkpoint import describe
            if field == checkpoint and not resume:
                raise BadArgument(f"{name} {text} already holds a checkpoint ({describe(path)}); continue that run "
                                  f"with {option('resume', cli).rstrip('=')}, replace it with "
                                  f"{option('overwrite', cli).rstrip('=')}, or choose another name", field)
            if field != checkpoint and not _looks_like_history(path):
                raise BadArgument(f"{name} {text} already exists and is not a JSON history ({describe(path)}); "
                                  f"choose another name, or replace it with {option('overwrite', cli).rstrip('=')}",
                                  field)
    if resume and checkpoint is not None:
        path = outputs.get(checkpoint)
        if path is None:
            raise BadArgument(f"{option('resume', cli).rstrip('=')} needs {option(checkpoint, cli).rstrip('=')} "
                              "PATH", "resume")
        if resume is True and not real_target(Path(os.fspath(path)).expanduser()).exists():
            start = "--resume-or-start" if cli else "resume='or-start'"
            raise BadArgument(f"{option('resume', cli).rstrip('=')}: there is no checkpoint at {path} to continue; "
                              f"check the path, or use {start} to start a new run when there is none", "resume")


def check_space(path: str | os.PathLike, nbytes: int, what: str) -> None:
    """:class:`BadEnvironment` unless the disk holding ``path`` has room for a file of ``nbytes`` written beside the
    old one (an atomic write needs both for a moment)."""
    path = real_target(Path(path))
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return  # cannot tell: the write itself will say
    need = int(nbytes * 1.1) + 2**20  # the new file (the old one stays until the rename), and some slack
    if free < need:
        raise BadEnvironment(f"{what}: not enough space in {path.parent}: a checkpoint needs about "
                             f"{need / 2**20:,.0f} MB, {free / 2**20:,.0f} MB are free; free some space or choose a "
                             "folder on another disk")
