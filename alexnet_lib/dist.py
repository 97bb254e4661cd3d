"""Data parallelism with ``torch.distributed``: the same training loop on N processes, one per GPU.

Run any training command under torchrun::

    torchrun --nproc_per_node=2 -m alexnet_lib train --preset fast --compile --out runs/fast_2gpu.json

and on several machines the same line on each, meeting at one machine's address (the c10d rendezvous; ranks are
numbered once all have joined, so no ``--node-rank``)::

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 --rdzv-id fast16 \\
        -m alexnet_lib train --preset fast --compile --out runs/fast_16gpu.json

Each process (rank) gets its own shard of every epoch (``DistributedSampler`` for the DataLoader path, a slice of the
shared permutation for the GPU-resident path) and ``global batch / N`` images per step, so the optimizer sees the same
global batch as on one GPU. :class:`torch.nn.parallel.DistributedDataParallel` all-reduces (averages) the gradients
during the backward pass, so every rank applies the same update. Losses and accuracies are summed over ranks before
they are recorded, so the history means the same as a one-GPU run's; only rank 0 prints, shows progress, and writes
checkpoints and histories. The same command runs on CPUs with the gloo backend (the tests do that with 2
processes, and with two "machines" on 127.0.0.1). DDP's own options (bucket size, gradients as bucket views,
static graph, bf16 gradient compression) are TrainConfig fields, applied by :func:`wrap`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

__all__ = ["distributed", "is_distributed", "rank", "world_size", "wrap", "COMM_HOOKS"]


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


# DDP communication hooks by name: what runs on each gradient bucket instead of a plain fp32 all-reduce.
COMM_HOOKS = {"bf16": default_hooks.bf16_compress_hook}  # cast to bf16, all-reduce (half the bytes), cast back


def wrap(net: nn.Module, device: torch.device, *, bucket_cap_mb: float | None = None,
         gradient_as_bucket_view: bool = False, static_graph: bool = False, comm_hook: str | None = None) -> nn.Module:
    """``DistributedDataParallel(net)`` with these options when running distributed, else ``net`` unchanged.

    ``bucket_cap_mb``: gradients are all-reduced in buckets of this many MiB (None: DDP's 25), each as soon as its
    gradients are ready; ``gradient_as_bucket_view``: the gradients live in the buckets (no copy in or out);
    ``static_graph``: every step uses the same parameters; ``comm_hook``: a name in :data:`COMM_HOOKS`.
    """
    if not is_distributed():
        return net
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel(net, device_ids=ids, bucket_cap_mb=bucket_cap_mb,
                                              gradient_as_bucket_view=gradient_as_bucket_view,
                                              static_graph=static_graph)
    if comm_hook is not None:
        ddp.register_comm_hook(None, COMM_HOOKS[comm_hook])  # state None: the default process group
    return ddp
