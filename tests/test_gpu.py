"""On a CUDA GPU: the training step queues its work and never makes the host wait for the device.

A step that waits (a ``.item()``, a ``torch.tensor(n, device="cuda")``, a boolean-mask index) drains the GPU's queue:
the GPU then idles while Python launches the next step's kernels. ``torch.cuda.set_sync_debug_mode("error")`` turns
every such wait into an error. Skipped where there is no CUDA GPU (CI); run on the GPU machine with
``pytest tests/test_gpu.py``.
"""
import pytest
import torch

from alexnet_lib.experiments import build, get, loaders
from alexnet_lib.train import compiled, setup, train_step

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CASES = {
    "eager": dict(fused_pool=False),
    "eager, fused ReLU + max-pool": dict(fused_pool=True),
    "compiled, fused ReLU + max-pool": dict(fused_pool=True, compile=True),
}


@pytest.mark.parametrize("case", CASES)
def test_a_training_step_never_waits_for_the_gpu(case):
    device = torch.device("cuda")
    cfg = get("fast_h200_b512").replace(profile="full", source="sample", batch_size=64, train_limit=64 * 8,
                                        test_limit=64, epochs=2, **CASES[case]).resolved("cuda")
    net, side = build(cfg)
    cfg = cfg.replace(image_size=side)
    train_iter, test_iter = loaders(cfg, device)
    run = setup(net, train_iter, test_iter, cfg, device, verbose=False)
    run.model = compiled(run)
    run.stats = torch.zeros(3, device=device)
    run.first_bad = run.first_blowup = torch.full((), -1, device=device)
    for step, (x, y) in enumerate(train_iter):  # a first epoch: compilation, cuDNN, the Triton kernels' first launch
        train_step(run, x, y, step)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:  # the second epoch, its batches (shuffle, shifts, resize) included
        for step, (x, y) in enumerate(train_iter):
            train_step(run, x, y, step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert run.stats[2].item() == 2 * 64 * 8  # both epochs' images counted


def test_the_sync_check_catches_a_wait():
    """The check itself: the step's old way of counting images (a tensor made on the GPU from a Python number)."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with pytest.raises(RuntimeError, match="synchroniz"):
            torch.tensor(64, device="cuda")
    finally:
        torch.cuda.set_sync_debug_mode("default")
