"""Augmentation presets and their tensor-op twins, the augmentation gallery, and the plots of chapters 6 and 7."""
import matplotlib
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from alexnet_lib import augment, data
from alexnet_lib.augment import PRESETS, augmented_versions, gpu_augment

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def images():
    """16 real Fashion-MNIST images from the bundled sample, uint8 (16, 28, 28)."""
    return data.fashion_mnist(True, source="sample").data[:16]


def batch(images):
    return images.unsqueeze(1).float() / 255


def shifts_and_flips(img, pad=2):
    """All 2 x 5 x 5 images the 'shift' preset can make of ``img`` (1, 28, 28): flip or not, shift by -2..2."""
    out = []
    for im in (img, img.flip(-1)):
        p = F.pad(im, (pad,) * 4)
        out += [p[..., dy:dy + 28, dx:dx + 28] for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    return torch.stack(out)


@pytest.mark.parametrize("name", PRESETS)
def test_v2_presets_keep_shape_type_and_range(name, images):
    tf = augment.transform(name)
    torch.manual_seed(0)
    out = tf(images[:1])  # a uint8 tensor image
    assert out.shape == (1, 28, 28) and out.dtype == torch.uint8
    pil = tf(Image.fromarray(images[0].numpy()))  # the DataLoader path applies it to PIL images
    assert pil.size == (28, 28) and pil.mode == "L"
    out = tf(batch(images[:1])[0])
    assert out.shape == (1, 28, 28) and 0 <= out.min() and out.max() <= 1


def test_unknown_preset_is_an_error():
    for call in (lambda: augment.transform("rotate"), lambda: gpu_augment(torch.zeros(1, 1, 28, 28), "rotate", 28)):
        with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
            call()
    assert augment.transform(None) is None


@pytest.mark.parametrize("name", [None, *PRESETS])
@pytest.mark.parametrize("size", [28, 96])
def test_gpu_augment_shape_and_range(name, size, images):
    out = gpu_augment(batch(images), name, size, generator=torch.Generator().manual_seed(0))
    assert out.shape == (16, 1, size, size) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1 + 1e-6


def test_gpu_flip_really_flips(images):
    x = batch(images).repeat(4, 1, 1, 1)  # 64 images: both outcomes are all but certain
    out = gpu_augment(x, "flip", 28, generator=torch.Generator().manual_seed(0))
    same = (out - x).abs().flatten(1).amax(1) < 1e-5
    flipped = (out - x.flip(-1)).abs().flatten(1).amax(1) < 1e-5
    assert torch.all(same | flipped)
    assert 10 < int((flipped & ~same).sum()) < 54


def test_gpu_shift_is_an_exact_pixel_shift_like_the_v2_preset(images):
    """At 28x28 every GPU 'shift' output is exactly one of the 50 images the torchvision preset can produce."""
    x = batch(images)
    out = gpu_augment(x, "shift", 28, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(1)
    v2_out = torch.stack([augment.transform("shift")(img) for img in x])
    for img, g, v in zip(x, out, v2_out):
        cands = shifts_and_flips(img)
        assert (cands - g).abs().flatten(1).amax(1).min() < 1e-5
        assert (cands - v).abs().flatten(1).amax(1).min() < 1e-6
    assert not torch.allclose(out, x)  # something moved


def test_gpu_jitter_changes_brightness_only_within_bounds(images):
    x = batch(images)
    out = gpu_augment(x, "jitter", 28, generator=torch.Generator().manual_seed(0))
    ratio = out.mean((1, 2, 3)) / x.mean((1, 2, 3))
    assert ratio.std() > 0.05  # each image gets its own factor
    assert torch.all((ratio > 0.5) & (ratio < 1.5))


def test_gpu_augment_is_deterministic_with_a_seeded_generator(images):
    x = batch(images)
    for name in PRESETS:
        a = gpu_augment(x, name, 28, generator=torch.Generator().manual_seed(3))
        b = gpu_augment(x, name, 28, generator=torch.Generator().manual_seed(3))
        c = gpu_augment(x, name, 28, generator=torch.Generator().manual_seed(4))
        assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("path", ["v2", "gpu"])
def test_augmented_versions(path, images):
    state = torch.get_rng_state()
    a = augmented_versions(images[0], "all", 6, seed=5, path=path)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left alone
    assert a.shape == (6, 1, 28, 28) and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, augmented_versions(images[0], "all", 6, seed=5, path=path))
    assert not torch.equal(a, augmented_versions(images[0], "all", 6, seed=6, path=path))
    assert len({v.numpy().tobytes() for v in a}) > 1  # the versions differ from each other
    same = augmented_versions(images[0], None, 3, path=path)
    assert torch.equal(same, (images[0].float() / 255).expand(3, 1, 28, 28))
    with pytest.raises(ValueError, match="path"):
        augmented_versions(images[0], "flip", path="cuda")


def test_show_augmented(images):
    from alexnet_lib import plot

    fig = plot.show_augmented(images[3], "crop", 7, seed=2, lang="zh")
    assert len([ax for ax in fig.axes if ax.images]) == 8 and fig.axes[0].get_title() == "原图"
    assert "crop" in fig._suptitle.get_text() and "seed 2" in fig._suptitle.get_text()


def test_gallery_redraws_on_every_change(images, monkeypatch):
    import ipywidgets as W

    from alexnet_lib import plot, widgets

    calls = []
    monkeypatch.setattr(plot, "show_augmented", lambda img, name, n, **kw: calls.append((img, name, n, kw))
                        or matplotlib.figure.Figure())
    w = widgets.augment_gallery(images, lang="en")
    assert isinstance(w, W.VBox)
    (preset, path), (index, seed) = w.children[0].children, w.children[1].children
    assert index.max == len(images) - 1 and len(calls) == 1  # the first frame is drawn at once
    assert calls[0][1:3] == ("shift", 7) and calls[0][3]["seed"] == 0 and calls[0][3]["path"] == "v2"
    preset.value, path.value, index.value, seed.value = "jitter", "gpu", 5, 7
    img, name, n, kw = calls[-1]
    assert len(calls) == 5 and name == "jitter" and kw["path"] == "gpu" and kw["seed"] == 7
    assert torch.equal(img, images[5])


def test_plot_generalization_draws_the_gap():
    from alexnet_lib import plot

    h = {"device_name": "test", "date": "2020-01-01", "torch": "x", "profile": "full", "settings": {"lr": 0.1},
         "epochs": [{"epoch": i + 1, "train_acc": 0.8 + 0.05 * i, "test_acc": 0.8 + 0.01 * i} for i in range(3)]}
    fig = plot.plot_generalization({"a": h}, lang="en")
    acc, gap = fig.axes
    assert acc.get_ylabel() == "test acc" and gap.get_ylabel() == "train acc − test acc"
    assert list(gap.lines[0].get_ydata()) == pytest.approx([0.0, 0.04, 0.08])
    assert "test" in fig.texts[0].get_text()  # provenance under the figure
    assert not gap.texts  # every point is on the scale


def test_plot_generalization_scales_the_gap_to_the_later_epochs():
    from alexnet_lib import plot

    acc = [(0.45, 0.77), (0.80, 0.84), (0.86, 0.86), (0.89, 0.87)]  # epoch 1: running train acc far below test
    h = {"settings": {}, "epochs": [{"epoch": i + 1, "train_acc": a, "test_acc": b} for i, (a, b) in enumerate(acc)]}
    gap = plot.plot_generalization({"a": h}, lang="zh").axes[1]
    lo, hi = gap.get_ylim()
    assert -0.1 < lo < -0.04 and 0.02 < hi < 0.05  # epochs 2-4 (gaps -0.04, 0, 0.02) fill the axis
    assert [t.get_text() for t in gap.texts] == ["第 1 轮在图外"]
