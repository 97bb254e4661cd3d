"""Explorers of the chapters: controls above a picture, live in Jupyter and Colab, and working in the built book.

Each explorer returns an :class:`Explorer`, one output with two renderings:

* a live ipywidgets version: Python redraws the picture whenever a control moves (Jupyter and Colab show this one
  while a kernel runs);
* its static twin: the pictures for a grid of control values, computed when the cell runs and embedded in a small
  HTML block whose script switches between them as the controls move. It needs no kernel, no widget manager and no
  network; the built book shows it (``nb_mime_priority_overrides`` in ``_config.yml`` puts ``text/html`` first).

:func:`shape_trace_explorer` has only the static form: it embeds :func:`alexnet_lib.trace.trace` of each model for
every input side of a range, so nothing is left to compute.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
from itertools import product
from typing import Callable, Sequence

import ipywidgets as W

__all__: list[str] = ["Explorer", "StaticExplorer"]

# The labels the explorers' controls and notes show come from the one label table of the figures, plot.LABELS
# (keys "ui:..." for the controls, "model:..." for the builders' names, "trace:..." for the shape-trace table).
_SHARED = ("image", "layer", "input")  # words the figures already have: their plot.LABELS entry serves both


def _w(key: str, lang: str, kind: str = "ui") -> str:
    """The label ``kind:key`` of plot.LABELS (``key`` itself for the words of :data:`_SHARED`) in ``lang``."""
    from .plot.common import t
    return t(key if key in _SHARED else f"{kind}:{key}", lang)


def _lang(lang: str | None) -> str:
    from .plot import page_lang
    return lang or page_lang()


class Explorer(W.VBox):
    """A live explorer (rows of controls above a picture) whose cell output also carries its static twin:
    ``text/html`` next to the widget's own view. The twin is computed when the explorer is first displayed."""

    def __init__(self, rows, output, static: Callable[[], str]):
        super().__init__([W.HBox(list(row)) for row in rows] + [output])
        self._static, self._html = static, None

    @property
    def html(self) -> str:
        if self._html is None:
            self._html = self._static()
        return self._html

    def _repr_mimebundle_(self, **kwargs):
        data = dict(super()._repr_mimebundle_(**kwargs) or {})
        data["text/html"] = self.html
        return data


class StaticExplorer:
    """An explorer that is only its static HTML (everything it can show is precomputed)."""

    def __init__(self, html_text: str):
        self.html = html_text

    def _repr_html_(self) -> str:
        return self.html


# --- the static twin ---------------------------------------------------------------------------------------------

def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def fig_png(fig, dpi: int = 72, colors: int | None = 64) -> bytes:
    """A matplotlib figure as PNG bytes (closing it); ``colors``: quantize to that many (a third of the size)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    if colors is None:
        return buf.getvalue()
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT,
                                                   dither=Image.Dither.NONE)
    out = io.BytesIO()
    img.save(out, format="png", optimize=True)
    return out.getvalue()


def array_png(a, cmap: str | None = None) -> bytes:
    """A 2-D array in [0, 1] as an 8-bit PNG at its own resolution, grey or through a matplotlib colormap;
    NaN pixels (gaps between tiles) are white."""
    import numpy as np
    from PIL import Image

    a = np.asarray(a, dtype=np.float32)
    gap = np.isnan(a)
    if cmap is None:
        img = Image.fromarray(np.where(gap, 255, np.clip(np.nan_to_num(a), 0, 1) * 255).round().astype(np.uint8))
    else:  # 255 levels of the colormap, and index 255 for white
        import matplotlib
        idx = np.where(gap, 255, (np.clip(np.nan_to_num(a), 0, 1) * 254).round()).astype(np.uint8)
        lut = (matplotlib.colormaps[cmap](np.linspace(0, 1, 255))[:, :3] * 255).round().astype(np.uint8)
        img = Image.fromarray(idx, mode="P")
        img.putpalette(lut.flatten().tolist() + [255, 255, 255])
    out = io.BytesIO()
    img.save(out, format="png", optimize=True)
    return out.getvalue()


_SCRIPT = """(function () {
  var me = document.currentScript, root = me && me.previousElementSibling;
  if (!root || root.id !== "%(id)s") root = document.getElementById("%(id)s");
  var d = JSON.parse(root.querySelector("script.anx-data").textContent);
  var inputs = root.querySelectorAll("[data-control]"), slots = root.querySelectorAll("img[data-slot]");
  var caption = root.querySelector(".anx-caption");
  function show() {
    var i = 0;
    inputs.forEach(function (el, k) {
      var v = el.tagName === "SELECT" ? el.selectedIndex : +el.value;
      i = i * d.sizes[k] + v;
      var out = root.querySelector('output[data-for="' + k + '"]');
      if (out) out.textContent = d.labels[k][v];
    });
    d.frames[i].forEach(function (p, s) { slots[s].src = d.pool[p]; });
    if (caption) caption.textContent = d.captions ? d.captions[i] : "";
    root.setAttribute("data-frame", i);
  }
  inputs.forEach(function (el) { el.addEventListener("input", show); el.addEventListener("change", show); });
  show();
})();"""

_CSS = ("<style>.anx-explorer{margin:.4em 0 1em}.anx-explorer .anx-controls{display:flex;flex-wrap:wrap;"
        "gap:.3em 1.4em;align-items:center;font-size:.9em;margin-bottom:.4em}.anx-explorer label{display:flex;"
        "gap:.4em;align-items:center;margin:0}.anx-explorer input[type=range]{width:9em}.anx-explorer output"
        "{min-width:3em;font-variant-numeric:tabular-nums}.anx-explorer .anx-slots{display:flex;gap:2%;"
        "align-items:flex-start}.anx-explorer img{max-width:100%;height:auto}.anx-explorer .anx-caption"
        "{font-size:.85em;margin:.2em 0}.anx-explorer .anx-note{font-size:.75em;opacity:.7;margin:.3em 0 0}"
        ".anx-explorer .anx-ticks{display:grid;font-size:.75em;text-align:center}</style>")


def _control_html(k: int, label: str, options: Sequence[str], index: int, kind: str) -> str:
    label = html.escape(label)
    if kind == "select":
        opts = "".join(f"<option{' selected' if i == index else ''}>{html.escape(o)}</option>"
                       for i, o in enumerate(options))
        return f"<label>{label} <select data-control='{k}'>{opts}</select></label>"
    return (f"<label>{label} <input type='range' data-control='{k}' min='0' max='{len(options) - 1}' step='1' "
            f"value='{index}'><output data-for='{k}'>{html.escape(options[index])}</output></label>")


def static_explorer(name: str, controls: Sequence[tuple], frame: Callable, *, slots: Sequence[dict] = ({},),
                    caption: Callable | None = None, lang: str = "en", header: str = "") -> str:
    """The HTML of a static explorer: ``controls`` is a list of ``(label, option labels, values, start index,
    kind)`` (kind ``"select"`` or ``"range"``); ``frame(*values)`` returns one PNG per slot (``slots``: a dict of
    CSS for each ``<img>``) for every combination of values; ``caption(*values)``, if given, a line of text above.
    Identical pictures are stored once."""
    pool: dict[bytes, int] = {}
    frames, captions = [], []
    for combo in product(*(c[2] for c in controls)):
        pngs = frame(*combo)
        frames.append([pool.setdefault(png, len(pool)) for png in pngs])
        if caption is not None:
            captions.append(caption(*combo))
    data = {"sizes": [len(c[2]) for c in controls], "labels": [list(c[1]) for c in controls],
            "pool": [_data_uri(png) for png in pool], "frames": frames, "captions": captions or None}
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    uid = "anx-" + hashlib.sha1(blob.encode()).hexdigest()[:12]
    start = 0
    for c in controls:
        start = start * len(c[2]) + c[3]
    first = frames[start]
    imgs = "".join(f"<img data-slot='{s}' alt='{html.escape(name)}' src='{data['pool'][p]}' style='"
                   + ";".join(f"{k}:{v}" for k, v in slots[s].items()) + "'>" for s, p in enumerate(first))
    ctrl = "".join(_control_html(k, c[0], c[1], c[3], c[4]) for k, c in enumerate(controls))
    cap = (f"<p class='anx-caption'>{html.escape(captions[start])}</p>" if captions else "")
    return (f"{_CSS}<div class='anx-explorer' id='{uid}' data-explorer='{html.escape(name)}'>"
            f"<div class='anx-controls'>{ctrl}</div>{cap}{header}<div class='anx-slots'>{imgs}</div>"
            f"<p class='anx-note'>{html.escape(_w('static', lang))}</p>"
            f"<script type='application/json' class='anx-data'>{blob}</script></div>"
            f"<script>{_SCRIPT % {'id': uid}}</script>")


# --- the live version --------------------------------------------------------------------------------------------

def _live(rows, make_fig, static: Callable[[], str]) -> Explorer:
    """Rows of controls above a figure that ``make_fig()`` redraws whenever any control's value changes, with
    ``static()`` giving its static twin."""
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
    return Explorer(rows, out, static)


def _grid(values: Sequence, start) -> tuple[list, int]:
    """``values`` with ``start`` added (sorted) and the index of ``start`` in it."""
    values = sorted(set(values) | {start})
    return values, values.index(start)


def _num(v: float) -> str:
    return f"{v:g}"


# --- the four explorers ------------------------------------------------------------------------------------------

__all__ += ["augment_gallery", "activation_explorer", "dropout_explorer", "feature_map_explorer"]


def augment_gallery(images, n: int = 7, *, preset: str = "shift", lang: str | None = None, static_images: int = 4,
                    static_seeds: Sequence[int] = (0, 1, 2)) -> Explorer:
    """Explore the augmentation presets on real images: a grid of ``n`` augmented versions of one image.

    Controls: the preset (dropdown), the path (torchvision ``v2`` one image at a time, or the batched tensor ops
    of :func:`alexnet_lib.augment.gpu_augment`), the image (slider over ``images``) and the random seed (slider).
    ``images`` is a sequence of grey images (uint8 (28, 28) / (1, 28, 28), e.g. ``dataset.data[:16]``). Each live
    frame is :func:`alexnet_lib.plot.show_augmented`, which a chapter also shows as a static figure; the static
    twin offers the first ``static_images`` images and the seeds ``static_seeds``, drawn at the images' own
    resolution.
    """
    import torch

    from .augment import PRESETS, augmented_versions
    from .plot import show_augmented, t

    lang = _lang(lang)
    style = {"description_width": "initial"}
    preset_w = W.Dropdown(options=list(PRESETS), value=preset, description=_w("preset", lang), style=style)
    path_w = W.ToggleButtons(options=[("torchvision v2", "v2"), ("gpu_augment", "gpu")], value="v2")
    index_w = W.IntSlider(value=0, min=0, max=len(images) - 1, description=_w("image", lang), style=style)
    seed_w = W.IntSlider(value=0, min=0, max=99, description=_w("seed", lang), style=style)
    live = ([(preset_w, path_w), (index_w, seed_w)],
            lambda: show_augmented(images[index_w.value], preset_w.value, n, seed=seed_w.value, path=path_w.value,
                                   lang=lang))

    def unit(img):
        x = torch.as_tensor(img)
        x = x.float().div(255) if x.dtype == torch.uint8 else x.float()
        return x.reshape(x.shape[-2:])

    def strip(batch):  # n images side by side, one white pixel apart
        h, w = batch.shape[-2:]
        out = torch.ones(h, len(batch) * (w + 1) - 1)
        for i, b in enumerate(batch):
            out[:, i * (w + 1):i * (w + 1) + w] = b.reshape(h, w)
        return out

    def frame(name, path, i, seed):
        versions = augmented_versions(torch.as_tensor(images[i]), name, n, seed=seed, path=path)
        return [array_png(unit(images[i]).numpy()), array_png(strip(versions.clamp(0, 1)).numpy())]

    how = {"v2": "torchvision.transforms.v2", "gpu": "augment.gpu_augment"}
    k = min(static_images, len(images))
    controls = [(_w("preset", lang), list(PRESETS), list(PRESETS), list(PRESETS).index(preset), "select"),
                (_w("path", lang), ["torchvision v2", "gpu_augment"], ["v2", "gpu"], 0, "select"),
                (_w("image", lang), [str(i) for i in range(k)], list(range(k)), 0, "range"),
                (_w("seed", lang), [str(s) for s in static_seeds], list(static_seeds), 0, "range")]
    ticks = (f"<div class='anx-ticks' style='grid-template-columns:1fr {n}fr;gap:0 2%'><span>{t('original', lang)}"
             f"</span><span style='display:grid;grid-template-columns:repeat({n},1fr)'>"
             + "".join(f"<span>#{j + 1}</span>" for j in range(n)) + "</span></div>")
    pixel = {"image-rendering": "pixelated"}
    static = lambda: static_explorer(
        "augment_gallery", controls, frame, lang=lang, header=ticks,
        slots=[{**pixel, "width": f"{98 / (n + 1):.2f}%"}, {**pixel, "width": f"{98 * n / (n + 1):.2f}%"}],
        caption=lambda name, path, i, seed: f"{name} · {how[path]} · seed {seed}")
    return _live(*live, static)


def activation_explorer(name: str = "sigmoid", *, x_max: float = 6.0, scale: float = 1.0, lang: str | None = None,
                        static_ranges: Sequence[float] = (3, 6, 12),
                        static_scales: Sequence[float] = (1, 2, 4)) -> Explorer:
    """Explore an activation function and its derivative: which inputs saturate it.

    Controls: the function (dropdown: ReLU, sigmoid, tanh), the plotted input range ``[-x_max, x_max]`` and a
    ``scale`` on the input (``f(scale * x)``: larger weights push pre-activations into the flat parts sooner).
    Each frame is :func:`alexnet_lib.plot.plot_activations` with the chosen function highlighted and its
    near-zero-derivative stretches shaded; a chapter shows the first frame as a static figure. The static twin
    offers the ranges ``static_ranges`` and the scales ``static_scales`` (with ``x_max`` and ``scale``).
    """
    from .plot import ACTIVATION_LABELS, plot_activations

    lang = _lang(lang)
    style = {"description_width": "initial"}
    name_w = W.Dropdown(options=[(v, k) for k, v in ACTIVATION_LABELS.items()], value=name,
                        description=_w("function", lang), style=style)
    range_w = W.FloatSlider(value=x_max, min=1, max=20, step=0.5, description=_w("range", lang), style=style,
                            continuous_update=False)
    scale_w = W.FloatLogSlider(value=scale, base=2, min=-2, max=3, step=0.25, description=_w("scale", lang),
                               style=style, continuous_update=False)
    live = ([(name_w, range_w, scale_w)],
            lambda: plot_activations(x_max=range_w.value, scale=scale_w.value, highlight=name_w.value, lang=lang))

    names = list(ACTIVATION_LABELS)
    ranges, r0 = _grid(static_ranges, x_max)
    scales, s0 = _grid(static_scales, scale)
    controls = [(_w("function", lang), list(ACTIVATION_LABELS.values()), names, names.index(name), "select"),
                (_w("range", lang), [_num(r) for r in ranges], ranges, r0, "range"),
                (_w("scale", lang), [_num(s) for s in scales], scales, s0, "range")]
    static = lambda: static_explorer(
        "activation_explorer", controls, lang=lang, slots=[{"width": "100%"}],
        frame=lambda f, r, s: [fig_png(plot_activations(x_max=r, scale=s, highlight=f, lang=lang))])
    return _live(*live, static)


def dropout_explorer(x=None, *, p: float = 0.5, seed: int = 0, lang: str | None = None,
                     static_ps: Sequence[float] = (0, 0.1, 0.25, 0.5, 0.75, 0.9),
                     static_seeds: Sequence[int] = (0, 1, 2)) -> Explorer:
    """Explore dropout on an activation map or vector ``x`` (default: an 8x8 map of random values).

    Controls: the dropout probability ``p`` (slider) and the mask's random seed (slider). Each frame is
    :func:`alexnet_lib.plot.plot_dropout`: the input, the mask, and the surviving values scaled by ``1 / (1 - p)``,
    with the means before and after; a chapter shows the first frame as a static figure. The static twin offers
    ``static_ps`` and ``static_seeds`` (with ``p`` and ``seed``).
    """
    import torch

    from .plot import plot_dropout

    lang = _lang(lang)
    if x is None:
        x = torch.rand(8, 8, generator=torch.Generator().manual_seed(0))
    style = {"description_width": "initial"}
    p_w = W.FloatSlider(value=p, min=0, max=0.95, step=0.05, description=_w("p", lang), style=style,
                        continuous_update=False)
    seed_w = W.IntSlider(value=seed, min=0, max=99, description=_w("seed", lang), style=style,
                         continuous_update=False)
    live = ([(p_w, seed_w)], lambda: plot_dropout(x, p_w.value, seed=seed_w.value, lang=lang))

    ps, p0 = _grid([round(v, 4) for v in static_ps], round(p, 4))
    seeds, s0 = _grid(static_seeds, seed)
    controls = [(_w("p", lang), [_num(v) for v in ps], ps, p0, "range"),
                (_w("seed", lang), [str(s) for s in seeds], seeds, s0, "range")]
    static = lambda: static_explorer("dropout_explorer", controls, lang=lang, slots=[{"width": "100%"}],
                                     frame=lambda p_, s: [fig_png(plot_dropout(x, p_, seed=s, lang=lang))])
    return _live(*live, static)


def _mosaic(maps, n: int, ncols: int = 8):
    """The first ``n`` feature maps (C, H, W) tiled ``ncols`` to a row, each scaled to its own range, one-pixel gaps."""
    import torch

    from .plot.seeing import _unit
    m = maps[:n].float()
    c, h, w = m.shape
    rows = (c + ncols - 1) // ncols
    out = torch.full((rows * (h + 1) - 1, ncols * (w + 1) - 1), float("nan"))  # white gaps of one pixel
    for j in range(c):
        r, q = divmod(j, ncols)
        out[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = _unit(m[j]) if m[j].max() > 0 else m[j]
    return out


def _grey(img):
    """An input image as one grey channel in [0, 1]."""
    from .plot.seeing import _unit
    img = img.detach().float().cpu()
    return _unit(img[0] if img.dim() == 3 and img.shape[0] == 1 else img.mean(0))


def feature_map_explorer(net, images, *, titles=None, layers=None, n: int = 32, index: int = 0,
                         layer: str | None = None, lang: str | None = None, static_images: int = 8) -> Explorer:
    """Explore what each convolution of ``net`` sees: the feature maps of one image at one layer.

    Controls: the image (slider over ``images``, a batch (N, C, H, W) the model takes) and the layer (dropdown over
    ``layers``, default every convolution; maps are taken after the activation, see
    :func:`alexnet_lib.inspect_net.feature_maps`). Each live frame is :func:`alexnet_lib.plot.plot_feature_maps` of
    the first ``n`` channels with the input beside them; ``titles`` (one per image) label the frame. A chapter
    shows the first frame as a static figure. The static twin offers the first ``static_images`` images, each map
    drawn at its own resolution in the same colours (each channel scaled to its own range, dark: 0).
    """
    from .inspect_net import conv_layers, feature_maps
    from .plot import plot_feature_maps

    lang = _lang(lang)
    layers = list(layers) if layers is not None else conv_layers(net)
    names = [(f"conv{i + 1} ({name})", name) for i, name in enumerate(layers)]
    label_of = {v: k for k, v in names}
    style = {"description_width": "initial"}
    index_w = W.IntSlider(value=index, min=0, max=len(images) - 1, description=_w("image", lang), style=style,
                          continuous_update=False)
    layer_w = W.Dropdown(options=names, value=layer or layers[0], description=_w("layer", lang), style=style)
    device = next(net.parameters()).device

    def title(i, name, maps):
        head = f"{titles[i]} · " if titles is not None else ""
        return f"{head}{label_of[name]} · {'×'.join(map(str, maps.shape))}"

    def frame():
        i, name = index_w.value, layer_w.value
        maps = feature_maps(net, images[i:i + 1].to(device), [name])[name][0]
        return plot_feature_maps(maps, images[i], n=n, title=title(i, name, maps), lang=lang)

    k = min(static_images, len(images))
    controls = [(_w("image", lang), [titles[i] if titles is not None else str(i) for i in range(k)],
                 list(range(k)), min(index, k - 1), "range"),
                (_w("layer", lang), [label for label, _ in names], layers, layers.index(layer or layers[0]),
                 "select")]
    pixel = {"image-rendering": "pixelated"}

    def static():
        all_maps = feature_maps(net, images[:k].to(device), layers)  # {layer: (k, C, H, W)}, one pass
        return static_explorer(
            "feature_map_explorer", controls, lang=lang,
            slots=[{**pixel, "width": "11%"}, {**pixel, "width": "87%"}],
            frame=lambda i, name: [array_png(_grey(images[i]).numpy()),
                                   array_png(_mosaic(all_maps[name][i], n).numpy(), cmap="magma")],
            caption=lambda i, name: title(i, name, all_maps[name][i]))

    return _live([(index_w, layer_w)], frame, static)


# --- the shape-trace explorer ------------------------------------------------------------------------------------

__all__ += ["TRACE_MODELS", "trace_table", "shape_trace_explorer"]

# The builders of alexnet_lib.models the explorer offers (their names in each language: plot.LABELS["model:..."]).
TRACE_MODELS = ("lenet", "d2l_alexnet", "half_alexnet", "paper_alexnet", "torchvision_alexnet")


def _partial_run(net, chw: tuple[int, int, int]) -> tuple[list[tuple], int, str]:
    """Run ``net`` on a meta input until it fails: the output shapes of the layers that ran, the index of the layer
    that failed, and PyTorch's reason (first line)."""
    import torch

    from .trace import _meta_call

    leaves = [(n, m) for n, m in net.named_modules() if n and not list(m.children())]
    shapes: dict[str, tuple] = {}
    entered: list[tuple[str, tuple]] = []
    hooks = []
    for n, m in leaves:
        hooks.append(m.register_forward_pre_hook(lambda mod, a, n=n: entered.append((n, tuple(a[0].shape[1:])))))
        hooks.append(m.register_forward_hook(lambda mod, a, out, n=n: shapes.__setitem__(n, tuple(out.shape[1:]))))
    try:
        _meta_call(net, torch.empty(1, *chw, device="meta"))
        raise RuntimeError("ran, but the trace did not")  # not reached for a side that trace() rejected
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[0].rstrip(".")
    finally:
        for h in hooks:
            h.remove()
    order = [n for n, _ in leaves]
    failed, got = entered[-1] if entered else (order[0], chw)
    ran = [shapes[n] for n in order[:order.index(failed)]]
    module = dict(leaves)[failed]
    if isinstance(module, torch.nn.Linear):  # the meta device's message speaks of matrices a and b
        reason = f"Linear(in_features={module.in_features}) gets {got[-1]} features"
    return ran, order.index(failed), f"{'×'.join(map(str, got))}: {reason}"


def trace_table(names: Sequence[str] = tuple(TRACE_MODELS), sides: Sequence[int] = range(8, 261)) -> dict:
    """For each builder in ``names`` (built with its defaults) and each square input side in ``sides``: the
    per-layer output shapes and FLOPs of :func:`alexnet_lib.trace.trace`, or, for a side the model cannot take,
    the shapes up to the layer where it breaks, that layer and why, and the sides that work
    (:func:`alexnet_lib.trace.valid_sizes`). Plain JSON-ready data (what :func:`shape_trace_explorer` embeds)."""
    from . import models
    from .trace import ShapeError, _in_channels, human, trace, valid_sizes

    table = {}
    for name in names:
        net = getattr(models, name)()
        c, (lo, hi) = _in_channels(net), valid_sizes(net)
        leaves = [(n, m) for n, m in net.named_modules() if n and not list(m.children())]
        entry = {"call": f"models.{name}()", "channels": c, "lo": lo,
                 "hi": hi, "native": getattr(net, "image_size", None),
                 "layers": [[n, type(m).__name__, f"{sum(p.numel() for p in m.parameters()):,}"] for n, m in leaves],
                 "params": f"{sum(p.numel() for p in net.parameters()):,}", "sides": {}}
        for s in sides:
            shape = lambda t: "×".join(map(str, t))
            if lo <= s and (hi is None or s <= hi):
                try:
                    tr = trace(net, (c, s, s))
                except ShapeError:
                    pass
                else:
                    assert [r["layer"] for r in tr.rows] == [n for n, _ in leaves]
                    entry["sides"][s] = {"shapes": [shape(r["shape"]) for r in tr.rows],
                                         "flops": [human(r["flops"]) if r["flops"] else "" for r in tr.rows],
                                         "total": human(tr.flops)}
                    continue
            ran, failed, why = _partial_run(net, (c, s, s))
            entry["sides"][s] = {"shapes": [shape(t) for t in ran], "failed": failed, "why": why}
        table[name] = entry
    return table


_TRACE_WORDS = ("input", "layer", "type", "shape", "params", "flops", "total", "breaks", "works", "works_open",
                "smallest", "largest", "ok")  # the script's words: plot.LABELS["trace:..."] (see _w)


_TRACE_SCRIPT = """(function () {
  var me = document.currentScript, root = me && me.previousElementSibling;
  if (!root || root.id !== "%(id)s") root = document.getElementById("%(id)s");
  var T = JSON.parse(root.querySelector("script.anx-data").textContent), W = T.words;
  var bytes = Uint8Array.from(atob(T.models), function (c) { return c.charCodeAt(0); });
  var inflate = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  new Response(inflate).text().then(function (text) { T.models = JSON.parse(text); start(); });
  var model = root.querySelector("select"), range = root.querySelector("input[type=range]");
  var num = root.querySelector("input[type=number]"), out = root.querySelector(".anx-trace tbody");
  var note = root.querySelector(".anx-caption");
  var ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;"};
  function esc(s) { return String(s).replace(/[&<>]/g, function (c) { return ESC[c]; }); }
  function fill(s, m) { return s.replace("{lo}", m.lo).replace("{hi}", m.hi); }
  function show(side) {
    var m = T.models[model.value], r = m.sides[side];
    range.value = side; num.value = side;
    var c = m.channels + "×" + side + "×" + side;
    var rows = ["<tr><th>" + [W.layer, W.type, W.shape, W.params, W.flops].join("</th><th>") + "</th></tr>",
                "<tr class='anx-in'><td>" + W.input + "</td><td></td><td>" + c + "</td><td></td><td></td></tr>"];
    m.layers.forEach(function (l, i) {
      if (r.failed !== undefined && i > r.failed) return;
      if (i === r.failed) {
        rows.push("<tr class='anx-fail'><td>" + esc(l[0]) + "</td><td>" + esc(l[1]) + "</td><td colspan='3'>✗ " +
                  esc(W.breaks) + " " + esc(r.why) + "</td></tr>");
      } else {
        rows.push("<tr><td>" + esc(l[0]) + "</td><td>" + esc(l[1]) + "</td><td>" + r.shapes[i] + "</td><td>" +
                  l[2] + "</td><td>" + (r.flops ? r.flops[i] : "") + "</td></tr>");
      }
    });
    if (r.failed === undefined)
      rows.push("<tr><th>" + W.total + "</th><th></th><th></th><th>" + m.params + "</th><th>" + r.total + "</th></tr>");
    out.innerHTML = rows.join("");
    var lines = [m.hi === null ? fill(W.works_open, m) : fill(W.works, m)];
    if (r.failed !== undefined) lines.push(side < m.lo ? fill(W.smallest, m) : fill(W.largest, m));
    else lines.push(W.ok.replace("{flops}", r.total).replace("{params}", m.params));
    note.textContent = m.call + ", " + c + ": " + lines.join(" ");
    root.setAttribute("data-state", model.value + ":" + side + ":" + (r.failed === undefined ? "ok" : "fail"));
  }
  function clamp(v) { return Math.max(+range.min, Math.min(+range.max, Math.round(+v) || +range.min)); }
  function start() {
    model.addEventListener("change", function () { show(clamp(num.value)); });
    range.addEventListener("input", function () { show(clamp(range.value)); });
    num.addEventListener("change", function () { show(clamp(num.value)); });
    show(clamp(num.value));
  }
})();"""

_TRACE_CSS = ("<style>.anx-explorer table.anx-trace{font-size:.78em;border-collapse:collapse;width:100%;"
              "table-layout:fixed}.anx-explorer table.anx-trace td,.anx-explorer table.anx-trace th{padding:.1em .4em;"
              "text-align:left;overflow-wrap:anywhere}"
              ".anx-explorer table.anx-trace tr>*:nth-child(n+4){text-align:right}"
              ".anx-explorer table.anx-trace col.l{width:24%}.anx-explorer table.anx-trace col.t{width:22%}"
              ".anx-explorer table.anx-trace col.s{width:22%}.anx-explorer table.anx-trace col.p{width:18%}"
              ".anx-explorer table.anx-trace tr.anx-fail td{color:#c62828;font-weight:600;text-align:left}"
              ".anx-explorer table.anx-trace tr.anx-in td{opacity:.7}.anx-explorer input[type=number]{width:5em}"
              "</style>")


def shape_trace_explorer(model: str = "d2l_alexnet", side: int = 224, *, names: Sequence[str] = tuple(TRACE_MODELS),
                         sides: Sequence[int] = range(8, 261), lang: str | None = None) -> StaticExplorer:
    """Pick a model and an input side: the per-layer output shapes, parameters and FLOPs of
    :func:`alexnet_lib.trace.trace`, or for a side that breaks, the layer where it breaks, why, and the smallest
    (or largest) side that works. Everything is precomputed by :func:`trace_table` for every side in ``sides`` and
    embedded once as JSON that a small script renders, so the page needs no kernel."""
    lang = _lang(lang)
    import gzip

    from .plot.common import LABELS
    from .prose import shared

    # the same table for both language versions of the page when the book is built (prose.shared)
    table = shared(f"widgets.trace_table {list(names)} {list(sides)}", lambda: trace_table(names, sides))
    packed = gzip.compress(json.dumps(table, ensure_ascii=False, separators=(",", ":")).encode(), mtime=0)
    words = {k: _w(k, lang, "trace") for k in _TRACE_WORDS}
    data = {"words": words, "models": base64.b64encode(packed).decode("ascii")}  # gzip: a tenth
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    uid = "anx-" + hashlib.sha1(blob.encode()).hexdigest()[:12]
    label = lambda n: _w(n, lang, "model") if f"model:{n}" in LABELS else n
    opts = "".join(f"<option value='{n}'{' selected' if n == model else ''}>{html.escape(label(n))}</option>"
                   for n in names)
    lo, hi = min(sides), max(sides)
    static = (f"{_CSS}{_TRACE_CSS}<div class='anx-explorer' id='{uid}' data-explorer='shape_trace_explorer'>"
              f"<div class='anx-controls'><label>{_w('model', lang)} <select data-control='0'>{opts}</select>"
              f"</label><label>{_w('side', lang)} <input type='range' data-control='1' min='{lo}' max='{hi}' "
              f"step='1' value='{side}'><input type='number' min='{lo}' max='{hi}' step='1' value='{side}'>"
              f"</label></div><p class='anx-caption'></p><table class='anx-trace'><colgroup><col class='l'><col class='t'>"
              f"<col class='s'><col class='p'><col></colgroup><tbody></tbody></table>"
              f"<script type='application/json' class='anx-data'>{blob}</script></div>"
              f"<script>{_TRACE_SCRIPT % {'id': uid}}</script>")
    return StaticExplorer(static)
