"""``python -m alexnet_lib``: train and record a run, benchmark, trace a model, check the bundled sample.

    python -m alexnet_lib train --model d2l_alexnet --epochs 10 --out runs/d2l.json
    python -m alexnet_lib train --preset ch04/sigmoid --out book/runs/ch04/sigmoid.json
    python -m alexnet_lib train --preset fast --out runs/fast.json        # the time-to-93% schedule
    python -m alexnet_lib bench --profile --out bench.json     # + where a step's GPU time goes
    python -m alexnet_lib trace --model paper_alexnet
    python -m alexnet_lib sample --check

Errors a learner can fix (bad data, a wrong input size, a diverged run, out of memory) are printed as one message
without a traceback (exit code 1); bad arguments exit with code 2 before anything starts; Ctrl-C or SIGTERM
exits with 130 after saving what was finished (continue with ``--resume``).
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _checked(cast, ok, need: str):
    """An argparse type: ``cast`` the text, then require ``ok(value)`` (the message says what is ``need``ed)."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole number' if cast is int else 'number'}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {need}, got {value}")
        return value
    return parse


_positive_int = _checked(int, lambda v: v >= 1, "at least 1")
_nonnegative_int = _checked(int, lambda v: v >= 0, "0 or more")
_positive_float = _checked(float, lambda v: v > 0, "greater than 0")
_nonnegative_float = _checked(float, lambda v: v >= 0, "0 or more")


def _limit(text: str) -> int | None:
    return None if text == "all" else _positive_int(text)


def _field_options() -> dict[str, dict]:
    """argparse options for each TrainConfig field that is a flag: its type check and its choices."""
    from .augment import PRESETS
    from .config import PROFILES
    from .models import MODELS
    from .train import OPTIMIZERS, SCHEDULERS

    return {
        "model": dict(choices=sorted(MODELS)), "init": dict(choices=["xavier", "paper"]),
        "optimizer": dict(choices=list(OPTIMIZERS)), "lr": dict(type=_positive_float),
        "momentum": dict(type=_nonnegative_float), "weight_decay": dict(type=_nonnegative_float),
        "label_smoothing": dict(type=_nonnegative_float), "epochs": dict(type=_positive_int),
        "scheduler": dict(choices=list(SCHEDULERS)), "warmup": dict(type=_nonnegative_int),
        "batch_size": dict(type=_positive_int), "source": dict(choices=["full", "sample"]),
        "image_size": dict(type=_positive_int), "augment": dict(choices=list(PRESETS)),
        "channels": dict(type=int, choices=[1, 3]), "train_limit": dict(type=_limit, metavar="N|all"),
        "test_limit": dict(type=_limit, metavar="N|all"), "num_workers": dict(type=_nonnegative_int),
        "data_path": dict(choices=["gpu", "loader"], help="default: gpu with CUDA, else loader"),
        "compile": dict(nargs="?", const=True, metavar="MODE",
                        help="torch.compile the model (optionally with a mode, e.g. reduce-overhead)"),
        "bucket_cap_mb": dict(type=_positive_float, metavar="MiB"), "comm_hook": dict(choices=["bf16"]),
        "check_every": dict(type=_positive_int), "seed": dict(type=int),
        "profile": dict(choices=list(PROFILES), help="default: $ALEXNET_PROFILE, else full with CUDA"),
    }


# TrainConfig fields without a flag: dicts (--activation and --dropout fill model_kwargs) and the description
NOT_FLAGS = ("model_kwargs", "quick", "description")


def _add_config_flags(t: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (``batch_size`` -> ``--batch-size``; a bool as ``--x``/``--no-x``); a flag
    not given leaves the preset's value."""
    import typing

    from .config import TrainConfig, fields

    hints, options = typing.get_type_hints(TrainConfig), _field_options()
    for f in fields():
        if f.name in NOT_FLAGS:
            continue
        kw = dict(options.get(f.name, {}), dest=f.name, default=argparse.SUPPRESS)
        if bool in typing.get_args(hints[f.name]) or hints[f.name] is bool:
            if f.name != "compile":
                kw["action"] = argparse.BooleanOptionalAction
        t.add_argument("--" + f.name.replace("_", "-"), **kw)


def _parser() -> argparse.ArgumentParser:
    from .experiments import EXPERIMENTS
    from .models import ACTIVATIONS, MODELS

    ap = argparse.ArgumentParser(prog="python -m alexnet_lib", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and record its history as JSON")
    t.add_argument("--preset", choices=sorted(EXPERIMENTS), metavar="NAME",
                   help="a named experiment of the course (e.g. ch04/sigmoid, fast); options below override it")
    _add_config_flags(t)
    t.add_argument("--activation", choices=sorted(ACTIVATIONS), help="the model's activation (model_kwargs)")
    t.add_argument("--dropout", type=_nonnegative_float, help="the model's dropout probability (model_kwargs)")
    t.add_argument("--device")
    t.add_argument("--out", help="write the history JSON here (after every epoch)")
    t.add_argument("--checkpoint", help="save model/optimizer/history here after every epoch")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint")

    b = sub.add_parser("bench", help="images/s of the seeds' loop and each speed switch, in one run")
    b.add_argument("--model", choices=sorted(MODELS), default="d2l_alexnet")
    b.add_argument("--size", type=_positive_int, help="image side (default 224 on CUDA, 96 on CPU)")
    b.add_argument("--batch-size", type=_positive_int,
                   help="every configuration's batch size (default: 128, then 512 from '+ batch 512' on; 16 on CPU)")
    b.add_argument("--steps", type=_positive_int, help="timed steps per configuration")
    b.add_argument("--only", help="comma-separated configuration names to run")
    b.add_argument("--ddp", action="store_true", help="under torchrun: measure 1 GPU and all GPUs")
    b.add_argument("--profile", action="store_true",
                   help="also profile the step (kernels by kind, time per layer) before and after space-to-depth")
    b.add_argument("--out", help="write the table as JSON here")

    r = sub.add_parser("trace", help="per-layer shapes, parameters and FLOPs of a model")
    r.add_argument("--model", choices=sorted(MODELS), default="d2l_alexnet")
    r.add_argument("--size", type=_positive_int, help="image side (default: the model's own)")
    r.add_argument("--channels", type=_positive_int)

    s = sub.add_parser("sample", help="check (or re-draw) the bundled Fashion-MNIST sample")
    s.add_argument("--check", action="store_true", help="re-draw into a temporary folder and compare")
    return ap


def _train(args) -> int:
    from .config import fields
    from .dist import distributed
    from .experiments import _BASE, get, run
    from .profiles import get_profile

    cfg = get(args.preset) if args.preset else _BASE
    overrides = {f.name: getattr(args, f.name) for f in fields() if hasattr(args, f.name)}
    profile = overrides.pop("profile", None) or get_profile().name  # decided here, once, and passed down
    kw = {k: v for k, v in (("activation", args.activation), ("dropout", args.dropout)) if v is not None}
    if kw:
        overrides["model_kwargs"] = dict(cfg.model_kwargs, **kw)
    with distributed() as (rank, _):  # under torchrun: one process per GPU (or gloo on CPUs)
        # a preset is passed by name, so the history records which experiment it was
        h = run(args.preset or cfg, profile=profile, out=args.out, device=args.device, checkpoint=args.checkpoint,
                resume=args.resume, **overrides)
    if rank != 0:
        return 0
    last = h["epochs"][-1]
    seconds = sum(e["seconds"] + e["eval_seconds"] for e in h["epochs"])
    print(f"done: {len(h['epochs'])} epochs, test acc {last['test_acc']:.4f}, {seconds:.1f} s"
          + (f", history in {args.out}" if args.out else ""))
    return 0


def _trace(args) -> int:
    from .models import build_model
    from .trace import trace

    net = build_model(args.model, **({"in_channels": args.channels} if args.channels else {}))
    c = args.channels or getattr(net, "in_channels", 3)
    print(trace(net, (c, args.size, args.size) if args.size else None))
    return 0


def _sample(args) -> int:
    import tempfile

    from .data import SAMPLE_DIR, _sample_sums, make_sample

    if not args.check:
        print(make_sample())
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = make_sample(tmp)
    same = fresh == _sample_sums()
    print("the bundled sample is reproduced exactly" if same else f"MISMATCH: {fresh} vs {SAMPLE_DIR}")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "train" and args.resume and not args.checkpoint:
        parser.error("train: --resume needs --checkpoint PATH")  # exit code 2, like every bad argument
    from .data import DataError
    from .trace import ShapeError
    from .train import CheckpointMismatch, DivergedError, OutOfMemory

    handlers = {"train": _train, "trace": _trace, "sample": _sample}
    try:
        if args.command == "bench":
            from .bench import main as bench_main
            return bench_main(args)
        return handlers[args.command](args)
    except (DataError, ShapeError, DivergedError, OutOfMemory, CheckpointMismatch, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; what was finished is saved (continue with --resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
