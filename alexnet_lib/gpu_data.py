"""The GPU-resident data path: the whole data set lives on the device as uint8, and every batch is sampled,
converted, augmented and resized there, so the training loop never waits for the CPU.

Fashion-MNIST is 70,000 images of 28x28 bytes, 55 MB: nothing for a GPU. Resizing to 224x224 on the host and
copying 200 KB per image (fp32) is what makes the classic DataLoader loop slow; here the copy is done once.
The loader works on the CPU too (the quick profile and the tests use it there), and with ``rank``/``world_size``
each process of a DDP job reads its own shard of every epoch's permutation.
"""
from __future__ import annotations

import torch

from .augment import gpu_augment
from .data import MEAN, STD, load_tensors
from .validate import check_data_args

__all__ = ["GPULoader", "gpu_loaders"]


class GPULoader:
    """Iterate over ``(images, labels)`` batches made on ``device`` from uint8 images ``x`` (N, H, W).

    Args:
        x, y: uint8 images (N, H, W) and int64 labels, on any device (moved to ``device`` once).
        batch_size: images per batch (per process under DDP).
        image_size: output side (``None`` keeps the images' own); images are resized (and augmented) on the device.
        augment: a preset name from :mod:`.augment` (training only), or None.
        shuffle, drop_last: as for a DataLoader.
        channels: 3 replicates the grey channel.
        normalize: subtract the training mean and divide by the standard deviation.
        rank, world_size: this process's shard of each epoch (DDP).
        seed: seeds the permutation and the augmentation, so runs are reproducible. Under DDP every rank draws the
            same permutation (each takes its own slice) but its own augmentations (a second generator per rank).
        limit: use only this many images (``None``: all), the same subset as the DataLoader path's limits.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, image_size: int | None = None,
                 augment: str | None = None, shuffle: bool = True, drop_last: bool = False, channels: int = 1,
                 normalize: bool = False, device: torch.device | str = "cuda", rank: int = 0, world_size: int = 1,
                 seed: int = 0, limit: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        if limit is not None and limit < len(x):
            keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
            x, y = x[keep], y[keep]
        self.x = x.to(self.device).unsqueeze(1)  # (N, 1, H, W) uint8
        self.y = y.to(self.device)
        self.batch_size, self.image_size, self.augment = batch_size, image_size or x.shape[-1], augment
        self.shuffle, self.drop_last, self.channels, self.normalize = shuffle, drop_last, channels, normalize
        self.rank, self.world_size = rank, world_size
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        # one process: the same generator as the permutation (so single-GPU runs are what they always were);
        # several: each rank its own, or every rank would crop/flip the images at a batch position alike
        self.aug_generator = self.generator if world_size == 1 else \
            torch.Generator(device=self.device).manual_seed(seed + 1 + rank)
        self.epoch = 0

    @property
    def num_images(self) -> int:
        """Images per epoch, all processes together (``len(loader.dataset)`` of a DataLoader)."""
        return len(self.x)

    def _indices(self) -> torch.Tensor:
        n = len(self.x)
        if self.shuffle:
            idx = torch.randperm(n, device=self.device, generator=self.generator)
        else:
            idx = torch.arange(n, device=self.device)
        per_rank = n // self.world_size if self.world_size > 1 else n
        return idx[self.rank * per_rank:(self.rank + 1) * per_rank] if self.world_size > 1 else idx

    def __len__(self) -> int:
        n = len(self.x) // self.world_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        idx = self._indices()
        self.epoch += 1
        for i in range(len(self)):
            b = idx[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.x[b].float().div_(255)
            x = gpu_augment(x, self.augment, self.image_size, self.aug_generator)
            if self.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            if self.normalize:
                x = (x - MEAN) / STD
            yield x.contiguous(), self.y[b]


def gpu_loaders(batch_size: int, image_size: int | None = None, *, source: str = "sample", root=None,
                augment: str | None = None, normalize: bool = False, channels: int = 1,
                train_limit: int | None = None, test_limit: int | None = None, seed: int = 0, rank: int = 0,
                world_size: int = 1, test_batch_size: int | None = None, device: torch.device | str = "cuda",
                download: bool = True):
    """``(train_iter, test_iter)`` on ``device``: the GPU-resident twin of
    :func:`alexnet_lib.data.load_data_fashion_mnist`, with the same arguments (``test_batch_size`` defaults to
    ``max(batch_size, 500)`` here: evaluation is one kernel launch per batch)."""
    check_data_args(batch_size, image_size, channels)  # before any file is read
    xtr, ytr, xte, yte = load_tensors(source=source, root=root, download=download)
    common = dict(image_size=image_size, channels=channels, normalize=normalize, device=device, seed=seed,
                  rank=rank, world_size=world_size)
    train = GPULoader(xtr, ytr, batch_size, augment=augment, shuffle=True, drop_last=True, limit=train_limit,
                      **common)
    test = GPULoader(xte, yte, test_batch_size or max(batch_size, 500), augment=None, shuffle=False,
                     limit=test_limit, **common)
    return train, test
