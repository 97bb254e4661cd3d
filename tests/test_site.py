"""The built book, as a reader gets it: every internal link and image resolves, each zh page links to its en twin and
back, a real browser (headless Chromium) shows the expected headings with a CJK font in the font stack, and
matplotlib draws Chinese labels without missing glyphs.

The book is built once per test session into a temporary folder (``jupyter-book build . -W``; the notebooks are not
executed, so this takes seconds). Chromium and the CJK font come from the README's install command; without them
these tests fail (they are not skipped), since CI installs them.
"""
import fcntl
import io
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ("run the README's install command (apt-get install -y fonts-noto-cjk dataset-fashion-mnist chromium && "
           "pip install -r requirements.txt)")
EXTERNAL = ("http", "https", "mailto", "data", "javascript", "tel")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The book built with warnings as errors, as the README builds it, into a temporary folder, once per test run:
    test_browser.py imports this fixture, and under pytest-xdist its worker waits for the same build (a lock in the
    run's shared temporary folder) instead of building again. ``ALEXNET_SITE=path/_build/html`` tests an existing
    build instead."""
    if os.environ.get("ALEXNET_SITE"):
        return Path(os.environ["ALEXNET_SITE"]).resolve()
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out, done = shared / "site", shared / "site.done"
    with open(shared / "site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds, the others wait for it here
        if not done.exists():
            _build(out)
            done.write_text("ok")
    return out / "_build" / "html"


def _build(out: Path) -> None:
    exe = shutil.which("jupyter-book") or str(Path(sys.executable).with_name("jupyter-book"))
    if not Path(exe).exists():
        pytest.fail(f"jupyter-book is not installed: {INSTALL}")
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run([exe, "build", ".", "-W", "--path-output", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"jupyter-book build . -W failed:\n{(proc.stdout + proc.stderr)[-4000:]}")


class Page(HTMLParser):
    """The links, images and ids of one built page; which links are in the article (not the navigation)."""

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.links, self.ids, self.in_article, self.refresh = path, [], set(), 0, None
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article":
            self.in_article += 1
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) is not None and tag in ("a", "link", "img", "script", "source", "iframe"):
                self.links.append((tag, attrs[key], self.in_article > 0))
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            self.refresh = attrs["content"].split("url=", 1)[1]

    def handle_endtag(self, tag):
        if tag == "article":
            self.in_article -= 1


def internal(url: str) -> bool:
    scheme = urlsplit(url).scheme
    return scheme not in EXTERNAL and not url.startswith("//")


def target(page: Path, url: str) -> tuple[Path, str]:
    """The file a relative URL on ``page`` points to, and its #fragment."""
    parts = urlsplit(url)
    path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
    return path, unquote(parts.fragment)


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts
                  and not p.name.startswith("_probe"))


def broken_links(site: Path) -> list[str]:
    """Every internal href/src (and redirect) of the site's pages whose file, or #anchor in it, does not exist."""
    parsed: dict[Path, Page] = {}

    def get(p: Path) -> Page:  # each page parsed once (not once per link to it)
        if p not in parsed:
            parsed[p] = Page(p)
        return parsed[p]

    broken = []
    for page in pages(site):
        links = [(tag, url) for tag, url, _ in get(page).links]
        if get(page).refresh:
            links.append(("meta refresh", get(page).refresh))
        for tag, url in links:
            if not internal(url) or url in ("", "#"):
                continue
            path, fragment = target(page, url)
            where = f"{page.relative_to(site)}: <{tag}> {url}"
            if not path.is_file():
                broken.append(f"{where} -> missing file {path}")
            elif not path.is_relative_to(site):
                broken.append(f"{where} -> points outside the site")
            elif fragment and path.suffix == ".html" and fragment not in get(path).ids:
                broken.append(f"{where} -> no id {fragment!r} in {path.relative_to(site)}")
    return broken


def test_internal_links_and_images_resolve(site):
    assert {"index.html", "book/index.html", "book/zh/01_architecture.html", "book/en/01_architecture.html"} <= {
        str(p.relative_to(site)) for p in pages(site)}
    broken = broken_links(site)
    assert not broken, "broken links or images in the built book:\n" + "\n".join(broken)


def test_broken_links_would_be_caught(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ok.html").write_text('<p id="here">ok</p><img src="../pic.png">')
    (tmp_path / "pic.png").write_bytes(b"")
    (tmp_path / "a" / "bad.html").write_text(
        '<a href="ok.html#here">fine</a> <a href="https://example.org/x">external</a> <a href="#">top</a> '
        '<a href="ok.html#gone">no anchor</a> <img src="../missing.png"> <a href="#nowhere">no anchor here</a> '
        '<script src="../../outside.js"></script>')
    (tmp_path / "index.html").write_text('<meta http-equiv="Refresh" content="0; url=a/none.html" />')
    found = "\n".join(broken_links(tmp_path))
    for bad in ("ok.html#gone", "../missing.png", "#nowhere", "../../outside.js", "a/none.html"):
        assert bad in found, found
    assert len(broken_links(tmp_path)) == 5, found


def test_each_page_links_to_its_twin(site):
    zh = sorted(p.name for p in (site / "book" / "zh").glob("*.html"))
    en = sorted(p.name for p in (site / "book" / "en").glob("*.html"))
    assert zh and zh == en, f"pages in only one language: {sorted(set(zh) ^ set(en))}"
    for name in zh:
        for lang, other in (("zh", "en"), ("en", "zh")):
            page = site / "book" / lang / name
            in_text = {target(page, url)[0] for tag, url, article in Page(page).links
                       if tag == "a" and article and internal(url)}  # the page's own text, not the sidebar
            assert site / "book" / other / name in in_text, f"{lang}/{name} does not link to its twin {other}/{name}"


# --- in a real browser -------------------------------------------------------------------------------------------

PROBE = """<!DOCTYPE html><html><body><pre id="probe">pending</pre><script>
// Open each page in a frame, wait until it has loaded (after any redirect), and report what a reader would see.
const pages = %s;
const results = {};
let left = pages.length;
for (const [open, expect] of pages) {
  const frame = document.createElement("iframe");
  frame.style.width = "1280px"; frame.style.height = "1000px";
  frame.onload = () => {
    const doc = frame.contentDocument, win = frame.contentWindow;
    if (!doc.location.href.endsWith(expect)) return;  // a redirect: wait for the page it goes to
    const h1 = doc.querySelector("h1"), article = doc.querySelector("article") || doc.body;
    results[open] = {
      url: doc.location.href,
      h1: h1 ? h1.textContent.replace(/[#¶]/g, "").trim() : null,
      h2: [...article.querySelectorAll("h2")].map(h => h.textContent.replace(/[#¶]/g, "").trim()),
      fonts: [h1, article.querySelector("p")].filter(Boolean).map(e => win.getComputedStyle(e).fontFamily),
      stylesheets: [...doc.styleSheets].map(s => s.href || ""),
      images: [...doc.images].map(i => [i.getAttribute("src"), i.complete && i.naturalWidth > 0]),
      tables: article.querySelectorAll("table").length,
      outputs: [...article.querySelectorAll(".cell_output")].map(o => o.textContent),
      text: article.textContent,
    };
    if (--left === 0) document.getElementById("probe").textContent = JSON.stringify(results);
  };
  frame.src = open;
  document.body.appendChild(frame);
}
</script></body></html>
"""
PAGES = [("index.html", "book/index.html"), ("book/zh/01_architecture.html", "book/zh/01_architecture.html"),
         ("book/en/01_architecture.html", "book/en/01_architecture.html")]


def chromium() -> str:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.fail(f"Chromium is not installed, and the test of the built pages needs it: {INSTALL}")
    return exe


def chromium_args(tmp_path: Path) -> list[str]:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--allow-file-access-from-files",
            "--virtual-time-budget=15000"]


@pytest.fixture(scope="module")
def rendered(site, tmp_path_factory) -> dict:
    """What Chromium shows for each page of PAGES (one browser run for all of them)."""
    probe = site / "_probe.html"
    probe.write_text(PROBE % json.dumps(PAGES), encoding="utf-8")
    tmp = tmp_path_factory.mktemp("chromium")
    proc = subprocess.run([*chromium_args(tmp), "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                          timeout=120)
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found and found.group(1) != "pending", f"Chromium did not render the pages:\n{proc.stderr[-3000:]}"
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


@pytest.mark.parametrize("page, h1, h2, text", [
    ("index.html", "AlexNet 动手学 · AlexNet, hands-on", [], ["从前言开始", "Start with the preface"]),
    ("book/zh/01_architecture.html", "AlexNet 的架构", ["形状追踪"], ["English version"]),
    ("book/en/01_architecture.html", "The AlexNet architecture", ["shape trace"], ["中文版"]),
])
def test_pages_render_in_a_browser(rendered, page, h1, h2, text):
    r = rendered[page]
    assert r["h1"] == h1, r["h1"]
    for part in h2:
        assert any(part.lower() in h.lower() for h in r["h2"]), f"no section heading with {part!r}: {r['h2']}"
    for part in text:
        assert part in " ".join(r["text"].split()), f"{part!r} not on {page}"
    assert all(ok for _, ok in r["images"]), f"images that did not load: {r['images']}"
    if "architecture" in page:
        # the stored outputs are shown: the trace table of the d2l AlexNet, with its 46,764,746 parameters
        assert any("features.0" in o and "46,764,746" in o for o in r["outputs"]), r["outputs"]


def test_chinese_has_a_cjk_font(rendered):
    """The browser's font stack for headings and text holds a CJK font, and the system has that font."""
    for page in ("book/zh/01_architecture.html", "index.html"):
        r = rendered[page]
        assert any(s.split("?")[0].endswith("_static/cjk.css") for s in r["stylesheets"]), r["stylesheets"]
        for family in r["fonts"]:
            assert '"Noto Sans CJK SC"' in family, f"no CJK font in the font stack of {page}: {family}"
    if shutil.which("fc-match") is None:
        pytest.fail(f"fontconfig's fc-match is missing: {INSTALL}")
    match = subprocess.run(["fc-match", "-f", "%{family}|%{file}", "Noto Sans CJK SC"], capture_output=True,
                           text=True).stdout
    family, _, file = match.partition("|")
    assert "Noto Sans CJK SC" in family.split(",") and "NotoSansCJK" in file, \
        f"fc-match 'Noto Sans CJK SC' gives {match!r}, so Chinese would fall back to another font: {INSTALL}"


# --- matplotlib ------------------------------------------------------------------------------------------------------

def draw_with_chinese_labels() -> list[str]:
    """Draw a figure with Chinese labels through alexnet_lib.plot; return the warnings matplotlib gave."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alexnet_lib import plot
    history = {"epochs": [{"epoch": i, "loss": 1 / i, "train_acc": 0.5 + i / 10, "test_acc": 0.5 + i / 12}
                          for i in (1, 2, 3)]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ax = plot.plot_history(history, title="训练曲线：AlexNet 在 Fashion-MNIST 上", lang="zh")
        ax.set_ylabel(plot.t("accuracy", "zh"))
        ax.figure.savefig(io.BytesIO(), format="png")
        plt.close(ax.figure)
    return [str(w.message) for w in caught]


def test_matplotlib_draws_chinese_without_missing_glyphs():
    from alexnet_lib import plot
    assert plot.setup_fonts() is not None, f"no CJK font for matplotlib: {INSTALL}"
    missing = [m for m in draw_with_chinese_labels() if "missing from font" in m or re.search(r"Glyph .* missing", m)]
    assert not missing, missing


def test_missing_glyphs_would_be_caught():
    """The check above can fail: with only DejaVu Sans, the same drawing warns about missing glyphs."""
    import matplotlib
    from alexnet_lib import plot  # noqa: F401  (setup_fonts has run)
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"], "font.sans-serif": ["DejaVu Sans"]}):
        assert any("missing from font" in m for m in draw_with_chinese_labels())


# --- architecture diagrams -------------------------------------------------------------------------------------------

def test_architecture_diagrams_come_from_the_model():
    """Every convolution, pooling and dense layer is a box labelled from its settings, with the traced output
    shape; a change to the model changes the picture; labels in the page's language."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torch import nn

    from alexnet_lib import models
    from alexnet_lib.plot import architecture_blocks, draw_architectures
    from alexnet_lib.trace import trace

    net = models.d2l_alexnet()
    blocks = architecture_blocks(net, lang="en")
    kinds = [b["kind"] for b in blocks]
    assert kinds.count("conv") == 5 and kinds.count("pool") == 3 and kinds.count("dense") == 3
    assert blocks[1]["text"] == "11×11 conv, 96, stride 4, pad 1 + ReLU" and blocks[1]["shape"] == (96, 54, 54)
    assert blocks[-2]["text"] == "dense 4096 + ReLU, dropout 0.5"
    shapes = {r["layer"]: r["shape"] for r in trace(net).rows}
    assert all(b["shape"] == shapes[b["layer"]] for b in blocks[1:])
    net.features[10] = nn.Conv2d(384, 256, kernel_size=5, padding=2)  # a different last convolution, same shapes
    assert architecture_blocks(net, lang="zh")[7]["text"] == "5×5 卷积层，256 通道，填充 2 + ReLU"
    paper = architecture_blocks(models.paper_alexnet(), lang="zh")
    assert sum("局部响应归一化" in b["text"] for b in paper) == 2 and sum("分组 2" in b["text"] for b in paper) == 3
    fig = draw_architectures({"LeNet": models.lenet(), "AlexNet": models.d2l_alexnet()}, lang="zh")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "5×5 卷积层，6 通道，填充 2 + Sigmoid" in texts and "1×224×224" in texts and len(fig.axes) == 2
    plt.close(fig)


def test_epoch_axes_tick_at_whole_epochs():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alexnet_lib import plot
    for n in (2, 3, 10):  # matplotlib's own ticks would be 1.2, 1.4, ... or 2.5, 5.0, 7.5
        h = {"device_name": "cpu", "date": "2026-01-01", "settings": {}, "epochs": [
            {"epoch": i, "loss": 1 / i, "train_acc": 0.5, "test_acc": 0.5} for i in range(1, n + 1)]}
        for ax in [plot.plot_history(h, lang="en"), *plot.plot_runs({"a": h}, lang="zh").axes]:
            ax.figure.canvas.draw()
            ticks = [v for v in ax.get_xticks() if ax.get_xlim()[0] <= v <= ax.get_xlim()[1]]
            assert len(ticks) >= 2 and all(float(v).is_integer() for v in ticks), (n, ticks)
    plt.close("all")
