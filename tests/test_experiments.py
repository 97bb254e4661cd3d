import json

from alexnet_lib import cli, experiments


def test_preset_records_its_experiment_name(tmp_path, cache):
    out = tmp_path / "lenet.json"
    assert cli.main(["train", "--preset", "ch02/lenet", "--epochs", "1", "--profile", "quick",
                     "--out", str(out)]) == 0
    h = json.loads(out.read_text())
    assert h["name"] == h["settings"]["experiment"] == "ch02/lenet"
    assert h["settings"]["lr"] == experiments.get("ch02/lenet").lr and len(h["epochs"]) == 1


def test_recorded_runs_are_full_runs_of_their_experiment():
    """Every committed history in book/runs is a full-profile run on a GPU, labelled with its experiment."""
    from alexnet_lib.runs import RUNS_DIR
    histories = [p for p in RUNS_DIR.rglob("*.json") if p.parent.name != "bench" and "bench" not in p.name]
    assert len(histories) >= 20
    for p in histories:
        h = json.loads(p.read_text())
        assert h["profile"] == "full" and h["device"] == "cuda", p
        assert h["settings"]["experiment"] in experiments.EXPERIMENTS, p
        assert h["settings"]["data"].startswith("Fashion-MNIST full"), p
