"""GPU step 1 of gpu_session.py: is the fused ReLU + max-pooling operator right on the GPU, and how fast is it?

    python book/runs/bench/check_kernels.py OUT.json [--quick]

1. ``kernels.compare_with_pytorch`` on CUDA: the d2l AlexNet's three pooling shapes and the paper's, float32 and
   bfloat16, channels_last, and one contiguous case; fresh random inputs, outputs poisoned before they are written.
2. The whole d2l AlexNet (space-to-depth first layer), fused against plain, same weights and batch, eager, in
   float32 and under bf16 autocast: logits and every parameter gradient, relative to the plain model's.
3. Milliseconds of forward + backward at batch 512, bf16, channels_last, for each d2l pooling shape: PyTorch eager
   (ReLU then MaxPool2d), torch.compile of the same two lines (first shape only: one compilation), and the fused
   operator; with the bytes each must move at least, against a measured device-to-device copy.
``ok`` is true only if every check of 1 passed; the bench counts the fused row only then. ``--quick`` runs it on
whatever device there is at tiny sizes (to test this script on a CPU).
"""
from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from alexnet_lib import kernels, models  # noqa: E402


def _ms(fn, reps: int, cuda: bool) -> list[float]:
    for _ in range(3):
        fn()
    out = []
    for _ in range(reps):
        if cuda:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            out.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def copy_bandwidth(device, nbytes: int, cuda: bool) -> float:
    """GB/s of a device-to-device copy, bytes read plus bytes written."""
    src = torch.empty(nbytes // 2, dtype=torch.bfloat16, device=device).normal_()
    dst = torch.empty_like(src)
    ms = statistics.median(_ms(lambda: dst.copy_(src), 10, cuda))
    return 2 * nbytes / (ms / 1e3) / 1e9


def model_check(device, batch: int, size: int, amp: bool) -> dict:
    torch.manual_seed(0)
    plain = models.space_to_depth_stem(models.d2l_alexnet(image_size=size)).to(device)
    plain = plain.to(memory_format=torch.channels_last).eval()  # eval: no dropout, so both see the same function
    fused = kernels.fuse_relu_pool(copy.deepcopy(plain))
    x = torch.randn(batch, 1, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    out = {}
    for name, net in (("plain", plain), ("fused", fused)):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = net(x)
        F.cross_entropy(logits.float(), y).backward()
        out[name] = (logits.float(), {n: p.grad.float() for n, p in net.named_parameters()})
    rel = lambda a, b: ((a - b).norm() / b.norm().clamp(min=1e-30)).item()
    grads = {n: rel(out["fused"][1][n], g) for n, g in out["plain"][1].items()}
    return {"amp": amp, "batch": batch, "logits_rel_err": rel(out["fused"][0], out["plain"][0]),
            "grad_rel_err_max": max(grads.values()), "grad_rel_err": grads}


def timings(device, batch: int, cuda: bool, reps: int, shapes, compile_first: bool) -> list[dict]:
    rows = []
    for i, (c, h) in enumerate(shapes):
        x = torch.randn(batch, c, h, h, device=device, dtype=torch.bfloat16)
        x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
        ho = (h - 3) // 2 + 1
        gy = torch.randn(batch, c, ho, ho, device=device, dtype=torch.bfloat16)
        gy = gy.contiguous(memory_format=torch.channels_last)

        def eager():
            F.max_pool2d(F.relu(x), 3, 2).backward(gy)

        def fused():
            kernels.relu_maxpool(x, 3, 2).backward(gy)

        cases = {"pytorch_eager": eager, "fused": fused}
        if compile_first and i == 0:
            pool = torch.compile(lambda t: F.max_pool2d(F.relu(t), 3, 2))
            cases["pytorch_compiled"] = lambda: pool(x).backward(gy)
        n_in, n_out = batch * c * h * h, batch * c * ho * ho
        floor_bytes = (2 * n_in + 2 * n_out + n_out) + (2 * n_out + n_out + 2 * n_in)  # fused fwd + bwd, bf16/int8
        row = {"shape": [batch, c, h, h], "out": [batch, c, ho, ho], "min_bytes_fused": floor_bytes}
        for name, fn in cases.items():
            t = _ms(fn, reps, cuda)
            x.grad = None
            row[name + "_ms"] = statistics.median(t)
            row[name + "_ms_range"] = [min(t), max(t)]
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    out_path = Path(argv[0])
    quick = "--quick" in argv
    cuda = torch.cuda.is_available() and not quick
    device = torch.device("cuda" if cuda else "cpu")
    result = {"device_name": torch.cuda.get_device_name() if cuda else "cpu", "torch": torch.__version__,
              "triton": getattr(kernels.triton, "__version__", None), "date": time.strftime("%Y-%m-%d"),
              "triton_kernels": kernels.triton_available(device), "steps": {}}

    def save():
        out_path.write_text(json.dumps(result, indent=1))

    def step(name, fn):
        t0 = time.perf_counter()
        try:
            result["steps"][name] = {"result": fn(), "seconds": time.perf_counter() - t0}
        except Exception as e:  # noqa: BLE001 -- logged, and the next check still runs
            result["steps"][name] = {"error": f"{type(e).__name__}: {e}"[:2000], "seconds": time.perf_counter() - t0}
        print(f"[check_kernels] {name}: {time.perf_counter() - t0:.1f} s "
              f"{'ERROR ' + result['steps'][name]['error'] if 'error' in result['steps'][name] else 'done'}",
              flush=True)
        save()

    shapes = kernels.POOL_SHAPES if not quick else [(2, 32, 13, 13), (2, 64, 12, 12)]
    step("compare", lambda: kernels.compare_with_pytorch(shapes, device=device)
         + kernels.compare_with_pytorch(shapes[:1], device=device, channels_last=False, seed=1))
    size, batch = (224, 64) if not quick else (96, 2)
    step("model", lambda: [model_check(device, batch, size, amp) for amp in (False, True)])
    tshapes = [(96, 54), (256, 26), (256, 12)] if not quick else [(8, 13)]
    step("timings", lambda: timings(device, 512 if not quick else 2, cuda, 20 if not quick else 2, tshapes,
                                    compile_first=cuda))
    if cuda:
        step("copy_GBps", lambda: copy_bandwidth(device, 2 * 1024 ** 3, cuda))
    compare = result["steps"]["compare"].get("result")
    result["ok"] = bool(compare) and all(r["ok"] for r in compare) and result["triton_kernels"]
    save()
    for r in compare or []:
        print(f"  {str(r['shape']):<20} {r['dtype']:<9} cl={r['channels_last']!s:<5} fwd err {r['fwd_max_abs_err']:.1e}"
              f"  grad rel {r['grad_rel_err']:.1e} (pytorch {r['grad_rel_err_pytorch']:.1e})  {'ok' if r['ok'] else 'FAIL'}")
    for r in result["steps"]["timings"].get("result") or []:
        cols = "  ".join(f"{k[:-3]} {r[k]:.3f} ms" for k in r if k.endswith("_ms"))
        print(f"  {str(r['shape']):<20} {cols}")
    print(f"[check_kernels] ok={result['ok']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
