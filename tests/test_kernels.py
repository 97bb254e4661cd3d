"""The fused ReLU + max-pooling operator (alexnet_lib.kernels) against PyTorch's two modules, on the CPU.

Its PyTorch version runs in this process; the Triton kernels run under Triton's interpreter in a subprocess
(``TRITON_INTERPRET=1`` has to be set before Triton is imported), on CPU tensors.
"""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from alexnet_lib import kernels, models

ROOT = Path(__file__).resolve().parent.parent
SMALL = [(2, 32, 13, 13), (2, 64, 12, 12), (1, 3, 7, 9), (3, 8, 11, 11)]


def test_pytorch_version_matches_relu_then_maxpool(one_thread):
    rows = kernels.compare_with_pytorch(SMALL, device="cpu", seed=1)
    assert len(rows) == 2 * len(SMALL)
    for r in rows:
        assert r["ok"], r
        assert r["fwd_max_abs_err"] == 0 and r["channels_last"]
        if r["dtype"] == "float32":
            assert r["grad_max_abs_err"] == 0  # the same sums in the same order


def test_contiguous_input_keeps_its_layout(one_thread):
    rows = kernels.compare_with_pytorch([(2, 16, 9, 9)], device="cpu", channels_last=False)
    assert all(r["ok"] and not r["channels_last"] for r in rows)


def test_ties_nan_and_negative_windows():
    x = torch.tensor([[[[1.0, 1.0, 0.0, -2.0, -2.0],
                        [0.0, 1.0, 0.0, -1.0, -3.0],
                        [-1.0, 0.0, 2.0, float("nan"), -1.0]]]], requires_grad=True)
    ref = x.detach().clone().requires_grad_()
    y = kernels.relu_maxpool(x)
    y_ref = F.max_pool2d(F.relu(ref), 3, 2)
    assert torch.equal(y.isnan(), y_ref.isnan()) and torch.equal(y.nan_to_num(), y_ref.nan_to_num())
    y.sum().backward()
    y_ref.sum().backward()
    assert torch.equal(x.grad, ref.grad)
    assert x.grad[0, 0, 2, 2] == 1 and x.grad[0, 0, 0, 0] == 0  # the window's maximum, not its first 1


def test_too_small_input_is_an_error():
    with pytest.raises(RuntimeError, match="smaller than the 3x3 window"):
        kernels.relu_maxpool(torch.randn(1, 1, 2, 5))


def test_fuse_relu_pool_keeps_the_function_and_the_checkpoint(one_thread):
    torch.manual_seed(0)
    plain = models.d2l_alexnet(image_size=96).double().eval()
    fused = kernels.fuse_relu_pool(copy.deepcopy(plain))
    kinds = [type(m).__name__ for m in fused.features]
    assert kinds.count("FusedReLUMaxPool2d") == 3 and kinds.count("MaxPool2d") == 0
    assert len(fused.features) == len(plain.features)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    x = torch.randn(2, 1, 96, 96, dtype=torch.double).contiguous(memory_format=torch.channels_last)
    a, b = plain(x), fused(x)
    assert torch.allclose(a, b, rtol=0, atol=1e-12)
    a.sum().backward()
    b.sum().backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12), name
    with pytest.raises(Exception):  # the input check still speaks for the fused model
        fused(torch.randn(1, 1, 20, 20, dtype=torch.double))


def test_fuse_relu_pool_without_a_pair_is_an_error():
    with pytest.raises(ValueError, match="no ReLU directly followed"):
        kernels.fuse_relu_pool(models.lenet())


def test_fuse_relu_pool_on_space_to_depth_model():
    net = kernels.fuse_relu_pool(models.space_to_depth_stem(models.d2l_alexnet(image_size=96)))
    assert type(net.features[0]).__name__ == "SpaceToDepthConv2d"
    assert net(torch.randn(2, 1, 96, 96)).shape == (2, 10)


def test_compiled_graph_uses_the_operator(one_thread):
    """torch.compile sees the operator as one call with its own backward (aot_eager: no C++ build needed)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3), kernels.FusedReLUMaxPool2d(3, 2), nn.Flatten(), nn.LazyLinear(4))
    x = torch.randn(2, 1, 16, 16).contiguous(memory_format=torch.channels_last)
    eager = net(x)
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    assert torch.allclose(out, eager, atol=1e-6)
    out.sum().backward()
    assert net[0].weight.grad is not None and torch.isfinite(net[0].weight.grad).all()


def test_module_repr_names_the_fusion():
    assert "fused ReLU + max pooling" in repr(kernels.FusedReLUMaxPool2d())


_INTERPRETED = """
import json, torch
torch.set_num_threads(1)
from alexnet_lib import kernels
assert kernels.triton_available("cpu")
rows = kernels.compare_with_pytorch({shapes}, device="cpu", seed=2)
rows += kernels.compare_with_pytorch([(2, 16, 9, 11)], dtypes=(torch.float64,), device="cpu", channels_last=False)
print(json.dumps(rows))
"""


def test_triton_kernels_under_the_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    shapes = [(2, 32, 13, 13), (2, 64, 12, 12), (1, 3, 7, 9), (3, 96, 11, 11)]
    done = subprocess.run([sys.executable, "-c", _INTERPRETED.format(shapes=shapes)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(rows) == 2 * len(shapes) + 1
    for r in rows:
        assert r["fwd_max_abs_err"] == 0 and not r["nan"], r
        # the interpreter truncates to bfloat16 where the GPU rounds to nearest: allow twice the rounding there
        assert r["grad_rel_err"] <= {"bfloat16": 2 ** -7, "float32": 1e-6, "float64": 1e-12}[r["dtype"]], r


def test_kernels_compile_for_hopper_with_16_byte_accesses():
    """Compiled ahead for sm_90 (no GPU needed): channels_last with AlexNet's channel counts gives vector loads."""
    triton = pytest.importorskip("triton")
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError:
        pytest.skip("this Triton has no ahead-of-time compiler API")
    tl = triton.language
    cons = dict(K=3, S=2, BLOCK_P=128, BLOCK_C=32, ACC=tl.float32)
    cases = [(kernels._fwd_kernel, ["*bf16", "*bf16", "*i8"], ("sxc", "syc")),
             (kernels._bwd_kernel, ["*bf16", "*i8", "*bf16"], ("sgc", "sic", "sdc"))]
    for fn, ptrs, unit in cases:
        names = fn.arg_names
        const = dict(cons, **{n: 1 for n in unit})  # channels_last: channel stride 1
        sig = {n: "constexpr" if n in const else (ptrs[i] if i < 3 else "i32") for i, n in enumerate(names)}
        div16 = [n for n in names[:3] + ["C"] + [n for n in names if n.startswith("s") and n not in unit]]
        fixed = {names[i] if isinstance(i, int) else i for i in fn.do_not_specialize}
        assert not fixed & set(div16 + list(unit)), "the launch must specialise on C and the strides"
        src = ASTSource(fn=fn, signature=sig, constexprs={(names.index(n),): v for n, v in const.items()},
                        attrs={(names.index(n),): [["tt.divisibility", 16]] for n in div16})
        ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32)).asm["ptx"]
        assert "ld.global.v" in ptx and "st.global.v" in ptx, fn.__name__
