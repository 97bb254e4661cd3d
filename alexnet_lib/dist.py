"""Data parallelism with ``torch.distributed``: the same training loop on N processes, one per GPU.

Run any training command under torchrun::

    torchrun --nproc_per_node=2 -m alexnet_lib train --preset fast --compile --out runs/fast_2gpu.json

Each process (rank) gets its own shard of every epoch (``DistributedSampler`` for the DataLoader path, a slice of the
shared permutation for the GPU-resident path) and ``global batch / N`` images per step, so the optimizer sees the same
global batch as on one GPU. :class:`torch.nn.parallel.DistributedDataParallel` all-reduces (averages) the gradients
during the backward pass, so every rank applies the same update. Losses and accuracies are summed over ranks before
they are recorded, so the history means the same as a one-GPU run's; only rank 0 prints, shows progress, and writes
checkpoints and histories. The same command runs on CPUs with the gloo backend (the tests do that with 2 processes).
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["distributed", "is_distributed", "rank", "world_size", "wrap"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


@contextmanager
def distributed():
    """Under torchrun (``WORLD_SIZE`` > 1): start the process group -- NCCL with GPUs, gloo without --, pin this
    rank's GPU, yield ``(rank, world_size)``, and always destroy the group, also on errors. Elsewhere yield (0, 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        yield rank(), world_size()
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield dist.get_rank(), dist.get_world_size()
    finally:
        dist.destroy_process_group()


def wrap(net: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(net)`` when running distributed, else ``net`` unchanged."""
    if not is_distributed():
        return net
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)
