"""Fashion-MNIST (and CIFAR-10) through ``torchvision.datasets``, offline or online.

Where the data comes from, in this order (``source="full"``):

1. ``root=`` passed to the function: a folder holding the four original ``*-ubyte.gz`` files, or torchvision's own
   layout ``root/FashionMNIST/raw/``;
2. the folder named by the environment variable ``ALEXNET_FASHION_MNIST``;
3. ``/usr/share/datasets/fashion-mnist``, where Debian's package ``dataset-fashion-mnist`` installs the files;
4. ``torchvision.datasets.FashionMNIST(..., download=True)`` into ``root`` (or the cache folder), for readers online.

``source="sample"`` reads the small stratified sample shipped inside this package (5,000 training and 1,000 test
images, 500 and 100 per class, drawn reproducibly from the real data by :func:`make_sample`). Every file is checked
against its MD5 before use; a missing, truncated or altered file raises :class:`DataError` saying which file, what
was expected and how to fix it. Nothing ever falls back silently from the full set to the sample.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

# torchvision is imported where a dataset or a transform is made, not here: importing it brings in torch._dynamo
# (2.5 s on a 2-core machine, torchvision 0.29), which a process that loads no images need not wait for: the command
# line's --help and its argument errors, a run on tensors made in memory, a page that reads recorded runs.

from . import augment as aug
from . import cache
from .validate import check_data_args

__all__ = ["DataError", "CLASSES", "FILES", "DEBIAN_DIR", "ENV_VAR", "SAMPLE_DIR", "class_names",
           "find_fashion_mnist", "fashion_mnist", "load_data_fashion_mnist", "load_tensors", "num_images",
           "load_data_cifar10", "make_sample", "read_idx", "split_val", "VAL_SEED"]

CLASSES = {
    "en": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    "zh": ["T恤", "裤子", "套衫", "连衣裙", "外套", "凉鞋", "衬衫", "运动鞋", "包", "短靴"],
}
# The four files and their MD5 sums, those of torchvision's FashionMNIST.resources (the original Zalando release).
FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# MD5 of the unpacked files (the images themselves), which do not change when an archive is recompressed.
CONTENT_MD5 = {
    "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "ALEXNET_FASHION_MNIST"
SAMPLE_DIR = Path(__file__).with_name("sample")
MEAN, STD = 0.2860, 0.3530  # of the Fashion-MNIST training images, in [0, 1]

_HOW_TO_GET = (
    "How to get the full data set: on Debian/Ubuntu run `sudo apt-get install dataset-fashion-mnist` "
    f"(installs to {DEBIAN_DIR}); or download the four files {sorted(FILES)} from "
    "https://github.com/zalandoresearch/fashion-mnist into a folder and set "
    f"{ENV_VAR}=/that/folder (or pass root=); or run online, where torchvision downloads them. "
    "For a quick run on the bundled sample use source='sample' (the quick profile does)."
)
_FIX_FULL = "Delete it and get it again. " + _HOW_TO_GET
_FIX_SAMPLE = ("The sample is part of the package: restore it with `git checkout alexnet_lib/sample` in the "
               "repository, or reinstall the package (see the README); or draw it again from the full data set with "
               "`python -m alexnet_lib sample`.")


class DataError(RuntimeError):
    """The data set is missing or damaged; the message says which file and how to fix it."""


def class_names(lang: str = "en") -> list[str]:
    """The ten Fashion-MNIST class names in English (``"en"``) or Chinese (``"zh"``)."""
    return CLASSES[lang]


def _cache_dir() -> Path:
    return Path(os.environ.get("ALEXNET_CACHE", Path.home() / ".cache" / "alexnet_lib"))


_md5 = cache._md5  # one file hash for the archives and the unpacked cache


def _sample_sums() -> dict[str, str]:
    return json.loads((SAMPLE_DIR / "MD5SUMS.json").read_text())


def find_fashion_mnist(root: str | os.PathLike | None = None) -> Path | None:
    """The first folder, in the documented order, that holds the four ``.gz`` files; ``None`` if there is none.

    A folder holding only some of them is an error (:class:`DataError`), not a reason to look elsewhere.
    """
    candidates = []
    if root is not None:
        candidates += [Path(root), Path(root) / "FashionMNIST" / "raw"]
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    candidates.append(DEBIAN_DIR)
    for folder in candidates:
        missing = sorted(f for f in FILES if not (folder / f).exists())
        if not missing:
            return folder
        if len(missing) < len(FILES):
            raise DataError(f"Fashion-MNIST: {folder} holds {len(FILES) - len(missing)} of the {len(FILES)} files; "
                            f"missing: {', '.join(missing)}. Add the missing file(s) there. {_HOW_TO_GET}")
    return None


def _verify_and_extract(folder: Path, what: str, tag: str, gz_sums: dict[str, str],
                        content_sums: dict[str, str] | None = None, fix: str = _FIX_FULL) -> Path:
    """Check the four ``.gz`` files in ``folder`` and unpack them into a cache root in torchvision's layout.

    A file passes if its ``.gz`` has the expected MD5, or (for the full set) if its unpacked content has: Debian's
    package recompresses the original archives, which changes the ``.gz`` but not the images. ``fix`` tells the
    reader how to repair a missing or damaged file.
    """
    for name in gz_sums:
        if not (folder / name).exists():
            raise DataError(f"{what}: {folder / name} is missing (expected MD5 {gz_sums[name]}). {fix}")
    found_gz = {name: _md5(folder / name) for name in gz_sums}
    root = _cache_dir() / tag
    raw = root / "FashionMNIST" / "raw"
    problem = cache.stamp_problem(raw, found_gz)  # the stamp, each file's size and time, the labels' MD5
    if problem is None:
        return root  # unpacked and checked before, from these very files, and unchanged since
    try:
        raw.mkdir(parents=True, exist_ok=True)
        files = {name[:-3]: _unpack(folder / name, raw / name[:-3], what, found_gz[name], gz_sums[name],
                                    content_sums[name] if content_sums else None, fix) for name in gz_sums}
        cache.write_stamp(raw, found_gz, files)
    except OSError as e:  # the cache folder cannot be created or written (reading the archives is checked above)
        raise DataError(cache.not_writable(_cache_dir(), "ALEXNET_CACHE", e)) from None
    if problem:  # said once the archives passed their checks (a damaged archive is an error, and no note)
        print(f"note: {problem}; unpacked it again from the checked archives in {folder}", file=sys.stderr)
    return root


def _unpack(path: Path, target: Path, what: str, found: str, want: str, content: str | None, fix: str) -> dict:
    """Unpack one checked ``.gz`` to ``target`` (through a temporary file, removed on any failure); its stamp entry."""
    tmp = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False)
    h = hashlib.md5()
    expected = want + (f" (or unpacked: {content})" if content else "")
    try:
        try:
            with gzip.open(path) as src, tmp:
                for block in iter(lambda: src.read(1 << 20), b""):
                    h.update(block)
                    tmp.write(block)
        except (EOFError, OSError, zlib.error) as e:  # truncated, or a changed byte that breaks the compression
            if isinstance(e, OSError) and e.errno is not None:
                raise  # writing the cache failed (full, read-only): not the archive's fault
            raise DataError(f"{what}: {path} is truncated or damaged: it cannot be unpacked ({e}). Found "
                            f"{path.stat().st_size:,} bytes with MD5 {found}, expected MD5 {expected}. "
                            f"{fix}") from e
        if not (found == want or (content is not None and h.hexdigest() == content)):
            raise DataError(f"{what}: {path} is damaged or not the original file: found {path.stat().st_size:,} "
                            f"bytes with MD5 {found} (unpacked: {h.hexdigest()}), expected MD5 {expected}. "
                            f"{fix}")
        os.replace(tmp.name, target)
    finally:
        Path(tmp.name).unlink(missing_ok=True)  # a no-op once renamed
    return cache.entry(target, h.hexdigest())


def _torchvision_root(source: str, root: str | os.PathLike | None, download: bool) -> Path:
    """A folder that ``torchvision.datasets.FashionMNIST(root=...)`` can read, for ``source`` 'sample' or 'full'."""
    if source == "sample":
        return _verify_and_extract(SAMPLE_DIR, "the bundled Fashion-MNIST sample", "fashion-mnist-sample",
                                   _sample_sums(), fix=_FIX_SAMPLE)
    if source != "full":
        raise ValueError(f"source must be 'sample' or 'full', not {source!r}")
    folder = find_fashion_mnist(root)
    if folder is not None:
        return _verify_and_extract(folder, "Fashion-MNIST", "fashion-mnist-full", FILES, CONTENT_MD5)
    target = Path(root) if root is not None else _cache_dir() / "download"
    if not download:
        raise DataError(f"Fashion-MNIST not found (looked in root={root}, ${ENV_VAR}="
                        f"{os.environ.get(ENV_VAR)}, {DEBIAN_DIR}) and download=False. {_HOW_TO_GET}")
    from torchvision.datasets import FashionMNIST

    try:  # the online path, exactly as in torchvision's documentation
        FashionMNIST(root=target, train=True, download=True)
        FashionMNIST(root=target, train=False, download=True)
    except (OSError, RuntimeError) as e:
        raise DataError(f"Fashion-MNIST not found (looked in root={root}, ${ENV_VAR}={os.environ.get(ENV_VAR)}, "
                        f"{DEBIAN_DIR}) and the download into {target} failed; are you offline? "
                        f"({' '.join(str(e).split())}). {_HOW_TO_GET}") from e
    return target


def fashion_mnist(train: bool, transform=None, *, source: str = "sample",
                  root: str | os.PathLike | None = None, download: bool = True):
    """One split of Fashion-MNIST as a ``torchvision.datasets.FashionMNIST``: the bundled ``"sample"`` (default) or
    the ``"full"`` data set."""
    from torchvision.datasets import FashionMNIST

    folder = _torchvision_root(source, root, download)
    ds = FashionMNIST(root=folder, train=train, transform=transform, download=False)
    ds.source = source
    return ds


def _limit(ds, n: int | None, seed: int):
    """The first ``n`` images of a fixed random permutation (stratified enough at these sizes; reproducible)."""
    if n is None or n >= len(ds):
        return ds
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    return Subset(ds, idx.tolist())


def load_data_fashion_mnist(batch_size: int, image_size: int | None = None, *, source: str = "sample",
                            root: str | os.PathLike | None = None, augment=None, normalize: bool = False,
                            channels: int = 1, train_limit: int | None = None, test_limit: int | None = None,
                            seed: int = 0, rank: int = 0, world_size: int = 1, test_batch_size: int | None = None,
                            num_workers: int = 0, download: bool = True, val: int = 0, erase: int = 0):
    """Fashion-MNIST as two DataLoaders ``(train_iter, test_iter)``, like d2l's function of the same name.

    The same arguments as :func:`alexnet_lib.gpu_data.gpu_loaders`, the GPU-resident path:

    Args:
        batch_size: images per batch (per process under DDP).
        image_size: side to resize the 28x28 images to (``None`` keeps 28).
        source: ``"sample"`` (the bundled 5,000/1,000 images) or ``"full"``; root: where to look for the full set.
        augment: a preset name of :mod:`.augment` (or a transform), applied to training images before ``ToTensor``.
        normalize: subtract the data set's mean and divide by its standard deviation.
        channels: 3 replicates the grey channel (for models built for RGB input).
        train_limit, test_limit: use only this many images (``None``: all).
        seed: the subset drawn by the limits and the shuffling order.
        rank, world_size: this process's shard of every epoch (a ``DistributedSampler`` when ``world_size > 1``).
        test_batch_size: images per test batch (default ``batch_size``); num_workers: loader processes.
        val: hold out this many training images (:func:`split_val`); the second loader then goes through them,
            without augmentation, instead of the test set.
        erase: Cutout (:func:`alexnet_lib.augment.erasing`): a square this many pixels of the 28x28 image wide set
            to the background in each training image (0: none).
    """
    from torchvision import transforms

    check_data_args(batch_size, image_size, channels)  # before any file is read
    grey3 = [transforms.Grayscale(num_output_channels=3)] if channels == 3 else []
    resize = [transforms.Resize(image_size, antialias=True)] if image_size and image_size != 28 else []
    to_tensor = grey3 + resize + [transforms.ToTensor()]
    norm = [transforms.Normalize([MEAN] * channels, [STD] * channels)] if normalize else []
    augment = aug.transform(augment) if isinstance(augment, str) else augment
    cutout = [aug.erasing(erase)] if erase else []  # on the tensor in [0, 1], before normalising
    train_tf = transforms.Compose(([augment] if augment is not None else []) + to_tensor + cutout + norm)
    test_tf = transforms.Compose(to_tensor + norm)
    train = fashion_mnist(True, train_tf, source=source, root=root, download=download)
    if val:
        keep, held = split_val(len(train), val)
        test = Subset(fashion_mnist(True, test_tf, source=source, root=root, download=download), held.tolist())
        train = Subset(train, keep.tolist())
    else:
        test = fashion_mnist(False, test_tf, source=source, root=root, download=download)
    train, test = _limit(train, train_limit, seed), _limit(test, test_limit, seed)
    kw = dict(num_workers=num_workers, persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())
    test_batch_size = test_batch_size or batch_size
    if world_size > 1:  # DDP: each rank its own shard
        from torch.utils.data.distributed import DistributedSampler
        shard = dict(num_replicas=world_size, rank=rank)
        return (DataLoader(train, batch_size, sampler=DistributedSampler(train, shuffle=True, seed=seed, **shard),
                           **kw),
                DataLoader(test, test_batch_size, sampler=DistributedSampler(test, shuffle=False, **shard), **kw))
    g = torch.Generator().manual_seed(seed)
    return (DataLoader(train, batch_size, shuffle=True, generator=g, drop_last=False, **kw),
            DataLoader(test, test_batch_size, shuffle=False, **kw))


VAL_SEED = 2012  # the held-out split is the same for every run seed


def split_val(n: int, val: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, held_out)`` of ``n`` training images with ``val`` of them held out for validation: the first
    ``val`` of a fixed permutation (:data:`VAL_SEED`), so every run and both data paths hold out the same images."""
    if not 0 < val < n:
        raise ValueError(f"val must be between 1 and {n - 1} (the training images there are), got {val}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SEED))
    return perm[val:], perm[:val]


def num_images(loader) -> int:
    """The number of images a loader of either data path goes through per epoch (all processes together)."""
    return loader.num_images if hasattr(loader, "num_images") else len(loader.dataset)


def load_tensors(*, source: str = "sample", root: str | os.PathLike | None = None, download: bool = True):
    """The raw uint8 images (N, 28, 28) and int64 labels: ``(x_train, y_train, x_test, y_test)``.

    Used by the GPU-resident data path, which moves these 55 MB to the GPU once and does everything else there.
    """
    train = fashion_mnist(True, source=source, root=root, download=download)
    test = fashion_mnist(False, source=source, root=root, download=download)
    return train.data, train.targets, test.data, test.targets


def load_data_cifar10(batch_size: int, image_size: int | None = None, *, root: str | os.PathLike = "~/.cache/alexnet_lib",
                      augment=None, num_workers: int = 4, download: bool = True):
    """CIFAR-10 (50k/10k RGB 32x32) through ``torchvision.datasets.CIFAR10(download=True)``, for readers online."""
    import torchvision
    from torchvision import transforms

    root = Path(root).expanduser()
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    common = ([transforms.Resize(image_size, antialias=True)] if image_size else []) + [
        transforms.ToTensor(), transforms.Normalize(mean, std)]
    try:
        train = torchvision.datasets.CIFAR10(root, train=True, download=download, transform=transforms.Compose(
            ([augment] if augment is not None else []) + common))
        test = torchvision.datasets.CIFAR10(root, train=False, download=download,
                                            transform=transforms.Compose(common))
    except (OSError, RuntimeError) as e:
        raise DataError(f"CIFAR-10 could not be loaded from or downloaded into {root} ({e}). It needs the internet "
                        "once (about 170 MB); offline, the course's recorded runs use Fashion-MNIST instead.") from e
    return (DataLoader(train, batch_size, shuffle=True, num_workers=num_workers),
            DataLoader(test, batch_size, shuffle=False, num_workers=num_workers))


# --- the bundled sample -------------------------------------------------------------------------------------------

def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (gzipped or not) into a uint8 tensor."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(shape)


def _write_idx(path: Path, t: torch.Tensor) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, t.dim()) + struct.pack(f">{t.dim()}I", *t.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(header + t.contiguous().numpy().tobytes())


def make_sample(out_dir: str | os.PathLike = SAMPLE_DIR, per_class_train: int = 500, per_class_test: int = 100,
                root: str | os.PathLike | None = None, seed: int = 0) -> dict[str, str]:
    """Draw the stratified sample from the full data set (found as in :func:`find_fashion_mnist`) and write it.

    The same seed and source files give byte-identical output (the gzip timestamp is fixed), so the sample in the
    package can be checked against its source with one command: ``python -m alexnet_lib sample --check``.
    """
    folder = find_fashion_mnist(root)
    if folder is None:
        raise DataError(f"make_sample needs the full data set. {_HOW_TO_GET}")
    _verify_and_extract(folder, "Fashion-MNIST", "fashion-mnist-full", FILES, CONTENT_MD5)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    for split, per_class in (("train", per_class_train), ("t10k", per_class_test)):
        x = read_idx(folder / f"{split}-images-idx3-ubyte.gz")
        y = read_idx(folder / f"{split}-labels-idx1-ubyte.gz")
        picks = []
        for c in range(10):
            idx = (y == c).nonzero().flatten()
            picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
        keep = torch.cat(picks)
        keep = keep[torch.randperm(len(keep), generator=g)]  # interleave the classes
        _write_idx(out / f"{split}-images-idx3-ubyte.gz", x[keep])
        _write_idx(out / f"{split}-labels-idx1-ubyte.gz", y[keep])
    sums = {name: _md5(out / name) for name in FILES}
    (out / "MD5SUMS.json").write_text(json.dumps(sums, indent=1) + "\n")
    return sums
