import json
from pathlib import Path

import pytest

from alexnet_lib import cli, experiments, runs

RUNS = runs.set_root(Path(__file__).resolve().parent.parent / "book" / "runs")  # the repository's recorded runs


def test_preset_records_its_experiment_name(tmp_path, cache):
    out = tmp_path / "lenet.json"
    assert cli.main(["train", "--preset", "ch02/lenet", "--epochs", "1", "--profile", "quick",
                     "--out", str(out)]) == 0
    h = json.loads(out.read_text())
    assert h["name"] == h["settings"]["experiment"] == "ch02/lenet"
    ran, _ = experiments.get("ch02/lenet").for_profile("quick")  # LeNet's quick run has its own optimizer settings
    assert h["settings"]["lr"] == ran.lr and len(h["epochs"]) == 1


def test_recorded_runs_are_full_runs_of_their_experiment():
    """Every committed history in book/runs is a full-profile run on a GPU, labelled with its experiment."""
    histories = [p for p in RUNS.rglob("*.json") if p.parent.name not in ("bench", "notebooks")  # notebooks:
                 and "bench" not in p.name]  # the reports of python -m alexnet_lib notebooks, not histories
    assert len(histories) >= 20
    for p in histories:
        h = json.loads(p.read_text())
        if h.get("kind") == "mistakes_report":  # chapter 11's report of a trained network, not a history
            continue
        assert h["profile"] == "full" and h["device"] == "cuda", p
        assert h["settings"]["experiment"] in experiments.EXPERIMENTS, p
        assert h["settings"]["data"].startswith("Fashion-MNIST full"), p


def test_recorded_fast_runs_are_their_presets():
    """fast.json was made with today's fast preset, fast_v1.json with the first version (then also named "fast")."""
    for file, preset in (("fast/fast", "fast"), ("fast/fast_v1", "fast_v1")):
        s, exp = runs.load(file)["settings"], experiments.get(preset)
        for field in ("epochs", "lr", "batch_size", "nesterov", "weight_decay", "label_smoothing", "scheduler", "init",
                      "augment", "normalize"):
            assert s[field] == getattr(exp, field), (file, field)
        assert s.get("s2d_stem", False) == exp.s2d_stem and s.get("tta", False) == exp.tta, file


def test_fast_preset_runs_with_its_speed_switches_on_a_cpu(tmp_path, cache):
    out = tmp_path / "fast.json"
    small = ["--train-limit", "96", "--test-limit", "64", "--batch-size", "32"]  # the code path, not the learning
    assert cli.main(["train", "--preset", "fast", "--epochs", "1", "--profile", "quick", *small, "--out", str(out)]) == 0
    h = json.loads(out.read_text())
    assert h["settings"]["s2d_stem"] is True and h["settings"]["tta"] is True
    assert h["wall_seconds"] == pytest.approx(h["setup_seconds"] + h["epochs"][-1]["elapsed"])
    assert 0 < h["setup_seconds"] < h["wall_seconds"]
