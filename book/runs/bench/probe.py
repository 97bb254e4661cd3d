"""Exploration on the GPU for the speed chapter (issue 8): where the step's time goes, and candidate switches.

    PYTHONPATH=$PWD ALEXNET_FASHION_MNIST=$PWD/.fmnist python book/runs/bench/probe.py OUTDIR [part ...]

Parts: ``layers`` (per-layer times, plain and space-to-depth conv1), ``kernels`` (torch.profiler of the compiled
step, plain and space-to-depth), ``variants`` (images/s of candidate configurations through the bench's train()
path). Each part writes OUTDIR/probe_<part>.json; see NOTES.md beside this file for what was predicted and found.
"""
import json
import sys
import time

import torch

from alexnet_lib import bench

out = sys.argv[1]
parts = sys.argv[2:] or ["layers", "kernels", "variants"]
dev = torch.device("cuda")
BEST = dict(data="gpu", item=False, amp=True, channels_last=True, fused=True, batch=512)
result = {"device_name": torch.cuda.get_device_name(), "torch": torch.__version__,
          "date": time.strftime("%Y-%m-%d")}


def save(part, obj):
    with open(f"{out}/probe_{part}.json", "w") as f:
        json.dump({**result, part: obj}, f, indent=1)


if "layers" in parts:
    layers = {}
    for name, cfg in [("plain", {}), ("s2d", {"s2d": True})]:
        rows = bench.layer_times(batch=512, cfg=cfg)
        layers[name] = rows
        print(f"== layers {name}, batch 512, eager bf16 channels_last\n" + bench.format_layers(rows), flush=True)
    save("layers", layers)

if "kernels" in parts:
    kernels = {}
    for name, cfg in [("eager", BEST), ("compile", dict(BEST, compile=True)),
                      ("compile_s2d", dict(BEST, compile=True, s2d=True))]:
        p = bench.kernel_profile(cfg, steps=20, warmup=10)
        kernels[name] = p
        print(f"== kernels {name}\n" + bench.format_kernels(p, 15), flush=True)
    save("kernels", kernels)

VARIANTS = {
    "variants": [  # run 1
        ("eager b512", BEST),
        ("eager s2d b512", dict(BEST, s2d=True)),
        ("compile b512", dict(BEST, compile=True)),
        ("compile s2d b512", dict(BEST, compile=True, s2d=True)),
        ("eager s2d b1024", dict(BEST, s2d=True, batch=1024)),
        ("compile s2d b1024", dict(BEST, compile=True, s2d=True, batch=1024)),
        ("compile s2d b2048", dict(BEST, compile=True, s2d=True, batch=2048)),
        ("eager b512 again", BEST),
    ],
    "variants2": [  # run 2: after the profile
        ("compile s2d b512", dict(BEST, compile=True, s2d=True)),
        ("graphs s2d b512", dict(BEST, compile="reduce-overhead", s2d=True)),
        ("compile s2d b1024", dict(BEST, compile=True, s2d=True, batch=1024)),
        ("graphs s2d b1024", dict(BEST, compile="reduce-overhead", s2d=True, batch=1024)),
        ("compile s2d b2048", dict(BEST, compile=True, s2d=True, batch=2048)),
        ("compile s2d b512 again", dict(BEST, compile=True, s2d=True)),
    ],
}
for part in [p for p in parts if p in VARIANTS]:
    flops = bench.train_flops_per_image("d2l_alexnet", 224, dev)
    peak = bench.measure_peak_tflops(dev)
    rows = []
    for name, cfg in VARIANTS[part]:
        t0 = time.perf_counter()
        r = bench._one(name, cfg, "d2l_alexnet", 224, 40, dev)
        r["pct_of_peak"] = 100 * r["img_per_s"] * flops / (peak * 1e12)
        rows.append(r)
        print(f"{name:<22} {r['img_per_s']:>9,.0f} img/s {r['pct_of_peak']:5.1f}%  {r['peak_mem_GB']:.1f} GB  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        save(part, {"flops": flops, "peak_tflops": peak, "rows": rows})

if "pool" in parts:
    # ReLU + 3x3/2 max pooling, forward + backward, at the three pooling layers' shapes of a batch of 512.
    import torch.nn.functional as F

    def relu_pool(x):
        return F.max_pool2d(F.relu(x), 3, 2)

    def pool_relu(x):  # the same function: max and ReLU commute
        return F.relu(F.max_pool2d(x, 3, 2))

    def max9_relu(x):  # 3x3/2 max as the maximum of nine strided views (ties share the gradient)
        h, w = (x.shape[-2] - 3) // 2 + 1, (x.shape[-1] - 3) // 2 + 1
        out = None
        for dy in range(3):
            for dx in range(3):
                v = x[:, :, dy:dy + 2 * h - 1:2, dx:dx + 2 * w - 1:2]
                out = v if out is None else torch.maximum(out, v)
        return F.relu(out)

    pool = {}
    for shape in [(512, 96, 54, 54), (512, 256, 26, 26), (512, 256, 12, 12)]:
        x = torch.randn(shape, device=dev, dtype=torch.bfloat16).to(memory_format=torch.channels_last)
        x.requires_grad_(True)
        ref = relu_pool(x)
        g = torch.randn_like(ref)
        for name, fn in [("eager relu_pool", relu_pool), ("compiled relu_pool", torch.compile(relu_pool)),
                         ("compiled pool_relu", torch.compile(pool_relu)),
                         ("compiled max9_relu", torch.compile(max9_relu))]:
            assert torch.equal(fn(x), ref), name  # (binding `out` here overwrote the output folder once)

            def step():
                x.grad = None
                fn(x).backward(g)
            ms = bench._median_ms(step, 20, dev)
            pool[f"{shape} {name}"] = ms
            print(f"pool {shape} {name:<22} {ms:7.3f} ms", flush=True)
    save("pool", pool)

if "fast" in parts:
    # The fast preset with the space-to-depth first layer and mirrored test images, eager and compiled; the
    # compiled run once with an empty Inductor cache (cold: compilation inside the wall time) and once warm.
    import os
    import subprocess
    import tempfile
    cache = tempfile.mkdtemp()
    for tag, args, cache_dir in [
            ("eager_e16", ["--epochs", "16"], tempfile.mkdtemp()),
            ("compile_e16_cold", ["--epochs", "16", "--compile"], cache),
            ("compile_e16_warm", ["--epochs", "16", "--compile"], cache),
            ("compile_e14_warm", ["--epochs", "14", "--compile"], cache),
            ("eager_e18", ["--epochs", "18"], tempfile.mkdtemp())]:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache_dir)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "alexnet_lib", "train", "--preset", "fast", "--s2d-stem", "--tta",
                        "--out", f"{out}/fast_{tag}.json", *args], env=env, check=False)
        print(f"fast {tag}: process wall {time.perf_counter() - t0:.1f} s", flush=True)
