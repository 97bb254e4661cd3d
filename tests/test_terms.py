"""One Chinese term per concept: the zh pages use the terms of book/terms.py, never their variants, and the glossary
pages are generated from that table."""
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
sys.path.insert(0, str(BOOK))
import terms  # noqa: E402

NAMES = sorted(p.stem for p in (BOOK / "src").glob("*.nbpy"))
VARIANTS = {v: zh for _, zh, variants, _ in terms.TERMS for v in variants}


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", BOOK / "make_notebooks.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    return mk


def _flag(text: str) -> list[str]:
    text = re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.S)  # code is not prose
    return [f"{v} -> {zh}" for v, zh in VARIANTS.items() if v in text]


@pytest.mark.parametrize("name", NAMES)
def test_chinese_pages_use_one_term_per_concept(name):
    mk = _make_notebooks()
    found = []
    for c in mk.parse(BOOK / "src" / f"{name}.nbpy"):
        if c["kind"] == "markdown" and c["lang"] in (None, "zh"):
            found += _flag(c["text"])
    nb = BOOK / "zh" / f"{name}.ipynb"
    for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
        if c["cell_type"] == "markdown":
            found += _flag("".join(c["source"]))
    assert not found, f"{name}: use the glossary's term: {sorted(set(found))}"


def test_the_check_catches_a_variant():
    assert _flag("训练 10 个迭代周期") == ["迭代周期 -> 轮"]
    assert _flag("`迭代周期` 在代码里不算") == []


def test_glossary_pages_are_generated_from_the_table():
    for lang in ("zh", "en"):
        page = (BOOK / lang / "glossary.md").read_text(encoding="utf-8")
        assert terms.glossary(lang) in page, f"book/{lang}/glossary.md is stale: run python book/make_notebooks.py"
        for en, zh, _, _ in terms.TERMS:
            assert zh in page and en in page
