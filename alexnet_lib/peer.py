"""A peer for the benchmark: the same model and the same GPU-resident batches, trained by PyTorch Lightning.

The course's loop is one function of switches (:func:`alexnet_lib.train.train`). What would a reader pick instead?
Most likely a framework; Lightning's ``Trainer`` with ``precision="bf16-mixed"``, a channels_last model and
``torch.compile`` is the closest to the bench's best row. :func:`lightning_windows` trains the model that way on the
loader it is given and returns the images/s of each timed epoch, so the bench can put it in the same table.

Lightning is optional: :func:`unavailable` says why the row cannot run (not installed), and the bench then records
the row as skipped with that note instead of failing.
"""
from __future__ import annotations

import logging
import time

import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .train import make_optimizer

__all__ = ["unavailable", "lightning_windows"]


def _lightning():
    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl  # the older package name; raises ImportError if neither is installed
    return pl


def unavailable() -> str | None:
    """None if Lightning can be imported, else a one-line reason (for the bench's note)."""
    try:
        pl = _lightning()
    except ImportError:
        return "PyTorch Lightning is not installed (pip install lightning)"
    return None if hasattr(pl, "Trainer") else "the installed Lightning package has no Trainer"


def lightning_windows(net: nn.Module, train_iter, *, lr: float, windows: int, device: torch.device | str,
                      compile: bool = True, channels_last: bool = True, fused: bool = True) -> dict:
    """Train ``net`` for ``1 + windows`` epochs of ``train_iter`` with Lightning's ``Trainer``; images/s per epoch.

    bf16 mixed precision (``precision="bf16-mixed"``, Lightning's autocast), SGD with momentum 0.9 at ``lr`` (fused
    on CUDA and the CPU, as in the course's loop), cuDNN autotuning on (``benchmark=True``, as the course's loop
    sets), no logger, checkpoints, progress bar or validation. Each epoch is timed between Lightning's epoch-start
    and epoch-end hooks, the device synchronised at both; the first epoch (warm-up, compilation) is returned apart.
    """
    pl = _lightning()
    device = torch.device(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(device, memory_format=fmt)

    class Peer(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net
            self.step_fn = torch.compile(net) if compile else net

        def training_step(self, batch, batch_idx):
            x, y = batch
            return F.cross_entropy(self.step_fn(x.to(memory_format=fmt)), y)

        def configure_optimizers(self):  # the loop's optimizer, fused where the loop's rule has it fused
            return make_optimizer(self.net, "sgd", lr, momentum=0.9,
                                  fused=TrainConfig(fused=fused).resolved(device.type).fused)

    class Windows(pl.Callback):
        def __init__(self):
            self.seconds: list[float] = []

        def _sync(self):
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        def on_train_epoch_start(self, trainer, module):
            self._sync()
            self.t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            self._sync()
            self.seconds.append(time.perf_counter() - self.t0)

    for name in ("lightning.pytorch", "pytorch_lightning", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # its banners ("GPU available ...") are not results
    timer = Windows()
    trainer = pl.Trainer(accelerator="gpu" if device.type == "cuda" else "cpu", devices=1, precision="bf16-mixed",
                         max_epochs=1 + windows, benchmark=device.type == "cuda", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer])
    t0 = time.perf_counter()
    trainer.fit(Peer(), train_dataloaders=train_iter)
    images = len(train_iter) * train_iter.batch_size
    return {"framework": f"lightning {pl.__version__}", "first_epoch_s": timer.seconds[0],
            "img_per_s_windows": [images / s for s in timer.seconds[1:]], "wall_s": time.perf_counter() - t0}
