"""alexnet_lib.inspect_net (feature maps, predictions, confusion matrix, mistakes) and the plots/widget built on it."""
import matplotlib

matplotlib.use("Agg")

import pytest
import torch
from torch import nn

from alexnet_lib import models
from alexnet_lib.inspect_net import (Predictions, confusion_matrix, conv_layers, feature_maps,
                                     most_confident_mistakes, predict)


def test_conv_layers_in_forward_order():
    with torch.device("meta"):  # no weights needed for names
        d2l, paper = models.d2l_alexnet(), models.paper_alexnet()
    assert conv_layers(d2l) == ["features.0", "features.3", "features.6", "features.8",
                                                 "features.10"]
    assert conv_layers(paper) == ["features.0", "features.4", "features.8", "features.10",
                                                   "features.12"]


@pytest.mark.parametrize("size, sides", [(224, [54, 26, 12, 12, 12]), (96, [22, 10, 4, 4, 4])])
def test_feature_map_shapes_d2l(size, sides):
    torch.manual_seed(0)
    net = models.d2l_alexnet(image_size=size)
    maps = feature_maps(net, torch.rand(2, 1, size, size))
    assert list(maps) == conv_layers(net)
    assert [tuple(m.shape) for m in maps.values()] == [(2, c, s, s) for c, s in zip((96, 256, 384, 384, 256), sides)]


def test_feature_maps_after_activation_are_relu_of_conv():
    torch.manual_seed(0)
    net = models.d2l_alexnet(image_size=96)
    x = torch.randn(1, 1, 96, 96)
    raw = feature_maps(net, x, ["features.0"], activated=False)["features.0"]
    act = feature_maps(net, x, ["features.0"])["features.0"]
    assert (raw < 0).any(), "the raw convolution output has negative values"
    assert torch.equal(act, raw.clamp(min=0))  # inplace ReLU did not overwrite the raw copy
    assert torch.allclose(raw, net.features[0](x))


def test_feature_maps_any_size_the_convolutions_take_and_keep_mode():
    net = models.paper_alexnet(in_channels=3, num_classes=10).train()
    maps = feature_maps(net, torch.rand(1, 3, 300, 300))  # not the classifier's 227, only features run
    assert tuple(maps["features.0"].shape) == (1, 96, 73, 73)
    assert net.training


def test_feature_maps_unknown_layer():
    with pytest.raises(ValueError, match="features.99"):
        feature_maps(models.lenet(), torch.rand(1, 1, 28, 28), ["features.99"])


def test_feature_maps_of_a_classifier_layer_run_the_whole_net():
    net = models.lenet()
    maps = feature_maps(net, torch.rand(3, 1, 28, 28), ["classifier.4"])
    assert tuple(maps["classifier.4"].shape) == (3, 10)


def test_confusion_matrix_counts():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = torch.tensor([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(labels, preds, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum(1).tolist() == [2, 1, 3]      # rows: images per true class
    assert cm.trace() == 4                      # correct predictions


def test_confusion_matrix_random_sums():
    g = torch.Generator().manual_seed(0)
    labels, preds = torch.randint(0, 10, (500,), generator=g), torch.randint(0, 10, (500,), generator=g)
    cm = confusion_matrix(labels, preds)
    assert cm.sum() == 500
    assert torch.equal(cm.sum(1), torch.bincount(labels, minlength=10))
    assert torch.equal(cm.sum(0), torch.bincount(preds, minlength=10))
    assert cm.trace() == (labels == preds).sum()


def test_confusion_matrix_bad_input():
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix(torch.tensor([0, 3]), torch.tensor([0, 1]), 3)
    with pytest.raises(ValueError, match="length"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 3)


def test_most_confident_mistakes_order():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.05, 0.95], [0.7, 0.3]])
    pred = Predictions(labels=torch.tensor([0, 0, 1, 0, 1]), preds=probs.argmax(1), probs=probs)
    assert most_confident_mistakes(pred).tolist() == [3, 1, 4, 2]
    assert most_confident_mistakes(pred, k=2).tolist() == [3, 1]
    assert pred.accuracy == pytest.approx(0.2)


class _Fixed(nn.Module):
    """Predicts class (sum of pixels > 0), with a parameter so predict() can find the device."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        s = x.flatten(1).sum(1) * self.w
        return torch.stack([-s, s], 1)


def test_predict_keeps_order_and_mode():
    x = torch.tensor([1.0, -2.0, 3.0, -0.5]).reshape(4, 1, 1, 1)
    y = torch.tensor([1, 1, 1, 0])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=3)
    net = _Fixed().train()
    pred = predict(net, loader)
    assert pred.preds.tolist() == [1, 0, 1, 0] and pred.labels.tolist() == [1, 1, 1, 0]
    assert torch.allclose(pred.probs.sum(1), torch.ones(4))
    assert len(pred) == 4 and pred.accuracy == 0.75 and net.training
    assert most_confident_mistakes(pred).tolist() == [1]


def test_plots_and_widget_draw():
    import matplotlib.pyplot as plt

    from alexnet_lib.plot import plot_confusion_matrix, plot_feature_maps, plot_filters, plot_layer_maps
    from alexnet_lib.widgets import feature_map_explorer

    net = models.d2l_alexnet(image_size=96)
    fig = plot_filters(net.features[0].weight[:20], ncols=8)  # 3 rows of 8, 11x11 each, 1-pixel gaps
    assert fig.axes[0].images[0].get_array().shape == (3 * 12 + 1, 8 * 12 + 1)
    fig = plot_filters(models.paper_alexnet().features[0].weight[:8], ncols=4)
    assert fig.axes[0].images[0].get_array().shape == (2 * 12 + 1, 4 * 12 + 1, 3)  # RGB kernels in colour
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic[1:12, 1:12].min() == 0 and mosaic[1:12, 1:12].max() == 1  # each kernel scaled to [0, 1]
    maps = feature_maps(net, torch.rand(1, 1, 96, 96), ["features.3"])["features.3"][0]
    fig = plot_feature_maps(maps, torch.rand(1, 96, 96), n=16, lang="en")
    assert sum(len(ax.images) > 0 for ax in fig.axes) == 17
    maps = feature_maps(net, torch.rand(1, 1, 96, 96))
    fig = plot_layer_maps({k: v[0] for k, v in maps.items()}, torch.rand(1, 96, 96), n=4)
    assert len(fig.axes) == 5 * 5 and fig.axes[1].get_title(loc="left") == "features.0 · 96×22×22"
    fig = plot_confusion_matrix(torch.eye(3, dtype=torch.long) * 5, ["a", "b", "c"], lang="zh")
    assert fig.axes[0].get_xlabel() == "预测类别"
    plt.close("all")
    w = feature_map_explorer(net, torch.rand(3, 1, 96, 96), titles=["a", "b", "c"], n=4, lang="en")
    slider, dropdown = w.children[0].children
    assert dropdown.options[1] == ("conv2 (features.3)", "features.3")
    dropdown.value = "features.10"  # redraws without error
    slider.value = 2
    plt.close("all")


def test_mistakes_report_is_small_json_of_what_the_network_gets_wrong(tmp_path, one_thread):
    """The report chapter 11 reads (recorded on a GPU from the trained network): accuracy, confusion matrix, the most
    confident mistakes with the originals' pixels; here on the bundled sample with an untrained network."""
    import json
    from alexnet_lib import inspect_net
    torch.manual_seed(0)
    ckpt = tmp_path / "net.pt"
    torch.save({"model": models.d2l_alexnet(image_size=96).state_dict()}, ckpt)
    out = tmp_path / "mistakes.json"
    assert inspect_net._main(["--checkpoint", str(ckpt), "--out", str(out), "--source", "sample",
                              "--image-size", "96", "--k", "5", "--run", "test"]) == 0
    rec = json.loads(out.read_text())
    cm = torch.tensor(rec["confusion"])
    assert cm.shape == (10, 10) and int(cm.sum()) == rec["test_images"]
    assert abs(cm.trace().item() / cm.sum().item() - rec["test_acc"]) < 1e-6
    probs = [m["prob"] for m in rec["mistakes"]]
    assert rec["kind"] == "mistakes_report" and len(probs) == 5 and probs == sorted(probs, reverse=True)
    assert all(m["label"] != m["pred"] and len(bytes.fromhex(m["pixels_hex"])) == 28 * 28 for m in rec["mistakes"])
    assert out.stat().st_size < 100_000
