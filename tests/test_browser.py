"""The built book in a real browser with the network off: every explorer responds without a kernel, formulas are
typeset, and pages read well at the book's width.

Headless Chromium (the README's install command installs it) is driven over the DevTools protocol through a pipe
(``--remote-debugging-pipe``: no extra Python package, no port). The site is served from 127.0.0.1 while every host
name fails to resolve, so a page that still fetched MathJax, require.js or a widget manager from a CDN would show
raw LaTeX or empty widgets here, and its failed request is reported. The book is built once per test session (the
``site`` fixture of ``test_site.py``).

For each page, zh and en: no console error or failed request; no raw ``$$`` and typeset math where the page has
formulas; no ``NBVAL_`` marker in the text; no code cell or output wider than its column (long lines wrap), and
no printed table wider than it; "Previous"/"Next" stay
in the page's language; the page (HTML and its images) weighs at most 3 MB. For each explorer (the static
HTML of :mod:`alexnet_lib.widgets`), every control is moved and the explorer's screenshot must change.
"""
from __future__ import annotations

import fcntl
import functools
import http.server
import io
import json
import os
import select
import subprocess
import threading
import time
from pathlib import Path

import pytest

from test_site import chromium, site  # noqa: F401  (the session's one build of the book)

MAX_PAGE_BYTES = 3_000_000
# Pages with explorers, and how many each has.
EXPLORERS = {"01_architecture": 1, "04_activations": 1, "05_dropout": 1, "06_augmentation": 1, "11_seeing": 1}
MATH_PAGES = ("04_activations", "05_dropout")
LANGS = ("zh", "en")
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]  # every host name but the site's fails


class CDP:
    """A minimal DevTools-protocol client over Chromium's pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, args: list[str]):
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()

        def fds():  # in the child: its fd 3 reads our commands, its fd 4 writes the replies
            a, b = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([*args, "--remote-debugging-pipe"], preexec_fn=fds, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_child)
        os.close(from_child)
        self._buf, self._id, self.events = b"", 0, []

    def _read(self, timeout: float) -> dict | None:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.proc.stderr.read().decode()[-2000:]}")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            reply = self._read(max(0.01, end - time.monotonic()))
            if reply is None:
                break
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)
        raise TimeoutError(f"no reply to {method} within {timeout} s")

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            msg = self._read(left)
            if msg is not None:
                self.events.append(msg)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        os.close(self._r)


class Tab:
    """One page in the browser: evaluate JavaScript, take screenshots, and what went wrong while it ran."""

    def __init__(self, cdp: CDP, width: int = 1280, height: int = 2000):
        self.cdp, self.height = cdp, height
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                        "mobile": False})

    def send(self, method, params=None, timeout=30):
        return self.cdp.send(method, params, self.session, timeout)

    def open(self, url: str, timeout: float = 30) -> None:
        start = len(self.cdp.events)
        self.send("Page.navigate", {"url": url})
        end = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == self.session
                      for e in self.cdp.events[start:]):
            if time.monotonic() > end:
                raise TimeoutError(f"{url} did not load within {timeout} s")
            self.cdp.pump(0.1)
        self.mark = start

    def eval(self, js: str, timeout: float = 30):
        r = self.send("Runtime.evaluate", {"expression": js, "returnByValue": True, "awaitPromise": True},
                      timeout=timeout)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{js[:200]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def screenshot(self, selector: str) -> bytes:
        import base64
        box = self.eval(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            el.scrollIntoView({{block: "start"}}); window.scrollBy(0, -100);  // clear of the sticky header
            const r = el.getBoundingClientRect();
            return [r.x + window.scrollX, r.y + window.scrollY, r.width, Math.min(r.height, innerHeight - r.y)]; }})()""")
        x, y, w, h = box  # page coordinates, within the viewport
        shot = self.send("Page.captureScreenshot", {"format": "png", "clip": {
            "x": x, "y": y, "width": max(w, 1), "height": max(h, 1), "scale": 1}})
        return base64.b64decode(shot["data"])

    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions and failed requests since the page was opened."""
        out = []
        for e in self.cdp.events[self.mark:]:
            if e.get("sessionId") != self.session:
                continue
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('exception', {}).get('description') or p}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                if not p["entry"].get("url", "").endswith("/favicon.ico"):  # the browser's own request
                    out.append(f"log: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif m == "Network.loadingFailed" and not p.get("canceled"):
                out.append(f"request failed: {p.get('errorText')} ({self._url(p['requestId'])})")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.cdp.events[self.mark:]
                if e.get("sessionId") == self.session and e.get("method") == "Network.requestWillBeSent"]

    def _url(self, request_id):
        return next((e["params"]["request"]["url"] for e in self.cdp.events
                     if e.get("method") == "Network.requestWillBeSent"
                     and e["params"].get("requestId") == request_id), "?")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(site):  # noqa: F811
    """The built site over HTTP on 127.0.0.1 (as a reader's web server would serve it)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-cdp")
    cdp = CDP([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", *OFFLINE, "about:blank"])
    yield cdp
    cdp.close()


def changed(a: bytes, b: bytes) -> float:
    """The share of pixels that differ between two screenshots (of possibly different sizes: 1.0)."""
    from PIL import Image, ImageChops
    ia, ib = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
    if ia.size != ib.size:
        return 1.0
    diff = ImageChops.difference(ia, ib).convert("L").point(lambda v: 255 if v > 16 else 0)
    return sum(diff.histogram()[255:]) / (ia.size[0] * ia.size[1])


PAGE_FACTS = """(() => {
  const article = document.querySelector("article") || document.body;
  const text = article.innerText;
  const wide = [...article.querySelectorAll(".cell_input pre, .cell_output pre, .cell_output .output, "
                                          + ".cell_output table")]
    .filter(el => el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0)
    .map(el => `${el.className || el.tagName}: ${el.scrollWidth} > ${el.clientWidth}: `
               + el.textContent.trim().split("\\n")[0].slice(0, 80));
  // lines of printed tables (two or more gaps of 2+ spaces between columns) that would wrap, so lose their columns
  const ctx = document.createElement("canvas").getContext("2d");
  const wrapped = [...article.querySelectorAll(".cell_output pre")].flatMap(el => {
      const st = getComputedStyle(el);
      if (!el.clientWidth) return [];
      ctx.font = `${st.fontSize} ${st.fontFamily}`;
      const room = el.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight);
      return el.textContent.split("\\n").filter(line => (line.trim().match(/\\S {2,}(?=\\S)/g) || []).length >= 2
                                                   && ctx.measureText(line).width > room + 1)
        .map(line => `${Math.round(ctx.measureText(line).width)} > ${Math.round(room)}: ${line.trim().slice(0, 70)}`);
    });
  const nav = [...document.querySelectorAll(".prev-next-area a")].map(a => a.getAttribute("href"));
  const images = [...document.images].filter(i => !i.src.startsWith("data:")).map(i => i.src);
  return {text, wide, wrapped, nav, images, explorers: article.querySelectorAll(".anx-explorer").length,
          math: article.querySelectorAll("mjx-container").length,
          rawMath: (text.match(/\\$\\$|\\\\\\(|\\\\begin\\{/g) || []).length};
})()"""

MATH_READY = """new Promise(done => {
  const t0 = Date.now();
  if (!document.querySelector("script[src*='mathjax']")) return done(null);  // a page without formulas
  (function wait() {
    const mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) mj.startup.promise.then(() => done(true));
    else if (Date.now() - t0 > 15000) done(false); else setTimeout(wait, 100);
  })();
})"""


def pages_to_check(site):  # noqa: F811
    return ["book/index.html"] + [f"book/{lang}/{p.stem}.html" for lang in LANGS
                                  for p in sorted((site / "book" / lang).glob("*.html"))]


@pytest.fixture(scope="module")
def facts(site, served, browser):  # noqa: F811
    """What each page shows in the browser (one tab, pages in turn)."""
    tab = Tab(browser)
    out = {}
    for page in pages_to_check(site):
        tab.open(f"{served}/{page}")
        math_ok = tab.eval(MATH_READY)
        f = tab.eval(PAGE_FACTS)
        f["math_ready"], f["problems"], f["requests"] = math_ok, tab.problems(), tab.requests()
        out[page] = f
    return out


def test_pages_load_offline_without_errors(facts):
    assert len(facts) >= 2 * 13, sorted(facts)
    for page, f in facts.items():
        assert not f["problems"], f"{page}: {f['problems']}"
        outside = [u for u in f["requests"] if not u.startswith("http://127.0.0.1") and not u.startswith("data:")]
        assert not outside, f"{page} asks for files outside the site: {outside}"


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", MATH_PAGES)
def test_math_is_typeset_offline(facts, name, lang):
    f = facts[f"book/{lang}/{name}.html"]
    assert f["math_ready"], "MathJax did not start (not served by the site?)"
    assert f["math"] > 0 and f["rawMath"] == 0, f"{name} ({lang}): {f['math']} formulas typeset, {f['rawMath']} raw"


def test_pages_read_well(facts):
    markers = [page for page, f in facts.items() if "NBVAL_" in f["text"]]
    assert not markers, f"pages that show an nbval marker: {markers}"
    wide = [f"{page}: {w}" for page, f in facts.items() for w in f["wide"]]
    assert not wide, "code cells or outputs wider than the column:\n" + "\n".join(wide)
    wrapped = [f"{page}: {w}" for page, f in facts.items() for w in f["wrapped"]]
    assert not wrapped, "printed tables wider than the column (their lines wrap):\n" + "\n".join(wrapped)


def test_next_and_previous_stay_in_the_language(facts, site):  # noqa: F811
    """The index has neither link (it links to both prefaces itself); every other link stays in its language."""
    checked = 0
    for page, f in facts.items():
        lang = page.split("/")[1] if page.count("/") == 2 else None
        for href in f["nav"]:
            target = (site / page).parent.joinpath(href.split("#")[0]).resolve().relative_to(site.resolve())
            assert lang and target.parts[:2] == ("book", lang), f"{page}: 'Previous'/'Next' leads to {target}"
            checked += 1
    assert checked >= 2 * 2 * 12, checked  # the chapters have both links


def test_page_weight(facts, site):  # noqa: F811
    """Each page with its images (data URIs are part of the HTML) stays within MAX_PAGE_BYTES."""
    for page, f in facts.items():
        html = (site / page).stat().st_size
        images = {u.split("/_images/", 1)[1] for u in f["images"] if "/_images/" in u}
        total = html + sum((site / "_images" / i).stat().st_size for i in images)
        assert total <= MAX_PAGE_BYTES, f"{page}: {total / 1e6:.2f} MB (HTML {html / 1e6:.2f} MB)"


MOVES = """((root, k) => {
  const el = root.querySelectorAll("[data-control]")[k];
  if (el.tagName === "SELECT") el.selectedIndex = (el.selectedIndex + 1) % el.options.length;
  else el.value = +el.value < +el.max ? +el.value + 1 : +el.min;
  el.dispatchEvent(new Event("input", {bubbles: true})); el.dispatchEvent(new Event("change", {bubbles: true}));
  return root.querySelectorAll("[data-control]").length;
})"""


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("name", sorted(EXPLORERS))
def test_explorers_respond_without_a_kernel(site, served, browser, name, lang, tmp_path):  # noqa: F811
    tab = Tab(browser)
    tab.open(f"{served}/book/{lang}/{name}.html")
    tab.eval(MATH_READY)
    time.sleep(0.3)
    n = tab.eval("document.querySelectorAll('article .anx-explorer').length")
    assert n == EXPLORERS[name], f"{name} ({lang}): {n} explorers, expected {EXPLORERS[name]}"
    for i in range(n):
        root = f"document.querySelectorAll('article .anx-explorer')[{i}]"
        sel = f"#{tab.eval(root + '.id')}"
        controls = tab.eval(f"{root}.querySelectorAll('[data-control]').length")
        assert controls >= 2, f"{name} ({lang}): explorer {sel} has {controls} controls"
        for k in range(controls):
            before = tab.screenshot(sel)
            tab.eval(f"{MOVES}({root}, {k})")
            time.sleep(0.15)
            after = tab.screenshot(sel)
            share = changed(before, after)
            if os.environ.get("ALEXNET_SCREENS"):
                Path(os.environ["ALEXNET_SCREENS"]).mkdir(parents=True, exist_ok=True)
                for tag, png in (("before", before), ("after", after)):
                    Path(os.environ["ALEXNET_SCREENS"], f"{lang}_{name}_{i}_c{k}_{tag}.png").write_bytes(png)
            assert share > 0.002, f"{name} ({lang}): moving control {k} of {sel} changed {share:.2%} of the picture"
    assert not tab.problems(), tab.problems()


# --- the static twins, without a browser -------------------------------------------------------------------------

def test_static_twin_holds_every_frame_once():
    """A frame per combination of control values, identical pictures stored once, and the first frame shown."""
    import re as _re

    from alexnet_lib.widgets import static_explorer

    pngs = {}

    def frame(a, b):  # b does not change the picture: pictures are shared
        return [pngs.setdefault(a, f"png-{a}".encode())]

    html = static_explorer("demo", [("a", ["x", "y", "z"], [0, 1, 2], 1, "select"),
                                    ("b", ["1", "2"], [1, 2], 0, "range")], frame, lang="zh")
    data = json.loads(_re.search(r"<script type='application/json' class='anx-data'>(.*?)</script>", html).group(1))
    assert data["sizes"] == [3, 2] and len(data["frames"]) == 6 and len(data["pool"]) == 3
    assert data["frames"][2 * 1 + 0] == data["frames"][2 * 1 + 1]  # a = y, either b
    assert "网页上的画面" in html and "data-control='1'" in html and "<option selected>y</option>" in html


def test_trace_table_says_where_a_side_breaks():
    from alexnet_lib import models
    from alexnet_lib.trace import trace, valid_sizes
    from alexnet_lib.widgets import trace_table

    lo, hi = valid_sizes(models.d2l_alexnet())
    t = trace_table(["d2l_alexnet"], [28, lo - 1, lo, hi + 1])["d2l_alexnet"]
    assert (t["lo"], t["hi"]) == (lo, hi)
    ok = t["sides"][lo]
    assert "failed" not in ok and len(ok["shapes"]) == len(t["layers"])
    assert ok["shapes"] == ["×".join(map(str, r["shape"])) for r in trace(models.d2l_alexnet(), (1, lo, lo)).rows]
    names = [layer[0] for layer in t["layers"]]
    tiny = t["sides"][28]
    assert names[tiny["failed"]] == "features.5" and tiny["why"].startswith("256×2×2")  # the 3×3 pooling window
    for side in (lo - 1, hi + 1):  # the conv stack runs; the dense head wants 256×5×5 = 6400 features
        r = t["sides"][side]
        assert names[r["failed"]] == "classifier.0" and len(r["shapes"]) == r["failed"] and "6400" in r["why"]
