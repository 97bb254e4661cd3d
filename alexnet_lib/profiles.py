"""Two profiles, one code path: ``quick`` (CPU, bundled sample, minutes) and ``full`` (GPU, full data at 224).

:func:`get_profile` is the edge helper: the command line and the notebooks call it once (``ALEXNET_PROFILE`` if set,
else ``full`` where CUDA is available and ``quick`` elsewhere) and pass the profile's name down, e.g.
``experiments.run(name, profile=get_profile().name)``; no library function reads the environment behind the caller's
back. Only sizes differ between the two: the same models, data functions and training loop run in both (each
experiment's quick sizes are its ``quick`` overrides, see :mod:`.config` and :mod:`.experiments`).

The quick sizes come from measurement on a 2-core CPU: the d2l AlexNet trains at about 13 images/s at 224x224
there, and several times faster at the quick profile's smaller side (see the preface chapter), so a quick training
cell sees about a thousand images and finishes in seconds (each notebook runs twice in the tests: zh and en).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass

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


PROFILES = {
    "quick": Profile("quick", source="sample", image_size=96, epochs=2, batch_size=32,
                     train_limit=512, test_limit=256, num_workers=0),
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
