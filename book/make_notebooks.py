"""Build the zh and en notebooks of a chapter from its one source file, and run them to store their outputs.

A source ``book/src/NAME.nbpy`` is a Python file in Jupytext's percent format (the cells VS Code, PyCharm and
Jupytext read), with the page language as cell metadata:

    # %% [markdown] lang="zh"     a markdown cell for the Chinese page (each line commented: "# text", "#")
    # %% [markdown] lang="en"     a markdown cell for the English page
    # %% [markdown]               a markdown cell for both
    # %%                          a code cell (the same in both languages)
    # %% tags=["remove-input"]    cell tags, after any of the above (JSON, as Jupytext writes them)

From it this writes ``book/zh/NAME.ipynb`` and ``book/en/NAME.ipynb`` (each opening with a link to its twin), so the
two pages share their code cells by construction; ``tests/test_notebooks.py`` checks that they still do. Unless
``--no-exec`` is given, each notebook is then executed top to bottom in a fresh kernel in its own folder with
``ALEXNET_PROFILE=quick`` (what nbval re-runs), and saved with its outputs.

    python book/make_notebooks.py                 # all chapters
    python book/make_notebooks.py 04_activations  # one chapter
    python book/make_notebooks.py 04_activations --prose   # text only: keep the stored outputs and values

Numbers in the prose are never typed: a markdown cell writes ``{{name}}`` (a value a code cell recorded with
``alexnet_lib.prose.value("name", x)``) or ``{{run:NAME:FIELD}}`` (a field of the recorded run
``book/runs/NAME.json``), each with an optional format (``{{acc:.1%}}``; see :mod:`alexnet_lib.prose`). After a
notebook has run, the values its cells recorded are collected and every placeholder is replaced, in both
languages; one without a value stops the build. The notebook keeps the values and a hash of each recorded run it
read in its metadata (``alexnet``), so ``tests/test_notebooks.py`` can regenerate the text without running anything
and fail when a source or a run changed and the notebook was not regenerated. A measurement a cell makes (a speed,
a timing) is made once per run of this script for both languages (``alexnet_lib.prose.shared``), so the two pages
show the same numbers.

Citations: ``{cite:p}`key``` (keys of ``book/references.bib``) become links to the page language's bibliography
(``references.md`` in ``book/zh`` and ``book/en``; sphinxcontrib-bibtex with a key prefix per language).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from alexnet_lib import prose  # noqa: E402
from alexnet_lib import runs as runs_lib  # noqa: E402

BOOK = Path(__file__).resolve().parent
LANGS = ("zh", "en")
TWIN = {"zh": "[English version →](../en/{name}.ipynb)", "en": "[中文版 →](../zh/{name}.ipynb)"}
MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?P<meta>(?: [A-Za-z_]+=\S+)*)\s*$")
META = re.compile(r" ([A-Za-z_]+)=(\S+)")


def repository_url() -> str:
    """Where the course is published: ``repository.url`` in ``_config.yml``, the one place that names it."""
    import yaml
    return yaml.safe_load((BOOK.parent / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]


# The hidden first cell. On Colab (or any kernel without the course) it clones the repository, installs the library
# without its dependencies, then only the dependencies that are missing: a preinstalled torch (Colab's CUDA build) is
# kept as it is, never replaced by a multi-GB download that may not match the driver.
SETUP = """\
# Setup: on Colab (or any fresh kernel) fetch the course (library + recorded runs) and a CJK font, keeping the torch
# that is installed; where alexnet_lib is already importable this does nothing.
import importlib.util, sys
if importlib.util.find_spec("alexnet_lib") is None:
    import importlib.metadata, re, tomllib
    !git clone -q --depth 1 {url} /tmp/alexnet-handson
    %pip install -q --no-deps -e /tmp/alexnet-handson
    with open("/tmp/alexnet-handson/pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    def installed(req):
        try:
            return bool(importlib.metadata.version(re.match(r"[A-Za-z0-9_.-]+", req)[0]))
        except importlib.metadata.PackageNotFoundError:
            return False
    missing = " ".join(f"'{{r}}'" for r in deps if not installed(r))
    if missing:
        %pip install -q {{missing}}
    sys.path.insert(0, "/tmp/alexnet-handson")  # importable in this kernel without a restart
    if "google.colab" in sys.modules:
        !apt-get -qq install -y fonts-noto-cjk > /dev/null""".format(url=repository_url())
# The page's edge settings, decided here once and passed to the library: the recorded-runs folder and the language
# (the one line in which the zh and en notebooks differ).
PAGE = """
from alexnet_lib import plot, runs
runs.set_root(runs.find_root())
plot.set_lang("{lang}")"""

# Exercise solutions are written as MyST dropdowns (```{admonition} Solutions + :class: dropdown) in the sources; the
# notebooks get an HTML <details> block instead, which the built pages, Jupyter and Colab all show folded.
DROPDOWN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{admonition\}[ \t]*(?P<title>[^\n]*)\n:class:[ \t]*dropdown[ \t]*\n"
                      r"(?P<body>.*?)\n(?P=fence)[ \t]*$", re.M | re.S)


def fold_solutions(text: str) -> str:
    """Each dropdown admonition becomes ``<details><summary>TITLE</summary> BODY </details>`` (body unchanged)."""
    return DROPDOWN.sub(lambda m: f"<details>\n<summary>{m['title'].strip()}</summary>\n\n"
                                  f"{m['body'].strip(chr(10))}\n\n</details>", text)


def parse(src: Path) -> list[dict]:
    """The cells of a percent-format source: kind, language (None: both), tags and text."""
    cells, cur = [], None
    for n, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
        m = MARKER.match(line)
        if m:
            if cur is not None:
                cells.append(cur)
            meta = {k: json.loads(v) for k, v in META.findall(m["meta"])}
            if meta.get("lang") not in (None, *LANGS) or set(meta) - {"lang", "tags"}:
                raise SystemExit(f"{src}:{n}: unknown cell metadata {m['meta'].strip()!r} (lang=\"zh\"|\"en\", tags=[...])")
            cur = {"kind": "markdown" if m["md"] else "code", "lang": meta.get("lang"), "lines": [],
                   "tags": list(meta.get("tags", []))}
        elif cur is None:
            if line.strip():
                raise SystemExit(f"{src}:{n}: text before the first '# %%' marker: {line!r}")
        elif cur["kind"] == "markdown":
            if line.strip() and not (line == "#" or line.startswith("# ")):
                raise SystemExit(f"{src}:{n}: a markdown line must be commented ('# text' or '#'): {line!r}")
            cur["lines"].append(line[2:] if line.startswith("# ") else "")
        else:
            cur["lines"].append(line)
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


RUNS = BOOK / "runs"
BIB = BOOK / "references.bib"
_CITE = re.compile(r"\{cite(:[a-z]+)?\}`([^`]+)`")
# the last cell of a run, removed afterwards: prints what the chapter's cells recorded with prose.value()
_COLLECT = "import json as _json\nfrom alexnet_lib import prose as _prose\nprint(_json.dumps(_prose.recorded()))"


def bib_keys(path: Path = BIB) -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", path.read_text(encoding="utf-8"), flags=re.M)) if path.exists() else set()


def cite(text: str, lang: str, keys: set[str]) -> str:
    """``{cite:p}`a,b``` -> ``{cite:p}`en-a,en-b``` (each language's bibliography has its own key prefix)."""
    def one(m: re.Match) -> str:
        names = [k.strip() for k in m.group(2).split(",")]
        unknown = [k for k in names if k not in keys]
        if unknown:
            raise SystemExit(f"citation key(s) {unknown} are not in {BIB.relative_to(BOOK.parent)}")
        return f"{{cite{m.group(1) or ''}}}`{','.join(f'{lang}-{k}' for k in names)}`"
    return _CITE.sub(one, text)


def load_run(name: str) -> list[dict]:
    return runs_lib.replicates(name, RUNS)


def run_files(name: str) -> list[Path]:
    return runs_lib.seed_files(name, RUNS) or [RUNS / f"{name}.json"]


def runs_read(cells: list[dict], used: set[str]) -> dict[str, str]:
    """sha256 of every recorded run the chapter reads: the runs its placeholders name and every run name that
    appears as a string in its code."""
    code = "\n".join(c["text"] for c in cells if c["kind"] == "code")
    names = set(used)
    for n in runs_lib.available(RUNS):
        base = n.rsplit("/", 1)[0] if n.rsplit("/", 1)[-1].startswith("seed") else n
        if f'"{base}"' in code or f"'{base}'" in code:
            names.add(base)
    return {n: hashlib.sha256(b"".join(p.read_bytes() for p in run_files(n))).hexdigest()[:16]
            for n in sorted(names) if all(p.exists() for p in run_files(n))}


def other_chapters(cells: list[dict], lang: str) -> dict:
    """Values of other chapters that this one quotes (``{{00_preface.name}}``), from their stored notebooks."""
    out = {}
    for c in cells:
        for inner in prose.PLACEHOLDER.findall(c["text"]) if c["kind"] == "markdown" else ():
            key = inner.split(":")[0].strip()
            chapter, dot, name = key.partition(".")
            nb = stored(chapter, lang) if dot and not inner.startswith("run:") else None
            if nb is not None and name in nb.metadata.get("alexnet", {}).get("values", {}):
                out[key] = nb.metadata["alexnet"]["values"][name]
    return out


def prose_text(text: str, lang: str, values: dict | None, used: set[str], keys: set[str]) -> str:
    text = cite(join_cjk_lines(text), lang, keys)
    if values is None:
        return text
    try:
        return prose.resolve(text, lang, values, load_run, used)
    except prose.Unresolved as e:
        raise prose.Unresolved(f"{lang}: {e.args[0]}\n  in: {text[:200]!r}") from None


NBVAL_MARKER = re.compile(r"^# (NBVAL_[A-Z_]+)\n")


def nbval_tags(text: str, tags: list[str]) -> tuple[str, list[str]]:
    """Leading ``# NBVAL_...`` comment lines of a code cell become nbval's cell tags (``nbval-ignore-output``, ...),
    so readers do not see them as the first line of the cell."""
    tags = list(tags)
    while m := NBVAL_MARKER.match(text + "\n"):
        tags.append(m.group(1).lower().replace("_", "-"))
        text = text[m.end():] if len(text) >= m.end() else ""
    return text, tags


def build(name: str, lang: str, cells: list[dict], values: dict | None = None) -> nbformat.NotebookNode:
    """The notebook of ``name`` in ``lang``. With ``values`` (what its cells recorded), every placeholder in its
    text is filled in and the notebook's metadata records the values and the runs read; without, the text keeps its
    placeholders (the notebook that gets executed)."""
    keys, used = bib_keys(), set()
    if values is not None:
        values = {**values, **other_chapters(cells, lang)}  # another chapter's values as its page has them now
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    out = [nbformat.v4.new_markdown_cell(TWIN[lang].format(name=name)),
           nbformat.v4.new_code_cell(SETUP + PAGE.format(lang=lang), metadata={"tags": ["remove-cell"]})]
    for c in cells:
        if c["kind"] == "markdown" and c["lang"] not in (None, lang):
            continue
        if c["kind"] == "markdown":
            out.append(nbformat.v4.new_markdown_cell(fold_solutions(prose_text(c["text"], lang, values, used, keys)),
                                                     metadata={"tags": c["tags"]} if c["tags"] else {}))
        else:
            text, tags = nbval_tags(c["text"], c["tags"])
            out.append(nbformat.v4.new_code_cell(text, metadata={"tags": tags} if tags else {}))
    for i, cell in enumerate(out):  # stable ids keep diffs small
        cell["id"] = f"{name[:40]}-{lang}-{i}"
    nb.cells = out
    if values is not None:
        nb.metadata["alexnet"] = {"values": values, "runs": runs_read(cells, used)}
    return nb


REFERENCES = {"zh": "# 参考文献\n\n各章引用的文献。\n", "en": "# References\n\nThe works the chapters cite.\n"}


def write_pages() -> None:
    """The glossary and references pages of each language (markdown, generated from book/terms.py and
    book/references.bib)."""
    sys.path.insert(0, str(BOOK))
    import terms
    for lang in LANGS:
        twin = {"zh": "[English version →](../en/{page}.md)", "en": "[中文版 →](../zh/{page}.md)"}[lang]
        pages = {"glossary": terms.glossary(lang),
                 "references": REFERENCES[lang] + f"\n```{{bibliography}}\n:all:\n:keyprefix: {lang}-\n```\n"}
        for page, text in pages.items():
            text = twin.format(page=page) + "\n\n" + text
            path = BOOK / lang / f"{page}.md"
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")


def stored(name: str, lang: str) -> nbformat.NotebookNode | None:
    path = BOOK / lang / f"{name}.ipynb"
    return nbformat.read(path, as_version=4) if path.exists() else None


def with_outputs(nb: nbformat.NotebookNode, executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with the outputs of ``executed``, whose code cells must be the same."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    done = [c for c in executed.cells if c.cell_type == "code"]
    # the first code cell is the generated setup cell (this file's SETUP), not the chapter's
    if len(code) != len(done) or [c.source for c in code[1:]] != [c.source for c in done[1:]]:
        raise SystemExit("the code cells differ from the stored notebook's: run without --prose")
    for c, d in zip(code, done):
        c.outputs, c.execution_count = d.outputs, d.execution_count
    return nb


def run(nb: nbformat.NotebookNode, folder: Path, timeout: int) -> dict:
    """Execute ``nb`` in ``folder``; return the values its cells recorded with ``prose.value``."""
    os.environ["ALEXNET_PROFILE"] = "quick"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    nb.cells.append(nbformat.v4.new_code_cell(_COLLECT))
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        last = nb.cells.pop()
    text = "".join(o.get("text", "") for o in last.outputs if o.get("output_type") == "stream")
    return json.loads(text.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="chapter names (default: every book/src/*.nbpy)")
    ap.add_argument("--no-exec", action="store_true", help="write the notebooks without running them")
    ap.add_argument("--lang", choices=LANGS, action="append", help="only this language (repeatable)")
    ap.add_argument("--prose", action="store_true",
                    help="rewrite the text only, keeping the stored notebook's outputs and values (its code cells "
                         "must be unchanged)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = ap.parse_args(argv)
    names = args.names or sorted(p.stem for p in (BOOK / "src").glob("*.nbpy"))
    write_pages()
    # the zh and en pages of a chapter show one measurement (alexnet_lib.prose.shared): a folder for this run
    share = tempfile.TemporaryDirectory(prefix="alexnet-share-")
    os.environ.setdefault(prose.SHARE_ENV, share.name)
    for name in names:
        cells = parse(BOOK / "src" / f"{name}.nbpy")
        for lang in args.lang or LANGS:
            folder = BOOK / lang
            t0 = time.perf_counter()
            old = stored(name, lang)
            old_values = old.metadata.get("alexnet", {}).get("values", {}) if old is not None else {}
            try:
                if args.prose:
                    if old is None:
                        raise SystemExit(f"{lang}/{name}.ipynb does not exist yet: run without --prose")
                    nb = with_outputs(build(name, lang, cells, old_values), old)
                    nb.metadata["alexnet"]["runs"] = old.metadata.get("alexnet", {}).get("runs", {})
                elif args.no_exec:
                    nb = build(name, lang, cells, old_values)
                else:
                    executed = build(name, lang, cells)
                    values = run(executed, folder, args.timeout)
                    nb = with_outputs(build(name, lang, cells, values), executed)
            except prose.Unresolved as e:
                raise SystemExit(f"{lang}/{name}: {e.args[0]}") from None
            nbformat.write(nb, folder / f"{name}.ipynb")
            print(f"{lang}/{name}.ipynb: {len(nb.cells)} cells"
                  + ("" if args.no_exec or args.prose else f", executed in {time.perf_counter() - t0:.1f} s"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
