"""``python -m alexnet_lib``: bad arguments stop with argparse's usage message and exit code 2 before anything
starts; errors a learner can fix (a diverged run, out of GPU memory) are one message without a traceback (exit 1);
the same seed gives the same history."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from alexnet_lib import cli, experiments, models

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("one_thread")


def test_bad_model_from_the_shell(tmp_path):
    """The real command: exit code 2, argparse's usage and the valid choices, no traceback, no output file."""
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "alexnet_lib", "train", "--model", "vgg", "--epochs", "1",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ALEXNET_PROFILE": "quick"})
    assert proc.returncode == 2, proc.stderr
    assert "usage: python -m alexnet_lib train" in proc.stderr
    assert "argument --model: invalid choice: 'vgg'" in proc.stderr and "d2l_alexnet" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == "" and not out.exists()


@pytest.mark.parametrize("argv, says", [
    (["train", "--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
    (["train", "--epochs", "-3"], "argument --epochs: must be at least 1, got -3"),
    (["train", "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
    (["train", "--epochs", "two"], "argument --epochs: 'two' is not a whole number"),
    (["train", "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
    (["train", "--lr", "-0.1"], "argument --lr: must be greater than 0, got -0.1"),
    (["train", "--lr", "nan"], "argument --lr: must be greater than 0, got nan"),
    (["train", "--preset", "ch99/nothing"], "argument --preset: invalid choice: 'ch99/nothing'"),
    (["train", "--model", "lenet", "--resume"], "--resume needs --checkpoint PATH"),
    (["train", "--model", "lenet", "--epoch", "3", "--bogus"], "unrecognized arguments: --bogus"),
    ([], "required: command"),
])
def test_bad_arguments_exit_2_before_anything_starts(argv, says, monkeypatch, capsys, tmp_path):
    started = []
    monkeypatch.setattr(experiments, "run", lambda *a, **k: started.append(a))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert "usage: python -m alexnet_lib" in err and says in err, err
    assert not started and not list(tmp_path.iterdir())


class OutOfMemoryLeNet(models.LeNet):
    """LeNet whose training step runs out of (GPU) memory, as a too-large batch would on a real GPU."""

    def forward(self, x):
        if self.training:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0] * 3} MiB.")
        return super().forward(x)


def test_out_of_memory_is_one_message(monkeypatch, capsys, tmp_path, cache):
    monkeypatch.setattr(experiments, "build_model", lambda name, **kw: OutOfMemoryLeNet())
    code = cli.main(["train", "--model", "lenet", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
                     "--out", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: out of GPU memory at batch size 16") and "--batch-size 8" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "out_of_memory"


def test_diverged_run_is_one_message(capsys, tmp_path, cache):
    code = cli.main(["train", "--model", "lenet", "--activation", "relu", "--epochs", "1", "--lr", "1e6",
                     "--momentum", "0.9", "--device", "cpu", "--out", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert code == 1
    assert "error: loss became NaN/inf at epoch 1, step" in err and "(learning rate 1e+06)" in err, err
    assert "Try a smaller learning rate" in err and "Traceback" not in err, err
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"


def test_same_seed_same_history_from_the_command_line(tmp_path, cache, capsys):
    histories = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        assert cli.main(["train", "--model", "lenet", "--epochs", "1", "--seed", str(seed), "--device", "cpu",
                         "--out", str(tmp_path / f"{name}.json")]) == 0
        h = json.loads((tmp_path / f"{name}.json").read_text())
        histories.append([(r["loss"], r["train_acc"], r["test_acc"]) for r in h["epochs"]])
    assert histories[0] == histories[1]  # same seed: the same numbers, exactly
    assert histories[0] != histories[2]  # another seed: other numbers (so the check above can fail)
