"""Several machines, played by one: two torchrun "nodes" meet at a c10d rendezvous on the loopback interface.

Each node is the launch a reader types on each machine (``torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d
--rdzv-endpoint HOST:PORT --rdzv-id ID -m alexnet_lib train ...``), here with 127.0.0.1 as the host, a port free at
run time, the gloo backend (no GPU is used even where one exists) and a time limit on every child process.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import uuid

from pathlib import Path

import pytest

import fakes

# LeNet on 1,000 of the sample's images: the meeting of the nodes, not the training, is what is tested
TRAIN = ["-m", "alexnet_lib", "train", "--model", "lenet", "--lr", "0.5", "--epochs", "2", "--profile", "quick",
         "--seed", "0", "--train-limit", "1000", "--test-limit", "200"]
LIMIT_S = 120  # per child; the run itself takes 10-20 s on two shared cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path) -> dict:
    # CPU only: two "nodes" on one machine must not both claim cuda:0
    return dict(os.environ, ALEXNET_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")


def _launch(args: list[str], folder, env) -> subprocess.Popen:
    """Start a child in its own process group, output into folder/{out,err}.txt."""
    folder.mkdir()
    with open(folder / "out.txt", "w") as out, open(folder / "err.txt", "w") as err:
        return subprocess.Popen([sys.executable, *args], cwd=folder, env=env, stdout=out, stderr=err,
                                start_new_session=True)


def _wait_all(procs: list[subprocess.Popen]) -> list[int]:
    """Exit codes of all children; on a timeout (or any error) kill every child's whole process group."""
    try:
        return [p.wait(timeout=LIMIT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _node(port: int, run_id: str, join_timeout: int = 60) -> list[str]:
    return ["-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", run_id,
            "--rdzv-conf", f"join_timeout={join_timeout}", "--local-addr", "127.0.0.1", "--max-restarts", "0"]


def _stderr(folders) -> str:
    return "\n".join(f"--- {f.name}\n" + (f / "err.txt").read_text()[-2000:] for f in folders)


@pytest.mark.slow
def test_two_nodes_meet_and_train_with_one_history(tmp_path, one_thread):
    env, port, run_id = _env(tmp_path), _free_port(), f"test-{uuid.uuid4().hex[:8]}"
    folders = [tmp_path / f"node{i}" for i in range(2)]
    procs = [_launch(_node(port, run_id) + TRAIN + ["--out", str(f / "history.json")], f, env) for f in folders]
    # while the nodes meet: the same command in one process, this one (fakes.main_here)
    (tmp_path / "single").mkdir()
    try:
        single = fakes.main_here([*TRAIN[2:], "--out", str(tmp_path / "single" / "history.json"), "--device", "cpu"],
                                 cwd=tmp_path / "single", cache=Path(env["ALEXNET_CACHE"]))
    finally:
        codes = _wait_all(procs)
    assert single.returncode == 0, single.stderr[-3000:]
    assert codes == [0, 0], _stderr(folders)
    # the rendezvous, not the launch order, decides which node is rank 0; only that one writes and prints
    written = [f for f in folders if (f / "history.json").exists()]
    assert len(written) == 1, [f.name for f in written]
    printed = [f for f in folders if "done:" in (f / "out.txt").read_text()]
    assert printed == written
    h = json.loads((written[0] / "history.json").read_text())
    one = json.loads((tmp_path / "single" / "history.json").read_text())
    assert h["status"] == "finished" and h["settings"]["world_size"] == 2 and one["settings"]["world_size"] == 1
    assert h["device"] == "cpu"
    # the global batch is split over the two nodes, and each epoch still covers the whole training set
    assert h["settings"]["batch_size"] * 2 == one["settings"]["batch_size"]
    images = one["settings"]["train_limit"]  # the quick profile's training images
    assert [e["images"] for e in h["epochs"]] == [e["images"] for e in one["epochs"]] == [images, images]


@pytest.mark.slow
def test_a_lone_node_gives_up_after_the_join_timeout(tmp_path):
    """If the other machine never comes, the launch fails after --rdzv-conf join_timeout instead of waiting."""
    folder = tmp_path / "node0"
    (code,) = _wait_all([_launch(_node(_free_port(), "alone", join_timeout=3) + TRAIN, folder, _env(tmp_path))])
    assert code != 0
    assert "RendezvousTimeoutError" in (folder / "err.txt").read_text()
    assert not list(folder.glob("*.json"))
