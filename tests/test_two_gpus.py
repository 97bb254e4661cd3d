"""Plot helpers of the chapter "Two GPUs, 2012 and now": the two-tower layout and the DDP throughput chart."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from alexnet_lib import models, runs  # noqa: E402
from alexnet_lib.plot import draw_two_towers, plot_ddp_throughput, two_tower_layers  # noqa: E402

RUNS = runs.set_root(Path(__file__).resolve().parent.parent / "book" / "runs")  # the repository's recorded runs


@pytest.fixture(scope="module")
def paper():
    with torch.device("meta"):  # the layout needs the layers, not their weights
        return models.paper_alexnet()


def test_two_tower_layers_follow_the_paper(paper):
    layers = two_tower_layers(paper)
    assert [l["name"] for l in layers] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    # Section 3.2: conv3 and the dense layers read both GPUs, conv2/4/5 only their own GPU's maps
    assert [l["reads"] for l in layers] == ["image", "own", "both", "own", "own", "both", "both", "both"]
    assert [l["per_gpu"] for l in layers] == [48, 128, 192, 192, 128, 2048, 2048, None]
    assert layers[-1]["units"] == 1000


def test_two_tower_layers_read_the_groups_from_the_model():
    # a single-tower AlexNet (no groups): every layer after the first reads across
    with torch.device("meta"):
        layers = two_tower_layers(models.d2l_alexnet())
    assert [l["reads"] for l in layers][:5] == ["image", "both", "both", "both", "both"]
    # and changing one layer's groups changes the layout
    with torch.device("meta"):
        net = models.paper_alexnet()
    net.features[8] = nn.Conv2d(256, 384, kernel_size=3, padding=1, groups=2)  # conv3 split as well
    assert two_tower_layers(net)[2]["reads"] == "own"


@pytest.mark.parametrize("lang, word", [("zh", "图像"), ("en", "image")])
def test_draw_two_towers_labels_in_the_page_language(paper, lang, word):
    fig = draw_two_towers(paper, lang=lang)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(word in t for t in texts) and {"GPU 1", "GPU 2"} <= set(texts)
    assert sum(t == "groups=2" for t in texts) == 3
    arrows = [a.arrow_patch for a in fig.axes[0].texts if isinstance(a, Annotation) and a.arrow_patch is not None]
    red = [a for a in arrows if to_hex(a.get_edgecolor()) == to_hex("tab:red")]
    # crossing arrows: 2 into conv3, 2 into fc6, 2 into fc7, 2 into fc8
    assert len(red) == 8
    plt.close(fig)


def _bench(n, rows):
    return {"model": "d2l_alexnet", "image_size": 224, "device_name": "GPU", "date": "2026-01-01", "torch": "2",
            "world_size": n, "rows": rows}


def test_plot_ddp_throughput_ratios_and_provenance():
    b1 = _bench(1, [{"name": "+ batch 512", "batch": 512, "img_per_s": 100.0, "amp": True, "channels_last": True,
                     "fused": True, "steps": 40}])
    b2 = _bench(2, [{"name": "2 GPUs, batch 512 per GPU", "batch": 512, "img_per_s": 190.0, "world_size": 2},
                    {"name": "2 GPUs, global batch 512", "batch": 256, "img_per_s": 160.0, "world_size": 2}])
    fig = plot_ddp_throughput(b1, b2, lang="en")
    ax = fig.axes[0]
    assert [round(p.get_width()) for p in ax.patches] == [100, 190, 160]
    labels = [t.get_text() for t in ax.texts]
    assert any("1.90×" in t for t in labels) and any("1.60×" in t for t in labels)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "bench, 1 GPU, batch 512", "bench, 2 GPUs, 512 per GPU (global 1024)", "bench, 2 GPUs, 256 per GPU (global 512)"]
    note = fig.texts[-1].get_text()
    assert "GPU · 2026-01-01" in note and "bf16, channels_last, fused SGD" in note and "40 steps" in note
    plt.close(fig)


def test_plot_ddp_throughput_with_the_recorded_runs():
    b1, b2 = runs.load("ddp/bench_1gpu"), runs.load("ddp/bench_2gpu")
    f1, f2 = runs.load("ddp/fast_1gpu"), runs.load("ddp/fast_2gpu")
    fig = plot_ddp_throughput(b1, b2, {"1": f1, "2": f2}, lang="zh")
    ax = fig.axes[0]
    assert len(ax.patches) == 5
    # training runs: the median of epochs 2.. (epoch 1 compiles), relative to the one-GPU run
    import statistics
    m1 = statistics.median(e["img_per_s"] for e in f1["epochs"][1:])
    m2 = statistics.median(e["img_per_s"] for e in f2["epochs"][1:])
    assert ax.patches[-1].get_width() == pytest.approx(m2)
    assert any(f"({m2 / m1:.2f}×)" in t.get_text() for t in ax.texts)
    assert "训练" in fig.texts[-1].get_text()
    plt.close(fig)
