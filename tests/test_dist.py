"""The distributed path: the same `train` command under torchrun with 2 CPU processes (gloo backend)."""
import json
import os
import subprocess
import sys

import pytest

import fakes


# LeNet on 1,000 of the sample's images: the launch, not the training, is what is tested
ARGS = ["train", "--model", "lenet", "--lr", "0.5", "--epochs", "2", "--profile", "quick", "--seed", "0",
        "--train-limit", "1000", "--test-limit", "200"]


def _ddp(tmp_path):
    """The `train` command under torchrun, two gloo processes."""
    out = tmp_path / "ddp.json"
    # --standalone: a free port of its own, so runs on parallel pytest-xdist workers do not meet on 29500
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "alexnet_lib",
           *ARGS, "--out", str(out)]
    env = dict(os.environ, ALEXNET_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(out.read_text()), p.stdout


def _single(tmp_path):
    """The same command in one process: this one (fakes.main_here)."""
    out = tmp_path / "single.json"
    p = fakes.main_here([*ARGS, "--out", str(out), "--device", "cpu"], cwd=tmp_path, cache=tmp_path / "cache")
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_gloo_processes_train_with_one_history(tmp_path, one_thread):
    ddp, stdout = _ddp(tmp_path)
    single = _single(tmp_path)
    assert ddp["status"] == "finished" and ddp["settings"]["world_size"] == 2
    # the same global batch, split over the ranks
    assert ddp["settings"]["batch_size"] * 2 == single["settings"]["batch_size"]
    # metrics are summed over ranks: every epoch covers the whole (quick) training set, as on one process
    assert [e["images"] for e in ddp["epochs"]] == [e["images"] for e in single["epochs"]] == \
        [single["settings"]["train_limit"]] * len(single["epochs"])
    assert all(0 <= e["test_acc"] <= 1 and e["loss"] > 0 for e in ddp["epochs"])
    # only rank 0 prints
    assert stdout.count("epoch  1/2") == 1 and stdout.count("done:") == 1


def test_each_rank_draws_its_own_augmentations():
    """Same permutation split over the ranks, but the crops and flips differ between ranks."""
    import torch

    from alexnet_lib.gpu_data import GPULoader

    img = (torch.arange(28 * 28) % 251).to(torch.uint8).view(1, 28, 28)
    x, y = img.repeat(64, 1, 1), torch.arange(64)  # all images alike: only the augmentation can tell them apart
    ranks = [GPULoader(x, y, 8, image_size=28, augment="crop", device="cpu", rank=r, world_size=2, seed=0) for r in (0, 1)]
    (x0, y0), (x1, y1) = (next(iter(loader)) for loader in ranks)
    assert not set(y0.tolist()) & set(y1.tolist())  # disjoint shards of one permutation
    assert not torch.equal(x0, x1)
    one = GPULoader(x, y, 8, image_size=28, augment="crop", device="cpu", seed=0)
    assert one.aug_generator is one.generator  # a single process draws as it always did
