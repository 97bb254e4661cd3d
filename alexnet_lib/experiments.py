"""Named experiments: one configuration per recorded run of the course, runnable in either profile.

``run("ch04/sigmoid")`` trains that configuration at the active profile's size (quick on a CPU: the bundled sample at
96x96 for a few epochs; full on a GPU: all of Fashion-MNIST at the model's native size, the experiment's epochs) and
returns the history. The recorded full runs in ``book/runs/NAME.json`` were made with the same call::

    python -m alexnet_lib train --preset ch04/sigmoid --out book/runs/ch04/sigmoid.json

On CUDA the data path defaults to the GPU-resident loader with bf16 autocast and channels_last (speed switches that
the history records); elsewhere the classic DataLoader path with torchvision transforms.
"""
from __future__ import annotations

import dataclasses
import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import augment as aug
from . import dist
from .data import load_data_fashion_mnist
from .models import MODELS, build_model, space_to_depth_stem
from .profiles import get_profile
from .runs import save_json
from .train import default_device, train

__all__ = ["Experiment", "EXPERIMENTS", "get", "run"]


@dataclass(frozen=True)
class Experiment:
    model: str = "d2l_alexnet"
    epochs: int = 10                 # full-profile epochs (the quick profile caps them)
    lr: float = 0.01
    batch_size: int = 128
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    init: str | None = None
    scheduler: str | None = None
    warmup: int = 0
    label_smoothing: float = 0.0
    augment: str | None = None       # a preset of alexnet_lib.augment
    normalize: bool = False          # standardise pixels with the training set's mean and std
    channels: int = 1                # 3 replicates the grey channel (for RGB models)
    train_limit: int | None = None   # full-profile training images (None: all 60,000)
    s2d_stem: bool = False           # first convolution as pixel_unshuffle + 3x3 conv (same maths, faster on GPUs)
    tta: bool = False                # evaluate on each test image and its mirror
    model_kwargs: dict = field(default_factory=dict)
    description: str = ""


_BASE = Experiment()  # d2l AlexNet, SGD with momentum 0.9, lr 0.01, batch 128, 10 epochs
_R = dataclasses.replace

EXPERIMENTS: dict[str, Experiment] = {
    # From LeNet to AlexNet: each at its own input size, d2l's settings for LeNet.
    "ch02/lenet": Experiment(model="lenet", epochs=10, lr=0.9, momentum=0.0, batch_size=256, init="xavier",
                             description="LeNet (sigmoid) at 28x28, d2l's settings"),
    "ch02/alexnet": _R(_BASE, description="d2l AlexNet at 224x224"),
    # Activation functions: the paper's Figure 1 in small.
    "ch04/relu": _R(_BASE, description="ReLU"),
    "ch04/sigmoid": _R(_BASE, model_kwargs={"activation": "sigmoid"}, description="sigmoid"),
    "ch04/tanh": _R(_BASE, model_kwargs={"activation": "tanh"}, description="tanh"),
    # Dropout on and off.
    "ch05/dropout": _R(_BASE, epochs=20, description="dropout p=0.5"),
    "ch05/no_dropout": _R(_BASE, epochs=20, model_kwargs={"dropout": 0.0}, description="no dropout"),
    # Augmentation on and off.
    "ch06/no_augment": _R(_BASE, epochs=20, description="no augmentation"),
    "ch06/shift": _R(_BASE, epochs=20, augment="shift", description="flip + 2-pixel shifts"),
    "ch06/crop": _R(_BASE, epochs=20, augment="crop", description="flip + random resized crops"),
    # Training: the seeds' two settings.
    "ch07/adam_b128": _R(_BASE, optimizer="adam", lr=1e-3, description="Adam, lr 1e-3, batch 128"),
    "ch07/sgd_b1024_xavier": _R(_BASE, momentum=0.0, lr=0.01, batch_size=1024, init="xavier",
                                description="SGD, lr 0.01, batch 1024, Xavier init"),
    # The AlexNet family, each at its native input size.
    "zoo/d2l_alexnet": _R(_BASE, description="d2l AlexNet"),
    "zoo/half_alexnet": _R(_BASE, model="half_alexnet", description="half-width AlexNet"),
    "zoo/paper_alexnet": _R(_BASE, model="paper_alexnet", description="2012 paper AlexNet (LRN, groups=2)"),
    "zoo/torchvision_alexnet": _R(_BASE, model="torchvision_alexnet", description="torchvision AlexNet"),
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


def get(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}") from None


def _takes(builder, arg: str) -> bool:
    return arg in inspect.signature(builder).parameters


def run(name: str | Experiment, *, profile: str | None = None, out: str | Path | None = None,
        data_path: str | None = None, device: str | torch.device | None = None, amp: bool | None = None,
        channels_last: bool | None = None, compile: bool = False, fused: bool | None = None,
        checkpoint: str | Path | None = None, resume: bool = False, seed: int = 0, verbose: bool = True,
        **overrides) -> dict:
    """Train experiment ``name`` at the profile's size; write the history to ``out`` if given; return it.

    ``overrides`` replace fields of the experiment (e.g. ``epochs=1``). ``data_path`` is ``"gpu"`` (the
    GPU-resident loader, default on CUDA) or ``"loader"`` (DataLoader + torchvision transforms, default elsewhere).
    """
    t_start = time.perf_counter()
    exp = get(name) if isinstance(name, str) else name
    exp = dataclasses.replace(exp, **overrides) if overrides else exp
    p = get_profile(profile)
    device = torch.device(device) if device is not None else default_device()
    builder = MODELS[exp.model]
    kwargs = dict(exp.model_kwargs, in_channels=exp.channels, num_classes=10)
    if p.name == "quick" and _takes(builder, "image_size"):
        kwargs["image_size"] = p.image_size
    torch.manual_seed(seed)  # the initial weights too depend on the seed, so one seed gives one history
    net = build_model(exp.model, **kwargs)
    if exp.s2d_stem:
        space_to_depth_stem(net)
    size = getattr(net, "image_size", 224)
    if p.name == "quick" and exp.model == "torchvision_alexnet":
        size = p.image_size  # adaptive pooling takes any side from 63 up
    epochs = exp.epochs if p.name == "full" else min(exp.epochs, p.epochs)
    batch = exp.batch_size if p.name == "full" else min(exp.batch_size, p.batch_size)
    rank, world_size = dist.rank(), dist.world_size()  # (0, 1) unless started by torchrun
    if world_size > 1:  # the same global batch, split over the ranks
        batch = max(1, batch // world_size)
    train_limit = exp.train_limit if p.name == "full" else p.train_limit
    data_path = data_path or ("gpu" if device.type == "cuda" else "loader")
    on_gpu = device.type == "cuda"
    amp = on_gpu if amp is None else amp
    channels_last = on_gpu if channels_last is None else channels_last
    fused = on_gpu if fused is None else fused
    if data_path == "gpu":
        from .gpu_data import gpu_loaders
        train_iter, test_iter = gpu_loaders(batch, size, source=p.source, augment=exp.augment, device=device,
                                            channels=exp.channels, normalize=exp.normalize, train_limit=train_limit,
                                            test_limit=p.test_limit, rank=rank, world_size=world_size, seed=seed)
    elif data_path == "loader":
        train_iter, test_iter = load_data_fashion_mnist(
            batch, resize=size if size != 28 else None, source=p.source, augment=aug.transform(exp.augment),
            channels=exp.channels, normalize=exp.normalize, train_limit=train_limit, test_limit=p.test_limit,
            seed=seed)
    else:
        raise ValueError(f"data_path must be 'gpu' or 'loader', not {data_path!r}")
    n_train = len(train_iter.dataset)
    data = f"Fashion-MNIST {'full' if p.source == 'full' else 'sample'} {n_train:,}/{len(test_iter.dataset):,}"
    extra = dict(experiment=exp.model if isinstance(name, Experiment) else name, data=data, image_size=size,
                 augment=exp.augment, normalize=exp.normalize, data_path=data_path, channels=exp.channels,
                 model_kwargs=exp.model_kwargs, s2d_stem=exp.s2d_stem, description=exp.description)
    history = train(net, train_iter, test_iter, epochs, exp.lr, optimizer=exp.optimizer, momentum=exp.momentum,
                    nesterov=exp.nesterov, weight_decay=exp.weight_decay, init=exp.init, scheduler=exp.scheduler,
                    warmup=exp.warmup, label_smoothing=exp.label_smoothing, device=device, amp=amp,
                    channels_last=channels_last, compile=compile, fused=fused, checkpoint=checkpoint,
                    resume=resume, history_path=out, name=extra["experiment"], verbose=verbose, seed=seed,
                    tta=exp.tta, extra=extra)
    # wall clock of the whole run, and the part of it outside the epochs' "elapsed" clock (data loading, model
    # building, importing the compiler); time to an accuracy = setup_seconds + that epoch's elapsed
    history["wall_seconds"] = time.perf_counter() - t_start
    history["setup_seconds"] = history["wall_seconds"] - history["epochs"][-1]["elapsed"]
    if out is not None and rank == 0:
        save_json(history, out)
    return history
