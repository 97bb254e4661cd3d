"""Chapters "Activation functions" and "Dropout": gradient norms, their plots and the two explorers."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from alexnet_lib import models  # noqa: E402
from alexnet_lib.grads import gradient_norms, layer_names  # noqa: E402
from alexnet_lib.plot import plot_activations, plot_dropout, plot_grad_norms  # noqa: E402

LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3"]


def batch(n=8, size=67, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g), torch.randint(0, 10, (n,), generator=g)


def norms(activation, seed=0, size=67):
    """The AlexNet stack at half width and near its smallest input (fast on a CPU), at initialisation."""
    torch.manual_seed(seed)
    net = models.half_alexnet(activation=activation, image_size=size)
    return net, gradient_norms(net, *batch(size=size))


def test_layer_names_follow_the_paper():
    names = layer_names(models.d2l_alexnet(image_size=67))
    assert list(names.values()) == LAYERS
    assert names["features.0"] == "conv1" and names["classifier.0"] == "fc1" and names["classifier.6"] == "fc3"
    assert list(layer_names(models.lenet()).values()) == ["conv1", "conv2", "fc1", "fc2", "fc3"]


def test_gradient_norms_are_deterministic_and_leave_grad_alone():
    def lenet_norms():
        torch.manual_seed(0)
        net = models.lenet()
        return net, gradient_norms(net, *batch(size=28))
    net, a = lenet_norms()
    _, b = lenet_norms()
    assert list(a) == ["conv1", "conv2", "fc1", "fc2", "fc3"] and a == b
    assert all(v > 0 for v in a.values())
    assert all(p.grad is None for p in net.parameters())  # computed with autograd.grad, .grad untouched


def test_gradient_norms_match_backward():
    torch.manual_seed(0)
    net = models.lenet()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    got = gradient_norms(net, x, y)
    nn.functional.cross_entropy(net(x), y).backward()
    assert got["conv1"] == pytest.approx(net.features[0].weight.grad.norm().item(), rel=1e-6)
    assert got["fc3"] == pytest.approx(net.classifier[4].weight.grad.norm().item(), rel=1e-6)


def test_sigmoid_gradients_vanish_towards_the_input():
    grads = {a: norms(a)[1] for a in ("relu", "sigmoid", "tanh")}
    assert all(list(g) == LAYERS for g in grads.values())
    ratio = {a: g["conv1"] / g["fc3"] for a, g in grads.items()}
    assert ratio["sigmoid"] < 1e-4          # millions of times smaller at conv1 than at fc3
    assert ratio["relu"] > 1e-3 and ratio["tanh"] > 1e-3
    assert ratio["sigmoid"] < ratio["relu"] / 100


def test_plot_activations_shades_the_saturated_share():
    fig = plot_activations(x_max=10, highlight="sigmoid", lang="en")
    assert len(fig.axes) == 2
    notes = [t.get_text() for t in fig.axes[1].texts]
    # sigmoid'(x) < 0.01 for |x| > 4.6, i.e. on about 54% of [-10, 10]
    assert notes == ["f′ < 0.01 on 54% of the range"]
    assert [l.get_text() for l in fig.axes[0].get_legend().get_texts()] == ["ReLU", "sigmoid", "tanh"]
    zh = plot_activations(lang="zh")
    assert zh.axes[0].get_title().startswith("激活函数") and not zh.axes[1].texts
    plt.close("all")


def test_plot_activations_scale_is_chain_rule():
    fig = plot_activations(names=("tanh",), scale=2.0, lang="en")
    x, dy = fig.axes[1].lines[0].get_data()
    i = abs(torch.as_tensor(x)).argmin()
    assert dy[i] == pytest.approx(2.0, abs=1e-3)  # d/dx tanh(2x) at 0 = 2
    plt.close("all")


def test_plot_grad_norms_log_scale():
    fig = plot_grad_norms({"ReLU": {"conv1": 1e-3, "fc1": 0.1}, "sigmoid": {"conv1": 1e-6, "fc1": 1.0}}, lang="zh")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "层" and len(ax.lines) == 2
    plt.close("all")


@pytest.mark.parametrize("shape", [(8, 8), (10,)])
def test_plot_dropout_is_inverted_dropout(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    p = 0.5
    fig = plot_dropout(x, p, seed=3, lang="en")
    keep = torch.rand((1, 10) if len(shape) == 1 else shape, generator=torch.Generator().manual_seed(3)) >= p
    shown_mask = torch.as_tensor(fig.axes[1].images[0].get_array())
    shown_out = torch.as_tensor(fig.axes[2].images[0].get_array())
    assert torch.equal(shown_mask.bool(), keep)
    assert torch.allclose(shown_out, x.reshape(keep.shape) * keep * 2)
    assert f"{int(keep.sum())} of {keep.numel()}" in fig.axes[1].get_title()
    plt.close("all")


def test_explorers_build_and_redraw(monkeypatch):
    pytest.importorskip("ipywidgets")
    from alexnet_lib import plot, widgets

    calls = []
    for fn in ("plot_activations", "plot_dropout"):
        real = getattr(plot, fn)
        monkeypatch.setattr(plot, fn, lambda *a, _real=real, _fn=fn, **k: calls.append((_fn, a, k)) or _real(*a, **k))
    w = widgets.activation_explorer(lang="zh")
    controls = w.children[0].children
    assert [c.description for c in controls] == ["激活函数", "输入范围 ±", "缩放 s"]
    controls[0].value = "tanh"
    assert calls[-1][0] == "plot_activations" and calls[-1][2]["highlight"] == "tanh"
    d = widgets.dropout_explorer(lang="en")
    p_w, seed_w = d.children[0].children
    p_w.value = 0.8
    seed_w.value = 5
    assert calls[-1][0] == "plot_dropout" and calls[-1][1][1] == 0.8 and calls[-1][2]["seed"] == 5
    assert len(calls) == 5  # one first frame per explorer, one per change
    plt.close("all")
