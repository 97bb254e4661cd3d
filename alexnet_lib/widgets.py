"""ipywidgets explorers used by the chapters (each returns a widget; display it as a cell's last line).

In the built book the widgets are static (no kernel); their first frame is drawn as a normal figure above them.
"""
from __future__ import annotations

__all__: list[str] = ["augment_gallery"]


def _live(rows, make_fig):
    """Rows of controls above a figure that ``make_fig()`` redraws whenever any control's value changes."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    out = W.Output()

    def draw(_=None) -> None:
        with out:
            out.clear_output(wait=True)
            fig = make_fig()
            display(fig)
            plt.close(fig)

    for row in rows:
        for w in row:
            w.observe(draw, names="value")
    draw()
    return W.VBox([W.HBox(list(row)) for row in rows] + [out])


def augment_gallery(images, n: int = 7, *, preset: str = "shift", lang: str | None = None):
    """Explore the augmentation presets on real images: a grid of ``n`` augmented versions of one image.

    Controls: the preset (dropdown), the path (torchvision ``v2`` one image at a time, or the batched tensor ops
    of :func:`alexnet_lib.augment.gpu_augment`), the image (slider over ``images``) and the random seed (slider).
    ``images`` is a sequence of grey images (uint8 (28, 28) / (1, 28, 28), e.g. ``dataset.data[:16]``). The first
    frame is :func:`alexnet_lib.plot.show_augmented` with the defaults, which a chapter also shows as a static figure.
    """
    import ipywidgets as W

    from .augment import PRESETS
    from .plot import page_lang, show_augmented

    zh = (lang or page_lang()) == "zh"
    style = {"description_width": "initial"}
    preset_w = W.Dropdown(options=list(PRESETS), value=preset, description="预设" if zh else "preset", style=style)
    path_w = W.ToggleButtons(options=[("torchvision v2", "v2"), ("gpu_augment", "gpu")], value="v2")
    index_w = W.IntSlider(value=0, min=0, max=len(images) - 1, description="图像" if zh else "image", style=style)
    seed_w = W.IntSlider(value=0, min=0, max=99, description="随机种子" if zh else "seed", style=style)
    return _live([(preset_w, path_w), (index_w, seed_w)],
                 lambda: show_augmented(images[index_w.value], preset_w.value, n, seed=seed_w.value,
                                        path=path_w.value, lang=lang))


__all__ += ["activation_explorer", "dropout_explorer"]


def activation_explorer(name: str = "sigmoid", *, x_max: float = 6.0, scale: float = 1.0, lang: str | None = None):
    """Explore an activation function and its derivative: which inputs saturate it.

    Controls: the function (dropdown: ReLU, sigmoid, tanh), the plotted input range ``[-x_max, x_max]`` and a
    ``scale`` on the input (``f(scale * x)``: larger weights push pre-activations into the flat parts sooner).
    Each frame is :func:`alexnet_lib.plot.plot_activations` with the chosen function highlighted and its
    near-zero-derivative stretches shaded; a chapter shows the first frame as a static figure.
    """
    import ipywidgets as W

    from .plot import ACTIVATION_LABELS, page_lang, plot_activations

    zh = (lang or page_lang()) == "zh"
    style = {"description_width": "initial"}
    name_w = W.Dropdown(options=[(v, k) for k, v in ACTIVATION_LABELS.items()], value=name,
                        description="激活函数" if zh else "function", style=style)
    range_w = W.FloatSlider(value=x_max, min=1, max=20, step=0.5, description="输入范围 ±" if zh else "input range ±",
                            style=style, continuous_update=False)
    scale_w = W.FloatLogSlider(value=scale, base=2, min=-2, max=3, step=0.25, description="缩放 s" if zh else "scale s",
                               style=style, continuous_update=False)
    return _live([(name_w, range_w, scale_w)],
                 lambda: plot_activations(x_max=range_w.value, scale=scale_w.value, highlight=name_w.value, lang=lang))


def dropout_explorer(x=None, *, p: float = 0.5, seed: int = 0, lang: str | None = None):
    """Explore dropout on an activation map or vector ``x`` (default: an 8x8 map of random values).

    Controls: the dropout probability ``p`` (slider) and the mask's random seed (slider). Each frame is
    :func:`alexnet_lib.plot.plot_dropout`: the input, the mask, and the surviving values scaled by ``1 / (1 - p)``,
    with the means before and after; a chapter shows the first frame as a static figure.
    """
    import ipywidgets as W
    import torch

    from .plot import page_lang, plot_dropout

    zh = (lang or page_lang()) == "zh"
    if x is None:
        x = torch.rand(8, 8, generator=torch.Generator().manual_seed(0))
    style = {"description_width": "initial"}
    p_w = W.FloatSlider(value=p, min=0, max=0.95, step=0.05, description="丢弃概率 p" if zh else "dropout p",
                        style=style, continuous_update=False)
    seed_w = W.IntSlider(value=seed, min=0, max=99, description="随机种子" if zh else "seed", style=style,
                         continuous_update=False)
    return _live([(p_w, seed_w)], lambda: plot_dropout(x, p_w.value, seed=seed_w.value, lang=lang))


__all__ += ["feature_map_explorer"]


def feature_map_explorer(net, images, *, titles=None, layers=None, n: int = 32, index: int = 0,
                         layer: str | None = None, lang: str | None = None):
    """Explore what each convolution of ``net`` sees: the feature maps of one image at one layer.

    Controls: the image (slider over ``images``, a batch (N, C, H, W) the model takes) and the layer (dropdown over
    ``layers``, default every convolution; maps are taken after the activation, see
    :func:`alexnet_lib.inspect_net.feature_maps`). Each frame is :func:`alexnet_lib.plot.plot_feature_maps` of the
    first ``n`` channels with the input beside them; ``titles`` (one per image) label the frame. A chapter shows
    the first frame as a static figure.
    """
    import ipywidgets as W

    from .inspect_net import conv_layers, feature_maps
    from .plot import page_lang, plot_feature_maps

    zh = (lang or page_lang()) == "zh"
    layers = list(layers) if layers is not None else conv_layers(net)
    names = [(f"conv{i + 1} ({name})", name) for i, name in enumerate(layers)]
    style = {"description_width": "initial"}
    index_w = W.IntSlider(value=index, min=0, max=len(images) - 1, description="图像" if zh else "image", style=style,
                          continuous_update=False)
    layer_w = W.Dropdown(options=names, value=layer or layers[0], description="层" if zh else "layer", style=style)
    device = next(net.parameters()).device

    def frame():
        i, name = index_w.value, layer_w.value
        maps = feature_maps(net, images[i:i + 1].to(device), [name])[name][0]
        label = dict((v, k) for k, v in names)[name]
        head = f"{titles[i]} · " if titles is not None else ""
        shape = "×".join(map(str, maps.shape))
        return plot_feature_maps(maps, images[i], n=n, title=f"{head}{label} · {shape}", lang=lang)

    return _live([(index_w, layer_w)], frame)
