"""The zh and en notebooks are twins: same file names, same code cells, each linking to the other."""
import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
NAMES = sorted(p.stem for p in (BOOK / "src").glob("*.nbpy"))


def cells(lang, name):
    return json.loads((BOOK / lang / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


def test_same_notebooks_in_both_languages():
    zh = sorted(p.stem for p in (BOOK / "zh").glob("*.ipynb"))
    en = sorted(p.stem for p in (BOOK / "en").glob("*.ipynb"))
    assert zh == en == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_code_cells_identical(name):
    """Identical code cells, except the generated setup cell, which differs in exactly its language line."""
    code = {lang: ["".join(c["source"]) for c in cells(lang, name) if c["cell_type"] == "code"] for lang in ("zh", "en")}
    zh_setup, en_setup = code["zh"][0].splitlines(), code["en"][0].splitlines()
    diff = [(a, b) for a, b in zip(zh_setup, en_setup) if a != b]
    assert len(zh_setup) == len(en_setup) and diff == [('plot.set_lang("zh")', 'plot.set_lang("en")')], diff
    assert code["zh"][1:] == code["en"][1:]


def _make_notebooks():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_notebooks", BOOK / "make_notebooks.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    return mk


def _meta(lang, name):
    return json.loads((BOOK / lang / f"{name}.ipynb").read_text(encoding="utf-8"))["metadata"].get("alexnet", {})


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_match_their_source(name):
    """The stored notebook is what its source gives, text included: the text is regenerated from book/src with the
    values the notebook's cells recorded when it was run (stored in its metadata), without running anything. A
    source edited after the notebook was generated, or a notebook edited by hand, fails here."""
    mk = _make_notebooks()
    src = mk.parse(BOOK / "src" / f"{name}.nbpy")
    for lang in ("zh", "en"):
        try:
            built = mk.build(name, lang, src, _meta(lang, name).get("values", {}))
        except mk.prose.Unresolved as e:
            pytest.fail(f"book/{lang}/{name}.ipynb was generated before its source's {e.args[0]}: "
                        f"run python book/make_notebooks.py {name}")
        expected = ["".join(c["source"]) for c in built.cells]
        assert ["".join(c["source"]) for c in cells(lang, name)] == expected, \
            f"book/{lang}/{name}.ipynb differs from book/src/{name}.nbpy: run python book/make_notebooks.py {name}"


@pytest.mark.parametrize("name", NAMES)
def test_no_placeholder_left(name):
    """A reader in Jupyter or Colab sees numbers, never {{...}} placeholders."""
    from alexnet_lib.prose import PLACEHOLDER
    for lang in ("zh", "en"):
        for c in cells(lang, name):
            if c["cell_type"] == "markdown":
                left = PLACEHOLDER.findall("".join(c["source"]))
                assert not left, f"book/{lang}/{name}.ipynb: unresolved {left}"


@pytest.mark.parametrize("name", NAMES)
def test_twin_pages_quote_the_same_numbers(name):
    """Every value the zh and en pages' text quotes is the same number on both (a measurement is made once for both
    by alexnet_lib.prose.shared); only phrases, which carry each language's words, are given per language."""
    zh, en = _meta("zh", name).get("values", {}), _meta("en", name).get("values", {})
    assert zh.keys() == en.keys()
    differ = {k: (zh[k], en[k]) for k in zh if not isinstance(zh[k], dict) and zh[k] != en[k]}
    assert not differ, f"{name}: the two pages quote different values {differ}: measure with prose.shared"


@pytest.mark.parametrize("name", NAMES)
def test_recorded_runs_unchanged_since_generation(name):
    """The runs a notebook read (its placeholders and its code) are the runs in book/runs now: a re-recorded run
    needs the notebook regenerated, or its numbers are stale."""
    mk = _make_notebooks()
    for lang in ("zh", "en"):
        read = _meta(lang, name).get("runs", {})
        now = {n: h for n, h in mk.runs_read(mk.parse(BOOK / "src" / f"{name}.nbpy"), set(read)).items() if n in read}
        stale = sorted(n for n in read if now.get(n) != read[n])
        assert not stale, f"book/{lang}/{name}.ipynb read {stale} before they changed: run python book/make_notebooks.py {name}"


@pytest.mark.parametrize("name", NAMES)
def test_twin_links(name):
    for lang, other in (("zh", "en"), ("en", "zh")):
        first = "".join(cells(lang, name)[0]["source"])
        assert f"../{other}/{name}.ipynb" in first


@pytest.mark.parametrize("name", NAMES)
def test_outputs_stored_from_a_real_run(name):
    """Every code cell that prints or plots has stored outputs (made by make_notebooks.py, checked by nbval)."""
    for lang in ("zh", "en"):
        code = [c for c in cells(lang, name) if c["cell_type"] == "code" and "remove-cell" not in c["metadata"].get("tags", [])]
        assert code and all(c.get("execution_count") for c in code), f"{lang}/{name} was not executed"
        assert not any(o.get("output_type") == "error" for c in code for o in c["outputs"]), f"{lang}/{name} has errors"
