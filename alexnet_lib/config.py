"""One typed home for every training option: :class:`TrainConfig`, a frozen dataclass.

A named experiment is a ``TrainConfig`` value (:mod:`.experiments`), the command line's flags are generated from its
fields (:mod:`.cli`), and a benchmark row is ``dataclasses.replace(base, ...)`` (:mod:`.bench`). Adding an option is
one edit here.

The profile is a field, not a hidden global: a config says which profile it is sized for. ``cfg.for_profile("quick")``
returns the config the quick profile runs (the experiment's own ``quick`` overrides over :data:`QUICK_BASE`) and the
list of values it changed, which :func:`.experiments.run` prints at the start and records in the history. Values
that depend on the device (``None`` in ``amp``, ``channels_last``, ``fused``, ``data_path``) are decided once by
:meth:`TrainConfig.resolved`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainConfig", "QUICK_BASE", "QUICK_IMAGE_SIZE", "PROFILES", "BUILD_FIELDS", "fields"]

PROFILES = ("quick", "full")
# The fields that say how the model and the data are built (by :mod:`.experiments`); the others are read by the
# training loop itself. A bare ``train(net, loaders, ...)`` records only the loop's fields: it did not build the rest.
BUILD_FIELDS = ("model", "model_kwargs", "batch_size", "source", "image_size", "augment", "normalize", "channels",
                "train_limit", "test_limit", "num_workers", "data_path", "s2d_stem", "fused_pool", "fast_augment",
                "val", "erase")

# The quick profile's sizes wherever an experiment's own ``quick`` does not say otherwise: the bundled sample,
# 1,500 training images for five epochs in batches of 32 (measured on a 2-core CPU: the d2l AlexNet at the quick side
# with Adam reaches about 69% test accuracy in about a minute; see the preface chapter).
QUICK_BASE: dict[str, Any] = {"source": "sample", "epochs": 5, "batch_size": 32, "train_limit": 1500,
                              "test_limit": 300, "num_workers": 0}
QUICK_IMAGE_SIZE = 68  # the quick side of the AlexNets: about the smallest the d2l conv stack takes (65), and / 4


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run is: model, optimisation, schedule, data, speed switches, seed and profile."""
    # model
    model: str | None = None          # a builder in alexnet_lib.models.MODELS (None: train() was given the net)
    model_kwargs: dict = field(default_factory=dict)  # passed to the builder (activation, dropout, ...)
    init: str | None = None           # "xavier", or None for PyTorch's default initialisation
    # optimisation
    optimizer: str = "sgd"            # "sgd", "adam" or "adamw"
    lr: float = 0.01                  # the (peak) learning rate
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    # schedule
    epochs: int = 10
    scheduler: str | None = None      # "onecycle", "cosine" or None (constant)
    warmup: int = 0                   # linear warm-up steps
    # data
    batch_size: int = 128             # the global batch (split over the processes under DDP)
    source: str = "full"              # "full" Fashion-MNIST or the bundled "sample"
    image_size: int | None = None     # input side; None: the model's native side
    augment: str | None = None        # a preset of alexnet_lib.augment
    erase: int = 0                    # Cutout: a square this many pixels of the 28x28 image wide set to the background
    normalize: bool = False           # standardise pixels with the training set's mean and std
    channels: int = 1                 # 3 replicates the grey channel (for RGB models)
    train_limit: int | None = None    # training images used (None: all)
    test_limit: int | None = None     # test images evaluated (None: all)
    val: int = 0                      # hold out this many training images: evaluated each epoch, test set at the end
    fast_augment: bool = False        # GPU path: shift/flip, normalise at 28x28, one resize (DataLoader: always)
    num_workers: int = 8              # DataLoader worker processes (the "loader" data path)
    data_path: str | None = None      # "gpu" (GPU-resident) or "loader" (DataLoader); None: gpu on CUDA
    # speed switches: they change speed, not the maths (None: decided by the device, see resolved())
    amp: bool | None = None           # bf16 autocast
    channels_last: bool | None = None  # NHWC memory layout
    fused: bool | None = None         # the optimizer's single-pass step (CUDA and CPU; None: on there)
    compile: bool | str = False       # torch.compile, or a mode such as "reduce-overhead"
    s2d_stem: bool = False            # first convolution as pixel_unshuffle + 3x3 conv (same maths)
    fused_pool: bool = False          # ReLU + max pooling as one Triton operator (alexnet_lib.kernels; same maths)
    cudnn_benchmark: bool = True      # CUDA: time cuDNN's algorithms for each new shape (slower first steps)
    tta: bool = False                 # evaluate on each test image and its mirror
    item_every_step: bool = False     # read the loss with .item() after every step (a host sync; for measuring it)
    check_every: int = 50             # on a GPU, check the loss for NaN/inf every this many steps
    # several GPUs: DistributedDataParallel's options (used only under torchrun; see alexnet_lib.dist.wrap)
    bucket_cap_mb: float | None = None  # gradient buckets of this many MiB (None: DDP's 25)
    gradient_as_bucket_view: bool = False  # gradients live in the all-reduce buckets (no copies)
    static_graph: bool = False        # every step uses the same parameters (DDP skips its per-step checks)
    comm_hook: str | None = None      # "bf16": all-reduce the gradients in bf16 (half the bytes)
    # run
    seed: int = 0
    profile: str | None = None        # the profile this config was sized for (None: not by a profile)
    quick: dict = field(default_factory=dict)  # field -> value used by the quick profile (over QUICK_BASE)
    description: str = ""

    def __post_init__(self):
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(self.quick) - names)
        if unknown:
            raise ValueError(f"quick overrides name unknown fields {unknown}; TrainConfig has {sorted(names)}")
        if self.data_path not in (None, "gpu", "loader"):
            raise ValueError(f"data_path must be 'gpu', 'loader' or None, not {self.data_path!r}")
        if self.profile not in (None, *PROFILES):
            raise ValueError(f"unknown profile {self.profile!r}; use one of {list(PROFILES)}")
        if not 0 <= self.erase < 28:
            raise ValueError(f"erase is the side of the square blanked in each 28x28 training image: 0 (none) to 27, "
                             f"not {self.erase}")
        if self.comm_hook not in (None, "bf16"):
            raise ValueError(f"comm_hook must be 'bf16' or None, not {self.comm_hook!r}")
        if self.bucket_cap_mb is not None and not self.bucket_cap_mb > 0:
            raise ValueError(f"bucket_cap_mb must be greater than 0 (MiB), not {self.bucket_cap_mb}")
        if self.bucket_cap_mb is not None and self.compile and self.bucket_cap_mb < 1:
            raise ValueError(f"bucket_cap_mb {self.bucket_cap_mb} is below 1 MiB, DDP's first bucket, which "
                             "torch.compile's split of the graph at the buckets does not allow: use 1 or more")

    def replace(self, **changes) -> TrainConfig:
        """``dataclasses.replace`` with a clear message for a misspelt field."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; see alexnet_lib.config.TrainConfig")
        return dataclasses.replace(self, **changes)

    def for_profile(self, profile: str, keep=()) -> tuple[TrainConfig, dict[str, tuple]]:
        """The config run in ``profile`` and ``{field: (asked, ran)}`` for every value the profile changed.

        ``"full"`` runs the config as it is. ``"quick"`` applies :data:`QUICK_BASE`, then the config's own ``quick``
        overrides, except the fields named in ``keep`` (what the caller set explicitly is never overridden).
        """
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; use one of {list(PROFILES)}")
        if profile == "full":
            return self.replace(profile="full"), {}
        quick = {k: v for k, v in {**QUICK_BASE, **self.quick}.items() if k not in keep}
        changes = {k: (getattr(self, k), v) for k, v in quick.items() if getattr(self, k) != v}
        return self.replace(profile="quick", **quick), changes

    def resolved(self, device_type: str) -> TrainConfig:
        """The device-dependent switches decided for ``device_type`` ("cuda", "cpu", "mps")."""
        cuda = device_type == "cuda"
        pick = lambda value, default: default if value is None else value  # noqa: E731
        return self.replace(amp=pick(self.amp, cuda), channels_last=pick(self.channels_last, cuda),
                            fused=pick(self.fused, True) and device_type in ("cuda", "cpu"),
                            data_path=pick(self.data_path, "gpu" if cuda else "loader"))

    def settings(self, build: bool = True) -> dict:
        """The fields as a plain dict for the history (without ``quick``); ``build=False``: the loop's fields only."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "quick" and (build or f.name not in BUILD_FIELDS)}


def fields() -> list[dataclasses.Field]:
    """The fields of :class:`TrainConfig`, in order (the command line is generated from them)."""
    return list(dataclasses.fields(TrainConfig))
