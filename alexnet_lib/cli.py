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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from .augment import PRESETS
    from .experiments import EXPERIMENTS
    from .models import ACTIVATIONS, MODELS

    ap = argparse.ArgumentParser(prog="python -m alexnet_lib", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and record its history as JSON")
    t.add_argument("--preset", choices=sorted(EXPERIMENTS), metavar="NAME",
                   help="a named experiment of the course (e.g. ch04/sigmoid, fast); options below override it")
    t.add_argument("--model", choices=sorted(MODELS))
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=_positive_float)
    t.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    t.add_argument("--momentum", type=float)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--init", choices=["xavier"])
    t.add_argument("--scheduler", choices=["onecycle", "cosine"])
    t.add_argument("--augment", choices=list(PRESETS))
    t.add_argument("--activation", choices=sorted(ACTIVATIONS))
    t.add_argument("--dropout", type=float)
    t.add_argument("--profile", choices=["quick", "full"], help="default: $ALEXNET_PROFILE, else full with CUDA")
    t.add_argument("--data-path", choices=["gpu", "loader"], help="default: gpu with CUDA, else loader")
    t.add_argument("--device")
    t.add_argument("--no-amp", action="store_true", help="fp32 even on CUDA")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--s2d-stem", action="store_true", default=None,
                   help="first convolution as pixel_unshuffle + 3x3 conv (same maths, faster on GPUs)")
    t.add_argument("--tta", action="store_true", default=None, help="evaluate on each test image and its mirror")
    t.add_argument("--seed", type=int, default=0)
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
    from .experiments import Experiment, get, run

    exp = get(args.preset) if args.preset else Experiment()
    overrides = {k: v for k, v in dict(
        model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        momentum=args.momentum, weight_decay=args.weight_decay, init=args.init, scheduler=args.scheduler,
        augment=args.augment, s2d_stem=args.s2d_stem, tta=args.tta).items() if v is not None}
    kw = dict(exp.model_kwargs)
    if args.activation is not None:
        kw["activation"] = args.activation
    if args.dropout is not None:
        kw["dropout"] = args.dropout
    overrides["model_kwargs"] = kw
    from .dist import distributed
    with distributed() as (rank, _):  # under torchrun: one process per GPU (or gloo on CPUs)
        # a preset is passed by name, so the history records which experiment it was
        h = run(args.preset or exp, profile=args.profile, out=args.out, data_path=args.data_path,
                device=args.device, amp=False if args.no_amp else None, compile=args.compile,
                checkpoint=args.checkpoint, resume=args.resume, seed=args.seed, **overrides)
    if rank != 0:
        return 0
    last = h["epochs"][-1]
    print(f"done: {len(h['epochs'])} epochs, test acc {last['test_acc']:.4f}, "
          f"{sum(e['seconds'] + e['eval_seconds'] for e in h['epochs']):.1f} s" + (f", history in {args.out}" if args.out else ""))
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
