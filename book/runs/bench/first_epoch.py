"""Where do the first epoch's extra seconds go? The fast schedule's first epoch took about 10 s on an H200 where the
others take 1.4 s, with cuDNN's algorithm trials on or off alike (2026-12-02). This trains one epoch of it a few
ways, one process at a time, and prints each run's epoch seconds. Each run is the fast schedule on 10,240 images
(20 steps an epoch) at lr 0.01 (a speed probe: a short OneCycle to 0.08 diverges): what the first epoch takes
beyond the second is the one-off cost.

    python book/runs/bench/first_epoch.py OUT [--smoke]

cold        empty Inductor/Triton caches (as in the timed runs)
warm        again, with the caches the cold run left (the fused operator's Triton kernels already built)
no_fused    cold, without the fused ReLU + max-pool operator (no Triton kernel to build)
no_fused2   no_fused again in a fresh process: what is left is the process's own first use of the GPU's libraries
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RUNS = {"cold": ([], "new"), "warm": ([], "cold"), "no_fused": (["--no-fused-pool"], "new"),
        "no_fused2": (["--no-fused-pool"], "no_fused")}
SMOKE = ["--source", "sample", "--image-size", "96", "--batch-size", "8", "--train-limit", "64", "--test-limit", "16",
         "--num-workers", "0", "--no-fused-pool"]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    out, smoke = Path(argv[0]), "--smoke" in argv
    out.mkdir(parents=True, exist_ok=True)
    caches, rows = {}, {}
    for name, (extra, cache_from) in RUNS.items():
        caches[name] = caches[cache_from] if cache_from != "new" else (tempfile.mkdtemp(), tempfile.mkdtemp())
        env = dict(os.environ, PYTHONPATH=str(ROOT), TORCHINDUCTOR_CACHE_DIR=caches[name][0],
                   TRITON_CACHE_DIR=caches[name][1])
        path = out / f"first_{name}.json"
        cmd = [sys.executable, "-m", "alexnet_lib", "train", "--preset", "fast_h200_b512", "--profile", "full",
               "--no-cudnn-benchmark", "--train-limit", "10240", "--epochs", "3", "--lr", "0.01", *extra,
               *(SMOKE if smoke else []), "--out", str(path)]
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL).returncode
        h = json.loads(path.read_text()) if path.exists() else {"epochs": []}
        rows[name] = {"rc": rc, "setup_seconds": h.get("setup_seconds"),
                      "epoch_seconds": [e["seconds"] for e in h["epochs"]],
                      "eval_seconds": [e["eval_seconds"] for e in h["epochs"]]}
        path.unlink(missing_ok=True)
        print(name, rows[name], flush=True)
    (out / "first_epoch.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
