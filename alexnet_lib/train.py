"""The training loop of the course: one loop, readable in one sitting, with speed features as switches.

``train`` returns a *history*, a plain dict that is also what gets saved as JSON and plotted::

    {"name", "model", "params", "settings": {...}, "device", "device_name", "torch", "date", "profile",
     "status": "finished" | "diverged" | "interrupted" | "out_of_memory", "epochs": [
        {"epoch", "loss", "train_acc", "test_acc", "img_per_s", "seconds"}, ...]}

Reliability: the loss is checked for NaN/inf (every step on the CPU, every ``check_every`` steps on a GPU so the
GPU never waits on the host); a diverged run stops with :class:`DivergedError` that names epoch, step and learning
rate, and the history so far is kept. With ``checkpoint=`` the model, optimizer, scheduler, RNG states and history
are saved atomically after every epoch (the data loader's shuffling and augmentation generators too), and
``resume=True`` continues from there, so a killed run loses at most the epoch it was in, and on a CPU the resumed
history is the one an uninterrupted run would have written. Running out of GPU memory raises :class:`OutOfMemory`,
which names the batch size and what to try.
"""
from __future__ import annotations

import datetime
import math
import pickle
import platform
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .dist import is_distributed, rank, world_size, wrap
from .profiles import get_profile
from .runs import atomic_torch_save, save_json

__all__ = ["train", "evaluate_accuracy", "DivergedError", "OutOfMemory", "CheckpointMismatch", "default_device",
           "init_weights", "load_checkpoint", "make_optimizer"]


class DivergedError(RuntimeError):
    """Training diverged (NaN/inf loss, or accuracy collapsed to chance); ``.history`` holds the epochs so far."""

    def __init__(self, message: str, history: dict):
        super().__init__(message)
        self.history = history


class OutOfMemory(RuntimeError):
    """The GPU ran out of memory; the message names the batch size and what to try, ``.history`` the epochs so far."""

    def __init__(self, message: str, history: dict):
        super().__init__(message)
        self.history = history


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fit the model it is loaded into."""


def default_device() -> torch.device:
    """CUDA if available, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def init_weights(net: nn.Module, init: str | None) -> None:
    """``"xavier"`` (Glorot uniform, as in d2l's AlexNet chapter) or ``None`` (PyTorch's default)."""
    if init is None:
        return
    if init != "xavier":
        raise ValueError(f"unknown init {init!r}; use 'xavier' or None")
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def make_optimizer(net: nn.Module, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                   nesterov: bool = False, fused: bool = False) -> torch.optim.Optimizer:
    """``"sgd"`` (with ``momentum``), ``"adam"`` or ``"adamw"``; ``fused=True`` uses the single-kernel CUDA version."""
    kw = {"fused": True} if fused else {}
    if name == "sgd":
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov and momentum > 0, **kw)
    if name == "adam":
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay, **kw)
    if name == "adamw":
        return torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay, **kw)
    raise ValueError(f"unknown optimizer {name!r}; use 'sgd', 'adam' or 'adamw'")


def _sum_across_ranks(t: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        torch.distributed.all_reduce(t)
    return t


@torch.no_grad()
def evaluate_accuracy(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None,
                      amp: bool = False, tta: bool = False) -> float:
    """Fraction of correctly classified images in ``data_iter`` (model put in eval mode, then restored).

    ``tta=True`` averages the logits of each image and its mirror image (test-time augmentation; the 2012 paper
    averaged ten crops and their mirrors).
    """
    device = torch.device(device) if device is not None else next(net.parameters()).device
    was_training = net.training
    net.eval()
    stats = torch.zeros(2, device=device)  # correct, seen; summed on the device, read once
    for x, y in data_iter:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = net(x) + net(x.flip(-1)) if tta else net(x)
            stats[0] += (logits.argmax(1) == y).sum()
        stats[1] += y.numel()
    _sum_across_ranks(stats)
    net.train(was_training)
    return (stats[0] / stats[1].clamp(min=1)).item()


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()


@contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt while training, so `kill` saves state like Ctrl-C does."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. some notebook front-ends): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _loader_generators(loader) -> list[torch.Generator]:
    """The random generators a data loader draws from (shuffling, augmentation): a checkpoint keeps their state,
    so a resumed run sees the batches an uninterrupted one would have seen."""
    gens: list[torch.Generator] = []
    for attr in ("generator", "aug_generator"):
        g = getattr(loader, attr, None)
        if isinstance(g, torch.Generator) and all(g is not h for h in gens):
            gens.append(g)
    return gens


def _model_signature(net: nn.Module) -> dict:
    net = getattr(net, "_orig_mod", net)
    net = getattr(net, "module", net)
    return {"class": type(net).__name__, "shapes": {k: list(v.shape) for k, v in net.state_dict().items()}}


def load_checkpoint(path: str | Path, net: nn.Module, optimizer=None, scheduler=None) -> dict:
    """Load a checkpoint saved by :func:`train` (``weights_only=True``: no code runs from the file).

    Raises :class:`CheckpointMismatch` if it was saved for another model or number of classes, or is not a
    checkpoint of :func:`train` at all.
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointMismatch(f"{path} is not a checkpoint saved by train(): it holds Python objects other than "
                                 "tensors, which are not loaded because loading them could run any code. Use a "
                                 "checkpoint written by train(checkpoint=...), or start without resume.") from e
    if not isinstance(ckpt, dict) or "signature" not in ckpt:
        raise CheckpointMismatch(f"{path} is not a checkpoint saved by train() (it has no model signature). A bare "
                                 "state_dict loads with net.load_state_dict(torch.load(path, weights_only=True)).")
    want, got = _model_signature(net), ckpt["signature"]
    if want != got:
        diff = [k for k in set(want["shapes"]) | set(got.get("shapes", {}))
                if want["shapes"].get(k) != got.get("shapes", {}).get(k)]
        detail = ", ".join(f"{k}: checkpoint {got.get('shapes', {}).get(k)} vs model {want['shapes'].get(k)}"
                           for k in sorted(diff)[:3])
        raise CheckpointMismatch(f"{path} was saved for a {got.get('class', '?')} that does not fit this "
                                 f"{want['class']} ({detail}). Build the model with the same builder, in_channels "
                                 "and num_classes as the run that saved it, or start without resume.")
    target = getattr(net, "_orig_mod", net)
    getattr(target, "module", target).load_state_dict(ckpt["model"])
    if optimizer is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    return ckpt


def _make_scheduler(optimizer, name: str | None, lr: float, epochs: int, steps_per_epoch: int, warmup: int):
    total = max(1, epochs * steps_per_epoch)
    if name is None and not warmup:
        return None
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total,
                                                   pct_start=max(warmup / total, 0.15) if warmup else 0.25)
    if name not in (None, "cosine"):
        raise ValueError(f"unknown scheduler {name!r}; use 'onecycle', 'cosine' or None")
    warm = max(1, warmup)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if name == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
        return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train(net: nn.Module, train_iter: Iterable, test_iter: Iterable, epochs: int, lr: float, *,
          optimizer: str = "sgd", momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
          init: str | None = None, scheduler: str | None = None, warmup: int = 0, label_smoothing: float = 0.0,
          device: torch.device | str | None = None, amp: bool = False, channels_last: bool = False,
          compile: bool | str = False, fused: bool = False, check_every: int = 50, item_every_step: bool = False,
          tta: bool = False,
          checkpoint: str | Path | None = None, resume: bool = False, history_path: str | Path | None = None,
          name: str | None = None, progress: bool | None = None, verbose: bool = True, seed: int | None = None,
          extra: dict | None = None) -> dict:
    """Train ``net`` and return its history (see the module docstring).

    Args:
        epochs, lr: number of passes over ``train_iter``, and the (peak) learning rate.
        optimizer, momentum, nesterov, weight_decay: see :func:`make_optimizer`.
        init: ``"xavier"`` re-initialises the weights first (ignored when resuming).
        scheduler, warmup: ``"onecycle"``, ``"cosine"`` or ``None``, and linear warm-up steps.
        device: default CUDA, else MPS, else CPU.
        amp, channels_last, compile, fused: speed switches (bf16 autocast, NHWC memory layout,
            ``torch.compile`` -- ``True`` or a mode such as ``"max-autotune"`` --, fused optimizer kernels);
            they change speed, not the maths.
        item_every_step: read the loss with ``.item()`` after every step, as the seeds' loop did (a host sync
            per step; only for measuring what it costs).
        tta: evaluate on each test image and its mirror image (see :func:`evaluate_accuracy`).
        checkpoint, resume: save after every epoch to this path; continue from it.
        history_path: also write the history JSON there after every epoch (atomically).
        progress: a tqdm bar per epoch (default: when stderr is a terminal); verbose: one line per epoch.
        seed: seeds PyTorch's generators first, for a reproducible run.
        extra: more settings to record in the history (e.g. data source and image size).
    """
    if seed is not None:
        torch.manual_seed(seed)
    device = torch.device(device) if device is not None else default_device()
    rank0 = rank() == 0
    steps_per_epoch = len(train_iter)
    settings = dict(epochs=epochs, lr=lr, optimizer=optimizer, momentum=momentum, nesterov=nesterov,
                    weight_decay=weight_decay, init=init, scheduler=scheduler, warmup=warmup,
                    label_smoothing=label_smoothing, amp=amp, channels_last=channels_last, compile=compile,
                    fused=fused, tta=tta, seed=seed, batch_size=getattr(train_iter, "batch_size", None),
                    steps_per_epoch=steps_per_epoch, world_size=world_size(),
                    **(extra or {}))
    base = getattr(net, "module", net)
    history = {
        "name": name, "model": type(base).__name__, "params": sum(p.numel() for p in base.parameters()),
        "settings": settings, "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": str(torch.__version__), "python": platform.python_version(),
        "date": datetime.date.today().isoformat(), "profile": get_profile().name, "status": "running", "epochs": [],
    }
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # pick the fastest convolution algorithms for these shapes
    net.to(device, memory_format=memory_format)
    opt = make_optimizer(net, optimizer, lr, momentum, weight_decay, nesterov, fused and device.type == "cuda")
    sched = _make_scheduler(opt, scheduler, lr, epochs, steps_per_epoch, warmup)
    start_epoch = 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        ckpt = load_checkpoint(checkpoint, net, opt, sched)
        history = ckpt["history"]
        history["status"] = "running"
        start_epoch = len(history["epochs"])
        torch.set_rng_state(ckpt["rng_cpu"])
        if device.type == "cuda" and ckpt.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(ckpt["rng_cuda"], device)
        states = ckpt.get("loader_rng") or []
        gens = _loader_generators(train_iter)
        if len(states) == len(gens):  # the same kind of loader: continue its shuffling and augmentation draws
            for g, state in zip(gens, states):
                g.set_state(state)
        if rank0 and verbose:
            print(f"resumed from {checkpoint} after epoch {start_epoch}")
    elif not resume:
        init_weights(net, init)
    model = wrap(net, device)  # DistributedDataParallel under torchrun, else net itself
    model = model if not compile else torch.compile(model, mode=compile if isinstance(compile, str) else None)

    def save_state(status: str) -> None:
        history["status"] = status
        if not rank0:
            return
        if history_path is not None:
            save_json(history, history_path)

    def check_finite(loss_flags: torch.Tensor, epoch: int, step: int) -> None:
        bad = int(loss_flags.item())  # first step (in this epoch) whose loss was not finite, or -1
        if bad >= 0:
            save_state("diverged")
            lr_now = opt.param_groups[0]["lr"]
            raise DivergedError(
                f"loss became NaN/inf at epoch {epoch + 1}, step {bad + 1} (learning rate {lr_now:.3g}); "
                f"training stopped. Try a smaller learning rate (e.g. {lr / 10:.3g}), a warm-up, or Xavier "
                f"initialisation. The {len(history['epochs'])} finished epoch(s) are kept in the history.", history)

    # wall-clock seconds since the start of training (continued across a resume), compilation included
    t_start = time.perf_counter() - (history["epochs"][-1].get("elapsed", 0.0) if history["epochs"] else 0.0)
    try:
        with _sigterm_as_interrupt():
            for epoch in range(start_epoch, epochs):
                if hasattr(getattr(train_iter, "sampler", None), "set_epoch"):
                    train_iter.sampler.set_epoch(epoch)  # DistributedSampler: a new shuffle each epoch
                model.train()
                t0 = time.perf_counter()
                stats = torch.zeros(3, device=device)  # loss sum, correct, seen
                first_bad = torch.full((), -1, device=device)
                batches = train_iter
                if progress if progress is not None else (rank0 and sys.stderr.isatty()):
                    from tqdm.auto import tqdm
                    batches = tqdm(train_iter, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not rank0)
                step = -1
                for step, (x, y) in enumerate(batches):
                    x = x.to(device, non_blocking=True, memory_format=memory_format)
                    y = y.to(device, non_blocking=True)
                    with _autocast(device, amp):
                        logits = model(x)
                        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    loss = loss.detach()
                    if item_every_step:
                        loss.item()
                    first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
                    stats += torch.stack([loss.float() * y.numel(), (logits.argmax(1) == y).sum(),
                                          torch.tensor(y.numel(), device=device)])
                    if device.type == "cpu" or (step + 1) % check_every == 0:
                        check_finite(first_bad, epoch, step)
                check_finite(first_bad, epoch, step)
                _sum_across_ranks(stats)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                seconds = time.perf_counter() - t0
                loss_sum, correct, seen = stats.tolist()
                # evaluated eagerly: same weights, and no second compilation for eval mode and the test batch size
                test_acc = evaluate_accuracy(net if compile else model, test_iter, device, amp, tta)
                now = time.perf_counter()
                record = {"epoch": epoch + 1, "images": int(seen), "loss": loss_sum / seen, "train_acc": correct / seen,
                          "test_acc": test_acc, "img_per_s": seen / seconds, "seconds": seconds,
                          "eval_seconds": now - t0 - seconds, "elapsed": now - t_start}
                history["epochs"].append(record)
                if rank0 and verbose:
                    print(f"epoch {epoch + 1:>2}/{epochs}  loss {record['loss']:.3f}  train acc "
                          f"{record['train_acc']:.3f}  test acc {test_acc:.3f}  {record['img_per_s']:,.0f} img/s  "
                          f"{seconds:.1f} s", flush=True)
                best = max(e["train_acc"] for e in history["epochs"])
                if epoch >= 1 and best > 0.5 and record["train_acc"] < 1.5 / _num_classes(base):
                    save_state("diverged")
                    raise DivergedError(f"training accuracy collapsed to chance ({record['train_acc']:.3f}) at "
                                        f"epoch {epoch + 1} after reaching {best:.3f}: the learning rate "
                                        f"({lr:.3g} peak) is too high for this schedule.", history)
                history["status"] = "finished" if epoch + 1 == epochs else "running"
                if checkpoint is not None and rank0:
                    atomic_torch_save({
                        "model": getattr(net, "module", net).state_dict(), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else None,
                        "history": history, "signature": _model_signature(net), "rng_cpu": torch.get_rng_state(),
                        "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                        "loader_rng": [g.get_state() for g in _loader_generators(train_iter)],
                    }, checkpoint)
                save_state(history["status"])
    except KeyboardInterrupt:
        save_state("interrupted")
        if rank0 and verbose:
            print(f"interrupted during epoch {len(history['epochs']) + 1}; "
                  + (f"resume with resume=True from {checkpoint}" if checkpoint else "no checkpoint was set"),
                  file=sys.stderr)
        raise
    except torch.OutOfMemoryError as e:
        e.__traceback__ = None  # drop the frames holding this batch's activations, so the memory can be freed
        save_state("out_of_memory")
        bs = settings["batch_size"] or len(x)
        where = (f"{history['device_name']}, {torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} GiB"
                 if device.type == "cuda" else device.type)
        raise OutOfMemory(
            f"out of GPU memory at batch size {bs} in epoch {len(history['epochs']) + 1} ({where}). Try half the "
            f"batch size ({max(1, bs // 2)}; --batch-size {max(1, bs // 2)} on the command line), bf16 mixed "
            "precision (amp=True) if it is off, or a smaller image size. The "
            f"{len(history['epochs'])} finished epoch(s) are kept in the history.", history) from None
    history["status"] = "finished"
    save_state("finished")
    return history


def _num_classes(net: nn.Module) -> int:
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    return last.out_features
