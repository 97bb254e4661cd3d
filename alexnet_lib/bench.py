"""``python -m alexnet_lib bench``: training throughput of the seeds' loop and of each speed switch, in one run.

Every configuration runs through the same :func:`alexnet_lib.train.train` loop for two short epochs; the second
epoch's images/s is reported (the first one pays for warm-up, cuDNN autotuning and compilation). The table gives,
per configuration, images/s, the ratio to the seeds' loop, the fraction of the bf16 limit (training FLOPs per image
from ``torch.utils.flop_counter``, peak from a measured 8192^3 bf16 matmul) and the peak GPU memory.

On a CPU it runs the few configurations that exist there, at a small size, so the tests and the quick profile can
run it.
"""
from __future__ import annotations

import datetime
import platform
import time

import torch
import torch.nn.functional as F

from .data import load_data_fashion_mnist
from .gpu_data import gpu_loaders
from .models import build_model
from .runs import save_json
from .trace import human, valid_sizes
from .train import train

__all__ = ["CONFIGS", "measure_peak_tflops", "train_flops_per_image", "run_bench", "main"]

# Each configuration adds one switch to the one before it (the first is the seeds' loop).
CONFIGS: list[tuple[str, dict]] = [
    ("seeds' loop", dict(data="loader", item=True, amp=False, channels_last=False, fused=False, batch=128)),
    ("+ GPU-resident data", dict(data="gpu", item=True, amp=False, channels_last=False, fused=False, batch=128)),
    ("+ no .item() per step", dict(data="gpu", item=False, amp=False, channels_last=False, fused=False, batch=128)),
    ("+ bf16 autocast", dict(data="gpu", item=False, amp=True, channels_last=False, fused=False, batch=128)),
    ("+ channels_last", dict(data="gpu", item=False, amp=True, channels_last=True, fused=False, batch=128)),
    ("+ fused SGD", dict(data="gpu", item=False, amp=True, channels_last=True, fused=True, batch=128)),
    ("+ batch 512", dict(data="gpu", item=False, amp=True, channels_last=True, fused=True, batch=512)),
    ("+ torch.compile", dict(data="gpu", item=False, amp=True, channels_last=True, fused=True, batch=512,
                             compile=True)),
    ("+ CUDA graphs", dict(data="gpu", item=False, amp=True, channels_last=True, fused=True, batch=512,
                           compile="reduce-overhead")),
]
CPU_CONFIGS = ["seeds' loop", "+ GPU-resident data", "+ no .item() per step", "+ channels_last"]


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

    net = build_model(model_name, image_size=size) if model_name in ("d2l_alexnet", "half_alexnet") \
        else build_model(model_name)
    net.to(device)
    c = getattr(net, "in_channels", 1)
    x = torch.randn(2, c, size, size, device=device)
    y = torch.randint(0, 10, (2,), device=device)
    valid_sizes(net)  # the input check's one-off shape search must not be counted
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(net(x), y).backward()
    return counter.get_total_flops() / 2


def _one(name: str, cfg: dict, model_name: str, size: int, steps: int, device: torch.device) -> dict:
    batch = cfg["batch"]
    limit = batch * steps
    kwargs = {"image_size": size} if model_name in ("d2l_alexnet", "half_alexnet") else {}
    net = build_model(model_name, **kwargs)
    if cfg["data"] == "loader":
        train_iter, test_iter = load_data_fashion_mnist(batch, resize=size, source="full", train_limit=limit,
                                                        test_limit=batch, num_workers=4 if device.type == "cuda" else 0)
    else:
        from .dist import rank, world_size
        train_iter, test_iter = gpu_loaders(batch, size, source="full", device=device, train_limit=limit * world_size(),
                                            test_limit=batch * world_size(), rank=rank(), world_size=world_size())
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    h = train(net, train_iter, test_iter, 2, 0.01 * batch / 128, momentum=0.9, device=device, amp=cfg["amp"],
              channels_last=cfg["channels_last"], fused=cfg["fused"], compile=cfg.get("compile", False),
              item_every_step=cfg["item"], verbose=False, progress=False, seed=0)
    return {"name": name, **{k: v for k, v in cfg.items()}, "img_per_s": h["epochs"][-1]["img_per_s"],
            "steps": len(train_iter), "wall_s": time.perf_counter() - t0,
            "peak_mem_GB": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None}


def run_bench(model: str = "d2l_alexnet", size: int | None = None, steps: int | None = None,
              only: list[str] | None = None, device: torch.device | str | None = None, out=None,
              verbose: bool = True, batch: int | None = None) -> dict:
    """Measure every configuration in :data:`CONFIGS` (those that exist on this device) and return the table.

    ``batch`` replaces every configuration's batch size (default: each its own on a GPU, 16 on a CPU).
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_gpu = device.type == "cuda"
    size = size or (224 if on_gpu else 96)
    steps = steps or (40 if on_gpu else 3)
    unknown = [n for n in only or [] if n not in dict(CONFIGS)]
    if unknown:
        raise ValueError(f"unknown configuration(s) {unknown}; choose from {[n for n, _ in CONFIGS]}")
    configs = [(n, c) for n, c in CONFIGS if (on_gpu or n in CPU_CONFIGS) and (not only or n in only)]
    if batch or not on_gpu:
        configs = [(n, dict(c, batch=batch or 16)) for n, c in configs]
    flops = train_flops_per_image(model, size, device)
    peak = measure_peak_tflops(device) if on_gpu else None
    result = {"model": model, "image_size": size, "device": device.type,
              "device_name": torch.cuda.get_device_name(device) if on_gpu else platform.processor() or "cpu",
              "torch": str(torch.__version__), "date": datetime.date.today().isoformat(),
              "train_flops_per_image": flops, "peak_bf16_tflops": peak, "rows": []}
    for name, cfg in configs:
        row = _one(name, cfg, model, size, steps, device)
        seeds = result["rows"][0]["img_per_s"] if result["rows"] else row["img_per_s"]
        row["x_seeds"] = row["img_per_s"] / seeds
        row["pct_of_peak"] = 100 * row["img_per_s"] * flops / (peak * 1e12) if peak else None
        result["rows"].append(row)
        if verbose:
            print(_row_text(row), flush=True)
        if out is not None:
            save_json(result, out)
    return result


def _row_text(r: dict) -> str:
    pct = f"{r['pct_of_peak']:5.1f}%" if r["pct_of_peak"] is not None else "     -"
    mem = f"{r['peak_mem_GB']:6.1f} GB" if r["peak_mem_GB"] is not None else "       -"
    return f"{r['name']:<24} batch {r['batch']:>4}  {r['img_per_s']:>9,.0f} img/s  {r['x_seeds']:6.1f}x  {pct}  {mem}"


def format_table(result: dict) -> str:
    head = (f"{result['model']} at {result['image_size']}x{result['image_size']} on {result['device_name']}, "
            f"torch {result['torch']}, {result['date']}; training FLOPs/image {human(result['train_flops_per_image'])}"
            + (f", bf16 peak {result['peak_bf16_tflops']:.0f} TFLOP/s" if result["peak_bf16_tflops"] else ""))
    cols = f"{'configuration':<24} {'':>10}  {'images/s':>15}  {'vs seeds':>7}  {'% peak':>6}  {'memory':>9}"
    return "\n".join([head, cols] + [_row_text(r) for r in result["rows"]])


def main(args) -> int:
    if args.ddp:
        from .dist import ddp_bench
        return ddp_bench(args)
    only = args.only.split(",") if args.only else None
    result = run_bench(args.model, args.size, args.steps, only, out=args.out, verbose=False,
                       batch=args.batch_size)
    print(format_table(result))
    return 0
