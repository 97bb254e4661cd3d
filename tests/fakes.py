"""What the fault, reliability and distributed tests share: random 'images' that run the training loop fast on any
CPU, LeNet with a fault injected into chosen training steps, waiting for a file a running subprocess writes, a signal
to a subprocess that must still be running, and the command line run in the test's own process."""
import contextlib
import io
import os
import signal
import subprocess
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from alexnet_lib import models


def tiny_loaders(n: int = 192, batch_size: int = 32, seed: int = 0, test_n: int = 64):
    """Random 28x28 'images' with random labels: ``n`` shuffled for training, the first ``test_n`` for testing."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)
    train_iter = DataLoader(TensorDataset(x, y), batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    return train_iter, DataLoader(TensorDataset(x[:test_n], y[:test_n]), batch_size)


class LeNetWithFault(nn.Module):
    """LeNet whose training forward passes go through ``fault(logits, step)`` (``step`` 1-based, counted in
    ``calls``): the hook returns the logits to use, or raises."""

    def __init__(self, fault):
        super().__init__()
        self.net, self.fault, self.calls = models.lenet(), fault, 0

    def forward(self, x):
        out = self.net(x)
        if self.training:
            self.calls += 1
            out = self.fault(out, self.calls)
        return out


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``path`` exists; fail with the run's stderr if it ends first, or after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path} appeared:\n{proc.communicate()[1]}"
        assert time.monotonic() < end, f"no {path} after {timeout} s"
        time.sleep(0.02)


def interrupt(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 120) -> tuple[str, str]:
    """Send ``sig`` to a run that must still be running (else fail, showing what it printed); its stdout and stderr
    once it has ended."""
    assert proc.poll() is None, f"the run ended (exit code {proc.returncode}) before the signal:\n{proc.communicate()}"
    proc.send_signal(sig)
    return proc.communicate(timeout=timeout)


def main_here(argv: list[str], *, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    """``python -m alexnet_lib ARGV`` in this interpreter: :func:`alexnet_lib.cli.main`, the same code from argument
    parsing to exit code without the seconds a new interpreter spends importing torch, in working folder ``cwd`` with
    ``$ALEXNET_CACHE`` at ``cache`` and its output streams captured (all three restored afterwards)."""
    from alexnet_lib.cli import main

    out, err, before, old_cache = io.StringIO(), io.StringIO(), os.getcwd(), os.environ.get("ALEXNET_CACHE")
    os.environ["ALEXNET_CACHE"] = str(cache)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse's usage errors
                code = e.code
    finally:
        os.chdir(before)
        if old_cache is None:
            os.environ.pop("ALEXNET_CACHE", None)
        else:
            os.environ["ALEXNET_CACHE"] = old_cache
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
