"""The GPU-resident data path: the whole data set lives on the device as uint8, and every batch is sampled,
converted, augmented and resized there, so the training loop never waits for the CPU.

Fashion-MNIST is 70,000 images of 28x28 bytes, 55 MB: nothing for a GPU. Resizing to 224x224 on the host and
copying 200 KB per image (fp32) is what makes the classic DataLoader loop slow; here the copy is done once.
The loader works on the CPU too (the quick profile and the tests use it there), and with ``rank``/``world_size``
each process of a DDP job reads its own shard of every epoch's permutation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .augment import erase_squares, gpu_augment
from .data import MEAN, STD, load_tensors, split_val
from .validate import check_data_args

__all__ = ["GPULoader", "gpu_loaders", "shift_flip_small", "fast_shift_resize"]


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
        fast_augment: make each batch with :func:`fast_shift_resize` (shift/flip and normalise the small uint8
            images, then one resize) instead of ``gpu_augment`` at full size; for ``augment`` "shift" or None.
        erase: Cutout (:func:`alexnet_lib.augment.erase_squares`): a square this many pixels of the small image
            wide set to the background in each image (0: none), after the other augmentation.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, image_size: int | None = None,
                 augment: str | None = None, shuffle: bool = True, drop_last: bool = False, channels: int = 1,
                 normalize: bool = False, device: torch.device | str = "cuda", rank: int = 0, world_size: int = 1,
                 seed: int = 0, limit: int | None = None, fast_augment: bool = False, erase: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if fast_augment and augment not in (None, "shift"):
            raise ValueError(f"fast_augment does the 'shift' preset (or none), not {augment!r}; "
                             "use fast_augment=False for it")
        self.device = torch.device(device)
        if limit is not None and limit < len(x):
            keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
            x, y = x[keep], y[keep]
        self.x = x.to(self.device).unsqueeze(1)  # (N, 1, H, W) uint8
        self.y = y.to(self.device)
        self.batch_size, self.image_size, self.augment = batch_size, image_size or x.shape[-1], augment
        self.shuffle, self.drop_last, self.channels, self.normalize = shuffle, drop_last, channels, normalize
        self.rank, self.world_size, self.fast_augment, self.erase = rank, world_size, fast_augment, erase
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
            if self.fast_augment:
                x = fast_shift_resize(self.x[b], self.image_size, self.aug_generator,
                                      augment=self.augment == "shift", normalize=self.normalize, erase=self.erase)
            else:
                x = self.x[b].float().div_(255)
                x = gpu_augment(x, self.augment, self.image_size, self.aug_generator)
                side = round(self.erase * self.image_size / self.x.shape[-1])  # the square, scaled with the image
                x = erase_squares(x, side, self.aug_generator)
                if self.normalize:
                    x = (x - MEAN) / STD
            if self.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            yield x.contiguous(), self.y[b]


def gpu_loaders(batch_size: int, image_size: int | None = None, *, source: str = "sample", root=None,
                augment: str | None = None, normalize: bool = False, channels: int = 1,
                train_limit: int | None = None, test_limit: int | None = None, seed: int = 0, rank: int = 0,
                world_size: int = 1, test_batch_size: int | None = None, device: torch.device | str = "cuda",
                download: bool = True, val: int = 0, fast_augment: bool = False, erase: int = 0):
    """``(train_iter, test_iter)`` on ``device``: the GPU-resident twin of
    :func:`alexnet_lib.data.load_data_fashion_mnist`, with the same arguments (``test_batch_size`` defaults to
    ``max(batch_size, 500)`` here: evaluation is one kernel launch per batch). ``val`` > 0: the second loader goes
    through that many held-out training images instead of the test set. ``fast_augment``, ``erase`` (training images
    only): see :class:`GPULoader`."""
    check_data_args(batch_size, image_size, channels)  # before any file is read
    xtr, ytr, xte, yte = load_tensors(source=source, root=root, download=download)
    if val:
        keep, held = split_val(len(xtr), val)
        xtr, ytr, xte, yte = xtr[keep], ytr[keep], xtr[held], ytr[held]
    common = dict(image_size=image_size, channels=channels, normalize=normalize, device=device, seed=seed,
                  rank=rank, world_size=world_size, fast_augment=fast_augment)
    train = GPULoader(xtr, ytr, batch_size, augment=augment, shuffle=True, drop_last=True, limit=train_limit,
                      erase=erase, **common)
    test = GPULoader(xte, yte, test_batch_size or max(batch_size, 500), augment=None, shuffle=False,
                     limit=test_limit, **common)
    return train, test


def shift_flip_small(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 2,
                     border: int = 0) -> torch.Tensor:
    """The ``shift`` preset on small uint8 images (N, C, H, W) themselves, as one gather: a horizontal flip with
    probability 1/2, then a move by up to ``max_shift`` whole pixels each way, zeros shifted in. ``border`` > 0
    returns that many more pixels on each side (what lies there after the move: image or zeros).

    The draws are those of :func:`alexnet_lib.augment.gpu_augment` ("shift"), in the same order, so with the same
    generator both paths give every image the same flip and the same shift.
    """
    n, c, h, w = x.shape
    dev = x.device
    flip = torch.rand(n, device=dev, generator=generator) < 0.5
    kx = torch.randint(-max_shift, max_shift + 1, (n,), device=dev, generator=generator)
    ky = torch.randint(-max_shift, max_shift + 1, (n,), device=dev, generator=generator)
    cols = torch.arange(-border, w + border, device=dev)
    cols = torch.where(flip[:, None], w - 1 - cols, cols) + kx[:, None]  # (N, W') source column of each column
    rows = torch.arange(-border, h + border, device=dev) + ky[:, None]    # (N, H') source row of each row
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    src = rows.clamp(0, h - 1)[:, :, None] * w + cols.clamp(0, w - 1)[:, None, :]  # (N, H', W') flat source index
    out = x.flatten(2).gather(2, src.flatten(1)[:, None, :].expand(-1, c, -1)) * inside.flatten(1)[:, None]
    return out.view(n, c, h + 2 * border, w + 2 * border)


def fast_shift_resize(x: torch.Tensor, size: int, generator: torch.Generator | None = None, *,
                      augment: bool = True, normalize: bool = False, erase: int = 0) -> torch.Tensor:
    """uint8 (N, C, h, h) -> float (N, C, size, size): shift/flip and normalise at h x h, then one bilinear resize.

    The images of ``gpu_augment(x / 255, "shift", size)`` (normalised afterwards if ``normalize``), which builds a
    size x size sampling grid per image to get them (205 MB for 512 images at 224): the shift moves whole source
    pixels, and normalising commutes with bilinear interpolation, whose weights sum to one. Where ``size`` is a
    multiple of h (224 = 8 x 28) the resize runs on the image with a one-pixel border and is cropped, so the
    outermost output pixels blend with what lies beyond the edge as grid_sample's do, and the two paths agree to
    float rounding; at other sizes those pixels repeat the edge pixel. Without augmentation it is ``gpu_resize`` of
    the normalised image. ``erase``: Cutout on the small image after the shift (:func:`erase_squares`).
    """
    h = x.shape[-1]
    s, border = (size // h, 1) if augment and size % h == 0 else (0, 0)
    if augment:
        x = shift_flip_small(x, generator, border=border)
    x = erase_squares(x, erase, generator, border=border)
    x = x.float().div_(255)
    if normalize:
        x = x.sub_(MEAN).div_(STD)
    if x.shape[-1] == size:
        return x
    out = F.interpolate(x, size=(size + 2 * s, size + 2 * s), mode="bilinear", align_corners=False)
    return out[..., s:-s, s:-s] if s else out
