"""One batched GPU session for chapter 8's measurements: each step a separate process, so one failure is logged and
the next step still runs; results are written as they come; a short table is printed last.

    python book/runs/bench/gpu_session.py OUT [STEP ...]      # steps: kernels bench fast best (default: the first 3)
    python book/runs/bench/gpu_session.py OUT --smoke [STEP ...]   # the same commands at toy sizes, on a CPU

| step    | what                                                                                | expected | writes |
|---------|-------------------------------------------------------------------------------------|----------|--------|
| kernels | check_kernels.py: the fused ReLU + pooling operator against PyTorch on the GPU       | ~30 s    | kernels.json |
| bench   | ``python -m alexnet_lib bench --windows 5 --profile`` (the fused row only if kernels ok) | ~150 s | bench_h200.json |
| fast    | ``train --preset P`` for each candidate in FAST, each with empty compiler caches       | ~25 s each | fast_*.json |
| best    | ``train --preset best`` (held-out validation; the test set once at the end)            | <= 270 s | best.json |

Also ``session.log`` (every process's output) and ``summary.json`` (each step's command, exit code, seconds, and for
the training runs the wall clock of the whole process and the GPU's other processes seen before and after).
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
FAST = ["fast_h200", "fast_h200_e10", "fast_h200_b512"]  # candidates for the time to 93%, in this order
STEP_LIMIT = {"kernels": 150, "bench": 420, "fast": 75, "best": 285}  # seconds per process


def _gpu_processes() -> list[str]:
    try:
        query = ["nvidia-smi", "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader"]
        done = subprocess.run(query, capture_output=True, text=True, timeout=20)
        return [line.strip() for line in done.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return ["nvidia-smi not available"]


class Session:
    def __init__(self, out: Path, smoke: bool = False):
        self.out, self.smoke = out, smoke
        out.mkdir(parents=True, exist_ok=True)
        self.log = open(out / "session.log", "a", buffering=1)
        self.summary = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "steps": []}
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        fmnist = ROOT / ".fmnist"
        if "ALEXNET_FASHION_MNIST" not in self.env and fmnist.is_dir():
            self.env["ALEXNET_FASHION_MNIST"] = str(fmnist)
        self.env.setdefault("ALEXNET_CACHE", tempfile.mkdtemp(prefix="alexnet_cache_"))

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log.write(text + "\n")

    def save(self) -> None:
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=1))

    def run(self, name: str, cmd: list[str], limit: int, env: dict | None = None, **info) -> dict:
        """Run ``cmd`` with its output into the log; record exit code and seconds (never raises)."""
        self.say(f"=== {name}: {' '.join(cmd)}  (limit {limit} s)")
        rec = {"step": name, "cmd": cmd, **info, "gpu_processes_before": _gpu_processes()}
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, cwd=ROOT, env=env or self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                  timeout=limit)
            rec["rc"] = done.returncode
        except subprocess.TimeoutExpired:
            rec["rc"] = "timeout"
        except OSError as e:
            rec["rc"] = f"could not start: {e}"
        rec["process_seconds"] = time.perf_counter() - t0
        rec["gpu_processes_after"] = _gpu_processes()
        self.say(f"=== {name}: rc {rec['rc']}, {rec['process_seconds']:.1f} s")
        self.summary["steps"].append(rec)
        self.save()
        return rec

    # the steps -----------------------------------------------------------------------------------------------
    def kernels(self) -> None:
        self.run("kernels", [sys.executable, "book/runs/bench/check_kernels.py", str(self.out / "kernels.json")]
                 + (["--quick"] if self.smoke else []), STEP_LIMIT["kernels"])

    def kernels_ok(self) -> bool:
        try:
            return bool(json.loads((self.out / "kernels.json").read_text()).get("ok"))
        except (OSError, ValueError):
            return False

    def bench(self) -> None:
        sys.path.insert(0, str(ROOT))
        from alexnet_lib.bench import CONFIGS
        rows = [n for n, _ in CONFIGS if n != "+ CUDA graphs"]  # twice measured as no gain; its compile costs ~30 s
        cmd = [sys.executable, "-m", "alexnet_lib", "bench", "--windows", "5", "--steps", "20", "--profile",
               "--out", str(self.out / "bench_h200.json")]
        if self.smoke:
            rows = ["seeds' loop", "+ fused ReLU + max-pool", "+ shift augmentation at 28x28",
                    "Lightning Trainer (peer)"]
            cmd += ["--size", "96", "--steps", "1", "--windows", "2", "--batch-size", "4"]
        cmd += ["--only", ",".join(rows)]
        if not self.kernels_ok():
            cmd += ["--no-fused-pool"]  # the fused rows count only when the operator checked out on this GPU
        self.run("bench", cmd, STEP_LIMIT["bench"])

    def _smoke_train(self) -> list[str]:
        return ["--source", "sample", "--image-size", "96", "--epochs", "2", "--batch-size", "8", "--train-limit",
                "64", "--test-limit", "16", "--num-workers", "0"] if self.smoke else []

    def _cold_env(self) -> dict:
        """Empty compiler caches (Inductor, Triton): a cold start, as for a reader's first run."""
        env = dict(self.env)
        env["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor_")
        env["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="triton_")
        return env

    def fast(self) -> None:
        ok = self.kernels_ok()
        for preset in FAST:
            cmd = [sys.executable, "-m", "alexnet_lib", "train", "--preset", preset, "--profile", "full",
                   "--out", str(self.out / f"{preset}.json")]
            if not ok:
                cmd += ["--no-fused-pool"]
            cmd += self._smoke_train()
            self.run(f"fast:{preset}", cmd, STEP_LIMIT["fast"], env=self._cold_env(), cold_caches=True,
                     fused_pool=ok)

    def best(self) -> None:
        cmd = [sys.executable, "-m", "alexnet_lib", "train", "--preset", "best", "--profile", "full",
               "--out", str(self.out / "best.json")]
        if not self.kernels_ok():
            cmd += ["--no-fused-pool"]
        cmd += self._smoke_train() + (["--val", "500"] if self.smoke else [])
        self.run("best", cmd, STEP_LIMIT["best"], env=self._cold_env(), cold_caches=True)

    # the table -----------------------------------------------------------------------------------------------
    def table(self) -> None:
        self.say("\n==== summary")
        for rec in self.summary["steps"]:
            self.say(f"{rec['step']:<16} rc {rec['rc']!s:<8} {rec['process_seconds']:6.1f} s")
        self.say(f"fused operator correct on this GPU: {self.kernels_ok()}")
        bench = self.out / "bench_h200.json"
        if bench.exists():
            try:
                sys.path.insert(0, str(ROOT))
                from alexnet_lib.bench import format_table
                self.say(format_table(json.loads(bench.read_text())))
            except Exception as e:  # noqa: BLE001
                self.say(f"(bench table not printable: {type(e).__name__}: {e})")
        for preset in FAST + ["best"]:
            path = self.out / f"{preset}.json"
            if not path.exists():
                continue
            try:
                h = json.loads(path.read_text())
                self.say(_run_line(preset, h))
            except Exception as e:  # noqa: BLE001
                self.say(f"{preset}: unreadable ({type(e).__name__}: {e})")
        self.save()


def _run_line(preset: str, h: dict) -> str:
    from alexnet_lib.runs import time_to
    epochs = h.get("epochs") or [{}]
    head = (f"{preset:<15} {h.get('status')}: {len(h.get('epochs', []))} epochs, "
            f"setup {h.get('setup_seconds', 0):.1f} s, run {h.get('wall_seconds', 0):.1f} s, ")
    if "val_acc" in epochs[-1]:  # held-out images each epoch, the test set once at the end
        return head + (f"val acc last {epochs[-1]['val_acc']:.2%} (best {max(e['val_acc'] for e in epochs):.2%}), "
                       f"test acc {h.get('test_acc', float('nan')):.2%}")
    epoch, wall = time_to(h, 0.93)
    hit = f"93% at epoch {epoch}, {wall:.1f} s" if epoch else "93% not reached"
    return head + f"final test acc {epochs[-1].get('test_acc', float('nan')):.2%}, {hit}"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    smoke = "--smoke" in argv
    argv = [a for a in argv if a != "--smoke"]
    steps = argv[1:] or ["kernels", "bench", "fast"]
    unknown = [s for s in steps if s not in STEP_LIMIT]
    if unknown:
        print(f"unknown step(s) {unknown}; choose from {list(STEP_LIMIT)}")
        return 2
    session = Session(Path(argv[0]), smoke)
    session.say(f"gpu_session: steps {steps}; GPU processes now: {_gpu_processes()}")
    for s in steps:
        try:
            getattr(session, s)()
        except Exception as e:  # noqa: BLE001 -- the next step still runs
            session.say(f"step {s} failed in the session script itself: {type(e).__name__}: {e}")
    session.table()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
