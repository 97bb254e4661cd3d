"""Named experiments: one :class:`~alexnet_lib.config.TrainConfig` per recorded run of the course.

``run("ch04/sigmoid", profile="full")`` trains that configuration as recorded (all of Fashion-MNIST at the model's
native size, the experiment's epochs); ``profile="quick"`` runs its quick size (the bundled sample, a 96-pixel side,
a few hundred images, two epochs: each experiment's ``quick`` overrides), says at the start what the quick profile
changed and records it. The recorded full runs in ``book/runs/NAME.json`` were made with the same call::

    python -m alexnet_lib train --preset ch04/sigmoid --profile full --out book/runs/ch04/sigmoid.json

On CUDA the data path defaults to the GPU-resident loader with bf16 autocast and channels_last (speed switches that
the history records); elsewhere the classic DataLoader path with torchvision transforms.
"""
from __future__ import annotations

import dataclasses
import inspect
import time
from pathlib import Path

import torch
from torch import nn

from . import checkpoint as checkpoints
from . import dist, history_cache, validate
from .config import QUICK_BASE, QUICK_IMAGE_SIZE, TrainConfig
from .data import load_data_fashion_mnist, num_images
from .gpu_data import gpu_loaders
from .kernels import fuse_relu_pool
from .models import MODELS, build_model, space_to_depth_stem
from .outputs import atomic_torch_save, output_lock
from .runs import save_json
from .train import evaluate_accuracy, train

__all__ = ["EXPERIMENTS", "get", "run", "build", "loaders", "quick_defaults"]

_BASE = TrainConfig(model="d2l_alexnet", epochs=10, lr=0.01, batch_size=128, momentum=0.9)  # d2l's AlexNet, SGD
_R = dataclasses.replace
_HEAD_BASE = TrainConfig(model="dense_head", model_kwargs={"width": 1024}, optimizer="adam", lr=1e-3, batch_size=64,
                         epochs=20, init="xavier", description="AlexNet's dense head alone, 1024 wide, dropout p=0.5")

EXPERIMENTS: dict[str, TrainConfig] = {
    # From LeNet to AlexNet: each at its own input size, d2l's settings for LeNet.
    "ch02/lenet": TrainConfig(model="lenet", epochs=10, lr=0.9, momentum=0.0, batch_size=256, init="xavier",
                             description="LeNet (sigmoid) at 28x28, d2l's settings"),
    "ch02/alexnet": _R(_BASE, description="d2l AlexNet at 224x224"),
    # Activation functions: the paper's Figure 1 in small.
    "ch04/relu": _R(_BASE, description="ReLU"),
    "ch04/sigmoid": _R(_BASE, model_kwargs={"activation": "sigmoid"}, description="sigmoid"),
    "ch04/tanh": _R(_BASE, model_kwargs={"activation": "tanh"}, description="tanh"),
    # Dropout on and off.
    "ch05/dropout": _R(_BASE, epochs=20, description="dropout p=0.5"),
    "ch05/no_dropout": _R(_BASE, epochs=20, model_kwargs={"dropout": 0.0}, description="no dropout"),
    # Dropout where it acts, on a CPU: AlexNet's dense head alone on the pixels (no convolutions), with and without.
    "ch05/head_dropout": _HEAD_BASE,
    "ch05/head_no_dropout": _R(_HEAD_BASE, model_kwargs={"width": 1024, "dropout": 0.0},
                               description="AlexNet's dense head alone, 1024 wide, no dropout"),
    # Augmentation on and off.
    "ch06/no_augment": _R(_BASE, epochs=20, description="no augmentation"),
    "ch06/shift": _R(_BASE, epochs=20, augment="shift", description="flip + 2-pixel shifts"),
    "ch06/crop": _R(_BASE, epochs=20, augment="crop", description="flip + random resized crops"),
    # Training: the seeds' two settings.
    "ch07/adam_b128": _R(_BASE, optimizer="adam", lr=1e-3, description="Adam, lr 1e-3, batch 128"),
    "ch07/sgd_b1024_xavier": _R(_BASE, momentum=0.0, lr=0.01, batch_size=1024, init="xavier",
                                description="SGD, lr 0.01, batch 1024, Xavier init"),
    # ... and the way from the baseline to it, one change at a time (and batch 1024 with a scaled learning rate)
    "ch07/b1024": _R(_BASE, batch_size=1024, description="batch 1024 (SGD m 0.9, lr 0.01, default init)"),
    "ch07/b1024_m0": _R(_BASE, batch_size=1024, momentum=0.0, description="batch 1024, no momentum"),
    "ch07/b1024_lr0.08": _R(_BASE, batch_size=1024, lr=0.08, description="batch 1024, lr 0.08 (x8, linear scaling)"),
    # Chapter 11 looks inside a trained d2l AlexNet: chapter 2's settings, its weights kept (experiments.run(weights=)).
    "ch11/alexnet": _R(_BASE, description="d2l AlexNet, for a look at its feature maps and mistakes"),
    # The AlexNet family, each at its native input size.
    "zoo/d2l_alexnet": _R(_BASE, description="d2l AlexNet"),
    "zoo/half_alexnet": _R(_BASE, model="half_alexnet", description="half-width AlexNet"),
    "zoo/paper_alexnet": _R(_BASE, model="paper_alexnet", description="2012 paper AlexNet (LRN, groups=2)"),
    "zoo/torchvision_alexnet": _R(_BASE, model="torchvision_alexnet", description="torchvision AlexNet"),
    # Two details of the paper against the d2l baseline: non-overlapping pooling, and the paper's initialisation.
    "pool/2x2": _R(_BASE, model_kwargs={"pool": "2x2"}, description="2x2 stride-2 max-pooling (not overlapping)"),
    "init/paper": _R(_BASE, init="paper", description="the paper's init: N(0, 0.01), biases 1 in conv2/4/5, fc6/fc7"),
    # Seed 002's CIFAR-10 experiment, on Fashion-MNIST (3 channels) here, and a fix.
    "seed002/batch4": _R(_BASE, model="torchvision_alexnet", channels=3, batch_size=4, epochs=30,
                         train_limit=10_000, description="torchvision AlexNet, SGD lr 0.01 m 0.9, batch 4, constant lr"),
    "seed002/fixed": _R(_BASE, model="torchvision_alexnet", channels=3, batch_size=128, epochs=30,
                        train_limit=10_000, augment="shift", scheduler="cosine", warmup=100, weight_decay=5e-4,
                        description="+ augmentation, cosine schedule, batch 128, weight decay"),
    # Fast: the time-to-93% schedule (see the chapter "Making AlexNet fast").
    "fast": _R(_BASE, epochs=18, lr=0.08, nesterov=True, batch_size=512, weight_decay=5e-4, label_smoothing=0.1,
               scheduler="onecycle", augment="shift", normalize=True, init="xavier", s2d_stem=True, tta=True,
               description="fast schedule: OneCycle to 0.08, Nesterov, bs 512, Xavier, normalised, "
                           "space-to-depth conv1, mirrored test images"),
    # The first version of "fast" (recorded as book/runs/fast/fast_v1.json): 20 epochs, plain first layer.
    "fast_v1": _R(_BASE, epochs=20, lr=0.08, nesterov=True, batch_size=512, weight_decay=5e-4,
                  label_smoothing=0.1, scheduler="onecycle", augment="shift", normalize=True, init="xavier",
                  description="fast schedule: OneCycle to 0.08, Nesterov, bs 512, Xavier, normalised"),
}
# The time to 93% on an H200 (chapter "Making AlexNet fast"): the fast recipe with the fused ReLU + max-pool and the
# 28x28 augmentation path, not compiled (a cold compilation alone takes longer than the whole run), and three
# schedules, tried in this order: batch 1024 for 12 epochs, the same in 10, and batch 512 for 14.
_FAST_H200 = _R(EXPERIMENTS["fast"], fused_pool=True, fast_augment=True)
EXPERIMENTS.update({
    "fast_h200": _R(_FAST_H200, epochs=12, batch_size=1024, lr=0.12,
                    description="fast recipe, fused ReLU + max-pool, shifts at 28x28; bs 1024, OneCycle to 0.12, "
                                "12 epochs"),
    "fast_h200_e10": _R(_FAST_H200, epochs=10, batch_size=1024, lr=0.12,
                        description="fast recipe, fused ReLU + max-pool, shifts at 28x28; bs 1024, OneCycle to "
                                    "0.12, 10 epochs"),
    "fast_h200_b512": _R(_FAST_H200, epochs=14, description="fast recipe, fused ReLU + max-pool, shifts at 28x28; "
                                                            "bs 512, OneCycle to 0.08, 14 epochs"),
    # The best accuracy within five minutes on one H200: a longer OneCycle of the same recipe, trained on 55,000
    # images; the 5,000 held out are evaluated every epoch, the test set once at the end. Not tuned (one attempt).
    "best": _R(_FAST_H200, epochs=100, batch_size=512, lr=0.08, val=5000, quick={"val": 500},
               description="fast recipe for 100 epochs (OneCycle to 0.08, bs 512, Nesterov, wd 5e-4, label "
                           "smoothing 0.1, shifts + flips, mirrored evaluation), 5,000 training images held out"),
    # Chosen on the held-out images over "best" and "best" with weight decay 1e-3 (book/runs/bench/NOTES.md): Cutout.
    "best_cutout": _R(_FAST_H200, epochs=100, batch_size=512, lr=0.08, val=5000, erase=10, quick={"val": 500},
                      description="the best recipe with Cutout: a 10x10 square of each 28x28 training image set to "
                                  "the background; 5,000 training images held out"),
})




def _takes(builder, arg: str) -> bool:
    return arg in inspect.signature(builder).parameters


def quick_defaults(cfg: TrainConfig) -> dict:
    """The quick profile's sizes for ``cfg`` where its ``quick`` says nothing: :data:`~.config.QUICK_BASE`, a batch
    no larger than the experiment's, and for the AlexNets (any model that takes any side; not LeNet's 28) the
    :data:`~.config.QUICK_IMAGE_SIZE` side and, for SGD from PyTorch's default initialisation, Adam (lr 1e-3) from
    Xavier initialisation: measured on the sample (1,500 images, 5 epochs, batch 32), SGD with momentum from the
    default initialisation stays at chance for the whole quick run, from Xavier (lr 0.01 to 0.05) it ends between 22%
    and 54% depending on the learning rate, and Adam from Xavier reaches 69% (sigmoid: 10%, chance)."""
    quick = dict(QUICK_BASE, batch_size=min(cfg.batch_size, QUICK_BASE["batch_size"]))
    if _takes(MODELS[cfg.model], "image_size") or cfg.model == "torchvision_alexnet":
        quick["image_size"] = QUICK_IMAGE_SIZE
        if cfg.optimizer == "sgd" and cfg.init is None:
            quick.update(optimizer="adam", lr=1e-3, init="xavier")
    return quick


# Quick sizes of the experiments that need their own (measured on 2 CPU cores: a chapter's live cell shows its effect
# in about a minute; tests/test_quick_effects.py asserts the effects). LeNet (sigmoid) with d2l's SGD stays at chance
# for all of the sample's 5,000 images many times over; with Adam (lr 3e-3, batch 64) it learns in a few epochs
# (test accuracy 0.41, 0.63, 0.65, 0.69, 0.72 after epochs 1-5, then 0.75 after 8: five are enough). Augmentation acts
# against overfitting, which needs few images seen many times: on 100 images for 30 epochs the AlexNet overfits
# (train - test over the last 5 epochs 0.19) and shifted, flipped images narrow the gap to 0.05; on 200 images for 20
# epochs in batches of 32 the two gaps are 0.07 and 0.04. Dropout, on the AlexNet in that regime, only slows the
# fitting down (100 x 48: gap 0.26 with, 0.22 without; test 0.61 and 0.64); on AlexNet's dense head alone (1,024
# wide, 1,000 images, 20 epochs, batch 64, about 10 s) it halves the gap (0.08 against 0.17) and lowers the test loss
# (0.63-0.72 against 0.88-0.96 over three seeds, at 2,048 wide), with the same test accuracy.
_OVERFIT = {"train_limit": 100, "test_limit": 100, "epochs": 30, "batch_size": 16, "optimizer": "adam", "lr": 1e-3}
_HEAD = {"train_limit": 1000, "test_limit": 500, "epochs": 20, "batch_size": 64}
QUICK: dict[str, dict] = {
    "ch02/lenet": {"train_limit": None, "test_limit": None, "epochs": 5, "batch_size": 64, "optimizer": "adam",
                   "lr": 3e-3},
    "ch05/dropout": _OVERFIT, "ch05/no_dropout": _OVERFIT,
    "ch05/head_dropout": _HEAD, "ch05/head_no_dropout": _HEAD,
    "ch06/no_augment": _OVERFIT, "ch06/shift": _OVERFIT, "ch06/crop": _OVERFIT,
    "seed002/batch4": {"train_limit": 500},  # batch 4: 125 steps per epoch already
    # the paper's AlexNet (LRN, groups) is slower per image: fewer of them (Adam from the defaults above)
    "zoo/paper_alexnet": {"train_limit": 1000, "epochs": 4},
    # (ch11/alexnet, a look inside a trained network, keeps the quick run of ch02/alexnet: the same run, so within one
    # build of the book or one test run it is trained once, weights included: history_cache.kept_weights)
}
# each experiment's quick run: its own `quick` entries over the defaults
EXPERIMENTS = {name: _R(cfg, quick={**quick_defaults(cfg), **QUICK.get(name, {}), **cfg.quick})
               for name, cfg in EXPERIMENTS.items()}


def get(name: str) -> TrainConfig:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}") from None


def build(cfg: TrainConfig) -> tuple[nn.Module, int]:
    """The model of ``cfg`` (builder ``cfg.model`` with ``cfg.model_kwargs``, 10 classes) and its input side."""
    builder = MODELS[cfg.model]
    kwargs = dict(cfg.model_kwargs, in_channels=cfg.channels, num_classes=10)
    if cfg.image_size is not None and _takes(builder, "image_size"):
        kwargs["image_size"] = cfg.image_size
    net = build_model(cfg.model, **kwargs)
    if cfg.s2d_stem:
        space_to_depth_stem(net)
    if cfg.fused_pool:
        fuse_relu_pool(net)
    return net, cfg.image_size or getattr(net, "image_size", 224)


def loaders(cfg: TrainConfig, device: torch.device, rank: int = 0, world_size: int = 1):
    """``(train_iter, test_iter)`` of ``cfg`` on its data path; under DDP each rank gets ``batch_size / world_size``."""
    batch = max(1, cfg.batch_size // world_size)  # the same global batch, split over the ranks
    common = dict(source=cfg.source, augment=cfg.augment, normalize=cfg.normalize, channels=cfg.channels,
                  train_limit=cfg.train_limit, test_limit=cfg.test_limit, seed=cfg.seed, rank=rank,
                  world_size=world_size, val=cfg.val, erase=cfg.erase)
    if cfg.data_path == "gpu":
        return gpu_loaders(batch, cfg.image_size, device=device, fast_augment=cfg.fast_augment, **common)
    # fast_augment: nothing to do here, the DataLoader path always shifts and flips the 28x28 images before resizing
    return load_data_fashion_mnist(batch, cfg.image_size, num_workers=cfg.num_workers, **common)


def _announce(profile: str, changes: dict) -> str:
    shown = lambda v: "all" if v is None else f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v  # noqa: E731
    return f"{profile} profile: " + ", ".join(f"{k} {shown(a)} -> {shown(b)}" for k, (a, b) in changes.items())


def _start_line(cfg: TrainConfig, device: torch.device, data: str, world_size: int = 1) -> str:
    """What a run is about to do, said before it starts: profile, device, model and side, data, epochs, optimizer."""
    procs = f" x {world_size} processes" if world_size > 1 else ""
    return (f"{cfg.profile} profile on {device.type}{procs}: {cfg.model} at {cfg.image_size}x{cfg.image_size}, {data} "
            f"images, {cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr:g}")


def _quick_of_the_model(cfg: TrainConfig, name: str | None, overrides: dict) -> TrainConfig:
    """A bare config (not one of :data:`EXPERIMENTS`) or one whose model was changed gets the quick sizes of the
    model that runs (an AlexNet's side would not fit LeNet); what it sets in its own ``quick`` stays."""
    if name is not None and "model" not in overrides:
        return cfg
    own = {k: v for k, v in cfg.quick.items() if k not in ("image_size", "init") or "model" not in overrides}
    return cfg.replace(quick={**quick_defaults(cfg), **own})


def _cached_run(experiment, cfg: TrainConfig, changes: dict, device: torch.device, out, weights, verbose: bool,
                world_size: int, kwargs: dict) -> dict:
    """:func:`run` through the history cache: the key is everything that decides the history (the settings as
    they run, without the description; the device type), so a name and a config that run the same share it."""
    if world_size > 1:
        raise ValueError("cache=True needs a single process (under torchrun every rank must train)")
    fields = {"config": {k: v for k, v in cfg.settings().items() if k != "description"}, "device": device.type}
    # a run that was asked for no weights keeps them anyway within one build of the book or one test run, for a later
    # page that looks inside the same network
    kept = history_cache.kept_weights(fields)
    trained = dict(kwargs, weights=weights if weights is not None else kept)
    history, hit = history_cache.cached(fields, lambda: run(experiment, **trained), weights=weights, kept=kept)
    if not hit:
        return history
    name = experiment if isinstance(experiment, str) else cfg.model
    history.update(name=name)
    history["settings"].update(experiment=name, description=cfg.description)
    s = history["settings"]
    if verbose:
        if changes:
            print(_announce(cfg.profile, changes))
        print(_start_line(cfg.replace(image_size=s["image_size"]), device, s["data"]))
        print(f"(from the history cache, trained before with the same settings, seed and library code: "
              f"{history['cache']['path']}; experiments.run(..., cache=False) trains again)")
        for e in history["epochs"]:
            acc = ("test", e["test_acc"]) if "test_acc" in e else ("val", e["val_acc"])  # val: images held out
            print(f"epoch {e['epoch']:>2}/{s['epochs']}  loss {e['loss']:.3f}  train acc {e['train_acc']:.3f}  "
                  f"{acc[0]} acc {acc[1]:.3f}  {e['img_per_s']:,.0f} img/s  {e['seconds']:.1f} s", flush=True)
    if out is not None:
        save_json(history, out)
    return history


def _test_once(history: dict, net: nn.Module, cfg: TrainConfig, device: torch.device, rank: int, world_size: int):
    """After a run with held-out images (``cfg.val``): its epochs' accuracy is ``val_acc``, and the whole test set is
    evaluated once, at the end (``history["test_acc"]``), with nothing chosen after seeing it."""
    for e in history["epochs"]:
        e["val_acc"], e["val_loss"] = e.pop("test_acc"), e.pop("test_loss", None)
    whole_test = cfg.replace(val=0, train_limit=1, test_limit=None, augment=None)
    test_iter = loaders(whole_test, device, rank, world_size)[1]
    t0 = time.perf_counter()
    history["test_acc"] = evaluate_accuracy(net, test_iter, device, cfg.amp, cfg.tta)
    history["test_images"] = num_images(test_iter)
    history["test_seconds"] = time.perf_counter() - t0


def run(experiment: str | TrainConfig, *, profile: str | None = None, device: str | torch.device | None = None,
        out: str | Path | None = None, checkpoint: str | Path | None = None, resume: bool | str = False,
        overwrite: bool = False, verbose: bool = True, cache: bool | None = None, weights: str | Path | None = None,
        **overrides) -> dict:
    """Train ``experiment`` (a name in :data:`EXPERIMENTS` or a config) in ``profile``; return the history.

    ``profile`` is ``"quick"`` or ``"full"`` (default: the config's own, else full); notebooks pass
    ``get_profile().name``. ``overrides`` are :class:`~.config.TrainConfig` fields (``epochs=1``); they win over
    the quick profile, whose other changes are printed at the start and recorded (``settings["profile_changes"]``).
    The history is written to ``out`` after every epoch; ``checkpoint``, ``resume``, ``overwrite`` as in
    :func:`~.train.train`; ``weights``: the trained model's ``state_dict`` is written there at the end (load it into
    ``build(cfg)[0]``). Values, device, paths, disk space and a checkpoint to resume are checked before the data
    is loaded, and the outputs are locked against a second run until this one ends.

    ``cache`` (default: on in the quick profile without checkpoint or resume, in one process): reuse the history of
    an identical earlier run from :mod:`.history_cache` (same settings, seed, device type, torch and library source;
    any other value trains), e.g. the zh and en twins of a chapter and its unit test share one run.
    """
    t_start = time.perf_counter()
    name = experiment if isinstance(experiment, str) else None
    cfg = _quick_of_the_model((get(name) if name else experiment).replace(**overrides), name, overrides)
    cfg, changes = cfg.for_profile(profile or cfg.profile or "full", keep=overrides)
    device = validate.check_device(device)
    cfg = cfg.resolved(device.type)
    _check_outputs(cfg, out, checkpoint, resume, overwrite)
    rank, world_size = dist.rank(), dist.world_size()  # (0, 1) unless started by torchrun
    with output_lock(*([out, checkpoint] if rank == 0 else [])):  # also while a cached history is written to out
        if cache if cache is not None else (cfg.profile == "quick" and not checkpoint and world_size == 1):
            return _cached_run(experiment, cfg, changes, device, out, weights, verbose, world_size, dict(
                profile=profile, device=device, out=out, overwrite=overwrite, verbose=verbose, cache=False,
                weights=weights, **overrides))
        torch.manual_seed(cfg.seed)  # the initial weights too depend on the seed, so one seed gives one history
        net, side = build(cfg)
        cfg = cfg.replace(image_size=side)
        _check_checkpoint(cfg, net, checkpoint, resume)
        if verbose and changes and rank == 0:
            print(_announce(cfg.profile, changes), flush=True)
        train_iter, test_iter = loaders(cfg, device, rank, world_size)
        data = f"Fashion-MNIST {cfg.source} {num_images(train_iter):,}/{num_images(test_iter):,}"
        if verbose and rank == 0:
            print(_start_line(cfg, device, data, world_size), flush=True)
        extra = dict(experiment=name or cfg.model, data=data, profile_changes={k: list(v) for k, v in changes.items()})
        history = train(net, train_iter, test_iter, config=cfg, device=device, checkpoint=checkpoint,
                        resume=resume, overwrite=overwrite, history_path=out, name=extra["experiment"],
                        verbose=verbose, extra=extra)
        # wall clock of the whole run, and the part of it outside the epochs' "elapsed" clock (data loading, model
        # building, importing the compiler); time to an accuracy = setup_seconds + that epoch's elapsed
        history["wall_seconds"] = time.perf_counter() - t_start
        history["setup_seconds"] = history["wall_seconds"] - history["epochs"][-1]["elapsed"]
        if cfg.val:
            _test_once(history, net, cfg, device, rank, world_size)
        if out is not None and rank == 0:
            save_json(history, out)
        if weights is not None and rank == 0 and history["status"] == "finished":
            atomic_torch_save(net.state_dict(), weights)
    return history


def _check_outputs(cfg: TrainConfig, out, checkpoint, resume, overwrite) -> None:
    """Before anything is built: every value of ``cfg`` and the output paths (see :mod:`.validate`)."""
    validate.check_values(cfg.settings())
    validate.check_outputs({"out": out, "checkpoint": checkpoint}, checkpoint="checkpoint", resume=resume,
                           overwrite=overwrite)


def _check_checkpoint(cfg: TrainConfig, net: nn.Module, checkpoint, resume) -> None:
    """Before the data is loaded: room on the disk for the checkpoint, and a checkpoint to resume intact and of this
    run (train() compares it again, with the settings that depend on the data loader)."""
    if checkpoint is None:
        return
    slots = {"sgd": 1 if cfg.momentum else 0}.get(cfg.optimizer, 2)  # optimizer state per weight (Adam: 2)
    size = (1 + slots) * sum(p.numel() * p.element_size() for p in net.parameters())
    validate.check_space(checkpoint, size, f"--checkpoint {checkpoint}")
    if resume and Path(checkpoint).exists():
        settings = dict(cfg.settings(), batch_size=max(1, cfg.batch_size // dist.world_size()))  # per process
        checkpoints.check_same_run(checkpoints.load(checkpoint), {"model": cfg.model, "settings": settings},
                                   checkpoint, cfg.epochs, partial=True)
