"""The training loop of the course: one loop, readable in one sitting, with speed features as switches.

``train(net, train_iter, test_iter, epochs, lr, **options)`` takes its options as the fields of one
:class:`~alexnet_lib.config.TrainConfig` (or ``config=`` a whole one) and is made of short named parts, each
printable with ``inspect.getsource``: :func:`setup` (seed, device, optimizer, scheduler, history),
:func:`train_step` (one gradient step), :func:`train_epoch` (a pass over the data, then the test set),
:func:`evaluate_accuracy`, :func:`check_finite` and :func:`check_collapse` (divergence), :func:`save_checkpoint` and
:func:`restore_checkpoint`, :func:`sigterm_as_interrupt` and :func:`out_of_memory`.

It returns a *history*, a plain dict that is also what gets saved as JSON and plotted::

    {"name", "model", "params", "settings": {...}, "device", "device_name", "torch", "date", "profile",
     "status": "finished" | "diverged" | "interrupted" | "out_of_memory", "epochs": [
        {"epoch", "loss", "train_acc", "test_acc", "test_loss", "img_per_s", "seconds"}, ...]}

``"model"`` is the builder's name when the config names one, ``"profile"`` the config's profile (what ran).

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
import platform
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint as checkpoints
from . import validate
from .checkpoint import CheckpointDamaged, CheckpointError, CheckpointMismatch
from .config import TrainConfig
from .dist import is_distributed, rank, world_size, wrap
from .outputs import output_lock, signals_deferred
from .runs import save_json

__all__ = ["train", "setup", "train_step", "train_epoch", "evaluate", "evaluate_accuracy", "check_finite", "check_collapse",
           "save_checkpoint", "restore_checkpoint", "load_checkpoint", "sigterm_as_interrupt", "out_of_memory",
           "watch_loss", "identity", "check_arguments",
           "Run", "DivergedError", "OutOfMemory", "Interrupted", "CheckpointError", "CheckpointDamaged",
           "CheckpointMismatch", "default_device", "init_weights",
           "make_optimizer", "make_scheduler"]


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


OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("onecycle", "cosine")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the run; the message says what is saved (and only that), ``.history`` the epochs."""

    def __init__(self, run: "Run", checkpoint: str | Path | None):
        def span(n: int) -> str:
            return "epoch 1" if n == 1 else f"epochs 1-{n}"
        epoch, saved, recorded = len(run.history["epochs"]) + 1, run.saved_epochs, run.recorded_epochs
        where = f"interrupted during epoch {epoch}: "
        if checkpoint is not None and saved:
            also = f" (history in {run.history_path})" if run.history_path is not None and recorded else ""
            text = f"{span(saved)} saved to {checkpoint}{also}; continue with --resume (resume=True in Python)"
        elif run.history_path is not None and recorded:
            text = (f"{span(recorded)} recorded in {run.history_path}, but there is no checkpoint to continue from "
                    "(give --checkpoint PATH, or checkpoint= in Python, to be able to resume)")
        else:
            text = "nothing was saved"
        super().__init__(where + text)
        self.history = run.history


def default_device() -> torch.device:
    """CUDA if available, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def init_weights(net: nn.Module, init: str | None) -> None:
    """``"xavier"`` (Glorot uniform, as in d2l's AlexNet chapter), ``"paper"`` (the 2012 paper's:
    :func:`alexnet_lib.models.paper_init`) or ``None`` (PyTorch's default)."""
    if init is None:
        return
    if init == "paper":
        from .models import paper_init
        paper_init(net)
        return
    if init != "xavier":
        raise ValueError(f"unknown init {init!r}; use 'xavier', 'paper' or None")
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def make_optimizer(net: nn.Module, name: str, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                   nesterov: bool = False, fused: bool = False) -> torch.optim.Optimizer:
    """``"sgd"`` (with ``momentum``), ``"adam"`` or ``"adamw"``. ``fused=True``: PyTorch's fused step (CUDA and CPU),
    which updates every parameter in one pass over its memory instead of one pass per operation; on a CPU it makes a
    quick AlexNet step (batch 16, 21.6 M parameters, Adam) about a quarter faster, with the same maths up to float
    rounding."""
    kw = {"fused": True} if fused else {}
    if name == "sgd":
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay,
                               nesterov=nesterov and momentum > 0, **kw)
    if name == "adam":
        return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay, **kw)
    if name == "adamw":
        return torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay, **kw)
    raise ValueError(f"unknown optimizer {name!r}; use 'sgd', 'adam' or 'adamw'")


def sum_across_ranks(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over the processes of a DDP job (in place); unchanged in a single process."""
    if is_distributed():
        torch.distributed.all_reduce(t)
    return t


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on ``device`` when ``amp``, else a context that does nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp else nullcontext()


@torch.no_grad()
def evaluate(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None, amp: bool = False,
             tta: bool = False) -> tuple[float, float]:
    """Accuracy and mean cross-entropy loss over ``data_iter`` (model put in eval mode, then restored).

    ``tta=True`` averages the logits of each image and its mirror image (test-time augmentation; the 2012 paper
    averaged ten crops and their mirrors).
    """
    device = torch.device(device) if device is not None else next(net.parameters()).device
    was_training = net.training
    net.eval()
    stats = torch.zeros(3, device=device)  # correct, seen, loss sum; summed on the device, read once
    for x, y in data_iter:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = (net(x) + net(x.flip(-1))) / 2 if tta else net(x)
            stats[0] += (logits.argmax(1) == y).sum()
        stats[1] += y.numel()
        stats[2] += F.cross_entropy(logits.float(), y, reduction="sum")
    sum_across_ranks(stats)
    net.train(was_training)
    correct, seen, loss = stats.tolist()
    return correct / max(seen, 1), loss / max(seen, 1)


def evaluate_accuracy(net: nn.Module, data_iter: Iterable, device: torch.device | str | None = None,
                      amp: bool = False, tta: bool = False) -> float:
    """Fraction of correctly classified images in ``data_iter`` (:func:`evaluate` without the loss)."""
    return evaluate(net, data_iter, device, amp, tta)[0]


@contextmanager
def sigterm_as_interrupt():
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


def loader_generators(loader) -> list[torch.Generator]:
    """The random generators a data loader draws from (shuffling, augmentation): a checkpoint keeps their state,
    so a resumed run sees the batches an uninterrupted one would have seen."""
    gens: list[torch.Generator] = []
    for attr in ("generator", "aug_generator"):
        g = getattr(loader, attr, None)
        if isinstance(g, torch.Generator) and all(g is not h for h in gens):
            gens.append(g)
    return gens


def model_signature(net: nn.Module) -> dict:
    net = getattr(net, "_orig_mod", net)
    net = getattr(net, "module", net)
    return {"class": type(net).__name__, "shapes": {k: list(v.shape) for k, v in net.state_dict().items()}}


def load_checkpoint(path: str | Path, net: nn.Module, optimizer=None, scheduler=None, *,
                    loaded: dict | None = None) -> dict:
    """Load a checkpoint saved by :func:`train` (``weights_only=True``: no code runs from the file).

    Raises :class:`CheckpointMismatch` if it was saved for another model or number of classes, or is not a
    checkpoint of :func:`train` at all, and :class:`CheckpointDamaged` if the file was changed after it was written.
    """
    ckpt = loaded or checkpoints.load(path)  # checked against its checksum; CheckpointDamaged if not intact
    want, got = model_signature(net), ckpt["signature"]
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


def make_scheduler(optimizer, name: str | None, lr: float, epochs: int, steps_per_epoch: int, warmup: int):
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


@dataclass
class Run:
    """The state of one training run, shared by the parts of :func:`train`."""
    cfg: TrainConfig
    net: nn.Module            # the model as built: its weights are saved and evaluated
    model: nn.Module          # what a step calls: ``net``, or DDP / torch.compile around it
    opt: torch.optim.Optimizer
    sched: object | None
    device: torch.device
    memory_format: torch.memory_format
    train_iter: Iterable
    test_iter: Iterable
    history: dict
    stats: torch.Tensor | None = None      # this epoch's loss sum, correct, seen (on the device)
    first_bad: torch.Tensor | None = None  # first step of this epoch whose loss was not finite, or -1
    streak: torch.Tensor | None = None     # steps in a row whose loss was above loss_limit
    first_blowup: torch.Tensor | None = None  # first step of this epoch that made the streak PATIENCE long, or -1
    loss: torch.Tensor | None = None       # the last step's loss (on the device)
    saved_epochs: int = 0                  # epochs in the checkpoint file as it is now
    recorded_epochs: int = 0               # epochs in the history file as it is now
    history_path: str | Path | None = None
    verbose: bool = True
    progress: bool = False
    t_start: float = 0.0

    @property
    def rank0(self) -> bool:
        return rank() == 0


def new_history(net: nn.Module, train_iter, cfg: TrainConfig, device: torch.device, name: str | None,
                extra: dict | None) -> dict:
    """The history before the first epoch: what runs (settings, model, device, versions, profile)."""
    base = getattr(net, "module", net)
    settings = {**cfg.settings(build=cfg.model is not None), "batch_size": getattr(train_iter, "batch_size", None),
                "steps_per_epoch": len(train_iter), "world_size": world_size(), **(extra or {})}
    return {"name": name, "model": cfg.model or type(base).__name__,
            "params": sum(p.numel() for p in base.parameters()), "settings": settings, "device": device.type,
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else platform.processor() or "cpu",
            "torch": str(torch.__version__), "python": platform.python_version(),
            "date": datetime.date.today().isoformat(), "profile": cfg.profile, "status": "running", "epochs": []}


def setup(net: nn.Module, train_iter, test_iter, cfg: TrainConfig, device=None, **run_kw) -> Run:
    """Everything before the first step: seed, device and its switches, optimizer, scheduler, history."""
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    device = torch.device(device) if device is not None else default_device()
    cfg = cfg.resolved(device.type)
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    if device.type == "cuda":
        # True: cuDNN times its algorithms for every new shape and keeps the fastest (seconds of trials in the first
        # steps); False: it picks by its heuristics, with no trials
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    net.to(device, memory_format=memory_format)
    opt = make_optimizer(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.nesterov, cfg.fused)
    sched = make_scheduler(opt, cfg.scheduler, cfg.lr, cfg.epochs, len(train_iter), cfg.warmup)
    history = new_history(net, train_iter, cfg, device, run_kw.pop("name", None), run_kw.pop("extra", None))
    return Run(cfg, net, net, opt, sched, device, memory_format, train_iter, test_iter, history, **run_kw)


def compiled(run: Run) -> nn.Module:
    """The module a step calls: DistributedDataParallel under torchrun, then ``torch.compile`` if asked."""
    cfg = run.cfg
    model = wrap(run.net, run.device, bucket_cap_mb=cfg.bucket_cap_mb, static_graph=cfg.static_graph,
                 gradient_as_bucket_view=cfg.gradient_as_bucket_view, comm_hook=cfg.comm_hook)  # net outside torchrun
    mode = cfg.compile
    return torch.compile(model, mode=mode if isinstance(mode, str) else None) if mode else model


def train_step(run: Run, x: torch.Tensor, y: torch.Tensor, step: int) -> None:
    """One gradient step. Loss and correct predictions are added up on the device: no wait for the host."""
    x = x.to(run.device, non_blocking=True, memory_format=run.memory_format)
    y = y.to(run.device, non_blocking=True)
    with autocast(run.device, run.cfg.amp):
        logits = run.model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=run.cfg.label_smoothing)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    if run.sched is not None:
        run.sched.step()
    loss = loss.detach()
    if run.cfg.item_every_step:
        loss.item()  # a host sync per step, as the seeds' loop did (kept to measure what it costs)
    watch_loss(run, loss, step)
    n = y.numel()  # a Python number: torch.tensor(n, device=...) would make the host wait (tests/test_gpu.py)
    run.stats[0] += loss.float() * n
    run.stats[1] += (logits.argmax(1) == y).sum()
    run.stats[2] += n


def train_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training data, then the test set; the epoch's record is appended to the history."""
    if hasattr(getattr(run.train_iter, "sampler", None), "set_epoch"):
        run.train_iter.sampler.set_epoch(epoch)  # DistributedSampler: a new shuffle each epoch
    run.model.train()
    t0 = time.perf_counter()
    run.stats = torch.zeros(3, device=run.device)  # loss sum, correct, seen
    run.first_bad = run.first_blowup = torch.full((), -1, device=run.device)
    for step, (x, y) in enumerate(batches(run, epoch)):
        train_step(run, x, y, step)
        if run.device.type == "cpu" or (step + 1) % run.cfg.check_every == 0:
            check_finite(run, epoch)
    check_finite(run, epoch)
    loss_sum, correct, seen = sum_across_ranks(run.stats).tolist()  # (waits for the GPU)
    seconds = time.perf_counter() - t0
    # evaluated eagerly: same weights, and no second compilation for eval mode and the test batch size
    test_acc, test_loss = evaluate(run.net if run.cfg.compile else run.model, run.test_iter, run.device,
                                   run.cfg.amp, run.cfg.tta)
    now = time.perf_counter()
    record = {"epoch": epoch + 1, "images": int(seen), "loss": loss_sum / seen, "train_acc": correct / seen,
              "test_acc": test_acc, "test_loss": test_loss, "img_per_s": seen / seconds, "seconds": seconds,
              "eval_seconds": now - t0 - seconds, "elapsed": now - run.t_start}
    run.history["epochs"].append(record)
    return record


def batches(run: Run, epoch: int):
    """The training batches, with a tqdm bar on rank 0 when asked (or by default in a terminal)."""
    if not run.progress:
        return run.train_iter
    from tqdm.auto import tqdm
    return tqdm(run.train_iter, desc=f"epoch {epoch + 1}/{run.cfg.epochs}", leave=False, disable=not run.rank0)


def log_epoch(run: Run, record: dict) -> None:
    if run.rank0 and run.verbose:
        print(f"epoch {record['epoch']:>2}/{run.cfg.epochs}  loss {record['loss']:.3f}  train acc "
              f"{record['train_acc']:.3f}  test acc {record['test_acc']:.3f}  {record['img_per_s']:,.0f} img/s  "
              f"{record['seconds']:.1f} s", flush=True)


def save_history(run: Run, status: str) -> None:
    """Set the run's status and, on rank 0, write the history to ``history_path`` (atomically)."""
    run.history["status"] = status
    if run.rank0 and run.history_path is not None:
        save_json(run.history, run.history_path)
        run.recorded_epochs = len(run.history["epochs"])


# A loss above LOSS_LIMIT x the loss of guessing (log of the number of classes) for PATIENCE steps in a row (half an
# epoch if that is shorter) is divergence: the net is then confidently wrong on almost every image, which no run that
# learns ever is (the recorded runs of the course stay below a third of it in every epoch; tests/test_faults.py).
LOSS_LIMIT, PATIENCE = 10, 20


def patience(run: Run) -> int:
    return min(PATIENCE, max(1, len(run.train_iter) // 2))


def watch_loss(run: Run, loss: torch.Tensor, step: int) -> None:
    """Mark, on the device (no wait for it), the first step of the epoch whose loss is NaN/inf and the step at which
    the loss has been above the limit for ``PATIENCE`` steps in a row (or half an epoch, if that is shorter)."""
    if run.streak is None:
        run.streak = torch.zeros((), dtype=torch.long, device=run.device)
    limit = LOSS_LIMIT * math.log(num_classes(getattr(run.net, "module", run.net)))
    run.first_bad = torch.where((run.first_bad < 0) & ~torch.isfinite(loss), step, run.first_bad)
    run.streak = torch.where(loss > limit, run.streak + 1, 0)
    run.first_blowup = torch.where((run.first_blowup < 0) & (run.streak >= patience(run)), step, run.first_blowup)
    run.loss = loss


def check_finite(run: Run, epoch: int) -> None:
    """Stop with :class:`DivergedError` if a loss of this epoch was NaN/inf or stayed far above the loss of guessing
    (reads two numbers from the device)."""
    flags = torch.stack([run.first_bad, run.first_blowup])
    if is_distributed():  # every process stops at the same check, or the others would wait for it forever
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
    bad, blowup = (int(v) for v in flags.tolist())
    if bad < 0 and blowup < 0:
        return
    save_history(run, "diverged")
    lr_now, lr, n = run.opt.param_groups[0]["lr"], run.cfg.lr, num_classes(getattr(run.net, "module", run.net))
    if bad >= 0:
        what, step = "loss became NaN/inf", bad
    else:
        what, step = (f"loss grew to {run.loss.item():.3g} (above {LOSS_LIMIT * math.log(n):.3g}, {LOSS_LIMIT}x the "
                      f"loss of guessing among {n} classes, for {patience(run)} steps in a "
                      "row)"), blowup
    raise DivergedError(
        f"{what} at epoch {epoch + 1}, step {step + 1} (learning rate {lr_now:.3g}); training stopped. Try a "
        f"smaller learning rate (e.g. {lr / 10:.3g}), a warm-up, or Xavier initialisation. The "
        f"{len(run.history['epochs'])} finished epoch(s) are kept in the history.", run.history)


def check_collapse(run: Run, record: dict) -> None:
    """Stop with :class:`DivergedError` if the training accuracy fell back to chance after having been above 50%."""
    best = max(e["train_acc"] for e in run.history["epochs"])
    chance = 1.5 / num_classes(getattr(run.net, "module", run.net))
    if record["epoch"] >= 2 and best > 0.5 and record["train_acc"] < chance:
        save_history(run, "diverged")
        raise DivergedError(f"training accuracy collapsed to chance ({record['train_acc']:.3f}) at epoch "
                            f"{record['epoch']} after reaching {best:.3f}: the learning rate ({run.cfg.lr:.3g} "
                            "peak) is too high for this schedule.", run.history)


def identity(run: Run) -> dict:
    """What the run is, as its checkpoint records it and ``resume`` compares: model, layers, settings, data."""
    return {"model": run.history["model"], "architecture": checkpoints.architecture(run.net),
            "settings": run.history["settings"]}


def save_checkpoint(run: Run, path: str | Path) -> None:
    """Model, optimizer, scheduler, history, random states and the loader's generators, atomically (rank 0), with
    the run's identity and a checksum (see :mod:`.checkpoint`)."""
    if not run.rank0:
        return
    checkpoints.save({
        "model": getattr(run.net, "module", run.net).state_dict(), "optimizer": run.opt.state_dict(),
        "scheduler": run.sched.state_dict() if run.sched is not None else None,
        "history": run.history, "signature": model_signature(run.net), "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state(run.device) if run.device.type == "cuda" else None,
        "loader_rng": [g.get_state() for g in loader_generators(run.train_iter)],
    }, path, identity(run))
    run.saved_epochs = len(run.history["epochs"])


def restore_checkpoint(run: Run, path: str | Path) -> int:
    """Load a checkpoint of :func:`save_checkpoint` into ``run`` after checking that it holds this run (the same
    model, settings and data; more epochs may be asked for); return the number of finished epochs."""
    ckpt = checkpoints.load(path)
    checkpoints.check_same_run(ckpt, identity(run), path, run.cfg.epochs)
    load_checkpoint(path, run.net, run.opt, run.sched, loaded=ckpt)
    settings = run.history["settings"]  # the settings that run now (the same, but for the number of epochs)
    run.history = ckpt["history"]
    run.history["status"], run.history["settings"] = "running", settings
    run.saved_epochs = len(run.history["epochs"])
    torch.set_rng_state(ckpt["rng_cpu"])
    if run.device.type == "cuda" and ckpt.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(ckpt["rng_cuda"], run.device)
    states, gens = ckpt.get("loader_rng") or [], loader_generators(run.train_iter)
    if len(states) == len(gens):  # the same kind of loader: continue its shuffling and augmentation draws
        for g, state in zip(gens, states):
            g.set_state(state)
    if run.rank0 and run.verbose:
        print(f"resumed from {path} after epoch {len(run.history['epochs'])}")
    return len(run.history["epochs"])


def out_of_memory(run: Run) -> OutOfMemory:
    """The error for a GPU out of memory: the batch size, the device's memory and what to try."""
    save_history(run, "out_of_memory")
    bs, done = run.history["settings"].get("batch_size") or "?", len(run.history["epochs"])
    half = max(1, bs // 2) if isinstance(bs, int) else "half"
    where = (f"{run.history['device_name']}, {torch.cuda.get_device_properties(run.device).total_memory / 2**30:.0f}"
             " GiB" if run.device.type == "cuda" else run.device.type)
    return OutOfMemory(
        f"out of GPU memory at batch size {bs} in epoch {done + 1} ({where}). Try half the batch size ({half}; "
        f"--batch-size {half} on the command line), bf16 mixed precision (amp=True) if it is off, or a smaller "
        f"image size. The {done} finished epoch(s) are kept in the history.", run.history)


def check_arguments(cfg: TrainConfig, device, checkpoint, history_path, resume, overwrite) -> torch.device:
    """Every value, the device and the output paths, before anything is built or a step taken: a one-line
    :class:`~.validate.BadArgument` or :class:`~.validate.BadEnvironment` otherwise. Returns the device."""
    if resume not in (False, True, "or-start"):
        raise validate.BadArgument(f"resume= must be False, True or 'or-start', got {resume!r}", "resume")
    validate.check_values(cfg.settings())
    device = validate.check_device(device)
    validate.check_outputs({"checkpoint": checkpoint, "history_path": history_path}, checkpoint="checkpoint",
                           resume=resume, overwrite=overwrite)
    return device


def train(net: nn.Module, train_iter: Iterable, test_iter: Iterable, epochs: int | None = None,
          lr: float | None = None, *, config: TrainConfig | None = None, device: torch.device | str | None = None,
          checkpoint: str | Path | None = None, resume: bool | str = False, overwrite: bool = False,
          history_path: str | Path | None = None, name: str | None = None, progress: bool | None = None,
          verbose: bool = True, extra: dict | None = None, **options) -> dict:
    """Train ``net`` and return its history (see the module docstring).

    ``epochs``, ``lr`` and ``options`` are fields of :class:`~alexnet_lib.config.TrainConfig` (``momentum=0.9``,
    ``amp=True``, ...), applied over ``config``. ``checkpoint``: save there after every epoch; ``resume=True``
    continues from it (an error if there is none, or if it holds another run), ``resume="or-start"`` starts anew
    when there is none; an existing checkpoint is otherwise replaced only with ``overwrite=True``.
    ``history_path``: also write the history JSON after every epoch. ``progress``: a tqdm bar per epoch (default:
    when stderr is a terminal); ``verbose``: one line per epoch; ``extra``: more settings to record. Values, device
    and paths are checked before anything starts; the outputs are locked against a second run while this one runs.
    """
    given = {k: v for k, v in (("epochs", epochs), ("lr", lr)) if v is not None}
    cfg = (config or TrainConfig()).replace(**options, **given)
    device = check_arguments(cfg, device, checkpoint, history_path, resume, overwrite)
    progress = (rank() == 0 and sys.stderr.isatty()) if progress is None else progress
    with output_lock(*([checkpoint, history_path] if rank() == 0 else [])):
        run = setup(net, train_iter, test_iter, cfg, device, name=name, extra=extra, history_path=history_path,
                    verbose=verbose, progress=progress)
        resumed = bool(resume) and checkpoint is not None and Path(checkpoint).exists()
        start = restore_checkpoint(run, checkpoint) if resumed else 0
        if not resumed:
            init_weights(net, cfg.init)
        run.model = compiled(run)
        # wall-clock seconds since the start of training (continued across a resume), compilation included
        run.t_start = time.perf_counter() - (run.history["epochs"][-1].get("elapsed", 0.0) if start else 0.0)
        try:
            with sigterm_as_interrupt():
                for epoch in range(start, run.cfg.epochs):
                    record = train_epoch(run, epoch)
                    log_epoch(run, record)
                    check_collapse(run, record)
                    run.history["status"] = "finished" if epoch + 1 == run.cfg.epochs else "running"
                    with signals_deferred():  # a signal now waits until the checkpoint and the history are written
                        if checkpoint is not None:
                            save_checkpoint(run, checkpoint)
                        save_history(run, run.history["status"])
        except KeyboardInterrupt:
            run.history["status"] = "interrupted"
            if run.history["epochs"]:  # an empty history is not written: nothing was saved, and the message says so
                save_history(run, "interrupted")
            stopped = Interrupted(run, checkpoint)
            if run.rank0 and verbose:
                print(stopped, file=sys.stderr, flush=True)
            raise stopped from None
        except torch.OutOfMemoryError as e:
            e.__traceback__ = None  # drop the frames holding this batch's activations, so the memory can be freed
            raise out_of_memory(run) from None
        save_history(run, "finished")
    return run.history


def num_classes(net: nn.Module) -> int:
    """Output classes of a classifier: the width of its last linear layer."""
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    return last.out_features
