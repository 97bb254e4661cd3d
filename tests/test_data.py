"""The normal data path: the bundled sample through torchvision, the loaders, where the full set is looked for, and
the sample being reproducible from the full set. (Missing and damaged files: tests/test_reliability.py.)"""
import re
import shutil

import pytest
import torch
import torchvision

from alexnet_lib import data

REAL = data.DEBIAN_DIR  # Debian's dataset-fashion-mnist (installed here and in CI by the README's command)
needs_real = pytest.mark.skipif(not all((REAL / f).exists() for f in data.FILES),
                                reason=f"the full Fashion-MNIST is not installed in {REAL} (apt-get install "
                                       "dataset-fashion-mnist)")


def copy_sample(folder):
    """A folder holding copies of the four bundled sample files (valid gzip, but not the full set's MD5s)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in data.FILES:
        shutil.copy(data.SAMPLE_DIR / name, folder / name)
    return folder


def link_real(folder):
    """A folder holding the real full data set, as symbolic links (no copying of 30 MB)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in data.FILES:
        (folder / name).symlink_to(REAL / name)
    return folder


def test_the_four_files_and_their_sums_are_torchvision_s():
    assert data.FILES == dict(torchvision.datasets.FashionMNIST.resources)


def test_sample_loads_through_torchvision(cache):
    train = data.fashion_mnist(True, source="sample")
    test = data.fashion_mnist(False, source="sample")
    assert isinstance(train, torchvision.datasets.FashionMNIST) and train.source == "sample"
    assert (len(train), len(test)) == (5000, 1000)
    assert train.targets.bincount().tolist() == [500] * 10
    assert test.targets.bincount().tolist() == [100] * 10
    img, label = train[0]
    assert img.size == (28, 28) and 0 <= label < 10
    assert (cache / "fashion-mnist-sample" / "FashionMNIST" / "raw").is_dir()  # unpacked into the private cache
    # the default source is the bundled sample (the full set only when asked: source="full")
    assert data.fashion_mnist(True).source == "sample"


def test_loader_batches(cache):
    train_iter, test_iter = data.load_data_fashion_mnist(32, image_size=96, train_limit=512, test_limit=256)
    x, y = next(iter(train_iter))
    assert x.shape == (32, 1, 96, 96) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
    assert y.shape == (32,) and y.dtype == torch.int64 and 0 <= y.min() and y.max() <= 9
    assert (data.num_images(train_iter), data.num_images(test_iter)) == (512, 256)
    xt, _ = next(iter(test_iter))
    assert xt.shape == (32, 1, 96, 96)
    # 3 channels for RGB models, 28x28 without an image_size, and all images by default (no limits)
    x3, _ = next(iter(data.load_data_fashion_mnist(8, channels=3)[0]))
    assert x3.shape == (8, 3, 28, 28) and torch.equal(x3[:, 0], x3[:, 1])
    full_iter, _ = data.load_data_fashion_mnist(8)
    assert data.num_images(full_iter) == len(full_iter.dataset) == 5000


def test_loader_is_reproducible(cache):
    first = next(iter(data.load_data_fashion_mnist(16, num_workers=0, seed=3)[0]))[1]
    again = next(iter(data.load_data_fashion_mnist(16, num_workers=0, seed=3)[0]))[1]
    other = next(iter(data.load_data_fashion_mnist(16, num_workers=0, seed=4)[0]))[1]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_search_order(tmp_path, monkeypatch):
    """root= (either layout) > $ALEXNET_FASHION_MNIST > /usr/share/datasets/fashion-mnist > None."""
    root, env, debian = copy_sample(tmp_path / "root"), copy_sample(tmp_path / "env"), copy_sample(tmp_path / "deb")
    tv_root = tmp_path / "tv"
    copy_sample(tv_root / "FashionMNIST" / "raw")
    monkeypatch.setattr(data, "DEBIAN_DIR", debian)
    monkeypatch.setenv(data.ENV_VAR, str(env))
    assert data.find_fashion_mnist(root) == root
    assert data.find_fashion_mnist(tv_root) == tv_root / "FashionMNIST" / "raw"
    assert data.find_fashion_mnist(tmp_path / "empty") == env  # a root without the files is passed over
    assert data.find_fashion_mnist() == env
    monkeypatch.delenv(data.ENV_VAR)
    assert data.find_fashion_mnist() == debian
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "nowhere")
    assert data.find_fashion_mnist() is None


@needs_real
def test_full_set_is_loaded_from_the_first_folder_found(tmp_path, monkeypatch, cache):
    """The loader really reads the folder that comes first: a damaged set later in the order is never touched,
    and a damaged set earlier in the order is an error, not a reason to use the good one behind it."""
    good, damaged = link_real(tmp_path / "good"), copy_sample(tmp_path / "damaged")  # sample files: wrong MD5s
    monkeypatch.setattr(data, "DEBIAN_DIR", damaged)
    monkeypatch.setenv(data.ENV_VAR, str(damaged))
    ds = data.fashion_mnist(True, source="full", root=good)
    assert len(ds) == 60000 and ds.source == "full"
    with pytest.raises(data.DataError, match=re.escape(str(damaged / "train-images-idx3-ubyte.gz"))):
        data.fashion_mnist(True, source="full")  # $ALEXNET_FASHION_MNIST comes before the Debian folder
    monkeypatch.setenv(data.ENV_VAR, str(good))
    assert len(data.fashion_mnist(False, source="full")) == 10000
    monkeypatch.delenv(data.ENV_VAR)
    monkeypatch.setattr(data, "DEBIAN_DIR", good)
    assert len(data.fashion_mnist(False, source="full")) == 10000


@needs_real
def test_make_sample_reproduces_the_bundled_sample(tmp_path, cache):
    sums = data.make_sample(tmp_path / "again", root=REAL)
    assert sums == data._sample_sums()
    for name in data.FILES:
        assert (tmp_path / "again" / name).read_bytes() == (data.SAMPLE_DIR / name).read_bytes()
