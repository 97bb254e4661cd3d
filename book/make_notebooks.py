"""Build the zh and en notebooks of a chapter from its one source file, and run them to store their outputs.

A source ``book/src/NAME.nbpy`` is a list of cells separated by marker lines:

    # %% md zh          a markdown cell for the Chinese page
    # %% md en          a markdown cell for the English page
    # %% md             a markdown cell for both
    # %%                a code cell (the same in both languages)
    # %% tags=remove-input,hide-output   cell tags, after any of the above

From it this writes ``book/zh/NAME.ipynb`` and ``book/en/NAME.ipynb`` (each opening with a link to its twin), so the
two pages share their code cells by construction; ``tests/test_notebooks.py`` checks that they still do. Unless
``--no-exec`` is given, each notebook is then executed top to bottom in a fresh kernel in its own folder with
``ALEXNET_PROFILE=quick`` (what nbval re-runs), and saved with its outputs.

    python book/make_notebooks.py                 # all chapters
    python book/make_notebooks.py 04_activations  # one chapter
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

BOOK = Path(__file__).resolve().parent
LANGS = ("zh", "en")
TWIN = {"zh": "[English version →](../en/{name}.ipynb)", "en": "[中文版 →](../zh/{name}.ipynb)"}
MARKER = re.compile(r"^# %%(?:\s+(md))?(?:\s+(zh|en))?(?:\s+tags=(\S+))?\s*$")

SETUP = """\
# Setup: on Colab (or any fresh kernel) fetch the course (library + recorded runs) and a CJK font;
# where alexnet_lib is already installed this does nothing.
import importlib.util, sys
if importlib.util.find_spec("alexnet_lib") is None:
    !git clone -q --depth 1 https://github.com/alexnet-handson/alexnet-handson /tmp/alexnet-handson
    !pip install -q -e /tmp/alexnet-handson
    sys.path.insert(0, "/tmp/alexnet-handson")  # importable in this kernel without a restart
    if "google.colab" in sys.modules:
        !apt-get -qq install -y fonts-noto-cjk > /dev/null"""
# The page's edge settings, decided here once and passed to the library: the recorded-runs folder and the language
# (the one line in which the zh and en notebooks differ).
PAGE = """
from alexnet_lib import plot, runs
runs.set_root(runs.find_root())
plot.set_lang("{lang}")"""


def parse(src: Path) -> list[dict]:
    cells, cur = [], None
    for line in src.read_text(encoding="utf-8").splitlines():
        m = MARKER.match(line)
        if m:
            if cur is not None:
                cells.append(cur)
            kind, lang, tags = m.groups()
            cur = {"kind": "markdown" if kind else "code", "lang": lang, "lines": [],
                   "tags": tags.split(",") if tags else []}
        elif cur is not None:
            cur["lines"].append(line)
        elif line.strip():
            raise SystemExit(f"{src}: text before the first '# %%' marker: {line!r}")
    if cur is not None:
        cells.append(cur)
    for c in cells:
        c["text"] = "\n".join(c.pop("lines")).strip("\n")
    return cells


_CJK = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"
_SOFT_BREAK = re.compile(rf"({_CJK})\n({_CJK}|“)")


def join_cjk_lines(text: str) -> str:
    """Join a paragraph's soft line breaks after a Chinese character: HTML shows such a break as a space,
    which is wrong between Chinese characters. List items, tables, headings and code fences are left alone."""
    parts = re.split(r"(```.*?```)", text, flags=re.S)
    return "".join(p if p.startswith("```") else _SOFT_BREAK.sub(r"\1\2", p) for p in parts)


def build(name: str, lang: str, cells: list[dict]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    out = [nbformat.v4.new_markdown_cell(TWIN[lang].format(name=name)),
           nbformat.v4.new_code_cell(SETUP + PAGE.format(lang=lang), metadata={"tags": ["remove-cell"]})]
    for c in cells:
        if c["kind"] == "markdown" and c["lang"] not in (None, lang):
            continue
        if c["kind"] == "markdown":
            out.append(nbformat.v4.new_markdown_cell(join_cjk_lines(c["text"]),
                                                     metadata={"tags": c["tags"]} if c["tags"] else {}))
        else:
            out.append(nbformat.v4.new_code_cell(c["text"], metadata={"tags": c["tags"]} if c["tags"] else {}))
    for i, cell in enumerate(out):  # stable ids keep diffs small
        cell["id"] = f"{name[:40]}-{lang}-{i}"
    nb.cells = out
    return nb


def run(nb: nbformat.NotebookNode, folder: Path, timeout: int) -> None:
    os.environ["ALEXNET_PROFILE"] = "quick"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="chapter names (default: every book/src/*.nbpy)")
    ap.add_argument("--no-exec", action="store_true", help="write the notebooks without running them")
    ap.add_argument("--lang", choices=LANGS, action="append", help="only this language (repeatable)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = ap.parse_args(argv)
    names = args.names or sorted(p.stem for p in (BOOK / "src").glob("*.nbpy"))
    for name in names:
        cells = parse(BOOK / "src" / f"{name}.nbpy")
        for lang in args.lang or LANGS:
            nb = build(name, lang, cells)
            folder = BOOK / lang
            t0 = time.perf_counter()
            if not args.no_exec:
                run(nb, folder, args.timeout)
            nbformat.write(nb, folder / f"{name}.ipynb")
            print(f"{lang}/{name}.ipynb: {len(nb.cells)} cells"
                  + ("" if args.no_exec else f", executed in {time.perf_counter() - t0:.1f} s"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
