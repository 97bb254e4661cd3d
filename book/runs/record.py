"""Record several of the course's full runs at once on one GPU, for the seed replicates the chapters compare.

Each item is ``NAME`` or ``NAME@SEED`` (an experiment of ``alexnet_lib.experiments``); each becomes one process::

    python -m alexnet_lib train --preset NAME --seed SEED --profile full --out OUT/NAME/seedSEED.json

``--workers`` processes share the GPU (small runs leave most of an H200 idle, so several together finish sooner
than one after another). No new run starts once ``--budget`` seconds have passed, and runs still going at
``--deadline`` are stopped with SIGTERM (their histories then say "interrupted" and the chapters leave them out).

    python book/runs/record.py --out /tmp/runs --workers 6 --budget 400 ch04/relu@0 ch04/relu@1 ch04/sigmoid@0
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def parse_item(item: str) -> tuple[str, int]:
    name, _, seed = item.partition("@")
    return name, int(seed or 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("items", nargs="+", help="NAME or NAME@SEED, in the order they should start")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--budget", type=float, default=400, help="start no run after this many seconds")
    ap.add_argument("--deadline", type=float, default=560, help="stop runs still going after this many seconds")
    ap.add_argument("--extra", default="", help="extra arguments for every train command")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    queue = [parse_item(i) for i in args.items]
    running: list[tuple[subprocess.Popen, str, float]] = []
    done: list[str] = []
    while queue or running:
        for p, label, started in list(running):
            if p.poll() is not None:
                running.remove((p, label, started))
                done.append(f"{label}: exit {p.returncode} after {time.monotonic() - started:.0f} s")
                print(done[-1], flush=True)
        elapsed = time.monotonic() - t0
        if elapsed > args.deadline:
            for p, label, _ in running:
                p.send_signal(signal.SIGTERM)
                print(f"{label}: stopped at the deadline", flush=True)
            for p, _, _ in running:
                p.wait(timeout=60)
            break
        while queue and len(running) < args.workers and elapsed < args.budget:
            name, seed = queue.pop(0)
            out = args.out / name / f"seed{seed}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "alexnet_lib", "train", "--preset", name, "--seed", str(seed),
                   "--profile", "full", "--out", str(out), *args.extra.split()]
            log = open(out.with_suffix(".log"), "w")
            running.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy()),
                            f"{name}@{seed}", time.monotonic()))
            print(f"start {name}@{seed} at {elapsed:.0f} s", flush=True)
        time.sleep(2)
    for name, seed in queue:
        print(f"not started (budget spent): {name}@{seed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
