"""What goes wrong for a learner, and what they are told: wrong input shapes, missing or damaged data, a diverging
run, a killed run, a checkpoint of another model, running out of GPU memory; and that one seed gives one history.

Every test here fails if the behaviour regresses; the messages are checked for what a learner needs (where, what was
expected and what was found, how to fix it). The command-line errors are in tests/test_cli_errors.py.
"""
import gzip
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import torch
import torchvision

from alexnet_lib import data, models, runs
from alexnet_lib.trace import ShapeError, trace
from alexnet_lib.train import CheckpointMismatch, DivergedError, OutOfMemory, evaluate_accuracy, load_checkpoint, train

import fakes
from fakes import tiny_loaders

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")


# --- wrong input shapes (d2l AlexNet at 28x28 and RGB into it: tests/test_models.py and tests/test_trace.py) -------

@pytest.mark.parametrize("builder, shape, layer, smallest", [
    ("lenet", (2, 3, 28, 28), "features.0", "1x28x28"),             # RGB into the 1-channel LeNet
    ("lenet", (2, 1, 20, 20), "classifier.0", "1x28x28"),           # too small for LeNet's first dense layer
    ("paper_alexnet", (1, 1, 227, 227), "features.0", "3x227x227"),  # grey image into the RGB paper model
    ("paper_alexnet", (1, 3, 224, 224), "classifier.0", "3x227x227"),  # the paper's "224" that does not fit
])
def test_wrong_input_shape_names_layer_shape_and_smallest_input(builder, shape, layer, smallest):
    net = models.build_model(builder)
    for run, got in ((lambda: net(torch.zeros(*shape)), shape), (lambda: trace(net, shape[1:]), (1, *shape[1:]))):
        with pytest.raises(ShapeError) as e:
            run()
        msg = str(e.value)
        assert f"cannot take an input of shape {got}: layer {layer}" in msg, msg
        assert f"smallest valid input: {smallest}" in msg, msg


def test_single_image_without_batch_dimension():
    with pytest.raises(ShapeError, match=r"expected a 4-D batch \(N, C, H, W\), got 3-D shape \(1, 224, 224\).*"
                                         r"smallest valid input: 1x193x193"):
        models.d2l_alexnet()(torch.zeros(1, 224, 224))


# --- missing or damaged data -----------------------------------------------------------------------------------------

def copy_sample(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in [*data.FILES, "MD5SUMS.json"]:
        shutil.copy(data.SAMPLE_DIR / name, folder / name)
    return folder


def flip_a_byte(path: Path, breaks_with: type) -> None:
    """Change one byte of the compressed stream so that unpacking fails with ``breaks_with`` (zlib.error: broken
    compression; gzip.BadGzipFile: a wrong checksum at the end) and write it back."""
    raw = path.read_bytes()
    for i in range(20, len(raw) - 8):
        damaged = bytearray(raw)
        damaged[i] ^= 0x01
        try:
            gzip.decompress(bytes(damaged))
        except breaks_with:
            path.write_bytes(bytes(damaged))
            return
        except Exception:
            continue
    raise AssertionError(f"no single byte of {path} breaks it with {breaks_with}")


def damage(folder: Path, how: str, name: str) -> None:
    path = folder / name
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "byte in the compressed data":
        flip_a_byte(path, zlib.error)
    elif how == "byte in the CRC":
        flip_a_byte(path, gzip.BadGzipFile)
    elif how == "byte in the header":  # the timestamp: still unpacks, same images, but not the same file
        raw = bytearray(path.read_bytes())
        raw[4] ^= 0x01
        path.write_bytes(bytes(raw))
    elif how == "missing":
        path.unlink()


DAMAGES = ["truncated", "byte in the compressed data", "byte in the CRC", "byte in the header", "missing"]


def assert_cache_clean(cache: Path) -> None:
    """A failed check leaves no half-unpacked temporary files in the cache."""
    for raw in cache.glob("*/FashionMNIST/raw"):
        stray = [p.name for p in raw.iterdir() if p.name not in {n[:-3] for n in data.FILES} | {"SOURCE.json"}]
        assert not stray, stray


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_sample_is_an_error_that_says_how_to_fix(how, tmp_path, monkeypatch, cache):
    sample = copy_sample(tmp_path / "sample")
    monkeypatch.setattr(data, "SAMPLE_DIR", sample)
    name = "train-labels-idx1-ubyte.gz"
    expected_md5 = json.loads((sample / "MD5SUMS.json").read_text())[name]
    damage(sample, how, name)
    with pytest.raises(data.DataError) as e:
        data.load_data_fashion_mnist(32, source="sample", num_workers=0)
    msg = str(e.value)
    assert str(sample / name) in msg and f"expected MD5 {expected_md5}" in msg, msg  # which file, what was expected
    assert ("is missing" in msg) if how == "missing" else (f"MD5 {data._md5(sample / name)}" in msg), msg  # found
    assert "git checkout alexnet_lib/sample" in msg and "reinstall" in msg, msg  # how to fix
    assert_cache_clean(cache)


@pytest.mark.parametrize("how", ["truncated", "byte in the compressed data", "byte in the CRC", "missing"])
def test_damaged_full_set_is_an_error_not_a_fallback(how, tmp_path, monkeypatch, cache):
    """A damaged file in the first folder found stops with DataError, even with a good set later in the order.

    The full set is played by copies of the sample, registered as the originals (their MD5s patched in)."""
    folder = copy_sample(tmp_path / "full")
    monkeypatch.setattr(data, "FILES", json.loads((folder / "MD5SUMS.json").read_text()))
    monkeypatch.setattr(data, "CONTENT_MD5", {n: "0" * 32 for n in data.FILES})
    monkeypatch.setattr(data, "DEBIAN_DIR", copy_sample(tmp_path / "good"))  # a good set behind the damaged one
    assert len(data.fashion_mnist(True, source="full", root=folder)) == 5000  # the stand-in set works undamaged
    name = "t10k-images-idx3-ubyte.gz"
    damage(folder, how, name)
    with pytest.raises(data.DataError) as e:
        data.fashion_mnist(False, source="full", root=folder, download=False)
    msg = str(e.value)
    assert str(folder / name) in msg or (how == "missing" and f"{folder} holds 3 of the 4 files; missing: {name}"
                                         in msg), msg
    if how != "missing":
        assert f"expected MD5 {data.FILES[name]}" in msg and f"MD5 {data._md5(folder / name)}" in msg, msg
    assert "apt-get install dataset-fashion-mnist" in msg and data.ENV_VAR in msg, msg  # how to get it
    assert_cache_clean(cache)


@pytest.fixture
def no_full_set(tmp_path, monkeypatch, cache):
    """No full data set anywhere, and downloads go to a local port where nothing listens (no network needed)."""
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "no-env"))
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])
    return tmp_path


@pytest.mark.parametrize("download", [False, True])
def test_absent_full_set_is_an_error_not_the_sample(no_full_set, download):
    with pytest.raises(data.DataError) as e:
        data.load_data_fashion_mnist(32, source="full", root=no_full_set / "root", download=download,
                                     num_workers=0)
    msg = str(e.value)
    assert "Fashion-MNIST not found" in msg and str(no_full_set / "no-env") in msg, msg  # where it looked
    assert ("download=False" in msg) if not download else ("download into" in msg and "failed" in msg), msg
    assert "apt-get install dataset-fashion-mnist" in msg and "source='sample'" in msg, msg  # how to fix


def test_partial_folder_is_not_passed_over(tmp_path, monkeypatch):
    """root= with 3 of the 4 files is an error naming the missing one, not a silent switch to the next folder."""
    monkeypatch.setattr(data, "DEBIAN_DIR", copy_sample(tmp_path / "deb"))
    folder = copy_sample(tmp_path / "root")
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(data.DataError, match=r"holds 3 of the 4 files; missing: train-labels-idx1-ubyte\.gz"):
        data.find_fashion_mnist(folder)


# --- training: divergence, out of memory, interruption, checkpoints, reproducibility --------------------------------

def faulty(fail_at: int, fault: str) -> fakes.LeNetWithFault:
    """LeNet whose ``fail_at``-th training forward pass goes wrong: ``"inf"`` logits (from then on) or a CUDA
    out-of-memory error."""
    def hook(out, step):
        if step >= fail_at and fault == "inf":
            return out * float("inf")
        if step == fail_at and fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                         "capacity of 79.19 GiB of which 1.06 GiB is free.")
        return out
    return fakes.LeNetWithFault(hook)


def test_inf_loss_stops_at_that_step_and_keeps_history(tmp_path):
    train_iter, test_iter = tiny_loaders()  # 6 steps per epoch
    net = faulty(fail_at=6 + 3, fault="inf")  # epoch 2, step 3
    with pytest.raises(DivergedError) as e:
        train(net, train_iter, test_iter, 4, 0.05, device="cpu", verbose=False, history_path=tmp_path / "h.json")
    msg = str(e.value)
    assert "epoch 2, step 3 (learning rate 0.05)" in msg and "smaller learning rate (e.g. 0.005)" in msg, msg
    assert net.calls == 9  # stopped at that step: no further training step ran
    assert [r["epoch"] for r in e.value.history["epochs"]] == [1] and e.value.history["status"] == "diverged"
    saved = runs.load_json(tmp_path / "h.json")
    assert saved["status"] == "diverged" and [r["epoch"] for r in saved["epochs"]] == [1]


def test_too_high_learning_rate_diverges_with_a_clear_message(cache):
    train_iter, test_iter = data.load_data_fashion_mnist(32, train_limit=256, test_limit=64, num_workers=0)
    torch.manual_seed(0)
    with pytest.raises(DivergedError, match=r"loss became NaN/inf at epoch 1, step \d+ \(learning rate 1e\+06\); "
                                            r"training stopped\. Try a smaller learning rate"):
        train(models.lenet(activation="relu"), train_iter, test_iter, 3, 1e6, momentum=0.9, device="cpu",
              verbose=False)


def test_out_of_memory_names_the_batch_size_and_what_to_try(tmp_path):
    train_iter, test_iter = tiny_loaders()
    with pytest.raises(OutOfMemory) as e:
        train(faulty(fail_at=6 + 2, fault="oom"), train_iter, test_iter, 3, 0.05, device="cpu", verbose=False,
              history_path=tmp_path / "h.json")
    msg = str(e.value)
    assert "out of GPU memory at batch size 32 in epoch 2" in msg, msg
    assert "--batch-size 16" in msg and "amp=True" in msg and "1 finished epoch(s) are kept" in msg, msg
    assert e.value.__cause__ is None and e.value.__suppress_context__  # one message, not two chained tracebacks
    assert e.value.history["status"] == "out_of_memory" and len(e.value.history["epochs"]) == 1
    assert runs.load_json(tmp_path / "h.json")["status"] == "out_of_memory"


KILLED_RUN = """
import time
import torch
from torch.utils.data import DataLoader, TensorDataset
from alexnet_lib import models
from alexnet_lib.train import train
{tiny_loaders}

class Slow:  # the same batches, slowly, so the run is still going when the signal comes
    def __init__(self, loader): self.loader, self.batch_size = loader, loader.batch_size
    def __len__(self): return len(self.loader)
    def __iter__(self):
        for batch in self.loader:
            time.sleep(0.05)
            yield batch

train_iter, test_iter = tiny_loaders()
torch.manual_seed(0)
train(models.lenet(), Slow(train_iter), test_iter, {epochs}, 0.1, device="cpu", seed=0,
      checkpoint={ckpt!r}, history_path={hist!r})
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_killed_run_resumes_with_a_continuous_history(sig, tmp_path):
    epochs, ckpt, hist = 8, tmp_path / "run.pt", tmp_path / "run.json"
    script = KILLED_RUN.format(tiny_loaders=inspect.getsource(fakes.tiny_loaders), epochs=epochs, ckpt=str(ckpt),
                               hist=str(hist))
    # a child of a background job starts with SIGINT ignored (so Ctrl-C in the terminal spares it), and Python then
    # installs no KeyboardInterrupt handler: give the child the default disposition, as a foreground command has
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "ALEXNET_PROFILE": "quick",
                                                                   "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        fakes.wait_for(ckpt, proc)
        time.sleep(0.1)  # into the next epoch
        _, err = fakes.interrupt(proc, sig, timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0, "the run finished before the signal came"
    assert f"saved to {ckpt}" in err and "continue with --resume (resume=True in Python)" in err, err
    killed = runs.load_json(hist)
    done = len(killed["epochs"])
    assert killed["status"] == "interrupted" and 1 <= done < epochs
    assert [r["epoch"] for r in killed["epochs"]] == list(range(1, done + 1))

    train_iter, test_iter = tiny_loaders()
    h = train(models.lenet(), train_iter, test_iter, epochs, 0.1, device="cpu", seed=0, checkpoint=ckpt,
              resume=True, history_path=hist, verbose=False)
    assert [r["epoch"] for r in h["epochs"]] == list(range(1, epochs + 1)) and h["status"] == "finished"
    assert h["epochs"][:done] == killed["epochs"]  # the epochs before the kill are kept as they were
    assert runs.load_json(hist) == json.loads(json.dumps(h))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.pt"]  # no temporary or half files


def test_crashed_run_resumes_from_its_last_checkpoint(tmp_path):
    ckpt, hist = tmp_path / "run.pt", tmp_path / "run.json"
    train_iter, test_iter = tiny_loaders()

    class Crashes:  # the data source fails in the middle of the third epoch
        batch_size = 32

        def __init__(self):
            self.batches = 0

        def __len__(self):
            return len(train_iter)

        def __iter__(self):
            for batch in train_iter:
                self.batches += 1
                if self.batches == 2 * len(train_iter) + 3:
                    raise OSError("disk went away")
                yield batch

    with pytest.raises(OSError, match="disk went away"):
        train(models.lenet(), Crashes(), test_iter, 5, 0.1, device="cpu", checkpoint=ckpt, history_path=hist,
              verbose=False)
    assert len(torch.load(ckpt, weights_only=True)["history"]["epochs"]) == 2
    h = train(models.lenet(), train_iter, test_iter, 5, 0.1, device="cpu", checkpoint=ckpt, resume=True,
              history_path=hist, verbose=False)
    assert [r["epoch"] for r in h["epochs"]] == [1, 2, 3, 4, 5]
    assert [r["epoch"] for r in runs.load_json(hist)["epochs"]] == [1, 2, 3, 4, 5]


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    ckpt, text = tmp_path / "ckpt.pt", tmp_path / "history.json"
    runs.atomic_torch_save({"w": torch.arange(3)}, ckpt)
    runs.save_json({"epochs": [1]}, text)

    def half_save(obj, f, *args, **kwargs):  # writes part of the file, then the disk is full
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    def no_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_save)
    with pytest.raises(OSError, match="No space left"):
        runs.atomic_torch_save({"w": torch.zeros(3)}, ckpt)
    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(OSError, match="No space left"):
        runs.save_json({"epochs": [1, 2]}, text)
    monkeypatch.undo()
    assert torch.equal(torch.load(ckpt, weights_only=True)["w"], torch.arange(3))
    assert runs.load_json(text) == {"epochs": [1]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "history.json"]


@pytest.fixture
def lenet_checkpoint(tmp_path):
    train_iter, test_iter = tiny_loaders(n=64)
    train(models.lenet(), train_iter, test_iter, 1, 0.1, device="cpu", checkpoint=tmp_path / "lenet.pt",
          verbose=False)
    return tmp_path / "lenet.pt"


@pytest.mark.parametrize("other, says", [
    (lambda: models.lenet(num_classes=5), "classifier.4.weight: checkpoint [10, 84] vs model [5, 84]"),
    (lambda: models.lenet(in_channels=3), "features.0.weight: checkpoint [6, 1, 5, 5] vs model [6, 3, 5, 5]"),
    (lambda: models.d2l_alexnet(image_size=96), "saved for a LeNet that does not fit this AlexNet"),
])
def test_checkpoint_of_another_model(lenet_checkpoint, other, says):
    with pytest.raises(CheckpointMismatch) as e:
        load_checkpoint(lenet_checkpoint, other())
    assert says in str(e.value) and "num_classes" in str(e.value), str(e.value)
    train_iter, test_iter = tiny_loaders(n=64)
    with pytest.raises(CheckpointMismatch):  # the same through train(resume=True), before any training
        train(models.lenet(num_classes=5), train_iter, test_iter, 2, 0.1, device="cpu", checkpoint=lenet_checkpoint,
              resume=True, verbose=False)
    assert load_checkpoint(lenet_checkpoint, models.lenet())["history"]["status"] == "finished"  # the right model


class RunsCode:
    """What a malicious 'checkpoint' could hold: unpickling it would create a file (it could do anything)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_checkpoint_is_loaded_without_running_code(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"model": {}, "signature": {}, "payload": RunsCode(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointMismatch, match="not a checkpoint saved by train"):
        load_checkpoint(tmp_path / "evil.pt", models.lenet())
    assert not marker.exists()
    torch.save(models.lenet().state_dict(), tmp_path / "bare.pt")  # a bare state_dict is not a checkpoint either
    with pytest.raises(CheckpointMismatch, match="no model signature.*load_state_dict"):
        load_checkpoint(tmp_path / "bare.pt", models.lenet())


def quick_run(seed: int) -> list[tuple[float, float, float]]:
    """A small real run in the quick profile: LeNet (ReLU) on 256 sample images, 2 epochs."""
    train_iter, test_iter = data.load_data_fashion_mnist(64, train_limit=256, test_limit=128, num_workers=0)
    # init="xavier" re-draws the weights after train() seeds the generators, so the weights drawn when the model
    # was built (from an unseeded generator here) do not matter
    h = train(models.lenet(activation="relu"), train_iter, test_iter, 2, 0.1, momentum=0.9, init="xavier",
              device="cpu", seed=seed, verbose=False)
    return [(r["loss"], r["train_acc"], r["test_acc"]) for r in h["epochs"]]


def test_same_seed_same_history(cache):
    first = quick_run(0)
    assert quick_run(0) == first  # exactly: same numbers, not just close ones
    assert quick_run(1) != first  # and the seed matters (so the check above can fail)
    assert first[1][0] < first[0][0]  # it learned something: the numbers compared are real ones


def test_mirrored_evaluation_averages_image_and_mirror():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    x, y = torch.randn(10, 1, 4, 4), torch.randint(0, 3, (10,))
    want = ((net(x) + net(x.flip(-1))).argmax(1) == y).float().mean().item()
    assert evaluate_accuracy(net, [(x, y)], tta=True) == pytest.approx(want)
    assert evaluate_accuracy(net, [(x, y)]) == pytest.approx((net(x).argmax(1) == y).float().mean().item())


def _no_timing(history: dict) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("img_per_s", "seconds", "eval_seconds", "elapsed")}
            for e in history["epochs"]]


@pytest.mark.parametrize("path", ["loader", "gpu"])
def test_resumed_run_is_the_uninterrupted_one_on_a_cpu(path, tmp_path):
    """Stop after 2 of 4 epochs, resume in a fresh model: the same batches, augmentations and numbers."""
    from alexnet_lib.gpu_data import GPULoader

    def loaders():
        if path == "loader":
            return tiny_loaders()
        g = torch.Generator().manual_seed(1)
        x, y = (torch.rand(96, 28, 28, generator=g) * 255).to(torch.uint8), torch.randint(0, 10, (96,), generator=g)
        return (GPULoader(x, y, 32, image_size=28, augment="shift", device="cpu", seed=3),
                GPULoader(x[:32], y[:32], 32, image_size=28, shuffle=False, device="cpu"))

    def run(epochs, **kw):
        torch.manual_seed(0)
        train_iter, test_iter = loaders()
        return train(models.lenet(), train_iter, test_iter, epochs, 0.3, momentum=0.9, device="cpu",
                     verbose=False, **kw)

    whole = run(4)
    ckpt = tmp_path / "run.pt"
    run(2, checkpoint=ckpt)
    assert len(torch.load(ckpt, weights_only=True)["loader_rng"]) == 1  # shuffling (+ augmentation on the GPU path)
    resumed = run(4, checkpoint=ckpt, resume=True)
    assert _no_timing(resumed) == _no_timing(whole)
