"""``python -m alexnet_lib bench``: training throughput of the seeds' loop and of each speed switch, in one run.

Every configuration runs through the same :func:`alexnet_lib.train.train` loop for one warm-up epoch (warm-up,
cuDNN autotuning, compilation) and then ``windows`` timed epochs of ``steps`` steps each; a row reports the median
images/s of those windows and their spread (min and max), so that a switch's gain can be told from run-to-run
noise. The table gives, per configuration, images/s, the ratio to the seeds' loop, the fraction of the bf16 limit
(training FLOPs per image from ``torch.utils.flop_counter``, peak from a measured 8192^3 bf16 matmul) and the peak
GPU memory.

The main rows (:data:`STEPS`) each add one switch to the row before; the rows of :data:`ASIDE` each change one
thing of the last main row (CUDA graphs, the unfused pooling, the augmentation paths), and the last one trains that
same configuration with PyTorch Lightning's ``Trainer`` instead of the course's loop (:mod:`.peer`; skipped, with
a note, where Lightning is not installed).

With ``--profile`` (``run_bench(profile=True)``) it also records where a step's time goes: GPU milliseconds per
kernel and per kind of kernel from ``torch.profiler`` (:func:`kernel_profile`) before and after the space-to-depth
first layer, and every layer's forward and backward time on its own (:func:`layer_times`).

On a CPU it runs the few configurations that exist there, at a small size, so the tests and the quick profile can
run it.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import re
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import dist
from .config import TrainConfig
from .experiments import build, loaders
from .runs import save_json
from .trace import human, valid_sizes
from .train import compiled, setup, train, train_step

__all__ = ["BASE", "STEPS", "ASIDE", "PEER", "CONFIGS", "LR_CAP_BATCH", "bench_lr", "window_stats",
           "measure_peak_tflops", "train_flops_per_image", "run_bench", "ddp_bench", "layer_times", "kernel_profile",
           "format_layers", "format_kernels", "format_table", "main"]

# The seeds' loop: the DataLoader path, fp32, a .item() every step, batch 128, two short epochs of the full data.
BASE = TrainConfig(model="d2l_alexnet", epochs=2, lr=0.01, momentum=0.9, batch_size=128, source="full",
                   data_path="loader", item_every_step=True, amp=False, channels_last=False, fused=False)
# Each row turns on one more switch than the row before it: (name, what it changes).
STEPS: list[tuple[str, dict]] = [
    ("seeds' loop", {}),
    ("+ GPU-resident data", dict(data_path="gpu")),
    ("+ no .item() per step", dict(item_every_step=False)),
    ("+ bf16 autocast", dict(amp=True)),
    ("+ channels_last", dict(channels_last=True)),
    ("+ fused SGD", dict(fused=True)),
    ("+ batch 512", dict(batch_size=512)),
    ("+ space-to-depth conv1", dict(s2d_stem=True)),
    ("+ batch 2048", dict(batch_size=2048)),
    ("+ fused ReLU + max-pool", dict(fused_pool=True)),
    ("+ torch.compile", dict(compile=True)),
]
# Each of these changes one thing of the last main row; PEER trains that row's configuration with Lightning.
PEER = "Lightning Trainer (peer)"
ASIDE: list[tuple[str, dict]] = [
    ("+ CUDA graphs", dict(compile="reduce-overhead")),
    ("unfused ReLU + max-pool (compiled)", dict(fused_pool=False)),
    ("+ shift augmentation (grid_sample)", dict(augment="shift", normalize=True)),
    ("+ shift augmentation at 28x28", dict(augment="shift", normalize=True, fast_augment=True)),
    (PEER, {}),
]


def _cumulative(base: TrainConfig, steps: list[tuple[str, dict]]) -> list[tuple[str, TrainConfig]]:
    rows, cfg = [], base
    for name, changes in steps:
        cfg = dataclasses.replace(cfg, **changes)
        rows.append((name, cfg))
    return rows


CONFIGS: list[tuple[str, TrainConfig]] = _cumulative(BASE, STEPS)
CONFIGS += [(name, CONFIGS[-1][1].replace(**changes)) for name, changes in ASIDE]
CPU_CONFIGS = ["seeds' loop", "+ GPU-resident data", "+ no .item() per step", "+ channels_last",
               "+ space-to-depth conv1", "+ fused ReLU + max-pool", "+ shift augmentation at 28x28", PEER]
# Profiled with --profile: the compiled step without and with the fused ReLU + max-pool (batch 2048).
PROFILED = ["unfused ReLU + max-pool (compiled)", "+ torch.compile"]


def measure_peak_tflops(device: torch.device, n: int = 8192, reps: int = 10) -> float:
    """bf16 matmul TFLOP/s on random data (the practical limit the % column refers to)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (start.elapsed_time(end) / 1e3) / 1e12


def train_flops_per_image(model_name: str, size: int, device: torch.device) -> float:
    """FLOPs of one training step (forward + backward) per image, counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    net = build(BASE.replace(model=model_name, image_size=size))[0].to(device)
    x = torch.randn(2, net.in_channels, size, size, device=device)
    y = torch.randint(0, 10, (2,), device=device)
    valid_sizes(net)  # the input check's one-off shape search must not be counted
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), y).backward()
    return counter.get_total_flops() / 2


def _defaults(device: torch.device | str | None, size: int | None) -> tuple[torch.device, int]:
    """The device (CUDA if there is one) and the image side (224 on a GPU, 96 on a CPU) when not given."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return device, size or (224 if device.type == "cuda" else 96)


# The bench's learning rate grows with the batch up to this one and stays there. The rows train 120 steps at a constant
# rate without warm-up; with a cap at 512 (0.04) the rows with normalised, shifted images diverged at batch 2048 (H200,
# 2026-12-02, book/runs/bench/h200_1202d_bench_lr004.json). The rate does not change the speed.
LR_CAP_BATCH = 256


def bench_lr(batch: int) -> float:
    """0.01 scaled with the batch up to :data:`LR_CAP_BATCH`, constant beyond."""
    return 0.01 * min(batch, LR_CAP_BATCH) / 128


def window_stats(rates: list[float]) -> dict:
    """The median images/s of the timed windows, their spread (min, max) and the windows themselves."""
    return {"img_per_s": statistics.median(rates), "img_per_s_min": min(rates), "img_per_s_max": max(rates),
            "img_per_s_windows": list(rates)}


SWITCHES = ("data_path", "item_every_step", "amp", "channels_last", "fused", "compile", "s2d_stem", "fused_pool",
            "augment", "fast_augment")


def _one(name: str, cfg: TrainConfig, steps: int, device: torch.device, windows: int = 1) -> dict:
    """One warm-up epoch and ``windows`` timed epochs of ``steps`` steps of ``cfg`` (``cfg.batch_size`` is the
    global batch); :func:`window_stats` of the timed ones. The row named :data:`PEER` runs in Lightning."""
    per_rank = max(1, cfg.batch_size // dist.world_size())
    cfg = cfg.replace(lr=bench_lr(per_rank), train_limit=cfg.batch_size * steps, test_limit=cfg.batch_size,
                      num_workers=4 if device.type == "cuda" else 0, seed=0, epochs=1 + windows)
    net = build(cfg)[0]
    train_iter, test_iter = loaders(cfg, device, dist.rank(), dist.world_size())
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    if name == PEER:
        from .peer import lightning_windows
        cfg = cfg.resolved(device.type)
        out = lightning_windows(net, train_iter, lr=cfg.lr, windows=windows, device=device,
                                compile=bool(cfg.compile), channels_last=cfg.channels_last, fused=cfg.fused)
        rates, extra = out["img_per_s_windows"], {"framework": out["framework"]}
    else:
        h = train(net, train_iter, test_iter, config=cfg, device=device, verbose=False, progress=False)
        rates, extra = [e["img_per_s"] for e in h["epochs"][1:]], {}
    return {"name": name, "batch": per_rank, "lr": cfg.lr, **{k: getattr(cfg, k) for k in SWITCHES},
            **window_stats(rates), "windows": windows, "steps": len(train_iter), "wall_s": time.perf_counter() - t0,
            **extra, "peak_mem_GB": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None}


def _fwd_bwd_ms(fwd, grad: torch.Tensor, reps: int, device: torch.device) -> tuple[float, float]:
    """Median milliseconds of the forward call ``fwd()`` and, timed apart within the same repetition, of the backward
    pass from its output (0 for an output that needs no gradient): each part is a time of its own, never a difference
    of two noisy totals, so neither can come out negative."""
    cuda = device.type == "cuda"

    def mark():
        if cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def ms(a, b):
        return a.elapsed_time(b) if cuda else (b - a) * 1e3

    times = []
    for rep in range(reps + 2):  # the first two warm up
        t0 = mark()
        out = fwd()
        t1 = mark()
        if out.requires_grad:
            out.backward(grad)
        t2 = mark()
        if cuda:
            torch.cuda.synchronize(device)
        if rep >= 2:
            times.append((ms(t0, t1), ms(t1, t2)))
    return statistics.median(f for f, _ in times), statistics.median(b for _, b in times)


def layer_times(model_name: str = "d2l_alexnet", batch: int = 512, size: int | None = None,
                device: torch.device | str | None = None, cfg: TrainConfig | None = None, reps: int = 20) -> list[dict]:
    """Forward and backward milliseconds of every layer alone (each part timed on its own), at the shapes it sees in
    training.

    Each layer of ``features`` and ``classifier`` runs on a stored copy of its real input (bf16 autocast and
    channels_last as in ``cfg``, default channels_last with autocast on a GPU), eagerly; the backward pass computes
    the input's gradient too, except for the first layer (the images need none). The sum is close to an eager step.
    """
    device, size = _defaults(device, size)
    cfg = (cfg or BASE.replace(channels_last=True, amp=None)).resolved(device.type)
    torch.manual_seed(0)
    net = build(cfg.replace(model=model_name, image_size=size))[0]
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    net.to(device, memory_format=fmt).train()
    for m in net.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False  # each layer reruns on the same stored input
    layers = [(f"features.{i}", m) for i, m in enumerate(net.features)] + [("flatten", torch.nn.Flatten())] + \
        [(f"classifier.{i}", m) for i, m in enumerate(net.classifier)]
    x = torch.rand(batch, net.in_channels, size, size, device=device).to(memory_format=fmt)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp)  # entered anew for every call
    rows = []
    for i, (name, layer) in enumerate(layers):
        with amp:
            x_in = x.detach().requires_grad_(i > 0)
            out = layer(x_in)
        grad = torch.randn_like(out)

        def fwd():
            with amp:
                return layer(x_in)
        fwd_ms, bwd_ms = _fwd_bwd_ms(fwd, grad, reps, device)
        params = sum(p.numel() for p in layer.parameters())
        rows.append({"layer": name, "type": type(layer).__name__, "output": list(out.shape[1:]), "params": params,
                     "fwd_ms": fwd_ms, "bwd_ms": bwd_ms, "total_ms": fwd_ms + bwd_ms})
        x = out.detach()
        layer.zero_grad(set_to_none=True)
    return rows


_KERNEL_KINDS = [  # (kind, substrings of the kernel name), first match wins; Triton kernels are Inductor's
    ("all-reduce (NCCL)", ("nccl",)),
    ("max pooling", ("max_pool", "maxpool")),
    ("conv bias grad", ("red_fused_convolution_backward",)),
    ("fused elementwise (compiled)", ("triton",)),
    ("conv weight grad", ("wgrad",)), ("conv input grad", ("dgrad",)),
    ("conv backward (CPU)", ("conv2d_backward", "convolution_backward")),
    ("conv layout conversion", ("nchwtonhwc", "nhwctonchw")),
    ("conv forward", ("fprop", "implicit_convolve", "conv2d", "convolution", "convolve", "winograd", "cudnn")),
    ("matmul (dense layers)", ("gemm", "nvjet", "cutlass", "sm90_xmma", "aten::mm", "aten::addmm")),
    ("data: resize/augment", ("grid_sampler", "affine_grid", "upsample")),
    ("optimizer", ("multi_tensor", "fused_sgd", "foreach")),
]


def _kernel_kind(name: str) -> str:
    low = name.lower()
    for kind, keys in _KERNEL_KINDS:
        if any(k in low for k in keys):
            return kind
    return "other elementwise / copies"


def kernel_profile(cfg: TrainConfig | None = None, model_name: str = "d2l_alexnet", size: int | None = None,
                   steps: int = 20, warmup: int = 10, device: torch.device | str | None = None,
                   top: int | None = None) -> dict:
    """Where the GPU time of a training step goes, from ``torch.profiler``: top kernels and kernel kinds per step.

    Runs ``warmup`` then ``steps`` calls of :func:`alexnet_lib.train.train_step` for configuration ``cfg`` (a row
    of :data:`CONFIGS`; default ``+ torch.compile``) on the GPU-resident loader, and returns GPU milliseconds per
    step by kernel and by kind, and the wall milliseconds per step for comparison (GPU idle time is their
    difference).
    """
    from torch.profiler import ProfilerActivity, profile

    device, size = _defaults(device, size)
    cfg = (cfg or dict(CONFIGS)["+ torch.compile"]).replace(
        model=model_name, image_size=size, data_path="gpu", source="full", train_limit=None, test_limit=None)
    batch = cfg.batch_size
    torch.manual_seed(0)
    net = build(cfg)[0]
    loader, test = loaders(cfg.replace(train_limit=batch * (steps + warmup), test_limit=batch), device)
    state = setup(net, loader, test, cfg, device, verbose=False)
    state.model = compiled(state)
    state.model.train()

    def run(n):
        state.stats = torch.zeros(3, device=device)
        state.first_bad = state.first_blowup = torch.full((), -1, device=device)  # what train_epoch resets
        it = iter(loader)
        for i in range(n):
            train_step(state, *next(it), i)
    run(warmup)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        run(steps)
        sync()
    wall_ms = (time.perf_counter() - t0) * 1e3 / steps
    kernels: dict[str, list] = {}
    for ev in prof.events():
        annotation = getattr(ev, "is_user_annotation", False) or "#" in ev.name or ev.name.startswith("Profiler")
        if device.type == "cuda" and ev.device_type.name == "CUDA" and not annotation:  # kernels, copies, memsets
            k = kernels.setdefault(ev.name, [0.0, 0])
            k[0] += ev.device_time / 1e3
            k[1] += 1
    if device.type != "cuda":  # on a CPU: the top-level operators instead of kernels
        for ev in prof.key_averages():
            if ev.key.startswith("aten::"):
                kernels[ev.key] = [ev.self_cpu_time_total / 1e3, ev.count]
    total = sum(v[0] for v in kernels.values())
    rows = sorted(({"kernel": n, "kind": _kernel_kind(n), "ms_per_step": v[0] / steps, "calls_per_step": v[1] / steps,
                    "pct": 100 * v[0] / total if total else 0.0} for n, v in kernels.items()),
                  key=lambda r: -r["ms_per_step"])
    kinds: dict[str, float] = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0.0) + r["ms_per_step"]
    return {"config": cfg.settings(), "batch": batch, "steps": steps, "wall_ms_per_step": wall_ms,
            "gpu_ms_per_step": total / steps, "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
            "top": rows[:top] if top else rows}


def format_layers(rows: list[dict]) -> str:
    total = sum(r["total_ms"] for r in rows)
    lines = [f"{'layer':<14} {'type':<18} {'output':<16} {'fwd ms':>8} {'bwd ms':>8} {'share':>6}"]
    for r in rows:
        lines.append(f"{r['layer']:<14} {r['type']:<18} {'x'.join(map(str, r['output'])):<16} "
                     f"{r['fwd_ms']:8.3f} {r['bwd_ms']:8.3f} {100 * r['total_ms'] / total:5.1f}%")
    lines.append(f"{'sum':<50} {sum(r['fwd_ms'] for r in rows):8.3f} {sum(r['bwd_ms'] for r in rows):8.3f}")
    return "\n".join(lines)


def format_kernels(prof: dict, n: int = 12) -> str:
    lines = [f"GPU {prof['gpu_ms_per_step']:.2f} ms per step (wall {prof['wall_ms_per_step']:.2f} ms), batch "
             f"{prof['batch']}"]
    lines += [f"  {k:<30} {ms:7.3f} ms  {100 * ms / prof['gpu_ms_per_step']:5.1f}%" for k, ms in prof["kinds"].items()]
    lines += [f"  {r['ms_per_step']:7.3f} ms {r['calls_per_step']:5.1f}x  {r['kernel'][:90]}" for r in prof["top"][:n]]
    return "\n".join(lines)


def _select(only, on_gpu: bool, fused_pool: bool) -> list[tuple[str, TrainConfig]]:
    unknown = [n for n in only or [] if n not in dict(CONFIGS)]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; choose from {[n for n, _ in CONFIGS]}")
    configs = [(n, c) for n, c in CONFIGS if (on_gpu or n in CPU_CONFIGS) and (not only or n in only)]
    if not fused_pool:  # without the fused operator: its rows go, and no other row uses it
        fused_rows = {n for n, ch in STEPS + ASIDE if "fused_pool" in ch}
        configs = [(n, c.replace(fused_pool=False)) for n, c in configs if n not in fused_rows]
    return configs


def _row_or_failure(name: str, cfg, steps: int, device, windows: int, result: dict) -> dict | None:
    """:func:`_one`, or None with the error recorded in ``result["failed"]``: one broken row (a compiler error,
    say) must not lose the rows measured before it nor stop the rows after it."""
    try:
        return _one(name, cfg, steps, device, windows)
    except Exception as e:  # noqa: BLE001
        last = (str(e).strip().splitlines() or [""])[-1]
        failure = {"name": name, "error": f"{type(e).__name__}: {last}"[:500]}
        source = _generated_source(str(e))
        if source:
            failure["generated_source"] = source
        result.setdefault("failed", []).append(failure)
        print(f"{name}: failed ({type(e).__name__}: {last[:200]}); the next row still runs", flush=True)
        if source:
            print(f"the generated lines around the error:\n{source}", flush=True)
        return None


def _generated_source(message: str, around: int = 3) -> str | None:
    """The lines around the error in a module the compiler generated and could not import (Inductor names the file
    and the line in its message), so that such a failure can be read after the machine is gone."""
    path, line = re.search(r"Failed to import (\S+\.py)", message), re.search(r"line (\d+)\)", message)
    if not (path and line):
        return None
    try:
        lines = Path(path.group(1)).read_text().splitlines()
    except OSError:
        return None
    n = int(line.group(1))
    first, last = max(0, n - 1 - around), min(len(lines), n + around)
    return "\n".join(f"{i + 1:5d}  {lines[i][:300]}" for i in range(first, last))


def run_bench(model: str = "d2l_alexnet", size: int | None = None, steps: int | None = None,
              only: list[str] | None = None, device: torch.device | str | None = None, out=None,
              verbose: bool = True, batch: int | None = None, profile: bool = False, windows: int = 5,
              fused_pool: bool = True) -> dict:
    """Measure every configuration in :data:`CONFIGS` (those that exist on this device) and return the table.

    Each row: one warm-up epoch, then ``windows`` timed epochs of ``steps`` steps (median and spread reported).
    ``batch`` replaces every configuration's batch size (default: each its own on a GPU, 16 on a CPU).
    ``fused_pool=False`` leaves out the fused ReLU + max-pool operator (for a GPU where it did not check out).
    ``profile=True`` also records where the time goes: :func:`kernel_profile` of the configurations in
    :data:`PROFILED` and :func:`layer_times` of the plain, space-to-depth and fused models (``"profile"`` key).
    The row :data:`PEER` is skipped, with the reason in ``result["skipped"]``, where Lightning is not installed.
    """
    from .peer import unavailable

    device, size = _defaults(device, size)
    on_gpu = device.type == "cuda"
    steps = steps or (20 if on_gpu else 3)

    def prepared(configs):
        configs = [(n, c.replace(model=model, image_size=size)) for n, c in configs]
        if batch or not on_gpu:
            configs = [(n, c.replace(batch_size=batch or 16)) for n, c in configs]
        if not on_gpu:  # no compilation on a CPU (minutes of C++ builds for a few steps)
            configs = [(n, c.replace(compile=False)) for n, c in configs]
        return configs
    configs = prepared(_select(only, on_gpu, fused_pool))
    flops = train_flops_per_image(model, size, device)
    peak = measure_peak_tflops(device) if on_gpu else None
    result = {"model": model, "image_size": size, "device": device.type,
              "device_name": torch.cuda.get_device_name(device) if on_gpu else platform.processor() or "cpu",
              "torch": str(torch.__version__), "date": datetime.date.today().isoformat(),
              "train_flops_per_image": flops, "peak_bf16_tflops": peak, "windows": windows, "steps": steps,
              "fused_pool": fused_pool, "rows": [], "skipped": []}
    base = None
    for name, cfg in configs:
        if name == PEER and unavailable():
            result["skipped"].append({"name": name, "note": unavailable()})
            continue
        row = _row_or_failure(name, cfg, steps, device, windows, result)
        if row is not None:
            base = row["img_per_s"] if name == configs[0][0] else base  # the first row: what the others are against
            row["x_seeds"] = row["img_per_s"] / base if base else None  # None: that row failed
            row["pct_of_peak"] = 100 * row["img_per_s"] * flops / (peak * 1e12) if peak else None
            result["rows"].append(row)
            if verbose:
                print(_row_text(row), flush=True)
        if out is not None:
            save_json(result, out)
    if profile:
        every = dict(prepared(_select(None, True, fused_pool)))  # PROFILED rows whether run above or not
        result["profile"] = _profile(every, model, size, device, batch, on_gpu)
        if verbose:
            for n, p in result["profile"]["kernels"].items():
                print(f"== {n}\n" + format_kernels(p), flush=True)
        if out is not None:
            save_json(result, out)
    return result


def _profile(cfgs: dict, model: str, size: int, device: torch.device, batch: int | None, on_gpu: bool) -> dict:
    """:func:`kernel_profile` of the :data:`PROFILED` rows that ran, :func:`layer_times` of three models."""
    psteps, pwarm, reps = (20, 10, 20) if on_gpu else (2, 1, 2)  # on a CPU only to check that it runs
    lbatch = batch or (512 if on_gpu else 16)
    kernels = {n: kernel_profile(cfgs[n], model, size, steps=psteps, warmup=pwarm, device=device)
               for n in PROFILED if n in cfgs}
    layer_cfg = BASE.replace(channels_last=True, amp=None)
    layers = {"plain": layer_times(model, lbatch, size, device, reps=reps),
              "space-to-depth": layer_times(model, lbatch, size, device, reps=reps,
                                            cfg=layer_cfg.replace(s2d_stem=True))}
    if any(c.fused_pool for c in cfgs.values()):
        layers["space-to-depth + fused pool"] = layer_times(model, lbatch, size, device, reps=reps,
                                                            cfg=layer_cfg.replace(s2d_stem=True, fused_pool=True))
    return {"kernels": kernels, "layers": layers}


def _row_text(r: dict) -> str:
    pct = f"{r['pct_of_peak']:5.1f}%" if r.get("pct_of_peak") is not None else "     -"
    mem = f"{r['peak_mem_GB']:5.1f} GB" if r.get("peak_mem_GB") is not None else "      -"
    spread = (f"{r['img_per_s_min']:>7,.0f}-{r['img_per_s_max']:<7,.0f}" if "img_per_s_min" in r
              else f"{'(1 window)':^15}")  # bench files from before the windows: one timed epoch
    ratio = f"{r['x_seeds']:6.2f}x" if r.get("x_seeds") is not None else "      -"
    return (f"{r['name']:<35} {r['batch']:>5}  {r['img_per_s']:>8,.0f}  {spread}  {ratio}  {pct}  "
            f"{mem}")


def format_table(result: dict) -> str:
    """The bench as text: per row the batch, median images/s and the range over the timed windows, the ratio to
    the seeds' loop, % of the measured bf16 peak and peak memory; then any skipped row with its reason."""
    head = (f"{result['model']} at {result['image_size']}x{result['image_size']} on {result['device_name']}, "
            f"torch {result['torch']}, {result['date']}; training FLOPs/image {human(result['train_flops_per_image'])}"
            + (f", bf16 peak {result['peak_bf16_tflops']:.0f} TFLOP/s" if result["peak_bf16_tflops"] else ""))
    if "windows" in result:
        head += f"\nimages/s: median of {result['windows']} windows of {result['steps']} steps, and their range"
    cols = (f"{'configuration':<35} {'batch':>5}  {'images/s':>8}  {'range':^15}  {'vs seeds':>7}  {'% peak':>6}  "
            f"{'memory':>8}")
    skipped = [f"{r['name']:<35} skipped: {r['note']}" for r in result.get("skipped", [])]
    failed = [f"{r['name']:<35} failed: {r['error']}" for r in result.get("failed", [])]
    return "\n".join([head, cols] + [_row_text(r) for r in result["rows"]] + skipped + failed)


# ``bench --ddp``: the strong-scaling row once per line here, each turning on DDP options (TrainConfig fields).
DDP_ROWS: list[tuple[str, dict]] = [
    ("DDP defaults", {}),
    ("gradient_as_bucket_view", dict(gradient_as_bucket_view=True)),
    ("static_graph", dict(static_graph=True)),
    ("bf16 gradients", dict(comm_hook="bf16")),
    ("buckets of 5 MiB", dict(bucket_cap_mb=5)),
    ("buckets of 100 MiB", dict(bucket_cap_mb=100)),
    ("bucket view + static + bf16", dict(gradient_as_bucket_view=True, static_graph=True, comm_hook="bf16")),
    ("torch.compile", dict(compile=True)),
    ("torch.compile + bf16 gradients", dict(compile=True, comm_hook="bf16")),
]
DDP_FIELDS = ("bucket_cap_mb", "gradient_as_bucket_view", "static_graph", "comm_hook")
__all__ += ["DDP_ROWS", "ddp_rows", "format_ddp"]


def ddp_rows(base: TrainConfig, per_gpu: int, n: int, cuda: bool) -> tuple[list, list]:
    """The rows of ``bench --ddp`` as (label, config with its global batch): one GPU alone, then all N GPUs.

    One GPU at the per-GPU batch and at 1/N of it (what each GPU computes under strong scaling), eager and compiled;
    N GPUs at the per-GPU batch each (weak scaling), then at the same global batch (strong scaling) per
    :data:`DDP_ROWS`. No compilation on a CPU."""
    one = [(f"1 GPU, batch {b}", base.replace(batch_size=b)) for b in dict.fromkeys((per_gpu, max(1, per_gpu // n)))]
    if cuda:
        one.append((f"1 GPU, batch {per_gpu}, torch.compile", base.replace(batch_size=per_gpu, compile=True)))
    many = [(f"{n} GPUs, batch {per_gpu} per GPU (weak)", base.replace(batch_size=per_gpu * n))]
    many += [(f"{n} GPUs, global batch {per_gpu}: {label}", base.replace(batch_size=per_gpu, **changes))
             for label, changes in DDP_ROWS if cuda or not changes.get("compile")]
    return one, many if n > 1 else []


def ddp_bench(model: str = "d2l_alexnet", size: int | None = None, steps: int | None = None,
              batch: int | None = None, out=None, windows: int = 1) -> dict:
    """``torchrun --nproc_per_node=N -m alexnet_lib bench --ddp``: where N GPUs lose time against one, in one run.

    Rank 0 first measures one GPU alone, before the process group exists (the other processes wait in its creation,
    so this part must stay under the group's timeout, 10 minutes with NCCL); then all N processes measure weak
    scaling and strong scaling with each of DDP's switches (:func:`ddp_rows`), each row the median of ``windows``
    timed epochs after a warm-up one (:func:`window_stats`). Images/s count all GPUs together.
    ``"profile"``: :func:`kernel_profile` of the strong-scaling step with DDP's defaults (batch 1/N per GPU, NCCL
    all-reduce kernels a kind of their own) and of one GPU alone at that batch and at the full one, which tells the
    halved batch's compute from the communication. Rank 0 writes one JSON, after every row."""
    cuda, n = torch.cuda.is_available(), int(os.environ.get("WORLD_SIZE", "1"))  # as torchrun set it
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device, size = _defaults(torch.device("cuda", local) if cuda else torch.device("cpu"), size)
    steps = steps or (40 if cuda else 2)
    name = "+ batch 512" if cuda else "+ no .item() per step"
    base = dict(CONFIGS)[name].replace(model=model, image_size=size)
    per_gpu = batch or base.batch_size
    alone, together = ddp_rows(base, per_gpu, n, cuda)
    result = {"model": model, "image_size": size, "world_size": n, "configuration": name, "steps": steps,
              "windows": windows,
              "device": device.type, "date": datetime.date.today().isoformat(),
              "device_name": torch.cuda.get_device_name(device) if cuda else "cpu", "torch": str(torch.__version__),
              "train_flops_per_image": train_flops_per_image(model, size, device), "rows": []}

    def profile(label: str, cfg: TrainConfig) -> None:  # cfg.batch_size: the batch of each process
        p = kernel_profile(cfg, model, size, *((20, 10) if cuda else (2, 1)), device=device, top=15)
        result.setdefault("profile", {})[label] = p
        if dist.rank() == 0:
            print(f"== {label}\n" + format_kernels(p, n=4), flush=True)

    def measure(label: str, cfg: TrainConfig, world: int) -> None:
        row = _one(label, cfg, steps, device, windows)
        result["rows"].append(dict(row, world_size=world, global_batch=row["batch"] * world,
                                   **{k: getattr(cfg, k) for k in DDP_FIELDS}))
        if dist.rank() == 0:
            ratio = row["img_per_s"] / result["rows"][0]["img_per_s"]
            print(f"{label:<52} {row['img_per_s']:>10,.0f} img/s {ratio:6.2f}x", flush=True)
            if out:
                save_json(result, out)

    if int(os.environ.get("RANK", "0")) == 0:
        if cuda:
            torch.cuda.set_device(device)
        for label, cfg in alone:
            measure(label, cfg, 1)
        for b in dict.fromkeys((per_gpu, max(1, per_gpu // n))):
            profile(f"1 GPU, batch {b}", base.replace(batch_size=b))
    with dist.distributed():
        for label, cfg in together:
            measure(label, cfg, n)
        if n > 1:
            profile(f"{n} GPUs, batch {max(1, per_gpu // n)} each, DDP defaults", base.replace(batch_size=per_gpu // n))
        if dist.rank() == 0 and out:
            save_json(result, out)
    return result


def format_ddp(result: dict) -> str:
    """The table of :func:`ddp_bench`: images/s against one GPU, milliseconds per step, and where a step's GPU time
    goes (compute kernels, NCCL all-reduce kernels, wall clock) for each profiled step."""
    head = (f"{result['model']} at {result['image_size']}x{result['image_size']} on {result['device_name']}, torch "
            f"{result['torch']}, {result['date']}; {result['steps']} steps per timed epoch; images/s of all GPUs")
    one = result["rows"][0]["img_per_s"]
    lines = [head, f"{'':<56}{'GPUs':>5}{'per GPU':>8}{'images/s':>10}{'min-max':>17}{'vs 1 GPU':>9}"
                   f"{'ms/step':>8}"]
    for r in result["rows"]:
        spread = f"{r.get('img_per_s_min', r['img_per_s']):,.0f}-{r.get('img_per_s_max', r['img_per_s']):,.0f}"
        lines.append(f"{r['name']:<56}{r['world_size']:>5}{r['batch']:>8}{r['img_per_s']:>10,.0f}{spread:>17}"
                     f"{r['img_per_s'] / one:>8.2f}x{1000 * r['global_batch'] / r['img_per_s']:>8.2f}")
    if result.get("profile"):
        lines.append(f"\n{'profiled step (ms)':<56}{'wall':>8}{'compute':>9}{'all-reduce':>11}")
        for label, p in result["profile"].items():
            comm = p["kinds"].get("all-reduce (NCCL)", 0.0)
            lines.append(f"{label:<56}{p['wall_ms_per_step']:>8.2f}{p['gpu_ms_per_step'] - comm:>9.2f}{comm:>11.2f}")
    return "\n".join(lines)


def without_inductor_harness() -> None:
    """Stop Inductor from writing a benchmark harness into each module it generates. The harness names itself after
    the command-line word that follows ``--only``, pasted into the generated code as a Python string literal, so
    ``bench --only "seeds' loop,..."`` gave a module that does not parse and every compiled row failed (on an H200,
    2026-12-02). The bench never runs those harnesses."""
    import torch._inductor.config as inductor_config

    inductor_config.benchmark_harness = False


def main(args) -> int:
    without_inductor_harness()
    if args.ddp:
        result = ddp_bench(args.model, args.size, args.steps, args.batch_size, args.out, args.windows)
        if int(os.environ.get("RANK", "0")) == 0:
            print(format_ddp(result))
        return 0
    only = args.only.split(",") if args.only else None
    result = run_bench(args.model, args.size, args.steps, only, out=args.out, verbose=False,
                       batch=args.batch_size, profile=args.profile, windows=args.windows,
                       fused_pool=args.fused_pool)
    print(format_table(result))
    if args.profile:
        for name, p in result["profile"]["kernels"].items():
            print(f"\nwhere the GPU time goes, {name}:\n" + format_kernels(p))
        print("\nper layer, eager, without the space-to-depth first layer:\n"
              + format_layers(result["profile"]["layers"]["plain"]))
    return 1 if result.get("failed") else 0
