"""One typed training config: the command line is generated from it, the quick profile never silently caps what was
asked, a history names the builder and the profile that ran, and the library stays layered (no import cycle, no
function longer than a screen)."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from alexnet_lib import cli, experiments
from alexnet_lib.config import QUICK_BASE, TrainConfig, fields

LIB = Path(__file__).resolve().parent.parent / "alexnet_lib"
# flags about this run (where, what to resume), not about the training: everything else is a TrainConfig field
RUN_TIME_FLAGS = {"preset", "activation", "dropout", "device", "out", "checkpoint", "resume", "resume_or_start",
                  "overwrite", "help"}


def _train_flags() -> set[str]:
    sub = next(a for a in cli._parser()._actions if a.dest == "command")
    return {a.dest for a in sub.choices["train"]._actions}


def test_every_train_flag_is_a_config_field_and_every_field_a_flag():
    names = {f.name for f in fields()}
    flags = _train_flags()
    assert flags - RUN_TIME_FLAGS <= names, flags - RUN_TIME_FLAGS - names
    assert names - set(cli.NOT_FLAGS) <= flags, names - set(cli.NOT_FLAGS) - flags
    args = cli._parser().parse_args(["train", "--nesterov", "--warmup", "100", "--label-smoothing", "0.1",
                                     "--no-normalize", "--train-limit", "all", "--compile", "reduce-overhead"])
    assert (args.nesterov, args.warmup, args.label_smoothing, args.normalize) == (True, 100, 0.1, False)
    assert args.train_limit is None and args.compile == "reduce-overhead"
    assert not hasattr(args, "lr")  # a flag not given leaves the preset's value
    assert cli._parser().parse_args(["train", "--augment", "none"]).augment is None  # a preset's augmentation off
    assert cli._parser().parse_args(["train", "--augment", "crop", "--no-cudnn-benchmark"]).cudnn_benchmark is False


@pytest.mark.parametrize("argv", [["--warmup", "-1"], ["--label-smoothing", "x"], ["--lr", "0"], ["--channels", "2"],
                                  ["--nesterov=1"], ["--scheduler", "step"], ["--augment", "blur"]])
def test_bad_generated_flags_exit_with_code_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", *argv])
    assert e.value.code == 2


def test_quick_profile_keeps_what_the_caller_set_and_says_what_it_changed():
    cfg = experiments.get("ch07/sgd_b1024_xavier")
    ran, changes = cfg.for_profile("quick", keep={"batch_size"})
    assert ran.profile == "quick" and ran.batch_size == 1024  # kept: set by the caller
    assert changes["epochs"] == (10, QUICK_BASE["epochs"]) and "batch_size" not in changes
    q = QUICK_BASE["train_limit"]
    assert ran.train_limit == q and changes["train_limit"] == (None, q)
    full, none = cfg.for_profile("full")
    assert full.profile == "full" and none == {} and full.replace(profile=None) == cfg
    with pytest.raises(ValueError, match="unknown fields"):
        TrainConfig(quick={"epoch": 1})
    with pytest.raises(ValueError, match="unknown training option"):
        cfg.replace(learning_rate=0.1)


def test_history_records_builder_profile_and_the_values_that_ran(tmp_path, cache, capsys, one_thread):
    out = tmp_path / "lenet.json"
    h = experiments.run("ch02/lenet", profile="quick", epochs=1, batch_size=64, out=out)
    said = capsys.readouterr().out.splitlines()[0]
    q = experiments.get("ch02/lenet").quick  # LeNet's own quick sizes
    assert said.startswith("quick profile: ") and f"lr 0.9 -> {q['lr']}" in said and "epochs" not in said
    assert h["model"] == "lenet" and h["profile"] == "quick" and h["name"] == "ch02/lenet"
    s = h["settings"]
    assert (s["epochs"], s["batch_size"], s["train_limit"], s["image_size"], s["source"]) == \
        (1, 64, q["train_limit"], 28, "sample")
    assert s["profile_changes"]["lr"] == [0.9, q["lr"]] and "batch_size" not in s["profile_changes"]
    assert json.loads(out.read_text())["profile"] == "quick"


def test_profile_flag_wins_over_the_environment(tmp_path, cache, monkeypatch, one_thread):
    """The CLI decides the profile once: --profile quick is recorded as quick whatever $ALEXNET_PROFILE says."""
    monkeypatch.setenv("ALEXNET_PROFILE", "full")
    out = tmp_path / "h.json"
    assert cli.main(["train", "--preset", "ch02/lenet", "--profile", "quick", "--epochs", "1",
                     "--out", str(out)]) == 0
    h = json.loads(out.read_text())
    assert h["profile"] == "quick" and h["settings"]["source"] == "sample" and h["model"] == "lenet"


def _imports(path: Path) -> set[str]:
    """alexnet_lib modules imported anywhere in ``path`` (top level or inside functions)."""
    parts = list(path.relative_to(LIB.parent).with_suffix("").parts)
    package = parts[:-1] if path.name != "__init__.py" else parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            mod = base + (node.module.split(".") if node.module else [])
            if node.module:
                found.add(".".join(mod))
            else:
                found |= {".".join(mod + [a.name]) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("alexnet_lib"):
            found.add(node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {".".join(p.relative_to(LIB.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in LIB.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for dep in _imports(path):
            while dep not in modules and "." in dep:  # `from .plot.common import t` -> the module that exists
                dep = dep.rsplit(".", 1)[0]
            if dep in modules and dep != name and not name.startswith(dep + "."):
                deps.add(dep)
        graph[name] = deps
    return graph


def test_no_import_cycle():
    graph = import_graph()
    assert {"alexnet_lib.bench", "alexnet_lib.train", "alexnet_lib.dist"} <= set(graph)
    state: dict[str, int] = {}

    def visit(node, path):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(node):] + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in sorted(graph[node]):
            visit(dep, path + [node])
        state[node] = 2
    for node in sorted(graph):
        visit(node, [])
    assert "alexnet_lib.bench" not in graph["alexnet_lib.dist"]


def test_bench_imports_first_in_a_fresh_interpreter():
    """The module that closed the old cycle (bench -> train -> dist -> bench) imports on its own; and the command
    line with everything it reaches imports no torchvision (nor the torch._dynamo it brings) until images are
    loaded, so that --help and a bad argument answer without that wait."""
    code = ("import sys, alexnet_lib.bench, alexnet_lib.dist, alexnet_lib.cli, alexnet_lib.experiments, "
            "alexnet_lib.widgets; print(sorted({'torchvision', 'torch._dynamo'} & set(sys.modules)))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=LIB.parent)
    assert p.returncode == 0 and p.stdout.strip() == "[]", (p.stdout, p.stderr[-2000:])


def test_no_function_longer_than_a_screen():
    long = []
    for path in sorted(LIB.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.relative_to(LIB.parent)}:{node.lineno} {node.name} "
                            f"({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def test_train_step_is_short_enough_to_print():
    import inspect

    from alexnet_lib import train
    assert len(inspect.getsource(train.train_step).splitlines()) <= 20
    assert len(inspect.getsource(train.train_epoch).splitlines()) <= 30


def test_fused_optimizer_step_is_the_default_on_cuda_and_the_cpu():
    """PyTorch has a fused step for CUDA and the CPU (one pass over each parameter's memory, not one per operation);
    elsewhere (e.g. MPS) the loop keeps the default implementation, and an explicit choice always wins."""
    from alexnet_lib import models
    from alexnet_lib.train import make_optimizer

    assert TrainConfig().resolved("cuda").fused and TrainConfig().resolved("cpu").fused
    assert not TrainConfig().resolved("mps").fused
    assert not TrainConfig(fused=False).resolved("cpu").fused
    net = models.lenet()
    for name in ("sgd", "adam", "adamw"):
        opt = make_optimizer(net, name, 0.01, fused=TrainConfig().resolved("cpu").fused)
        assert opt.defaults["fused"] is True, name
