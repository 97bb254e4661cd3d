"""A hand-written GPU kernel: ReLU followed by max pooling, forward and backward in one pass each (Triton).

After the space-to-depth first layer, ReLU + ``MaxPool2d(3, stride=2)`` is the largest item in a training step's
profile, and it is pure data movement. PyTorch's version stores the ReLU output (full size) and an int64 index per
pooled value, and its backward pass reads both. Fused, the forward pass reads the convolution's output once and
writes the pooled output plus one int8 per pooled value, the position of the maximum inside its 3x3 window (-1
where the maximum is not positive, so ReLU's gradient is zero there); the backward pass never reads the activations
at all: every input pixel looks at the (at most 2x2) windows that contain it and adds the gradients of those whose
maximum it was.

The function is the same as ``F.max_pool2d(F.relu(x), k, s)``, ties and all (the first maximum of a window in
row-major order gets the gradient, as in PyTorch; a NaN propagates, as in PyTorch), so the swap changes speed, not
numbers. ``relu_maxpool`` is a ``torch.library`` custom operator with its own backward, so ``torch.compile`` treats
it as one opaque call. On a CUDA device with Triton it runs the two kernels below; elsewhere a plain PyTorch version
of the same operator (``_forward_torch`` / ``_backward_torch``). With ``TRITON_INTERPRET=1`` set before the import,
Triton's interpreter runs the kernels on CPU tensors (slowly), which is how ``tests/test_kernels.py`` checks them.

:func:`fuse_relu_pool` swaps the module into a model: each ``ReLU`` directly followed by a matching ``MaxPool2d``
becomes ``Identity`` + :class:`FusedReLUMaxPool2d` (same positions in ``features``, so checkpoints load either way).
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["relu_maxpool", "FusedReLUMaxPool2d", "fuse_relu_pool", "triton_available", "compare_with_pytorch",
           "POOL_SHAPES"]

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU-only fallback below still works
    triton = None


def triton_available(device: torch.device | str) -> bool:
    """Whether the Triton kernels run for tensors on ``device`` (CUDA, or any device under ``TRITON_INTERPRET=1``)."""
    if triton is None:
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


if triton is not None:
    # the spatial sizes are not specialised on, so one compiled kernel serves all three poolings (which matters
    # when a run starts with cold caches); the channel count and the strides are: with channels_last, a channel
    # stride of 1 and counts and strides divisible by 16 (AlexNet's 96, 256) make the loads 16-byte vectors
    @triton.jit
    def _tile(P, C, H, W, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
        """This program's tile: BLOCK_P pixels of an N x H x W grid (as n, h, w) by BLOCK_C channels (64-bit
        indices), and the mask of the pairs inside the P pixels and C channels."""
        p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
        c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        mask = (p < P)[:, None] & (c < C)[None, :]
        p64 = p.to(tl.int64)
        return p64 // (W * H), (p64 // W) % H, p64 % W, c.to(tl.int64), mask

    @triton.jit(do_not_specialize=["P", "H", "W", "HO", "WO"])
    def _fwd_kernel(x_ptr, y_ptr, idx_ptr, P, C, H, W, HO, WO,
                    sxn, sxc, sxh, sxw, syn, syc, syh, syw,
                    K: tl.constexpr, S: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
                    ACC: tl.constexpr):
        # one program: BLOCK_P output pixels (n, oh, ow) x BLOCK_C channels
        n, oh, ow, c64, mask = _tile(P, C, HO, WO, BLOCK_P, BLOCK_C)
        base = n * sxn + (oh * S) * sxh + (ow * S) * sxw
        best = tl.full((BLOCK_P, BLOCK_C), float("-inf"), ACC)
        arg = tl.zeros((BLOCK_P, BLOCK_C), tl.int32)
        for dy in tl.static_range(K):
            for dx in tl.static_range(K):
                off = (base + dy * sxh + dx * sxw)[:, None] + c64[None, :] * sxc
                v = tl.load(x_ptr + off, mask=mask, other=0.0).to(ACC)
                take = (v > best) | (v != v)  # first maximum wins; a NaN propagates (as PyTorch's max_pool2d)
                best = tl.where(take, v, best)
                arg = tl.where(take, dy * K + dx, arg)
        live = (best > 0) | (best != best)  # ReLU's gradient is 1 there
        out = tl.where(live, best, 0.0)
        arg = tl.where(live, arg, -1)
        yoff = (n * syn + oh * syh + ow * syw)[:, None] + c64[None, :] * syc
        tl.store(y_ptr + yoff, out.to(y_ptr.dtype.element_ty), mask=mask)
        tl.store(idx_ptr + yoff, arg.to(tl.int8), mask=mask)

    @triton.jit(do_not_specialize=["P", "H", "W", "HO", "WO"])
    def _bwd_kernel(g_ptr, idx_ptr, dx_ptr, P, C, H, W, HO, WO,
                    sgn, sgc, sgh, sgw, sin, sic, sih, siw, sdn, sdc, sdh, sdw,
                    K: tl.constexpr, S: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr,
                    ACC: tl.constexpr):
        # one program: BLOCK_P input pixels (n, h, w) x BLOCK_C channels; gathers from the windows containing them
        n, h, w, c64, mask = _tile(P, C, H, W, BLOCK_P, BLOCK_C)
        acc = tl.zeros((BLOCK_P, BLOCK_C), ACC)
        for i in tl.static_range((K + S - 1) // S):  # windows oh = h // S - i that can contain row h
            oh = h // S - i
            dy = h - oh * S
            ok_h = (oh >= 0) & (oh < HO) & (dy < K)
            for j in tl.static_range((K + S - 1) // S):
                ow = w // S - j
                dx = w - ow * S
                ok = ok_h & (ow >= 0) & (ow < WO) & (dx < K)
                m = mask & ok[:, None]
                goff = (n * sgn + oh * sgh + ow * sgw)[:, None] + c64[None, :] * sgc
                ioff = (n * sin + oh * sih + ow * siw)[:, None] + c64[None, :] * sic
                arg = tl.load(idx_ptr + ioff, mask=m, other=-1).to(tl.int32)
                g = tl.load(g_ptr + goff, mask=m, other=0.0).to(ACC)
                acc += tl.where(arg == (dy * K + dx)[:, None], g, 0.0)
        doff = (n * sdn + h * sdh + w * sdw)[:, None] + c64[None, :] * sdc
        tl.store(dx_ptr + doff, acc.to(dx_ptr.dtype.element_ty), mask=mask)


def _out_side(side: int, k: int, s: int) -> int:
    return (side - k) // s + 1


def _fmt(x: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() \
        else torch.contiguous_format


_POISON = False  # compare_with_pytorch: fill every new output first (NaN, or 99 for the int8 positions)


def _like(x: torch.Tensor, shape, dtype, fmt: torch.memory_format | None = None) -> torch.Tensor:
    """An empty tensor of ``shape`` in ``x``'s memory format (channels_last stays channels_last)."""
    out = torch.empty(shape, dtype=dtype, device=x.device, memory_format=fmt or _fmt(x))
    return out.fill_(99 if dtype == torch.int8 else float("nan")) if _POISON else out


def _acc(dtype: torch.dtype):
    """Arithmetic type inside the kernels: float64 for float64 tensors, else float32."""
    return tl.float64 if dtype == torch.float64 else tl.float32


_BLOCK_P, _BLOCK_C = 128, 32  # 4096 elements per program; 32 channels divide AlexNet's 96, 256 and 384


def _forward_torch(x: torch.Tensor, k: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The operator in plain PyTorch: pooled output and the int8 window position of each maximum (-1: none)."""
    y, flat = F.max_pool2d(x, k, s, return_indices=True)  # flat index h * W + w of the first maximum
    w_in = x.shape[-1]
    ho, wo = y.shape[-2:]
    oh = torch.arange(ho, device=x.device).view(-1, 1) * s
    ow = torch.arange(wo, device=x.device).view(1, -1) * s
    arg = (flat // w_in - oh) * k + (flat % w_in - ow)
    live = (y > 0) | y.isnan()
    return torch.where(live, y, torch.zeros_like(y)), torch.where(live, arg, -1).to(torch.int8)


def _backward_torch(grad: torch.Tensor, idx: torch.Tensor, h: int, w: int, k: int, s: int) -> torch.Tensor:
    n, c, ho, wo = grad.shape
    oh = torch.arange(ho, device=grad.device).view(-1, 1) * s
    ow = torch.arange(wo, device=grad.device).view(1, -1) * s
    arg = idx.long()
    flat = (oh + arg.clamp(min=0) // k) * w + (ow + arg.clamp(min=0) % k)
    acc = torch.promote_types(grad.dtype, torch.float32)  # sums in float32 (float64 for float64)
    g = torch.where(arg >= 0, grad.to(acc), torch.zeros((), dtype=acc, device=grad.device))
    dx = torch.zeros(n, c, h * w, dtype=acc, device=grad.device).scatter_add_(2, flat.reshape(n, c, -1), g.reshape(n, c, -1))
    return dx.view(n, c, h, w).to(grad.dtype)


@torch.library.custom_op("alexnet_lib::relu_maxpool", mutates_args=())
def _relu_maxpool(x: torch.Tensor, k: int, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    n, c, h, w = x.shape
    ho, wo = _out_side(h, k, s), _out_side(w, k, s)
    y, idx = _like(x, (n, c, ho, wo), x.dtype), _like(x, (n, c, ho, wo), torch.int8)
    if not triton_available(x.device):
        y_ref, idx_ref = _forward_torch(x, k, s)
        return y.copy_(y_ref), idx.copy_(idx_ref)  # the strides the fake (compiled) version promises
    bp, bc = _BLOCK_P, _BLOCK_C
    grid = (triton.cdiv(n * ho * wo, bp), triton.cdiv(c, bc))
    _fwd_kernel[grid](x, y, idx, n * ho * wo, c, h, w, ho, wo,
                      x.stride(0), x.stride(1), x.stride(2), x.stride(3),
                      y.stride(0), y.stride(1), y.stride(2), y.stride(3),
                      K=k, S=s, BLOCK_P=bp, BLOCK_C=bc, ACC=_acc(x.dtype), num_warps=4)
    return y, idx


@_relu_maxpool.register_fake
def _(x, k, s):
    n, c, h, w = x.shape
    shape = (n, c, _out_side(h, k, s), _out_side(w, k, s))
    return _like(x, shape, x.dtype), _like(x, shape, torch.int8)


@torch.library.custom_op("alexnet_lib::relu_maxpool_backward", mutates_args=())
def _relu_maxpool_backward(grad: torch.Tensor, idx: torch.Tensor, h: int, w: int, k: int, s: int,
                           channels_last: bool) -> torch.Tensor:
    n, c, ho, wo = grad.shape
    dx = _like(grad, (n, c, h, w), grad.dtype, torch.channels_last if channels_last else torch.contiguous_format)
    if not triton_available(grad.device):
        return dx.copy_(_backward_torch(grad, idx, h, w, k, s))
    bp, bc = _BLOCK_P, _BLOCK_C
    grid = (triton.cdiv(n * h * w, bp), triton.cdiv(c, bc))
    _bwd_kernel[grid](grad, idx, dx, n * h * w, c, h, w, ho, wo,
                      grad.stride(0), grad.stride(1), grad.stride(2), grad.stride(3),
                      idx.stride(0), idx.stride(1), idx.stride(2), idx.stride(3),
                      dx.stride(0), dx.stride(1), dx.stride(2), dx.stride(3),
                      K=k, S=s, BLOCK_P=bp, BLOCK_C=bc, ACC=_acc(grad.dtype), num_warps=4)
    return dx


@_relu_maxpool_backward.register_fake
def _(grad, idx, h, w, k, s, channels_last):
    n, c = grad.shape[:2]
    return _like(grad, (n, c, h, w), grad.dtype, torch.channels_last if channels_last else torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    x, k, s = inputs
    ctx.save_for_backward(output[1])
    ctx.args = (x.shape[-2], x.shape[-1], k, s, _fmt(x) == torch.channels_last)


def _backward(ctx, grad_y, grad_idx):
    (idx,) = ctx.saved_tensors
    h, w, k, s, channels_last = ctx.args
    return _relu_maxpool_backward(grad_y, idx, h, w, k, s, channels_last), None, None


_relu_maxpool.register_autograd(_backward, setup_context=_setup_context)


def relu_maxpool(x: torch.Tensor, kernel_size: int = 3, stride: int = 2) -> torch.Tensor:
    """``F.max_pool2d(F.relu(x), kernel_size, stride)`` as one fused operator (4-d input, no padding)."""
    if x.dim() != 4:
        raise ValueError(f"relu_maxpool needs a 4-d (N, C, H, W) input, got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < kernel_size:
        # a RuntimeError, as max_pool2d raises (the models' input check relies on that)
        raise RuntimeError(f"relu_maxpool: input {tuple(x.shape[-2:])} is smaller than the "
                           f"{kernel_size}x{kernel_size} window (output size is too small)")
    return _relu_maxpool(x, kernel_size, stride)[0]


class FusedReLUMaxPool2d(nn.Module):
    """``ReLU`` then ``MaxPool2d(kernel_size, stride)`` in one operator (see the module docstring)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return relu_maxpool(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, fused ReLU + max pooling"


def _fusable(relu: nn.Module, pool: nn.Module) -> bool:
    if not (isinstance(relu, nn.ReLU) and isinstance(pool, nn.MaxPool2d)):
        return False
    k, s = pool.kernel_size, pool.stride
    square = lambda v: v if isinstance(v, int) else (v[0] if v[0] == v[1] else None)
    pad, dil = square(pool.padding), square(pool.dilation)
    return square(k) is not None and square(s) is not None and pad == 0 and dil == 1 and not pool.ceil_mode \
        and not pool.return_indices and square(k) * square(k) < 128


def fuse_relu_pool(net: nn.Module) -> nn.Module:
    """Replace every ``ReLU`` + ``MaxPool2d`` pair in ``net.features`` by ``Identity`` + the fused module (in place).

    Raises ``ValueError`` if there is no such pair (the model would run unchanged, which is not what was asked).
    """
    feats = net.features
    found = 0
    for i in range(len(feats) - 1):
        relu, pool = feats[i], feats[i + 1]
        if _fusable(relu, pool):
            k = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
            s = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
            feats[i], feats[i + 1] = nn.Identity(), FusedReLUMaxPool2d(k, s)
            found += 1
    if not found:
        raise ValueError(f"{type(net).__name__}.features has no ReLU directly followed by an unpadded MaxPool2d")
    return net


# (N, C, H, W) inputs of the three poolings: the d2l AlexNet at 224 (54->26, 26->12, 12->5) and the 2012 paper's /
# torchvision's (55->27, 27->13, 13->6)
POOL_SHAPES = [(64, 96, 54, 54), (64, 256, 26, 26), (64, 256, 12, 12),
               (32, 96, 55, 55), (32, 256, 27, 27), (32, 256, 13, 13)]


def compare_with_pytorch(shapes=POOL_SHAPES, dtypes=(torch.float32, torch.bfloat16),
                         device: torch.device | str = "cuda", channels_last: bool = True, seed: int = 0) -> list[dict]:
    """Check :func:`relu_maxpool` against ``F.max_pool2d(F.relu(x), 3, 2)``, output and input gradient.

    Fresh random inputs per case (normal, with a quarter of the values rounded to a coarse grid so that windows
    hold ties) and a random output gradient; the fused outputs are poisoned (NaN) before they are written, so an
    unwritten element shows. Both versions run in ``dtype`` and are compared with float64 (PyTorch's version on
    the same values): ``fwd_max_abs_err`` is the fused output against PyTorch's in the same dtype (a maximum has
    no rounding: 0 expected), ``grad_rel_err`` / ``grad_rel_err_pytorch`` are ||g - g64|| / ||g64|| of the fused
    and of PyTorch's input gradient (sums of up to four gradients, rounded once). ``ok``: output exact, no NaN,
    gradient error within float32 (1e-6) or bfloat16 (2^-8) rounding.
    """
    global _POISON
    g = torch.Generator(device="cpu").manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    rows = []
    for shape in shapes:
        for dtype in dtypes:
            x = torch.randn(shape, generator=g)
            coarse = torch.rand(shape, generator=g) < 0.25
            x = torch.where(coarse, (x * 2).round() / 2, x)  # ties inside windows
            x = x.to(device=device, dtype=dtype).contiguous(memory_format=fmt)
            out_shape = (shape[0], shape[1], _out_side(shape[2], 3, 2), _out_side(shape[3], 3, 2))
            gy = torch.randn(out_shape, generator=g).to(device=device, dtype=dtype)
            grads = {}
            for name, dt in (("ref", dtype), ("f64", torch.float64)):
                xi = x.to(dt).clone().requires_grad_()
                yi = F.max_pool2d(F.relu(xi), 3, 2)
                yi.backward(gy.to(dt))
                grads[name] = (yi.detach(), xi.grad)
            x_new = x.clone().requires_grad_()
            _POISON = True
            try:
                y_new = relu_maxpool(x_new, 3, 2)
                y_new.backward(gy)
            finally:
                _POISON = False
            g64 = grads["f64"][1]
            rel = lambda a: ((a.double() - g64).norm() / g64.norm().clamp(min=1e-30)).item()
            row = {"shape": list(shape), "dtype": str(dtype).replace("torch.", ""),
                   "channels_last": y_new.is_contiguous(memory_format=torch.channels_last),
                   "fwd_max_abs_err": (y_new.double() - grads["ref"][0].double()).abs().max().item(),
                   "grad_rel_err": rel(x_new.grad), "grad_rel_err_pytorch": rel(grads["ref"][1]),
                   "grad_max_abs_err": (x_new.grad.double() - grads["ref"][1].double()).abs().max().item(),
                   "nan": bool(y_new.isnan().any() or x_new.grad.isnan().any())}
            tol = 2 ** -8 if dtype in (torch.bfloat16, torch.float16) else 1e-6
            row["ok"] = row["fwd_max_abs_err"] == 0 and not row["nan"] and row["grad_rel_err"] <= tol
            rows.append(row)
    return rows
