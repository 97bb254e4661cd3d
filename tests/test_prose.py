"""Numbers in the prose come from their source: placeholders, their formats in both languages, and comparisons
sized to the run-to-run spread."""
import os
from pathlib import Path

import pytest

from alexnet_lib import prose, runs

BOOK_RUNS = Path(__file__).resolve().parent.parent / "book" / "runs"


def test_values_fill_placeholders_in_each_language():
    values = {"acc": 0.91354, "params": 61_100_840, "n": 1234, "verdict": {"en": "an effect", "zh": "一个效应"}}
    text = "{{acc:.1%}} · {{ params:M1 }} · {{n}} · {{verdict}}"
    assert prose.resolve(text, "en", values) == "91.4% · 61.1M · 1,234 · an effect"
    assert prose.resolve(text, "zh", values) == "91.4% · 6,110万 · 1,234 · 一个效应"


def test_an_unresolved_placeholder_stops_the_build():
    with pytest.raises(prose.Unresolved, match="missing"):
        prose.resolve("a {{missing:.1%}} b", "en", {})
    with pytest.raises(prose.Unresolved, match="run:nope"):
        prose.resolve("{{run:nope/x:test_acc}}", "en", {}, load_run=lambda n: runs.replicates(n, BOOK_RUNS))


def test_run_fields():
    h = {"params": 10, "settings": {"lr": 0.01}, "epochs": [{"epoch": 1, "test_acc": 0.5, "seconds": 3.0},
                                                             {"epoch": 2, "test_acc": 0.7, "seconds": 1.0}]}
    assert prose.run_field(h, "test_acc") == 0.7
    assert prose.run_field(h, "best.test_acc") == 0.7
    assert prose.run_field(h, "first.test_acc") == 0.5
    assert prose.run_field(h, "epoch1.seconds") == 3.0
    assert prose.run_field(h, "median.seconds") == 2.0
    assert prose.run_field(h, "settings.lr") == 0.01
    assert prose.run_field(h, "params") == 10
    seeds = [h, {**h, "epochs": [{"epoch": 1, "test_acc": 0.9, "seconds": 1.0}]}]
    assert prose.resolve("{{run:x:test_acc:.2f}} of {{run:x:n}}", "en", {}, load_run=lambda n: seeds) == "0.80 of 2"


def test_value_records_and_returns():
    prose.clear()
    assert prose.value("gap", 0.25) == 0.25
    assert prose.recorded() == {"gap": 0.25}
    with pytest.raises(ValueError):
        prose.value("not a name", 1)
    prose.clear()


def test_shared_measures_once_with_a_share_folder_and_every_time_without(tmp_path, monkeypatch):
    calls = []

    def measure():
        calls.append(1)
        return {"ips": len(calls)}

    monkeypatch.delenv(prose.SHARE_ENV, raising=False)  # a reader's kernel: a new measurement each time
    assert prose.shared("speed", measure) == {"ips": 1} and prose.shared("speed", measure) == {"ips": 2}
    monkeypatch.setenv(prose.SHARE_ENV, str(tmp_path / "share"))
    assert prose.shared("speed", measure) == {"ips": 3}
    assert prose.shared("speed", measure) == {"ips": 3} and len(calls) == 3  # the twin reads the first one's
    assert prose.shared("other", measure) == {"ips": 4}
    for f in (tmp_path / "share").glob("*.pkl"):
        f.write_bytes(b"damaged")
    assert prose.shared("speed", measure) == {"ips": 5}  # unreadable: measured again


def test_shared_twins_racing_measure_once(tmp_path):
    """Two processes (the zh and en kernels) asking at the same moment: one measures, the other waits and reads."""
    import subprocess
    import sys

    code = ("import os, time; from alexnet_lib import prose\n"
            "def measure():\n"
            "    open(os.environ['LOG'], 'a').write(f'{os.getpid()}\\n'); time.sleep(0.5); return os.getpid()\n"
            "print(prose.shared('race', measure))")
    env = dict(os.environ, ALEXNET_SHARE=str(tmp_path / "share"), LOG=str(tmp_path / "log"))
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(results) == 1 and (tmp_path / "log").read_text().split() == list(results)


def _h(acc):
    return {"epochs": [{"epoch": 1, "test_acc": acc}]}


def test_compare_calls_an_effect_only_beyond_the_spread():
    a = [_h(0.910), _h(0.912), _h(0.911)]
    assert runs.compare(a, [_h(0.920), _h(0.921), _h(0.922)]).verdict == "effect"
    assert runs.compare(a, [_h(0.9115), _h(0.913), _h(0.912)]).verdict == "noise"
    one = runs.compare([_h(0.91)], [_h(0.93)])
    assert one.verdict == "unknown" and "so few runs" in one.text("en")
    assert runs.compare([_h(0.91)], [_h(0.93)], noise=0.003).verdict == "unknown"  # one run each: no seed spread
    assert runs.compare([_h(0.91), _h(0.912)], [_h(0.93), _h(0.931)], noise=0.003).verdict == "effect"
    assert runs.compare([_h(0.91), _h(0.912)], [_h(0.93), _h(0.931)], noise=0.05).verdict == "noise"
    c = runs.compare(a, [_h(0.920), _h(0.921), _h(0.922)], names=("base", "new"))
    assert abs(c.diff - 0.01) < 1e-9 and c.n == (3, 3) and "0.002" in str(c)
    assert "效应" in c.text("zh")


def _chapters():
    import importlib.util
    book = BOOK_RUNS.parent
    spec = importlib.util.spec_from_file_location("make_notebooks", book / "make_notebooks.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    return mk, {p.stem: mk.parse(p) for p in sorted((book / "src").glob("*.nbpy"))}


def test_every_chapter_cites_in_both_languages_and_every_work_is_cited():
    mk, chapters = _chapters()
    keys, cited, missing = mk.bib_keys(), set(), []
    for name, cells in chapters.items():
        for lang in ("zh", "en"):
            text = "\n".join(c["text"] for c in cells if c["kind"] == "markdown" and c["lang"] in (None, lang))
            found = {k.strip() for m in mk._CITE.finditer(text) for k in m.group(2).split(",")}
            assert found <= keys, f"{name} ({lang}) cites keys not in references.bib: {sorted(found - keys)}"
            cited |= found
            if not found:
                missing.append(f"{name} ({lang})")
    assert not missing, f"chapters without a citation: {missing}"
    assert keys <= cited, f"works in references.bib that no chapter cites: {sorted(keys - cited)}"


def test_citations_get_the_page_language_prefix():
    mk, _ = _chapters()
    assert mk.cite("see {cite:p}`krizhevsky2012imagenet,lecun1998gradient`", "zh", mk.bib_keys()) == \
        "see {cite:p}`zh-krizhevsky2012imagenet,zh-lecun1998gradient`"
    with pytest.raises(SystemExit, match="not in"):
        mk.cite("{cite:p}`nobody2099`", "en", mk.bib_keys())


def test_the_claims_chapter_7_words_about_its_recorded_runs_hold():
    """Chapter 7's prose says each step of the batch-1024 chain is an effect, that at learning rate 0.08 some seeds
    diverged and one finished; the page generates the numbers, this checks the words around them."""
    chain = ["ch02/alexnet", "ch07/b1024", "ch07/b1024_m0", "ch07/sgd_b1024_xavier"]
    steps = [runs.compare(a, b, folder=BOOK_RUNS) for a, b in zip(chain, chain[1:])]
    for c in steps:
        assert c.verdict == "effect" and min(c.n) >= 3, str(c)
    batch, momentum, init = steps  # "dropping the momentum: the largest of the three"; Xavier wins much back
    assert momentum.diff < batch.diff < 0 < init.diff and abs(momentum.diff) > max(abs(batch.diff), init.diff)
    status = [runs.load_json(p)["status"] for p in runs.seed_files("ch07/b1024_lr0.08", BOOK_RUNS)]
    assert len(status) >= 3 and status.count("finished") == 1 and "diverged" in status
