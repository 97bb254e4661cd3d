"""Runs that never lie: what a run says about itself is what happened, and a bad argument or a bad machine is one
line before anything starts.

Each test plays one thing a learner does or that happens to a run (mostly through the real command line, in a
subprocess, as the learner meets it): resuming another run, resuming a missing or damaged checkpoint, outputs that
cannot be written or that another run is writing, values that cannot work, a loss that explodes without becoming
NaN, a damaged data cache, and inputs of the wrong kind in the library. The runs are LeNet on a few dozen images of
the bundled sample, on one thread.
"""
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from alexnet_lib import checkpoint, data, experiments, models, outputs, runs, validate
from alexnet_lib.train import DivergedError, train

import fakes

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--model", "lenet", "--device", "cpu", "--train-limit", "64", "--test-limit", "32", "--batch-size", "32"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One unpacked sample for the subprocesses of this module (tests that damage a cache use their own)."""
    return tmp_path_factory.mktemp("cache")


def env_for(cache: Path, **extra) -> dict:
    env = {**os.environ, "ALEXNET_PROFILE": "quick", "OMP_NUM_THREADS": "1", "ALEXNET_CACHE": str(cache),
           "PYTHONPATH": str(ROOT)}
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def cli(*args, cwd: Path, cache: Path, real: bool = False, timeout: float = 180, **env) -> subprocess.CompletedProcess:
    """``python -m alexnet_lib train ARGS`` as a learner runs it: ``real=True`` in a new interpreter; otherwise
    :func:`alexnet_lib.cli.main` in this one (the same code from argument parsing to exit code, without the seconds
    a new interpreter spends importing torch), with its working folder, cache and output streams."""
    argv = ["train", *map(str, args)]
    if real:
        return subprocess.run([sys.executable, "-m", "alexnet_lib", *argv], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env=env_for(cache, **env), restore_signals=True)
    assert not env, "environment variables other than the cache need real=True"
    return fakes.main_here(argv, cwd=cwd, cache=cache)


def error_line(proc: subprocess.CompletedProcess, code: int) -> str:
    """The one error line of a failed command (argparse's usage lines aside), checked: exit code, no traceback."""
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith(("usage:", " ", "note:"))]
    assert len(lines) == 1 and "error: " in lines[0], proc.stderr
    return lines[0]


def nothing_started(tmp_path: Path, cache: Path, *outs: Path) -> None:
    """No output file written and no data unpacked: the command stopped before any work."""
    assert not any(p.exists() for p in outs), [p for p in outs if p.exists()]
    assert not cache.exists(), "the data was loaded before the error"


@pytest.fixture(scope="module")
def lenet_ckpt(tmp_path_factory, shared_cache):
    """A finished 1-epoch LeNet run: its checkpoint and history (copied by each test that changes them)."""
    d = tmp_path_factory.mktemp("lenet")
    torch.set_num_threads(1)
    proc = cli(*TINY, "--epochs", "1", "--checkpoint", d / "c.pt", "--out", d / "h.json", cwd=d, cache=shared_cache)
    assert proc.returncode == 0, proc.stderr
    return d / "c.pt"


def copy_ckpt(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / "c.pt"
    shutil.copy(src, dst)
    return dst


# --- 1, 2: resume another run; resume without a checkpoint ---------------------------------------------------------

def test_resume_of_another_run_is_refused_naming_each_difference(lenet_ckpt, tmp_path, shared_cache):
    ckpt = copy_ckpt(lenet_ckpt, tmp_path)
    before = ckpt.read_bytes()
    proc = cli(*TINY[:-2], "--epochs", "2", "--lr", "0.5", "--batch-size", "8", "--activation", "relu",
               "--optimizer", "adam", "--checkpoint", ckpt, "--resume", "--out", tmp_path / "h.json",
               cwd=tmp_path, cache=shared_cache)
    line = error_line(proc, 2)
    for says in ("holds another run", "lr 0.01 there, 0.5 now", "batch_size 32 there, 8 now",
                 "activation not given (the default) there, 'relu' now", "optimizer 'sgd' there, 'adam' now"):
        assert says in line, line
    assert ckpt.read_bytes() == before and not (tmp_path / "h.json").exists()


def test_resume_of_the_same_run_continues_it(lenet_ckpt, tmp_path, shared_cache):
    ckpt = copy_ckpt(lenet_ckpt, tmp_path)
    shutil.copy(lenet_ckpt.with_name("h.json"), tmp_path / "h.json")
    first = runs.load_json(tmp_path / "h.json")
    proc = cli(*TINY, "--epochs", "2", "--checkpoint", ckpt, "--resume", "--out", tmp_path / "h.json", cwd=tmp_path,
               cache=shared_cache)
    assert proc.returncode == 0, proc.stderr
    h = runs.load_json(tmp_path / "h.json")
    assert [e["epoch"] for e in h["epochs"]] == [1, 2] and h["epochs"][0] == first["epochs"][0]
    assert h["settings"]["epochs"] == 2 and h["status"] == "finished"


def test_resume_without_a_checkpoint_is_an_error_unless_asked_to_start(tmp_path, shared_cache):
    missing = tmp_path / "missing.pt"
    line = error_line(cli(*TINY, "--epochs", "1", "--init", "xavier", "--checkpoint", missing, "--resume",
                          cwd=tmp_path, cache=shared_cache), 2)
    assert f"no checkpoint at {missing}" in line and "--resume-or-start" in line, line
    assert not missing.exists()
    # --resume-or-start starts fresh, and then as a fresh run does: Xavier initialisation included
    assert cli(*TINY, "--epochs", "1", "--init", "xavier", "--checkpoint", missing, "--resume-or-start", "--out",
               tmp_path / "a.json", cwd=tmp_path, cache=shared_cache).returncode == 0
    assert cli(*TINY, "--epochs", "1", "--init", "xavier", "--out", tmp_path / "b.json", cwd=tmp_path,
               cache=shared_cache).returncode == 0
    a, b = (runs.load_json(tmp_path / n)["epochs"][0] for n in ("a.json", "b.json"))
    assert (a["loss"], a["train_acc"], a["test_acc"]) == (b["loss"], b["train_acc"], b["test_acc"])
    assert missing.exists()


# --- 3: what an interrupted run says --------------------------------------------------------------------------------

SLOW = ["--model", "lenet", "--device", "cpu", "--train-limit", "5000", "--test-limit", "32", "--batch-size", "16",
        "--epochs", "50"]  # an epoch of the whole sample takes seconds on one thread: time for a signal to land in it;
# 50 of them take minutes, so every such run ends by the test's signal, never on its own


def start(args, cwd: Path, cache: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "alexnet_lib", "train", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(cache),
                            restore_signals=True)


def test_interrupted_first_epoch_says_nothing_was_saved(tmp_path, shared_cache):
    ckpt, hist = tmp_path / "c.pt", tmp_path / "h.json"
    proc = start([*SLOW, "--checkpoint", ckpt, "--out", hist], tmp_path, shared_cache)
    try:
        fakes.wait_for(tmp_path / ".c.pt.lock", proc)  # the run has started (outputs checked and locked)
        time.sleep(0.5)  # loading the data, or in the first epoch: either way before anything could be saved
        out, err = fakes.interrupt(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert "nothing was saved" in err and "--resume" not in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no checkpoint, no history, no lock, no temporary file


def test_interrupted_later_epoch_names_what_is_saved(tmp_path, shared_cache):
    ckpt, hist = tmp_path / "c.pt", tmp_path / "h.json"
    proc = start([*SLOW, "--checkpoint", ckpt, "--out", hist], tmp_path, shared_cache)
    try:
        fakes.wait_for(ckpt, proc)
        out, err = fakes.interrupt(proc)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert f"interrupted during epoch 2: epoch 1 saved to {ckpt}" in err and "continue with --resume" in err, err
    assert len(checkpoint.load(ckpt)["history"]["epochs"]) == 1
    assert runs.load_json(hist)["status"] == "interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "h.json"]


def tiny_loaders(n=96, batch_size=32):
    return fakes.tiny_loaders(n, batch_size, test_n=32)


class StopsAt:
    """The batches of ``loader``, and Ctrl-C (KeyboardInterrupt) at batch ``at`` (1-based) of the whole run."""

    def __init__(self, loader, at: int):
        self.loader, self.batch_size, self.at, self.seen = loader, loader.batch_size, at, 0

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.seen += 1
            if self.seen == self.at:
                raise KeyboardInterrupt
            yield batch


@pytest.mark.parametrize("at, says", [
    (2, "interrupted during epoch 1: nothing was saved"),
    (3 + 2, "interrupted during epoch 2: epoch 1 saved to {ckpt} (history in {hist}); continue with --resume"),
    (6 + 2, "interrupted during epoch 3: epochs 1-2 saved to {ckpt} (history in {hist}); continue with --resume"),
])
def test_interrupted_run_says_exactly_what_is_saved(at, says, tmp_path, capsys):
    ckpt, hist = tmp_path / "c.pt", tmp_path / "h.json"
    train_iter, test_iter = tiny_loaders()  # 3 steps per epoch
    with pytest.raises(KeyboardInterrupt):
        train(models.lenet(), StopsAt(train_iter, at), test_iter, 4, 0.1, device="cpu", checkpoint=ckpt,
              history_path=hist)
    err = capsys.readouterr().err
    assert says.format(ckpt=ckpt, hist=hist) in err, err
    done = (at - 1) // 3
    assert sorted(p.name for p in tmp_path.iterdir()) == (["c.pt", "h.json"] if done else [])
    if done:
        assert len(checkpoint.load(ckpt)["history"]["epochs"]) == done
        assert runs.load_json(hist)["status"] == "interrupted" and len(runs.load_json(hist)["epochs"]) == done


def test_signal_while_the_checkpoint_is_written_waits_for_it(tmp_path, monkeypatch, capsys):
    """SIGTERM in the middle of writing the first checkpoint: the write completes, and the message says so."""
    real_save = torch.save

    def save_then_signal(obj, f, *a, **k):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the checkpoint is being written
        time.sleep(0.05)
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_then_signal)
    train_iter, test_iter = tiny_loaders()
    with pytest.raises(KeyboardInterrupt):
        train(models.lenet(), train_iter, test_iter, 3, 0.1, device="cpu", checkpoint=tmp_path / "c.pt",
              history_path=tmp_path / "h.json")
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert f"epoch 1 saved to {tmp_path / 'c.pt'}" in err, err
    assert len(checkpoint.load(tmp_path / "c.pt")["history"]["epochs"]) == 1
    assert [e["epoch"] for e in runs.load_json(tmp_path / "h.json")["epochs"]] == [1]


# --- 4, 5: one file for two outputs; damaged checkpoints -------------------------------------------------------------

def test_out_and_checkpoint_the_same_file(tmp_path, shared_cache):
    (tmp_path / "link.json").symlink_to(tmp_path / "x")
    for other in (tmp_path / "x", tmp_path / "link.json"):  # also when one of them is a link to the other
        line = error_line(cli(*TINY, "--epochs", "1", "--out", other, "--checkpoint", tmp_path / "x",
                              cwd=tmp_path, cache=shared_cache), 2)
        assert "--checkpoint and --out are the same file" in line or "--out and --checkpoint are the same file" \
            in line, line
    assert not (tmp_path / "x").exists()


def overwrite_middle(path: Path) -> None:
    """Overwrite 64 bytes in the middle of the file (inside the weights' data), as a bad disk block would."""
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(64)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["truncated", "empty", "bytes overwritten"])
def test_damaged_checkpoint_is_detected(how, lenet_ckpt, tmp_path, shared_cache):
    ckpt = copy_ckpt(lenet_ckpt, tmp_path)
    if how == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif how == "empty":
        ckpt.write_bytes(b"")
    else:
        overwrite_middle(ckpt)
    with pytest.raises(checkpoint.CheckpointDamaged):
        checkpoint.load(ckpt)
    line = error_line(cli(*TINY, "--epochs", "2", "--checkpoint", ckpt, "--resume", cwd=tmp_path,
                          cache=shared_cache, real=how == "bytes overwritten"), 1)
    assert f"{ckpt} is" in line and ("damaged" in line or "empty" in line), line
    assert "--overwrite" in line and "learning rate" not in line, line


def test_checkpoint_checksum_covers_every_entry(lenet_ckpt):
    ckpt = checkpoint.load(lenet_ckpt)
    assert checkpoint.digest(ckpt) == ckpt["sha256"]
    for key, change in (("model", lambda c: c["model"]["features.0.bias"].add_(1e-6)),
                        ("history", lambda c: c["history"]["epochs"][0].update(loss=1.0)),
                        ("identity", lambda c: c["identity"]["settings"].update(lr=0.5))):
        c = checkpoint.load(lenet_ckpt)
        change(c)
        assert checkpoint.digest(c) != c["sha256"], key


# --- 6: outputs, checked before the first step -----------------------------------------------------------------------

def can_mount() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True).returncode == 0


def cli_on_tmpfs(mount_opts: str, folder: Path, args, cwd: Path, cache: Path, fill: bool = False):
    """The command with ``folder`` a fresh tmpfs (``mount_opts``, e.g. ro or a tiny size), in a private mount
    namespace (needs the right to mount: root outside a container, or a privileged one)."""
    folder.mkdir(exist_ok=True)
    fill_cmd = f"dd if=/dev/zero of={folder}/fill bs=4k 2>/dev/null; " if fill else ""
    cmd = (f"mount -t tmpfs -o {mount_opts} tmpfs {folder} && {fill_cmd}exec {sys.executable} -m alexnet_lib train "
           + " ".join(f"'{a}'" for a in args))
    return subprocess.run(["unshare", "-m", "sh", "-c", cmd], cwd=cwd, capture_output=True, text=True, timeout=180,
                          env=env_for(cache))


@pytest.mark.parametrize("fs", ["read-only", "full", "too small for the checkpoint"])
def test_unwritable_file_system_is_one_line_before_the_run(fs, tmp_path):
    cache = tmp_path / "cache"
    folder = tmp_path / "mnt"
    args = [*TINY, "--epochs", "1", "--checkpoint", folder / "c.pt", "--out", folder / "h.json"]
    if can_mount():
        opts = {"read-only": "ro", "full": "size=64k", "too small for the checkpoint": "size=256k"}[fs]
        proc = cli_on_tmpfs(opts, folder, args, tmp_path, cache, fill=fs == "full")
    elif fs == "read-only" and os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)  # not a read-only file system, but the same refusal for a learner without root
        proc = cli(*args, cwd=tmp_path, cache=cache)
    else:
        pytest.skip("mounting a small or read-only file system needs mount rights here")
    line = error_line(proc, 1)
    says = {"read-only": ("read-only", "permission denied"), "full": ("no space left",),
            "too small for the checkpoint": ("not enough space",)}[fs]
    names = f"--checkpoint {folder / 'c.pt'}" if fs == "too small for the checkpoint" else f"--out {folder / 'h.json'}"
    assert any(s in line for s in says) and names in line, line
    assert not cache.exists()  # before the data was loaded


def test_full_disk_found_by_the_check_in_process(tmp_path, monkeypatch):
    """The same space check without mount rights: the disk reports 1 MB free."""
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 2**20, 2**20))
    with pytest.raises(validate.BadEnvironment, match=r"not enough space in .*: a checkpoint needs about \d+ MB, 1 MB "
                                                      r"are free"):
        validate.check_space(tmp_path / "c.pt", 50 * 2**20, "--checkpoint c.pt")


@pytest.mark.parametrize("where, code, says", [
    ("/proc/alexnet-run/h.json", 1, "cannot create the folder /proc/alexnet-run"),
    ("/proc/h.json", 1, "cannot write in /proc"),
    ("{tmp}", 2, "is a folder; give a file name in it"),
    ("", 2, "--out is empty"),
    ("{tmp}/sub/", 2, "is a folder"),
])
def test_bad_out_path_is_one_line_before_the_run(where, code, says, tmp_path, shared_cache):
    cache = tmp_path / "cache"
    proc = cli(*TINY, "--epochs", "1", "--out", where.format(tmp=tmp_path), cwd=tmp_path, cache=cache)
    line = error_line(proc, code)
    assert says in line, line
    assert not cache.exists()


def test_existing_checkpoint_of_another_run_is_not_overwritten(lenet_ckpt, tmp_path, shared_cache):
    ckpt = copy_ckpt(lenet_ckpt, tmp_path)
    before = ckpt.read_bytes()
    line = error_line(cli(*TINY, "--epochs", "1", "--lr", "0.2", "--checkpoint", ckpt, cwd=tmp_path,
                          cache=shared_cache), 2)
    assert f"--checkpoint {ckpt} already holds a checkpoint" in line and "--resume" in line, line
    assert "--overwrite" in line and ckpt.read_bytes() == before
    # --out pointing at a checkpoint by mistake is refused too (it is not a history)
    line = error_line(cli(*TINY, "--epochs", "1", "--out", ckpt, cwd=tmp_path, cache=shared_cache), 2)
    assert "is not a JSON history" in line and ckpt.read_bytes() == before, line
    proc = cli(*TINY, "--epochs", "1", "--lr", "0.2", "--checkpoint", ckpt, "--overwrite", cwd=tmp_path,
               cache=shared_cache)
    assert proc.returncode == 0, proc.stderr
    assert checkpoint.load(ckpt)["identity"]["settings"]["lr"] == 0.2


def test_second_run_on_the_same_outputs_is_refused_naming_the_first(tmp_path, shared_cache):
    ckpt, hist = tmp_path / "c.pt", tmp_path / "h.json"
    first = start([*SLOW, "--checkpoint", ckpt, "--out", hist], tmp_path, shared_cache)
    try:
        fakes.wait_for(tmp_path / ".c.pt.lock", first)
        second = cli(*TINY, "--epochs", "1", "--out", hist, cwd=tmp_path, cache=shared_cache)
        line = error_line(second, 1)
        assert f"{hist} is being written by another run (pid {first.pid} on " in line, line
        assert "python -m alexnet_lib train" in line or "alexnet_lib train" in line or "__main__.py train" in line, line
        assert first.poll() is None  # the first run goes on undisturbed
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)


def test_killed_run_leaves_a_lock_that_the_next_run_takes_over(tmp_path, shared_cache):
    ckpt, hist = tmp_path / "c.pt", tmp_path / "h.json"
    first = start([*SLOW, "--checkpoint", ckpt, "--out", hist], tmp_path, shared_cache)
    try:
        fakes.wait_for(tmp_path / ".c.pt.lock", first)
        time.sleep(0.5)
    finally:
        first.kill()  # kill -9: nothing runs, the lock file stays behind
        first.communicate()
    assert (tmp_path / ".c.pt.lock").exists()
    (tmp_path / ".c.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")  # what a kill -9 inside a write leaves
    (tmp_path / ".h.json.a1b2c3.tmp").write_text("{")
    proc = cli(*TINY, "--epochs", "1", "--checkpoint", ckpt, "--out", hist, cwd=tmp_path, cache=shared_cache)
    assert proc.returncode == 0, proc.stderr
    assert f"took over the lock {tmp_path / '.c.pt.lock'} of pid {first.pid}" in proc.stderr, proc.stderr
    assert "removed 1 temporary file(s)" in proc.stderr and ".c.pt.x1y2z3.tmp" in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "h.json"]


def test_symlinked_out_is_written_through(tmp_path, shared_cache):
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "run.json"
    link = tmp_path / "run.json"
    link.symlink_to(target)
    proc = cli(*TINY, "--epochs", "1", "--out", link, cwd=tmp_path, cache=shared_cache)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert runs.load_json(target)["status"] == "finished"
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["run.json"]


def test_temporary_file_removed_when_a_write_fails(tmp_path, monkeypatch):
    def fail(fd):
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(KeyboardInterrupt):
        outputs.save_json({"a": 1}, tmp_path / "h.json")
    assert list(tmp_path.iterdir()) == []


# --- 7: arguments validated before anything starts -------------------------------------------------------------------

@pytest.mark.parametrize("args, code, says", [
    (["--device", "bogus"], 2, "--device 'bogus' is not a device PyTorch knows"),
    (["--device", "cuda"], 1, "--device 'cuda': "),
    (["--device", "cuda:3"], 1, "--device 'cuda:3': "),
    (["--lr", "inf"], 2, "--lr must be"),
    (["--weight-decay", "nan"], 2, "argument --weight-decay: must be 0 or more, got nan"),
    (["--momentum", "nan"], 2, "argument --momentum: must be 0 or more, got nan"),
    (["--momentum", "-1"], 2, "argument --momentum: must be 0 or more, got -1.0"),
    (["--momentum", "1.5"], 2, "--momentum must be in [0.0, 1.0), got 1.5"),
    (["--dropout", "2"], 2, "--dropout must be in [0.0, 1.0), got 2.0"),
    (["--seed", str(2**64)], 2, "--seed must be in [0, 2**64)"),
    (["--seed", "-1"], 2, "--seed must be in [0, 2**64)"),
    (["--label-smoothing", "1"], 2, "--label-smoothing must be in [0.0, 1.0)"),
])
def test_bad_value_is_one_line_before_data_is_loaded(args, code, says, tmp_path):
    cache = tmp_path / "cache"
    out = tmp_path / "h.json"
    i = TINY.index("--device")
    base = TINY[:i] + TINY[i + 2:] if "--device" in args else TINY
    hide = dict(real=True, CUDA_VISIBLE_DEVICES="") if "cuda" in args[-1] else {}  # as on a machine without GPU
    proc = cli(*base, "--epochs", "1", *args, "--out", out, cwd=tmp_path, cache=cache, **hide)
    line = error_line(proc, code)
    assert says in line, line
    if "cuda" in args[-1]:
        assert "--device cpu" in line, line
    nothing_started(tmp_path, cache, out)


def test_quick_profile_says_what_it_changed_and_keeps_what_was_asked(tmp_path, shared_cache):
    out = tmp_path / "h.json"
    proc = cli("--preset", "ch02/lenet", "--device", "cpu", "--train-limit", "64", "--test-limit", "32",
               "--epochs", "1", "--out", out, cwd=tmp_path, cache=shared_cache)
    assert proc.returncode == 0, proc.stderr
    h = runs.load_json(out)
    assert h["settings"]["epochs"] == 1 and h["settings"]["train_limit"] == 64  # asked for: kept
    assert "quick profile" in proc.stdout + proc.stderr and "batch_size 256 -> " in proc.stdout + proc.stderr
    changes = h["settings"]["profile_changes"]
    assert changes["batch_size"][0] == 256 and h["settings"]["batch_size"] == changes["batch_size"][1]
    proc = cli("--preset", "ch02/lenet", "--device", "cpu", "--train-limit", "64", "--test-limit", "32",
               "--epochs", "1", "--batch-size", "256", "--out", out, "--overwrite", cwd=tmp_path, cache=shared_cache)
    assert proc.returncode == 0 and runs.load_json(out)["settings"]["batch_size"] == 256, proc.stderr


# --- 8: divergence without NaN ---------------------------------------------------------------------------------------

def test_exploding_loss_is_divergence_from_the_command_line(tmp_path, shared_cache):
    out = tmp_path / "h.json"
    proc = cli("--model", "lenet", "--device", "cpu", "--lr", "1e6", "--out", out, cwd=tmp_path, cache=shared_cache)
    line = error_line(proc, 1)
    assert "(learning rate 1e+06)" in line and "step" in line and "epoch" in line, line
    assert "loss became NaN/inf" in line or "loss grew to" in line, line
    assert runs.load_json(out)["status"] == "diverged"


def scaled(first: int, last: int) -> fakes.LeNetWithFault:
    """LeNet whose logits get +1000 on a (mostly wrong) class in training steps ``first`` to ``last`` (1-based): a
    loss far above chance for that many steps, finite all the time (a constant: the gradients stay those of LeNet)."""
    def fault(out, step):
        hot = torch.nn.functional.one_hot(torch.arange(len(out)) % 10, 10)
        return out + 1000 * hot if first <= step <= last else out
    return fakes.LeNetWithFault(fault)


def many_steps():
    return fakes.tiny_loaders(32 * 40, 32, test_n=32)  # 40 steps per epoch


def test_sustained_huge_loss_is_divergence_with_its_step_and_lr():
    train_iter, test_iter = many_steps()  # 40 steps per epoch
    net = scaled(first=5, last=10**9)
    with pytest.raises(DivergedError) as e:
        train(net, train_iter, test_iter, 2, 0.05, device="cpu", verbose=False)
    msg = str(e.value)
    assert "loss grew to" in msg and "epoch 1, step 24 (learning rate 0.05)" in msg, msg
    assert "Try a smaller learning rate (e.g. 0.005)" in msg, msg
    assert net.calls == 24  # stopped there


def test_short_loss_spike_is_not_divergence():
    train_iter, test_iter = many_steps()
    h = train(scaled(first=5, last=20), train_iter, test_iter, 1, 0.05, device="cpu", verbose=False)  # 16 steps
    assert h["status"] == "finished"


def test_the_rule_cannot_fire_on_the_recorded_runs():
    """No recorded full run of the course comes within reach of the threshold (10 x the loss of guessing)."""
    hists = [runs.load_json(p) for p in sorted((ROOT / "book" / "runs").rglob("*.json"))]
    hists = [h for h in hists if isinstance(h, dict) and h.get("epochs") and "loss" in h["epochs"][0]]
    assert len(hists) >= 10
    worst = max(e["loss"] for h in hists for e in h["epochs"] if math.isfinite(e["loss"]))
    assert worst < 10 * math.log(10) / 3, worst


# --- 9: the data cache ------------------------------------------------------------------------------------------------

def cached_file(cache: Path, name: str) -> Path:
    return cache / "fashion-mnist-sample" / "FashionMNIST" / "raw" / name


@pytest.mark.parametrize("how", ["truncated images", "labels overwritten with 200", "same, old time restored",
                                 "stamp damaged"])
def test_damaged_cache_is_rebuilt_with_a_note(how, tmp_path):
    cache = tmp_path / "cache"
    assert cli(*TINY, "--epochs", "1", cwd=tmp_path, cache=cache).returncode == 0
    images, labels = cached_file(cache, "train-images-idx3-ubyte"), cached_file(cache, "train-labels-idx1-ubyte")
    if how == "truncated images":
        images.write_bytes(images.read_bytes()[:1000])
    elif how == "stamp damaged":
        stamp = cached_file(cache, "SOURCE.json")
        stamp.write_text(stamp.read_text().replace('"size": ', '"size": 1'))
    else:
        st = labels.stat()
        raw = bytearray(labels.read_bytes())
        raw[8:] = bytes([200]) * (len(raw) - 8)
        labels.write_bytes(bytes(raw))
        if how == "same, old time restored":
            os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns))
    # another seed: a new run (not one the history cache of quick runs could answer without reading the data)
    proc = cli(*TINY, "--epochs", "1", "--seed", "1", "--out", tmp_path / "h.json", cwd=tmp_path, cache=cache)
    assert proc.returncode == 0, proc.stderr
    notes = [ln for ln in proc.stderr.splitlines() if ln.startswith("note: ")]
    assert len(notes) == 1 and "unpacked it again" in notes[0], proc.stderr
    assert data.read_idx(labels).max() == 9 and images.stat().st_size == 5000 * 28 * 28 + 16


def test_unwritable_cache_is_one_line(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    proc = cli(*TINY, "--epochs", "1", cwd=tmp_path, cache=blocker)
    line = error_line(proc, 1)
    assert f"the data cache {blocker} cannot be written" in line and "ALEXNET_CACHE" in line, line


# --- 10: the library's edges ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("x, says", [
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "uint8"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.int8), "int8"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.float64), "float64"),
    ([[0.0] * 28] * 28, "list"),
    (np.zeros((2, 1, 28, 28), dtype=np.float32), "ndarray"),
])
def test_wrong_kind_of_input_says_convert_to_float32(x, says):
    with pytest.raises(TypeError) as e:
        models.lenet()(x)
    msg = str(e.value)
    assert says in msg and "float32" in msg and "LeNet" in msg, msg
    assert len(msg.splitlines()) == 1


@pytest.mark.parametrize("kw, says", [
    (dict(image_size=0), "image_size must be None (keep 28x28) or a side of at least 1 pixel, got 0"),
    (dict(image_size=-5), "got -5"),
    (dict(channels=2), "channels must be 1 (grey, as stored) or 3"),
    (dict(batch_size=0), "batch_size= must be at least 1, got 0"),
])
def test_data_arguments_are_checked_at_the_call(kw, says, cache):
    kw = {"batch_size": 32, **kw}
    with pytest.raises(ValueError, match=re.escape(says)):
        data.load_data_fashion_mnist(kw.pop("batch_size"), source="sample", **kw)
    assert not cache.exists()  # checked before the data is read


def test_zero_epochs_is_an_error_in_train_and_run(tmp_path, cache):
    train_iter, test_iter = tiny_loaders()
    with pytest.raises(validate.BadArgument, match=r"epochs= must be at least 1, got 0"):
        train(models.lenet(), train_iter, test_iter, 0, 0.1, device="cpu", verbose=False)
    with pytest.raises(validate.BadArgument, match=r"epochs= must be at least 1, got 0"):
        experiments.run("ch02/lenet", epochs=0, device="cpu", verbose=False)
    with pytest.raises(validate.BadArgument, match=r"lr= must be greater than 0"):
        experiments.run("ch02/lenet", lr=float("inf"), device="cpu", verbose=False)
    assert not cache.exists()
