"""Per-layer traces: output shape, parameters and FLOPs of every layer, and clear errors for bad inputs.

Everything here runs on PyTorch's ``meta`` device: shapes and FLOPs are computed without touching real numbers,
so tracing a 61M-parameter model at 224x224 takes milliseconds and never allocates its activations.
FLOPs come from :class:`torch.utils.flop_counter.FlopCounterMode`, which counts a multiply-add as 2 FLOPs and
counts only convolutions and matrix products (activations, pooling and dropout are cheap next to them).
"""
from __future__ import annotations

import contextvars
import html
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["ShapeError", "Trace", "trace", "output_shape", "valid_sizes", "check_input", "human"]

_SKIP_CHECK = contextvars.ContextVar("alexnet_lib_skip_check", default=False)
_MAX_SIDE = 4096


class ShapeError(ValueError):
    """An input the model cannot take: the message names the layer, the shape it got, and what would work."""


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23M' (SI prefixes, three significant digits)."""
    for p, s in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= p:
            return f"{n / p:.3g}{s}{unit}"
    return f"{n:.3g}{unit}" if isinstance(n, float) else f"{n}{unit}"


def _meta_call(model: nn.Module, x: torch.Tensor):
    """Run ``model`` on the meta device without copying its weights."""
    state = {k: torch.empty_like(v, device="meta") for k, v in
             list(model.named_parameters()) + list(model.named_buffers())}
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), x.dtype)
    token = _SKIP_CHECK.set(True)
    try:
        return functional_call(model, state, (x.to("meta", dtype),))
    finally:
        _SKIP_CHECK.reset(token)


def output_shape(module: nn.Module, chw: tuple[int, int, int]) -> tuple[int, ...]:
    """Shape of ``module``'s output for one image of shape ``chw`` (batch dimension dropped)."""
    return tuple(_meta_call(module, torch.empty(1, *chw, device="meta")).shape[1:])


def _in_channels(model: nn.Module) -> int:
    if hasattr(model, "in_channels"):
        return model.in_channels
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    return first.in_channels if isinstance(first, nn.Conv2d) else first.in_features


def _runs(model: nn.Module, chw: tuple[int, int, int]) -> bool:
    try:
        _meta_call(model, torch.empty(1, *chw, device="meta"))
        return True
    except RuntimeError:
        return False


def valid_sizes(model: nn.Module) -> tuple[int, int | None]:
    """Smallest and largest square image side the model accepts (``None``: no upper limit below 4096).

    Output sizes of convolutions and pooling grow with the input, so the sides that work form one interval;
    it is found by bisection around the model's native ``image_size`` and cached on the model.
    """
    cached = getattr(model, "_valid_sizes", None)
    if cached is not None:
        return cached
    c = _in_channels(model)
    native = getattr(model, "image_size", 224)
    if not _runs(model, (c, native, native)):
        raise ShapeError(f"{type(model).__name__} does not run at its own image_size={native}: "
                         f"{_failure(model, (1, c, native, native))}. Its layers no longer fit together at that size: "
                         "a changed layer needs the layers after it changed too")
    lo, hi = 1, native  # smallest working side in (lo, hi]
    if _runs(model, (c, 1, 1)):
        hi = 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _runs(model, (c, mid, mid)) else (mid, hi)
    smallest = hi
    largest: int | None
    if _runs(model, (c, _MAX_SIDE, _MAX_SIDE)):
        largest = None
    else:
        lo, hi = native, _MAX_SIDE  # largest working side in [lo, hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _runs(model, (c, mid, mid)) else (lo, mid)
        largest = lo
    model._valid_sizes = (smallest, largest)  # plain attribute: not a parameter, not in state_dict
    return smallest, largest


def _describe_sizes(model: nn.Module) -> str:
    c = _in_channels(model)
    lo, hi = valid_sizes(model)
    if hi is None:
        return f"{c} channel(s), at least {lo}x{lo} pixels (smallest valid input: {c}x{lo}x{lo})"
    if hi == lo:
        return f"{c} channel(s) and exactly {lo}x{lo} pixels"
    return f"{c} channel(s) and {lo}x{lo} to {hi}x{hi} pixels (smallest valid input: {c}x{lo}x{lo})"


def _failure(model: nn.Module, shape: tuple[int, ...]) -> str:
    """Why ``model`` fails on a meta input of ``shape`` (with batch): the layer it breaks at, what that layer got, and
    PyTorch's reason."""
    entered: list[tuple[str, nn.Module, tuple]] = []
    hooks = []
    for n, m in model.named_modules():
        if n and not list(m.children()):
            hooks.append(m.register_forward_pre_hook(
                lambda mod, args, n=n: entered.append((n, mod, tuple(args[0].shape)))))
    try:
        _meta_call(model, torch.empty(*shape, device="meta"))
        reason = "it runs, but the output is not what the classifier expects"
    except RuntimeError as e:
        reason = str(e).strip().splitlines()[0].rstrip(".")
        if entered:
            layer, mod, got = entered[-1]
            reason = f"layer {layer} ({mod}) got shape {got} and failed: {reason}"
    finally:
        for h in hooks:
            h.remove()
    if len(shape) != 4:
        reason = f"expected a 4-D batch (N, C, H, W), got {len(shape)}-D shape {tuple(shape)}"
    return reason


def diagnose(model: nn.Module, shape: tuple[int, ...]) -> ShapeError:
    """Run ``model`` on a meta input of ``shape`` (with batch) and explain where and why it breaks."""
    return ShapeError(f"{type(model).__name__} cannot take an input of shape {tuple(shape)}: "
                      f"{_failure(model, shape)}. This model needs {_describe_sizes(model)}.")


def check_input(model: nn.Module, x: torch.Tensor) -> None:
    """Raise :class:`ShapeError` unless ``x`` is a batch the model can take (called by each model's forward)."""
    if _SKIP_CHECK.get():
        return
    name = type(model).__name__
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} takes a torch.Tensor batch (N, C, H, W) of float32 images, got a {type(x).__name__};"
                        " convert it with torch.as_tensor(x, dtype=torch.float32)")
    weight = next(model.parameters(), None)
    if weight is not None and x.dtype != weight.dtype and not (
            x.is_floating_point() and torch.is_autocast_enabled(x.device.type)):
        how = "x.float() / 255 (pixels 0..255 become 0..1)" if x.dtype == torch.uint8 else "x.float()"
        raise TypeError(f"{name} takes {str(weight.dtype).replace('torch.', '')} images, like its weights, got a "
                        f"{str(x.dtype).replace('torch.', '')} tensor; convert it with {how}")
    c = _in_channels(model)
    if x.dim() == 4 and x.shape[1] == c:
        lo, hi = valid_sizes(model)
        if all(lo <= s and (hi is None or s <= hi) for s in x.shape[2:]):
            return
    raise diagnose(model, tuple(x.shape))


@dataclass
class Trace:
    """The result of :func:`trace`: one row per layer, and totals."""

    model: str
    input_shape: tuple[int, ...]
    rows: list[dict] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(r["params"] for r in self.rows)

    @property
    def flops(self) -> int:
        return sum(r["flops"] for r in self.rows)

    def totals(self) -> dict:
        """Parameters, forward FLOPs per image, and the weights' size in fp32 and fp16."""
        return {"params": self.params, "flops": self.flops,
                "fp32_MB": self.params * 4 / 1e6, "fp16_MB": self.params * 2 / 1e6}

    def _table(self) -> list[list[str]]:
        head = ["layer", "type", "output shape", "params", "FLOPs"]
        body = [[r["layer"], r["type"], "x".join(map(str, r["shape"])), f"{r['params']:,}", human(r["flops"])]
                for r in self.rows]
        t = self.totals()
        foot = ["total", "", "", f"{t['params']:,}", human(t["flops"])]
        return [head, *body, foot]

    def __str__(self) -> str:
        table = self._table()
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        fmt = lambda row: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
        t = self.totals()
        lines = [f"{self.model}, input {'x'.join(map(str, self.input_shape))}", fmt(table[0]),
                 "-" * (sum(widths) + 2 * (len(widths) - 1)), *map(fmt, table[1:-1]),
                 "-" * (sum(widths) + 2 * (len(widths) - 1)), fmt(table[-1]),
                 f"weights: {t['fp32_MB']:.1f} MB in fp32, {t['fp16_MB']:.1f} MB in fp16"]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        table = self._table()
        cell = lambda tag, c, i: f"<{tag} style='text-align:{'right' if i >= 3 else 'left'}'>{html.escape(c)}</{tag}>"
        rows = ["<tr>" + "".join(cell("th", c, i) for i, c in enumerate(table[0])) + "</tr>"]
        rows += ["<tr>" + "".join(cell("td", c, i) for i, c in enumerate(r)) + "</tr>" for r in table[1:-1]]
        rows.append("<tr>" + "".join(cell("th", c, i) for i, c in enumerate(table[-1])) + "</tr>")
        t = self.totals()
        return (f"<p><b>{html.escape(self.model)}</b>, input {'x'.join(map(str, self.input_shape))}</p>"
                f"<table>{''.join(rows)}</table><p>weights: {t['fp32_MB']:.1f} MB in fp32, "
                f"{t['fp16_MB']:.1f} MB in fp16</p>")


def trace(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> Trace:
    """Trace ``model`` on one image of ``input_size`` = (C, H, W) (default: the model's native input).

    Raises :class:`ShapeError` naming the layer where an input of that size breaks.
    """
    if input_size is None:
        s = getattr(model, "image_size", 224)
        input_size = (_in_channels(model), s, s)
    shape = (1, *input_size)
    root = type(model).__name__
    out_shapes: dict[str, tuple] = {}
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    hooks = [m.register_forward_hook(lambda mod, a, out, n=n: out_shapes.__setitem__(n, tuple(out.shape[1:])))
             for n, m in leaves]
    try:
        with FlopCounterMode(display=False) as counter:
            _meta_call(model, torch.empty(*shape, device="meta"))
    except RuntimeError:
        raise diagnose(model, shape) from None
    finally:
        for h in hooks:
            h.remove()
    counts = counter.get_flop_counts()
    result = Trace(root, tuple(input_size))
    for n, m in leaves:
        if n not in out_shapes:  # a layer the forward never used
            continue
        result.rows.append({
            "layer": n, "type": type(m).__name__, "shape": out_shapes[n],
            "params": sum(p.numel() for p in m.parameters()),
            "flops": int(sum(counts.get(f"{root}.{n}", {}).values())),
        })
    return result
