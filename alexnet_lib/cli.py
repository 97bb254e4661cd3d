"""``python -m alexnet_lib``: train and record a run, benchmark, trace a model, check the bundled sample.

    python -m alexnet_lib train --model d2l_alexnet --epochs 10 --out runs/d2l.json
    python -m alexnet_lib train --preset ch04/sigmoid --out book/runs/ch04/sigmoid.json
    python -m alexnet_lib train --preset fast --out runs/fast.json        # the time-to-93% schedule
    python -m alexnet_lib bench --profile --out bench.json     # + where a step's GPU time goes
    python -m alexnet_lib trace --model paper_alexnet
    python -m alexnet_lib sample --check

Every value, the device and the output paths are checked before the data is loaded. A bad argument (a value that
cannot work, an output that is a folder or the other output's file, a checkpoint of another run for ``--resume``)
is one line and exit code 2; a problem of the machine or the data a learner can fix (no GPU for ``--device cuda``,
a read-only or full disk, outputs another run is writing, a damaged checkpoint or data file, a diverged run, out of
memory) is one line and exit code 1. Ctrl-C or SIGTERM exits with 130 and says which epochs are saved (continue
with ``--resume``), or that nothing was.
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


def _augment(text: str) -> str | None:
    from .augment import PRESETS

    if text == "none":
        return None
    if text not in PRESETS:
        raise argparse.ArgumentTypeError(f"choose none or one of {', '.join(PRESETS)}, not {text!r}")
    return text


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
        "image_size": dict(type=_positive_int),
        "augment": dict(type=_augment, metavar="{none," + ",".join(PRESETS) + "}"),
        "channels": dict(type=int, choices=[1, 3]), "train_limit": dict(type=_limit, metavar="N|all"),
        "test_limit": dict(type=_limit, metavar="N|all"), "num_workers": dict(type=_nonnegative_int),
        "data_path": dict(choices=["gpu", "loader"], help="default: gpu with CUDA, else loader"),
        "compile": dict(nargs="?", const=True, metavar="MODE",
                        help="torch.compile the model (optionally with a mode, e.g. reduce-overhead)"),
        "bucket_cap_mb": dict(type=_positive_float, metavar="MiB"), "comm_hook": dict(choices=["bf16"]),
        "check_every": dict(type=_positive_int), "seed": dict(type=int), "val": dict(type=_nonnegative_int),
        "erase": dict(type=_nonnegative_int, metavar="PIXELS"),
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
    t.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint (it must exist and hold a run with the same settings)")
    t.add_argument("--resume-or-start", action="store_true",
                   help="continue from --checkpoint if it exists, else start a new run that saves there")
    t.add_argument("--overwrite", action="store_true",
                   help="replace an existing --checkpoint (or a file at --out that is not a history)")

    b = sub.add_parser("bench", help="images/s of the seeds' loop and each speed switch, in one run")
    b.add_argument("--model", choices=sorted(MODELS), default="d2l_alexnet")
    b.add_argument("--size", type=_positive_int, help="image side (default 224 on CUDA, 96 on CPU)")
    b.add_argument("--batch-size", type=_positive_int,
                   help="every configuration's batch size (default: 128, then 512 from '+ batch 512' on; 16 on CPU)")
    b.add_argument("--steps", type=_positive_int, help="steps per timed window")
    b.add_argument("--windows", type=_positive_int, default=5,
                   help="timed windows (epochs of --steps steps) per configuration, after one warm-up epoch")
    b.add_argument("--only", help="comma-separated configuration names to run")
    b.add_argument("--fused-pool", action=argparse.BooleanOptionalAction, default=True,
                   help="include the rows with the fused ReLU + max-pool operator (default: yes)")
    b.add_argument("--ddp", action="store_true", help="under torchrun: measure 1 GPU and all GPUs")
    b.add_argument("--profile", action="store_true",
                   help="also profile the step (kernels by kind, time per layer) before and after space-to-depth")
    b.add_argument("--out", help="write the table as JSON here")

    r = sub.add_parser("trace", help="per-layer shapes, parameters and FLOPs of a model")
    r.add_argument("--model", choices=sorted(MODELS), default="d2l_alexnet")
    r.add_argument("--size", type=_positive_int, help="image side (default: the model's own)")
    r.add_argument("--channels", type=_positive_int)

    from .notebooks import add_arguments as notebook_arguments
    notebook_arguments(sub.add_parser("notebooks", help="run every chapter in a fresh kernel and write a report"))

    s = sub.add_parser("sample", help="check (or re-draw) the bundled Fashion-MNIST sample")
    s.add_argument("--check", action="store_true", help="re-draw into a temporary folder and compare")
    return ap


def _train(args) -> int:
    from .config import fields
    from .dist import distributed
    from .experiments import _BASE, get, run
    from .profiles import get_profile
    from .train import sigterm_as_interrupt

    cfg = get(args.preset) if args.preset else _BASE
    overrides = {f.name: getattr(args, f.name) for f in fields() if hasattr(args, f.name)}
    profile = overrides.pop("profile", None) or get_profile().name  # decided here, once, and passed down
    kw = {k: v for k, v in (("activation", args.activation), ("dropout", args.dropout)) if v is not None}
    if kw:
        overrides["model_kwargs"] = dict(cfg.model_kwargs, **kw)
    resume = "or-start" if args.resume_or_start else args.resume
    _check(args, overrides, resume)
    with sigterm_as_interrupt(), distributed() as (rank, _):  # under torchrun: one process per GPU (gloo on CPUs)
        # a preset is passed by name, so the history records which experiment it was
        h = run(args.preset or cfg, profile=profile, out=args.out, device=args.device, checkpoint=args.checkpoint,
                resume=resume, overwrite=args.overwrite, **overrides)
    if rank != 0:
        return 0
    last = h["epochs"][-1]
    seconds = sum(e["seconds"] + e["eval_seconds"] for e in h["epochs"])
    acc = f"test acc {last['test_acc']:.4f}" if "test_acc" in last else \
        f"val acc {last['val_acc']:.4f}, test acc (once, at the end) {h['test_acc']:.4f}"
    print(f"done: {len(h['epochs'])} epochs, {acc}, {seconds:.1f} s" + (f", history in {args.out}" if args.out else ""))
    return 0


def _check(args, overrides: dict, resume) -> None:
    """The values given, the device and the output paths, in the words of the command line (``--lr``), before the
    data is loaded: :class:`~.validate.BadArgument` (exit 2) or :class:`~.validate.BadEnvironment` (exit 1)."""
    from . import validate

    validate.check_values(overrides, cli=True)
    validate.check_device(args.device, cli=True)
    validate.check_outputs({"out": args.out, "checkpoint": args.checkpoint}, checkpoint="checkpoint",
                           resume=resume, overwrite=args.overwrite, cli=True)


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
    if args.command == "train" and (args.resume or args.resume_or_start):
        flag = "--resume" if args.resume else "--resume-or-start"
        if args.resume and args.resume_or_start:
            parser.error("train: --resume and --resume-or-start: give one of them")
        if not args.checkpoint:
            parser.error(f"train: {flag} needs --checkpoint PATH")  # exit code 2, like every bad argument
    from .checkpoint import CheckpointDamaged, CheckpointError
    from .data import DataError
    from .outputs import OutputBusy
    from .trace import ShapeError
    from .train import DivergedError, Interrupted, OutOfMemory
    from .validate import BadArgument, BadEnvironment

    from .notebooks import main as _notebooks

    handlers = {"train": _train, "trace": _trace, "sample": _sample, "notebooks": _notebooks}
    try:
        if args.command == "bench":
            from .bench import main as bench_main
            return bench_main(args)
        return handlers[args.command](args)
    except CheckpointDamaged as e:  # (a CheckpointError, but the machine's fault, not the command's)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (BadArgument, CheckpointError) as e:  # a value, a path or a checkpoint that does not fit the command
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, ShapeError, DivergedError, OutOfMemory, BadEnvironment, OutputBusy, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Interrupted:  # the training loop has said which epochs are saved
        return 130
    except KeyboardInterrupt:
        print("interrupted before training started: nothing was saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
