"""The history cache: one computation per key, never a stale entry, safe when two processes race."""
import multiprocessing as mp
import time

from alexnet_lib import history_cache


def _history(acc=0.5, status="finished"):
    return {"status": status, "epochs": [{"epoch": 1, "test_acc": acc}]}


def test_second_call_reads_what_the_first_computed(tmp_path):
    calls = []
    fields = {"config": {"lr": 0.01, "epochs": 2}, "profile": "quick", "device": "cpu"}
    first, hit1 = history_cache.cached(fields, lambda: calls.append(1) or _history(0.7), folder=tmp_path)
    second, hit2 = history_cache.cached(fields, lambda: calls.append(1) or _history(0.1), folder=tmp_path)
    assert (hit1, hit2, len(calls)) == (False, True, 1)
    assert second["epochs"] == first["epochs"] and second["cache"]["path"].startswith(str(tmp_path))


def test_any_change_of_settings_torch_or_source_is_a_new_key(monkeypatch):
    base = {"config": {"lr": 0.01, "model_kwargs": {"activation": "relu"}}, "seed": 0}
    k = history_cache.key(base)
    assert history_cache.key({"config": {"lr": 0.01, "model_kwargs": {"activation": "sigmoid"}}, "seed": 0}) != k
    assert history_cache.key(dict(base, seed=1)) != k
    assert history_cache.key(dict(reversed(list(base.items())))) == k  # order of keys does not matter
    monkeypatch.setattr(history_cache.torch, "__version__", "0.0.1")
    assert history_cache.key(base) != k
    monkeypatch.undo()
    monkeypatch.setattr(history_cache, "source_digest", lambda: "edited library")
    assert history_cache.key(base) != k


def test_source_digest_covers_the_code_a_training_run_executes():
    assert len(history_cache.source_digest()) == 64
    files = {p.relative_to(history_cache.PACKAGE).as_posix() for p in history_cache.training_sources()}
    assert {"train.py", "experiments.py", "models.py", "data.py", "gpu_data.py", "augment.py", "config.py"} <= files
    assert not {"widgets.py", "notebooks.py", "plot/__init__.py"} & files  # figures do not change a history


def test_unfinished_or_damaged_entries_are_computed_again(tmp_path):
    fields = {"run": "x"}
    history_cache.cached(fields, lambda: _history(status="interrupted"), folder=tmp_path)
    assert not list(tmp_path.glob("*.json"))
    _, hit = history_cache.cached(fields, lambda: _history(), folder=tmp_path)
    (tmp_path / f"{history_cache.key(fields)}.json").write_text("{ half a file")
    again, hit2 = history_cache.cached(fields, lambda: _history(0.9), folder=tmp_path)
    assert (hit, hit2, again["epochs"][0]["test_acc"]) == (False, False, 0.9)


def _slow_compute(folder, counter):
    def compute():
        with open(counter, "a") as f:
            f.write("x")
        time.sleep(1.0)
        return _history()
    return history_cache.cached({"race": 1}, compute, folder=folder)[1]


def test_two_processes_racing_compute_once(tmp_path):
    counter = tmp_path / "count"
    ctx = mp.get_context("fork")  # the children only touch files
    with ctx.Pool(2) as pool:
        hits = pool.starmap(_slow_compute, [(tmp_path / "c", counter)] * 2)
    assert sorted(hits) == [False, True] and counter.read_text() == "x"


def test_a_cache_folder_that_cannot_be_written_trains_without_it(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    history, hit = history_cache.cached({"x": 1}, lambda: _history(0.4), folder=blocker / "histories")
    assert (hit, history["epochs"][0]["test_acc"]) == (False, 0.4)
    assert "note: no history cache" in capsys.readouterr().err


def test_comments_and_docstrings_do_not_change_the_digest_code_does(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('def f(x):\n    """Double."""\n    return 2 * x\n')
    b.write_text('def f(x):  # a comment\n    """Twice x, said differently."""\n\n    return 2 * x\n')
    c.write_text('def f(x):\n    """Double."""\n    return 3 * x\n')
    assert history_cache._code(a) == history_cache._code(b) != history_cache._code(c)


def test_weights_are_kept_beside_the_history_and_given_back(tmp_path):
    fields, out = {"run": "with weights"}, tmp_path / "net.pt"

    def compute(value):
        def f():
            out.write_bytes(value)  # what experiments.run(..., weights=out) does at the end of a run
            return _history()
        return f
    _, hit1 = history_cache.cached(fields, compute(b"trained"), folder=tmp_path / "c", weights=out)
    out.unlink()
    _, hit2 = history_cache.cached(fields, compute(b"again"), folder=tmp_path / "c", weights=out)
    assert (hit1, hit2, out.read_bytes()) == (False, True, b"trained")
    # an entry whose weights are gone (or that was cached by a run that kept none) is trained again
    (tmp_path / "c" / f"{history_cache.key(fields)}.pt").unlink()
    _, hit3 = history_cache.cached(fields, compute(b"third"), folder=tmp_path / "c", weights=out)
    assert (hit3, out.read_bytes()) == (False, b"third")


def test_experiment_weights_load_into_the_model_it_builds(tmp_path, monkeypatch):
    import torch

    from alexnet_lib import experiments
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    kw = dict(profile="quick", device="cpu", verbose=False, train_limit=64, test_limit=32, epochs=1)
    h = experiments.run("ch05/head_dropout", weights=tmp_path / "a.pt", **kw)
    again = experiments.run("ch05/head_dropout", weights=tmp_path / "b.pt", **kw)
    assert "cache" in again and again["epochs"] == h["epochs"]
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cfg = experiments.get("ch05/head_dropout").for_profile("quick")[0]
    experiments.build(cfg)[0].load_state_dict(a)  # the same architecture


def test_within_one_build_a_run_keeps_its_weights_for_a_later_page(tmp_path, monkeypatch):
    """With ``$ALEXNET_SHARE`` (one build of the book, one test run) a run that asks for no weights keeps them there,
    and a later run of the same settings that asks for them (chapter 11 after chapter 2) reads the history and the
    weights back instead of training: the weights a fresh run gives. Without it nothing is kept."""
    import torch

    from alexnet_lib import experiments
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ALEXNET_SHARE", str(tmp_path / "share"))
    kw = dict(profile="quick", device="cpu", verbose=False, train_limit=64, test_limit=32, epochs=1)
    first = experiments.run("ch05/head_dropout", **kw)
    assert len(list((tmp_path / "share" / "weights").glob("*.pt"))) == 1
    later = experiments.run("ch05/head_dropout", weights=tmp_path / "later.pt", **kw)
    assert "cache" in later and later["epochs"] == first["epochs"]
    experiments.run("ch05/head_dropout", weights=tmp_path / "fresh.pt", cache=False, **kw)
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("later.pt", "fresh.pt"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    monkeypatch.delenv("ALEXNET_SHARE")  # a reader's kernel: the cache keeps no weights it was not asked for
    monkeypatch.setenv("ALEXNET_CACHE", str(tmp_path / "reader"))
    experiments.run("ch05/head_dropout", **kw)
    assert list((tmp_path / "reader").rglob("*.json")) and not list((tmp_path / "reader").rglob("*.pt"))


def test_chapter_11_looks_inside_the_quick_run_of_chapter_2():
    """ch11/alexnet is ch02/alexnet under another name, in both profiles: one quick run serves both pages."""
    from alexnet_lib import experiments
    for profile in ("quick", "full"):
        a, b = (experiments.get(n).for_profile(profile)[0].settings() for n in ("ch02/alexnet", "ch11/alexnet"))
        assert {k: v for k, v in a.items() if k != "description"} == {k: v for k, v in b.items() if k != "description"}
