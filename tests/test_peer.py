"""The Lightning peer of the bench (alexnet_lib.peer): its skip note, and a tiny run where Lightning is installed."""
import builtins

import pytest
import torch

from alexnet_lib import gpu_data, models, peer


def test_unavailable_names_the_missing_package(monkeypatch):
    real_import = builtins.__import__

    def no_lightning(name, *args, **kwargs):
        if name.split(".")[0] in ("lightning", "pytorch_lightning"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lightning)
    assert "pip install lightning" in peer.unavailable()
    with pytest.raises(ImportError):
        peer.lightning_windows(torch.nn.Linear(1, 1), [], lr=0.1, windows=1, device="cpu")


def test_lightning_trains_the_same_model_on_the_same_batches(one_thread):
    if peer.unavailable():
        pytest.skip(peer.unavailable())
    torch.manual_seed(0)
    net = models.space_to_depth_stem(models.d2l_alexnet(image_size=96))
    before = net.features[0].weight.detach().clone()
    train_iter, _ = gpu_data.gpu_loaders(4, 96, source="sample", device="cpu", train_limit=8, test_limit=4)
    out = peer.lightning_windows(net, train_iter, lr=0.01, windows=2, device="cpu", compile=False)
    assert out["framework"].startswith("lightning ")
    assert len(out["img_per_s_windows"]) == 2 and all(v > 0 for v in out["img_per_s_windows"])
    assert not torch.equal(before, net.features[0].weight.detach())  # it trained the net it was given
