"""What the chapters "From LeNet to AlexNet" and "Data and transforms" rely on: the recorded ch02 runs are the full
runs the prose describes, the two data paths make the same images, and a broken data folder gives a DataError that
names the file."""
import shutil
from pathlib import Path

import pytest
import torch
from torchvision import transforms

from alexnet_lib import data, experiments, runs
from alexnet_lib.gpu_data import GPULoader

RUNS = runs.set_root(Path(__file__).resolve().parent.parent / "book" / "runs")  # the repository's recorded runs


@pytest.mark.parametrize("name, size", [("ch02/lenet", 28), ("ch02/alexnet", 224)])
def test_recorded_ch02_runs_are_full_runs_of_their_experiment(name, size):
    h = runs.load(name)
    exp = experiments.get(name)
    s = h["settings"]
    assert h["status"] == "finished" and h["profile"] == "full" and h["device"] == "cuda"
    assert len(h["epochs"]) == s["epochs"] == exp.epochs
    assert s["image_size"] == size and s["data"] == "Fashion-MNIST full 60,000/10,000"
    assert (s["lr"], s["batch_size"], s["momentum"], s["init"]) == (exp.lr, exp.batch_size, exp.momentum, exp.init)
    for e in h["epochs"]:  # the fields the chapter's table and rate computation read
        assert 0 <= e["test_acc"] <= 1 and e["seconds"] > 0 and e["img_per_s"] > 0


def test_both_data_paths_make_the_same_images(cache):
    """DataLoader + Resize/ToTensor (PIL, one image at a time) vs GPULoader (one interpolation per batch)."""
    test_iter = data.load_data_fashion_mnist(16, image_size=96)[1]
    _, _, x_test, y_test = data.load_tensors()
    gpu_iter = GPULoader(x_test, y_test, 16, image_size=96, shuffle=False, device="cpu")
    (a, ya), (b, yb) = next(iter(test_iter)), next(iter(gpu_iter))
    assert a.shape == b.shape == (16, 1, 96, 96) and a.dtype == b.dtype == torch.float32
    assert torch.equal(ya, yb)
    assert (a - b).abs().max() <= 1 / 255 + 1e-6  # PIL rounds to uint8, the tensor path does not
    # the same with normalisation on both sides
    tf = transforms.Compose([transforms.Resize(96), transforms.ToTensor(), transforms.Normalize([data.MEAN], [data.STD])])
    img, _ = data.fashion_mnist(False, source="sample")[0]
    norm_iter = GPULoader(x_test[:1], y_test[:1], 1, image_size=96, shuffle=False, normalize=True, device="cpu")
    assert (tf(img) - next(iter(norm_iter))[0][0]).abs().max() <= 1 / 255 / data.STD + 1e-5


def test_truncated_copy_in_root_gives_a_data_error_naming_the_file(cache, tmp_path):
    """The chapter's demonstration: root= wins over the Debian folder, and half a file is reported, not read."""
    for name in data.FILES:
        shutil.copy(data.SAMPLE_DIR / name, tmp_path / name)
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(f.read_bytes()[:100_000])
    with pytest.raises(data.DataError, match=r"train-images-idx3-ubyte\.gz is truncated or damaged.*100,000 bytes"):
        data.fashion_mnist(True, source="full", root=tmp_path, download=False)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match=r"holds 3 of the 4 files; missing: t10k-labels-idx1-ubyte\.gz"):
        data.fashion_mnist(True, source="full", root=tmp_path, download=False)
