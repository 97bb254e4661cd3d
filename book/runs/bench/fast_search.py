"""Which short schedule reaches 93% soonest? Candidates trained side by side on one GPU, judged on held-out images.

    python book/runs/bench/fast_search.py OUT [--time N] [--smoke]

Every candidate is ``train --preset fast_h200_b512`` with a few options changed (fewer epochs, less regularisation,
another batch or learning rate) and ``--val 5000``: it trains on 55,000 images and is judged on the 5,000 held out,
so the choice never looks at the test set (each run evaluates the test set once, at its end, as ``train`` always
does with ``--val``). All candidates run at the same time, so their seconds are not speeds: this picks a schedule;
its time is measured afterwards by a run of its own: ``--time N`` then trains the chosen schedule N times, one run
at a time (seeds 0 to N-1), on all 60,000 training images against the test set, each with empty compiler caches.
Writes OUT/search/NAME.json per candidate, OUT/search.json (the table, the commands, the rule and the choice),
OUT/timed_SEED.json, and prints the tables.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from alexnet_lib.runs import time_to  # noqa: E402

BASE = ["--preset", "fast_h200_b512", "--profile", "full", "--no-cudnn-benchmark"]
HELD_OUT = ["--val", "5000"]
LESS_REG = ["--augment", "none", "--label-smoothing", "0", "--dropout", "0.2"]
CANDIDATES: dict[str, list[str]] = {
    "e10": ["--epochs", "10"],
    "e10_noaug": ["--epochs", "10", "--augment", "none"],
    "e10_ls0": ["--epochs", "10", "--label-smoothing", "0"],
    "e10_drop02": ["--epochs", "10", "--dropout", "0.2"],
    "e10_ls0_drop02": ["--epochs", "10", "--label-smoothing", "0", "--dropout", "0.2"],
    "e10_lessreg": ["--epochs", "10", *LESS_REG],
    "e8_lessreg": ["--epochs", "8", *LESS_REG],
    "e12_lessreg": ["--epochs", "12", *LESS_REG],
    "e10_lessreg_lr05": ["--epochs", "10", *LESS_REG, "--lr", "0.05"],
    "e10_lessreg_b1024": ["--epochs", "10", *LESS_REG, "--batch-size", "1024"],
}
TARGET = 0.93
SMOKE = ["--source", "sample", "--image-size", "96", "--epochs", "2", "--batch-size", "8", "--train-limit", "64",
         "--test-limit", "16", "--num-workers", "0", "--no-fused-pool"]


def _history(path: Path) -> dict:
    """The run's history, or an empty one where the run left none (it could not start, or was killed)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"epochs": []}


def choose(rows: list[dict]) -> dict | None:
    """The rule: the fewest epochs to the target on the held-out images; ties (or no candidate there) go to the
    larger batch (its epochs take less time), then to the higher final held-out accuracy."""
    done = [r for r in rows if r["status"] == "finished" and r["val_acc"] is not None]
    def batch(r):
        return int(r["cmd"][r["cmd"].index("--batch-size") + 1]) if "--batch-size" in r["cmd"] else 512
    return min(done, key=lambda r: (r["val_93_at"] or 10 ** 6, -batch(r), -r["val_acc"]), default=None)


def timed_runs(chosen: dict, n: int, out: Path, env: dict, smoke: bool) -> list[dict]:
    """Train the chosen schedule ``n`` times alone, on the whole training set, each with cold compiler caches."""
    extra = CANDIDATES[chosen["name"]]
    runs = []
    for seed in range(n):
        path = out / f"timed_{seed}.json"
        cmd = [sys.executable, "-m", "alexnet_lib", "train", *BASE, *extra, "--seed", str(seed),
               *(SMOKE if smoke else []), "--out", str(path)]
        cold = dict(env, TORCHINDUCTOR_CACHE_DIR=tempfile.mkdtemp(prefix="inductor_"),
                    TRITON_CACHE_DIR=tempfile.mkdtemp(prefix="triton_"))
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT, env=cold).returncode
        wall = time.perf_counter() - t0
        h = _history(path)
        at, seconds = time_to(h, TARGET)
        runs.append({"seed": seed, "rc": rc, "process_seconds": wall, "status": h.get("status"),
                     "final_test_acc": (h["epochs"] or [{}])[-1].get("test_acc"), "test_93_at": at,
                     "seconds_to_93": seconds})
        print(f"timed seed {seed}: rc {rc}, {runs[-1]}", flush=True)
    return runs


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out, smoke = Path(argv[0]), "--smoke" in argv
    n_timed = int(argv[argv.index("--time") + 1]) if "--time" in argv else 0
    found = out / "search"
    found.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    procs, t0 = {}, time.perf_counter()
    for name, extra in CANDIDATES.items():
        cmd = [sys.executable, "-m", "alexnet_lib", "train", *BASE, *HELD_OUT, *extra,
               *(SMOKE + ["--val", "16"] if smoke else []),
               "--out", str(found / f"{name}.json")]
        log = open(found / f"{name}.log", "w")
        procs[name] = (cmd, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    rows = []
    for name, (cmd, proc, log) in procs.items():
        rc = proc.wait()
        log.close()
        h = _history(found / f"{name}.json")
        epochs = h["epochs"]
        rows.append({"name": name, "cmd": cmd[2:], "rc": rc, "status": h.get("status"), "epochs": len(epochs),
                     "val_acc": epochs[-1].get("val_acc") if epochs else None,
                     "val_93_at": time_to(h, TARGET, key="val_acc")[0], "test_acc_at_end": h.get("test_acc")})
        if rc == 0:
            (found / f"{name}.log").unlink(missing_ok=True)
    chosen = choose(rows)
    result = {"chosen": chosen and chosen["name"], "rule": " ".join(choose.__doc__.split()),
              "concurrent": len(CANDIDATES), "seconds_all": time.perf_counter() - t0, "rows": rows}
    (out / "search.json").write_text(json.dumps(result, indent=1))
    print(f"{'candidate':<20} {'rc':>3} {'epochs':>6} {'val acc':>8} {'93% at':>7} {'test at end':>11}")
    for r in rows:
        val = f"{r['val_acc']:.2%}" if r["val_acc"] is not None else "-"
        test = f"{r['test_acc_at_end']:.2%}" if r["test_acc_at_end"] is not None else "-"
        print(f"{r['name']:<20} {r['rc']:>3} {r['epochs']:>6} {val:>8} {r['val_93_at'] or '-':>7} {test:>11}")
    print(f"chosen: {result['chosen']}", flush=True)
    if chosen and n_timed:
        result["timed"] = timed_runs(chosen, n_timed, out, env, smoke)
        (out / "search.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
