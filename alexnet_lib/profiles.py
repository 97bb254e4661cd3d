"""Two profiles, one code path: ``quick`` (CPU, bundled sample, minutes) and ``full`` (GPU, full data at 224).

:func:`get_profile` is the edge helper: the command line and the notebooks call it once (``ALEXNET_PROFILE`` if set,
else ``full`` where CUDA is available and ``quick`` elsewhere) and pass the profile's name down, e.g.
``experiments.run(name, profile=get_profile().name)``; no library function reads the environment behind the caller's
back. Only sizes differ between the two: the same models, data functions and training loop run in both (each
experiment's quick sizes are its ``quick`` overrides, see :mod:`.config` and :mod:`.experiments`).

The quick sizes come from measurement on a 2-core CPU (see :mod:`.config` and the README's profile table): at the
quick side of 68x68 the d2l AlexNet trains several times faster than at 224x224, and a quick run of about 6,000
training images takes about a minute and shows its chapter's effect.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

from .config import QUICK_BASE, QUICK_IMAGE_SIZE

__all__ = ["Profile", "PROFILES", "get_profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    source: str            # "sample": the package's stratified sample; "full": the real 60k/10k data set
    image_size: int        # AlexNet input side (the quick side still fits the d2l conv stack, see trace.valid_sizes)
    epochs: int            # default number of epochs of a chapter's training cell
    batch_size: int
    train_limit: int | None  # images per epoch taken from the training set (None: all of it)
    test_limit: int | None   # images evaluated from the test set (None: all of it)
    num_workers: int       # DataLoader worker processes

    def asdict(self) -> dict:
        return asdict(self)


_Q = QUICK_BASE  # the quick sizes have one home, config.py; a chapter that trains by hand reads them here
PROFILES = {
    "quick": Profile("quick", source=_Q["source"], image_size=QUICK_IMAGE_SIZE, epochs=_Q["epochs"],
                     batch_size=_Q["batch_size"], train_limit=_Q["train_limit"], test_limit=_Q["test_limit"],
                     num_workers=_Q["num_workers"]),
    "full": Profile("full", source="full", image_size=224, epochs=10, batch_size=128,
                    train_limit=None, test_limit=None, num_workers=8),
}


def get_profile(name: str | None = None) -> Profile:
    """The active profile: ``name`` if given, else ``$ALEXNET_PROFILE``, else ``full`` with CUDA, ``quick`` without."""
    name = name or os.environ.get("ALEXNET_PROFILE")
    if not name:
        import torch
        name = "full" if torch.cuda.is_available() else "quick"
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r} (from ALEXNET_PROFILE?); use one of {sorted(PROFILES)}") from None
