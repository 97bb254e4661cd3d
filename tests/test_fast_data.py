"""The fast data path (shift/flip and normalisation on the 28x28 uint8 images, then one resize), the held-out
validation split, and the two config switches that reach them (fast_augment, val) plus fused_pool."""
import pytest
import torch

from alexnet_lib import augment, data, experiments, gpu_data, kernels
from alexnet_lib.config import TrainConfig


@pytest.fixture(scope="module")
def images():
    x, y, _, _ = data.load_tensors(source="sample")
    return x[:48].unsqueeze(1), y[:48]


@pytest.mark.parametrize("normalize", [False, True])
def test_fast_shift_is_the_grid_sample_shift_image_by_image(images, normalize):
    """Same generator, same draws: every image gets the same flip and shift, and the same pixels (float rounding)."""
    x, _ = images
    ref = augment.gpu_augment(x.float() / 255, "shift", 224, torch.Generator().manual_seed(5))
    ref = (ref - data.MEAN) / data.STD if normalize else ref
    new = gpu_data.fast_shift_resize(x, 224, torch.Generator().manual_seed(5), normalize=normalize)
    assert new.shape == ref.shape == (48, 1, 224, 224)
    assert (new - ref).abs().max() < 1e-4


def test_fast_path_draws_shifts_and_flips_like_the_preset(images):
    """In distribution too: over many draws each shift -2..2 and both flips occur, about equally often."""
    x = images[0][:1].expand(4000, -1, -1, -1)
    g = torch.Generator().manual_seed(0)
    flip = torch.rand(4000, generator=g) < 0.5
    kx = torch.randint(-2, 3, (4000,), generator=g)
    assert 0.45 < flip.float().mean() < 0.55 and set(kx.tolist()) == {-2, -1, 0, 1, 2}
    out = gpu_data.shift_flip_small(x, torch.Generator().manual_seed(0))
    plain = x[0, 0]
    for i in range(20):  # each output: the image, mirrored or not, moved by whole pixels (the source moves by kx)
        img, dx = (plain.flip(-1), -kx[i].item()) if flip[i] else (plain, kx[i].item())
        assert any(torch.equal(out[i, 0], _moved(img, dx, dy)) for dy in range(-2, 3)), i


def _moved(img, dx, dy):
    h, w = img.shape
    out = torch.zeros_like(img)
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    yt, xt = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
    out[ys, xs] = img[yt, xt]
    return out


def test_fast_path_without_augmentation_is_the_plain_resize(images):
    x, _ = images
    ref = (augment.gpu_resize(x.float() / 255, 96) - data.MEAN) / data.STD
    new = gpu_data.fast_shift_resize(x, 96, augment=False, normalize=True)
    assert (new - ref).abs().max() < 1e-5


def test_loader_with_fast_augment_matches_the_loader_without(images):
    x, y = images
    common = dict(image_size=224, augment="shift", normalize=True, device="cpu", seed=3)
    a = next(iter(gpu_data.GPULoader(x[:, 0], y, 16, **common)))
    b = next(iter(gpu_data.GPULoader(x[:, 0], y, 16, fast_augment=True, **common)))
    assert torch.equal(a[1], b[1]) and (a[0] - b[0]).abs().max() < 1e-4
    with pytest.raises(ValueError, match="'shift' preset"):
        gpu_data.GPULoader(x[:, 0], y, 16, augment="crop", fast_augment=True, device="cpu")


def test_val_split_is_fixed_disjoint_and_the_same_on_both_paths():
    keep, held = data.split_val(5000, 500)
    assert len(held) == 500 and len(keep) == 4500 and not set(keep.tolist()) & set(held.tolist())
    assert torch.equal(held, data.split_val(5000, 500)[1])  # the same for every run
    tr, va = gpu_data.gpu_loaders(100, None, source="sample", device="cpu", val=500, seed=7)
    assert (tr.num_images, va.num_images) == (4500, 500)
    x, y, _, _ = data.load_tensors(source="sample")
    assert torch.equal(va.x[:, 0], x[held]) and torch.equal(va.y, y[held])
    dl_train, dl_val = data.load_data_fashion_mnist(100, source="sample", val=500)
    assert (data.num_images(dl_train), data.num_images(dl_val)) == (4500, 500)
    imgs, labels = next(iter(dl_val))
    assert torch.equal(labels, y[held[:100]]) and torch.allclose(imgs[:, 0], x[held[:100]].float() / 255)
    with pytest.raises(ValueError, match="val must be between"):
        data.split_val(5000, 5000)


def test_run_with_val_reports_val_accuracy_and_tests_once(one_thread, cache):
    cfg = TrainConfig(model="d2l_alexnet", epochs=1, lr=0.01, momentum=0.9, batch_size=16, source="sample",
                      image_size=96, train_limit=64, test_limit=32, val=200, data_path="gpu", tta=True)
    h = experiments.run(cfg, profile="full", device="cpu", verbose=False)
    assert "val_acc" in h["epochs"][0] and "test_acc" not in h["epochs"][0]
    assert 0 <= h["test_acc"] <= 1 and h["test_images"] == 1000  # the whole test set, once
    assert h["settings"]["val"] == 200


def test_fused_pool_config_builds_the_fused_model():
    net, side = experiments.build(TrainConfig(model="d2l_alexnet", s2d_stem=True, fused_pool=True, image_size=96))
    assert side == 96 and sum(isinstance(m, kernels.FusedReLUMaxPool2d) for m in net.features) == 3
    with pytest.raises(ValueError, match="no ReLU directly followed"):
        experiments.build(TrainConfig(model="lenet", fused_pool=True))


def test_config_switches_are_command_line_flags():
    from alexnet_lib import cli
    args = cli._parser().parse_args(["train", "--preset", "fast", "--fused-pool", "--fast-augment", "--val", "5000"])
    assert (args.fused_pool, args.fast_augment, args.val) == (True, True, 5000)


@pytest.mark.parametrize("preset", ["fast_h200", "best"])
def test_h200_presets_run_in_the_quick_profile(preset, tmp_path, cache, one_thread):
    from alexnet_lib import cli, runs
    out = tmp_path / "run.json"
    small = ["--train-limit", "96", "--test-limit", "64", "--batch-size", "32"]  # the code path, not the learning
    assert cli.main(["train", "--preset", preset, "--epochs", "1", "--profile", "quick", *small, "--out", str(out)]) == 0
    h = runs.load_json(out)
    s = h["settings"]
    assert s["fused_pool"] and s["fast_augment"] and s["s2d_stem"] and h["status"] == "finished"
    if preset == "best":
        assert s["val"] == 500 and "val_acc" in h["epochs"][0] and 0 <= h["test_acc"] <= 1
