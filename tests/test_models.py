import copy

import pytest
import torch

from alexnet_lib import models
from alexnet_lib.trace import ShapeError

count = lambda m: sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("builder, kwargs, params", [
    ("lenet", {}, 61_706),
    ("d2l_alexnet", {}, 46_764_746),                                   # d2l's AlexNet, 1x224x224, 10 classes
    ("paper_alexnet", {"in_channels": 3, "num_classes": 1000}, 60_965_224),
    ("torchvision_alexnet", {"in_channels": 3, "num_classes": 1000}, 61_100_840),
    ("half_alexnet", {}, 11_706_730),
])
def test_parameter_counts(builder, kwargs, params):
    assert count(models.build_model(builder, **kwargs)) == params


def test_torchvision_alexnet_is_torchvisions():
    import torchvision
    assert count(models.torchvision_alexnet()) == count(torchvision.models.alexnet())


def test_paper_alexnet_has_lrn_and_two_gpu_groups():
    net = models.paper_alexnet()
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    lrn = [m for m in net.features if isinstance(m, torch.nn.LocalResponseNorm)]
    assert len(lrn) == 2 and lrn[0].size == 5 and lrn[0].k == 2.0 and lrn[0].beta == 0.75


@pytest.mark.parametrize("builder, shape, out", [
    ("lenet", (2, 1, 28, 28), (2, 10)),
    ("d2l_alexnet", (2, 1, 224, 224), (2, 10)),
    ("paper_alexnet", (1, 3, 227, 227), (1, 1000)),
    ("torchvision_alexnet", (1, 3, 224, 224), (1, 1000)),
])
def test_forward_shapes(builder, shape, out):
    net = models.build_model(builder).eval()
    with torch.no_grad():
        assert net(torch.randn(*shape)).shape == out


def test_in_channels_and_classes_are_knobs():
    for name in ["d2l_alexnet", "half_alexnet", "paper_alexnet", "torchvision_alexnet"]:
        net = models.build_model(name, in_channels=3, num_classes=7).eval()
        size = net.image_size
        with torch.no_grad():
            assert net(torch.randn(1, 3, size, size)).shape == (1, 7)


def test_quick_profile_side_keeps_the_conv_stack():
    small, big = models.d2l_alexnet(image_size=96), models.d2l_alexnet()
    conv = lambda m: [tuple(p.shape) for p in m.features.parameters()]
    assert conv(small) == conv(big)
    assert small.classifier[0].in_features == 256 and big.classifier[0].in_features == 6400


@pytest.mark.parametrize("shape, layer", [((1, 1, 28, 28), "features.5"), ((1, 3, 224, 224), "features.0"),
                                          ((1, 1, 96, 96), "classifier.0")])
def test_wrong_input_names_layer_and_smallest_size(shape, layer):
    with pytest.raises(ShapeError) as e:
        models.d2l_alexnet()(torch.randn(*shape))
    msg = str(e.value)
    assert f"layer {layer}" in msg and str(shape) in msg and "smallest valid input: 1x193x193" in msg


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown model"):
        models.build_model("vgg")
    with pytest.raises(ValueError, match="unknown activation"):
        models.d2l_alexnet(activation="swish")


@pytest.mark.parametrize("builder, kwargs, size", [
    (models.d2l_alexnet, {}, 224), (models.d2l_alexnet, {"image_size": 96}, 96), (models.d2l_alexnet, {}, 200),
    (models.paper_alexnet, {}, 227), (models.torchvision_alexnet, {}, 224), (models.torchvision_alexnet, {}, 230)])
def test_space_to_depth_first_layer_computes_the_same_function(builder, kwargs, size):
    torch.manual_seed(0)
    net = builder(**kwargs)
    net.classifier = torch.nn.Identity()  # only the first layer is compared (the dense head, in double, is slow)
    net = net.double().eval()
    fast = copy.deepcopy(net)
    conv = fast.features[0]
    models.space_to_depth_stem(fast)
    assert isinstance(fast.features[0], models.SpaceToDepthConv2d)
    assert fast.features[0].weight is conv.weight and fast.features[0].bias is conv.bias  # the same parameters
    x = torch.randn(2, net.in_channels, size, size, dtype=torch.double, requires_grad=True)
    a, b = net.features[0](x), fast.features[0](x)
    assert a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=1e-12)
    g = torch.randn_like(a)  # the gradient from the layers above: the same for both (the outputs are the same)
    a.backward(g)
    gx = x.grad.clone()
    x.grad = None
    b.backward(g)
    w1, w2 = net.features[0].weight.grad, fast.features[0].weight.grad
    assert torch.allclose(w1, w2, rtol=1e-10, atol=1e-12) and torch.allclose(gx, x.grad, rtol=1e-10, atol=1e-12)


def test_space_to_depth_keeps_checkpoints_and_input_checks():
    net = models.d2l_alexnet()
    fast = models.space_to_depth_stem(models.d2l_alexnet())
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in fast.state_dict().items()}
    fast.load_state_dict(net.state_dict())  # checkpoints load either way
    assert models.space_to_depth_stem(fast) is fast  # applying it twice changes nothing
    with pytest.raises(ShapeError, match="features"):
        fast(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="strided"):
        models.SpaceToDepthConv2d(torch.nn.Conv2d(1, 4, 3))
    with pytest.raises(ValueError, match="not a convolution"):
        models.space_to_depth_stem(_with_features(torch.nn.ReLU()))


def _with_features(first):
    m = torch.nn.Module()
    m.features = torch.nn.Sequential(first)
    return m


def test_paper_alexnet_drops_out_after_fc6_and_fc7_as_published():
    """The 2012 paper: dropout "in the first two fully-connected layers", zeroing hidden outputs (the 2012 code's
    hs1/hs2 layers follow fc2048a/fc2048ba); torchvision drops the inputs of its dense layers instead."""
    from torch import nn
    order = lambda net: [type(m).__name__ for m in net.classifier]
    assert order(models.paper_alexnet()) == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert order(models.torchvision_alexnet())[:2] == ["Dropout", "Linear"]
    assert isinstance(models.d2l_alexnet().classifier[2], nn.Dropout)


def test_pooling_option():
    from alexnet_lib.trace import trace
    pools = lambda net: [r["shape"][1:] for r in trace(net).rows if r["type"] == "MaxPool2d"]
    assert pools(models.paper_alexnet()) == pools(models.paper_alexnet(pool="2x2")) == [(27, 27), (13, 13), (6, 6)]
    assert pools(models.d2l_alexnet()) == [(26, 26), (12, 12), (5, 5)]
    assert pools(models.d2l_alexnet(pool="2x2")) == [(27, 27), (13, 13), (6, 6)]
    with pytest.raises(ValueError, match="unknown pool"):
        models.d2l_alexnet(pool="4x4")


def test_paper_init():
    import torch
    from torch import nn
    torch.manual_seed(0)
    net = models.paper_init(models.d2l_alexnet(image_size=96))
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert [m.bias.unique().tolist() for m in layers] == [[0.0], [1.0], [0.0], [1.0], [1.0], [1.0], [1.0], [0.0]]
    assert all(abs(m.weight.std().item() - 0.01) < 0.001 and abs(m.weight.mean().item()) < 0.001 for m in layers)
    with pytest.raises(ValueError, match="5 convolutions"):
        models.paper_init(models.lenet())
