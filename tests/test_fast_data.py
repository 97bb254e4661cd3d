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
                      image_size=68, train_limit=64, test_limit=32, val=200, data_path="gpu", tta=True)
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


@pytest.mark.parametrize("preset", ["fast_h200", "best_cutout"])
def test_h200_presets_run_in_the_quick_profile(preset, tmp_path, cache, one_thread):
    from alexnet_lib import cli, runs
    out = tmp_path / "run.json"
    small = ["--train-limit", "96", "--test-limit", "64", "--batch-size", "32"]  # the code path, not the learning
    assert cli.main(["train", "--preset", preset, "--epochs", "1", "--profile", "quick", *small, "--out", str(out)]) == 0
    h = runs.load_json(out)
    s = h["settings"]
    assert s["fused_pool"] and s["fast_augment"] and s["s2d_stem"] and h["status"] == "finished"
    if preset == "best_cutout":  # "best" with Cutout: the same held-out evaluation
        assert s["erase"] == 10 and s["val"] == 500 and "val_acc" in h["epochs"][0] and 0 <= h["test_acc"] <= 1


@pytest.mark.parametrize("side,border", [(1, 0), (10, 0), (10, 1), (28, 0)])
def test_erased_square_is_whole_inside_the_image_and_placed_anywhere(side, border):
    """Cutout: exactly side x side pixels of each image become 0, all inside the image (never in the border), and
    over many images the square's corner takes every place that fits."""
    n, h = 600, 28 + 2 * border
    out = augment.erase_squares(torch.full((n, 1, h, h), 255, dtype=torch.uint8), side,
                                torch.Generator().manual_seed(1), border=border)
    assert out.dtype == torch.uint8
    zero = out[:, 0] == 0
    assert (zero.flatten(1).sum(1) == side * side).all()
    if border:
        assert not zero[:, :border].any() and not zero[:, -border:].any() and not zero[:, :, :border].any()
    tops = zero.any(2).float().argmax(1)  # first erased row of each image
    assert set(tops.tolist()) == set(range(border, border + 28 - side + 1))
    with pytest.raises(ValueError, match="does not fit"):
        augment.erase_squares(out, 29, border=border)
    assert augment.erase_squares(out, 0) is out


def test_erasing_is_the_same_square_on_every_data_path():
    """The DataLoader path (RandomErasing at the resized side), the GPU path at full size and the fast 28x28 path
    each blank one square of erase/28 of the side, filled with the background (0 before normalising)."""
    ones = torch.ones(8, 1, 56, 56)
    tf = augment.erasing(7)  # a 7/28 square: 14 x 14 at 56 x 56
    assert all(int((tf(img) == 0).sum()) == 14 * 14 for img in ones)
    x = torch.full((8, 28, 28), 255, dtype=torch.uint8)
    y = torch.zeros(8, dtype=torch.long)
    for fast in (False, True):
        loader = gpu_data.GPULoader(x, y, 8, image_size=56, augment=None, device="cpu", fast_augment=fast,
                                    erase=7, shuffle=False)
        batch, _ = next(iter(loader))
        dark = (batch[:, 0] < 0.5).flatten(1).sum(1)
        assert ((dark >= 13 * 13) & (dark <= 15 * 15)).all(), (fast, dark)  # 14 x 14, give or take the blend
    plain, _ = next(iter(gpu_data.GPULoader(x, y, 8, image_size=56, device="cpu", fast_augment=True)))
    assert (plain > 0.99).all()


def test_erase_is_a_checked_config_field_and_flag():
    with pytest.raises(ValueError, match="erase"):
        TrainConfig(erase=28)
    from alexnet_lib.cli import _parser
    args = _parser().parse_args(["train", "--preset", "best", "--erase", "10"])
    assert args.erase == 10
    train_loader, test_loader = experiments.loaders(
        TrainConfig(source="sample", data_path="gpu", batch_size=16, erase=10, train_limit=32, test_limit=16,
                    augment="shift", fast_augment=True), torch.device("cpu"))
    assert train_loader.erase == 10 and test_loader.erase == 0


def test_dataloader_path_erases_training_images_only():
    """load_data_fashion_mnist(erase=10): on white images, each training image has exactly one 10x10 square of
    zeros; test images are untouched."""
    train, test = data.load_data_fashion_mnist(4, source="sample", erase=10)
    for loader, erased in ((train, True), (test, False)):
        ds = loader.dataset
        ds.data = torch.full_like(ds.data[:4], 255)  # white: every zero is an erased pixel
        for i in range(4):
            zero = ds[i][0][0] == 0
            assert int(zero.sum()) == (100 if erased else 0)
            if erased:  # and they form one square
                rows, cols = zero.any(1).nonzero(), zero.any(0).nonzero()
                assert rows.max() - rows.min() == cols.max() - cols.min() == 9
