"""Colab without surprises: the setup cell keeps the runtime's torch, the URL is named once, solutions are folded.

The end-to-end test is a simulation of a Colab runtime: a fresh virtual environment (no system site-packages) in
which only torch, torchvision, ipykernel, pip and what they depend on are importable -- the packages this machine
already has, linked into one folder instead of installed again (copying the multi-GB CUDA build of torch into a new
venv would take minutes; the venv sees the same files either way). A chapter's notebook, as stored, runs in a kernel
of that venv, from an empty working folder like Colab's /content: its hidden setup cell clones the course from a
local git URL, installs it without dependencies, installs the missing dependencies (matplotlib, tqdm, ipywidgets),
and the chapter runs. The test then checks that torch is still the one that was there.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CHAPTER = "03_data"  # reads the bundled sample through torchvision, as a Colab reader does first


def _make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", BOOK / "make_notebooks.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    return mk


def _closure(names: list[str]) -> set[str]:
    """These distributions and everything they require (no extras), as installed here."""
    seen, todo = {}, list(names)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        dist = md.distribution(name)
        seen[key] = dist
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return set(seen.values())


def _link_view(dists, view: Path) -> None:
    """Symlink each distribution's top-level files and folders (packages, modules, .dist-info) into ``view``."""
    site = Path(sysconfig.get_paths()["purelib"])
    view.mkdir(parents=True)
    for dist in dists:
        base = Path(dist.locate_file(""))
        for f in dist.files or []:
            top = f.parts[0]
            if top in ("..", "__pycache__") or (view / top).exists() or not (base / top).exists():
                continue
            (view / top).symlink_to(base / top)
    assert (view / "torch").exists(), f"torch not found under {site}"


def test_repository_url_is_named_once():
    url = _make_notebooks().repository_url()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    holders = [p for p in tracked.split() if not p.endswith(".ipynb") and (ROOT / p).is_file()
               and url in (ROOT / p).read_text(encoding="utf-8", errors="ignore")]
    assert holders == ["_config.yml"], holders


def test_setup_cell_installs_the_course_without_its_dependencies():
    setup = _make_notebooks().SETUP
    assert "--no-deps -e /tmp/alexnet-handson" in setup and "pip install -q -e" not in setup
    assert "/tmp/alexnet-handson/book/runs" == str(__import__("alexnet_lib.runs").runs.CLONE_RUNS)


def test_solutions_are_folded_in_every_notebook():
    """No MyST dropdown is left (Jupyter and Colab show those open); each solutions block is a <details>."""
    for path in sorted(BOOK.glob("zh/*.ipynb")) + sorted(BOOK.glob("en/*.ipynb")):
        md_cells = ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                    if c["cell_type"] == "markdown"]
        text = "\n".join(md_cells)
        assert ":class: dropdown" not in text, f"{path}: a MyST dropdown shows open in Jupyter and Colab"
        for m in re.finditer(r"^#+ *(Exercises|练习)", text, re.M):
            after = text[m.end():]
            assert "<details>\n<summary>" in after and after.count("<details>") == after.count("</details>"), path


def test_solutions_are_folded_in_the_built_pages():
    html = sorted((ROOT / "_build" / "html" / "book").glob("*/*.html"))
    if not html:
        pytest.skip("the book is not built (jupyter-book build . -W, the README's first command)")
    folded = [p for p in html if re.search(r"<details>\s*<summary>(Solutions|参考答案)</summary>",
                                           p.read_text(encoding="utf-8"))]
    exercises = [p for p in html if re.search(r"<h\d[^>]*>(Exercises|练习)", p.read_text(encoding="utf-8"))]
    assert exercises and set(exercises) <= set(folded)
    assert not any('class="admonition dropdown' in p.read_text(encoding="utf-8") for p in html)


@pytest.mark.slow
def test_colab_like_runtime_keeps_its_torch_and_runs_a_chapter(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    view, venv, content, clone = (tmp_path / n for n in ("view", "venv", "content", "alexnet-handson"))
    _link_view(_closure(["torch", "torchvision", "ipykernel", "pip"]), view)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "preinstalled.pth").write_text(str(view) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "ALEXNET_SHARE")}
    probe = "import importlib.util as u; print([m for m in ('torch', 'matplotlib', 'alexnet_lib') if u.find_spec(m)])"
    assert subprocess.run([py, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env).stdout.split() \
        == ["['torch']"]

    # the chapter's notebook (as make_notebooks builds it; test_notebooks checks the stored one is the same), with
    # the course cloned from this repository (file://) into a private folder
    mk = _make_notebooks()
    src = tmp_path / f"{CHAPTER}.nbpy"  # as committed: the clone has the commit, not this working tree
    src.write_text(subprocess.run(["git", "show", f"HEAD:book/src/{CHAPTER}.nbpy"], cwd=ROOT, capture_output=True,
                                  text=True, check=True).stdout, encoding="utf-8")
    nb = mk.build(CHAPTER, "en", mk.parse(src))
    setup = nb.cells[1]
    assert setup.source.startswith(mk.SETUP)
    setup.source = setup.source.replace(mk.repository_url(), f"file://{ROOT}") \
        .replace("/tmp/alexnet-handson", str(clone)) \
        .replace("runs.find_root()", f"runs.find_root({str(clone / 'book' / 'en')!r})")
    nb.cells.append(nbformat.v4.new_code_cell(
        "import alexnet_lib, matplotlib, torch\n"
        "print(json.dumps({'torch': torch.__file__, 'version': torch.__version__, 'course': alexnet_lib.__file__,"
        " 'matplotlib': matplotlib.__file__}))".replace("json.dumps", "__import__('json').dumps")))

    spec = tmp_path / "kernels" / "kernels" / "colab-sim"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(py), "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"], "display_name": "colab-sim",
                                                  "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "kernels"))
    content.mkdir()
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", ALEXNET_PROFILE="quick",
               PYDEVD_DISABLE_FILE_VALIDATION="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    NotebookClient(nb, kernel_name="colab-sim", timeout=300,
                   resources={"metadata": {"path": str(content)}}).execute(env=env)

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    # the kernel may send one printed line as several stream messages (it flushes on a timer): join them
    facts = json.loads("".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream"))
    import torch
    assert Path(facts["torch"]).resolve() == Path(torch.__file__).resolve()  # the runtime's torch, untouched
    assert facts["version"] == torch.__version__
    assert Path(facts["course"]).resolve().is_relative_to(clone.resolve())  # the course from the clone
    assert Path(facts["matplotlib"]).resolve().is_relative_to(Path(purelib).resolve())  # installed by the cell
