import pytest

from alexnet_lib import models
from alexnet_lib.trace import ShapeError, trace, valid_sizes


def test_d2l_trace_matches_known_shapes_and_flops():
    tr = trace(models.d2l_alexnet(), (1, 224, 224))
    shapes = {r["layer"]: r["shape"] for r in tr.rows}
    assert shapes["features.0"] == (96, 54, 54) and shapes["features.12"] == (256, 5, 5)
    assert shapes["classifier.6"] == (10,)
    # conv1: 2 * (1*11*11) * 96 * 54 * 54 FLOPs (multiply-add = 2)
    assert next(r for r in tr.rows if r["layer"] == "features.0")["flops"] == 2 * 121 * 96 * 54 * 54
    assert tr.params == 46_764_746
    t = tr.totals()
    assert t["fp32_MB"] == pytest.approx(46_764_746 * 4 / 1e6) and t["fp16_MB"] == pytest.approx(t["fp32_MB"] / 2)
    text = str(tr)
    assert "features.0" in text and "46,764,746" in text and "<table>" in tr._repr_html_()


def test_trace_error_names_layer_and_smallest_input():
    with pytest.raises(ShapeError, match=r"layer features\.5 .*smallest valid input: 1x193x193"):
        trace(models.d2l_alexnet(), (1, 28, 28))
    with pytest.raises(ShapeError, match=r"layer features\.0 .*got shape \(1, 3, 224, 224\)"):
        trace(models.d2l_alexnet(), (3, 224, 224))


def test_valid_sizes():
    assert valid_sizes(models.d2l_alexnet()) == (193, 224)
    assert valid_sizes(models.paper_alexnet()) == (227, 258)
    assert valid_sizes(models.torchvision_alexnet()) == (63, None)
    assert valid_sizes(models.lenet()) == (28, 31)


def test_a_changed_layer_is_named():
    """A model whose layers no longer fit at its own size says which layer breaks (chapter 1, exercise 1)."""
    import torch
    from alexnet_lib import models
    from alexnet_lib.trace import ShapeError
    net = models.d2l_alexnet()
    net.features[0].stride = (2, 2)
    with pytest.raises(ShapeError, match=r"image_size=224: layer classifier\.0 .* got shape \(1, 36864\)"):
        net(torch.zeros(1, 1, 224, 224))
