"""Run every chapter of the book on the machine at hand and write a report (for maintainers).

    python -m alexnet_lib notebooks --profile full --out book/runs/notebooks/h200.json
    python -m alexnet_lib notebooks --profile quick --only 04_activations --out /tmp/quick.json

Each chapter of one language (English by default) is built from its source ``book/src/NAME.nbpy`` as
``book/make_notebooks.py`` builds it (``--stored``: the stored ``book/LANG/NAME.ipynb`` instead) and executed top to
bottom in a fresh Jupyter kernel with nbclient, in the language's folder and in the given profile, with a time limit
per chapter; nothing in the book is changed. Before that, the check that the zh and en twins have the same code cells runs (a twin pair that
differs is reported, and its chapter still runs). The report is a JSON dict: profile, device name, torch version,
date, and one row per chapter (status ``ok``, ``error``, ``timeout`` or ``dead kernel``, seconds, the error's last
lines); it is rewritten after every chapter, so a run stopped half-way still leaves the chapters it finished.

The kernel imports ``alexnet_lib`` from this checkout (its folder is put first on ``PYTHONPATH``), so a machine needs
only the kernel packages (ipykernel, nbclient) and torch, not an installed course.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import platform
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

__all__ = ["BOOK", "chapters", "twin_differences", "code_digest", "stale", "run_chapter", "run_book", "main"]

BOOK = Path(__file__).resolve().parent.parent / "book"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def chapters(book: Path = BOOK, lang: str = "en", *, from_source: bool = False) -> list[str]:
    """The chapter names, in book order (the file names sort in reading order): of the stored notebooks of one
    language, or with ``from_source`` of the sources ``book/src/NAME.nbpy``."""
    return sorted(p.stem for p in ((book / "src").glob("*.nbpy") if from_source else (book / lang).glob("*.ipynb")))


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def twin_differences(book: Path = BOOK) -> dict[str, str]:
    """Chapters whose zh and en notebooks do not have the same code cells (the setup cell's language line aside):
    ``{name: what differs}``."""
    zh, en = set(chapters(book, "zh")), set(chapters(book, "en"))
    problems = {name: f"only in book/{'zh' if name in zh else 'en'}" for name in zh ^ en}
    for name in sorted(zh & en):
        a, b = _code_cells(book / "zh" / f"{name}.ipynb"), _code_cells(book / "en" / f"{name}.ipynb")
        if a:  # the generated setup cell names the page's language: its one allowed difference
            a[0] = a[0].replace('plot.set_lang("zh")', 'plot.set_lang("en")')
        if a != b:
            k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            problems[name] = f"code cell {k + 1} differs ({len(a)} code cells in zh, {len(b)} in en)"
    return problems


def _last_lines(text: str, n: int = 12) -> str:
    lines = [line.rstrip() for line in _ANSI.sub("", text).splitlines() if line.strip()]
    return "\n".join(lines[-n:])


def _kernel_env(profile: str, cache: Path | None = None) -> dict[str, str]:
    root = str(BOOK.parent)
    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, ALEXNET_PROFILE=profile, PYDEVD_DISABLE_FILE_VALIDATION="1",
               PYTHONPATH=root + (os.pathsep + path if path else ""))
    env.pop("ALEXNET_SHARE", None)  # every measurement made here, as in a reader's kernel (prose.shared)
    if hasattr(os, "sched_getaffinity"):  # a kernel pinned to fewer cores uses as many threads as it has cores
        env.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))
    if cache is not None:  # a cache folder of its own: the chapter runs as on a reader's first visit
        env["ALEXNET_CACHE"] = str(cache)
    return env


def _pin(slots, cores: int) -> None:
    """Pool initializer: this worker (and the kernels it starts, which inherit it) runs on its own ``cores`` cores."""
    k = slots.get()
    os.sched_setaffinity(0, set(range(k * cores, (k + 1) * cores)))


def code_digest(nb) -> str:
    """A digest of a notebook's code cells, the hidden setup cell left out: a report row keeps it, so the code it
    ran can be told from the code in the book now."""
    code = [c.source for c in nb.cells if c.cell_type == "code" and "remove-cell" not in c.metadata.get("tags", [])]
    return hashlib.sha256("\n\0".join(code).encode()).hexdigest()


def stale(report: dict, book: Path = BOOK) -> dict[str, str]:
    """Why a committed report no longer vouches for the book: ``{chapter: reason}`` for every chapter missing from
    it, not ``ok`` in it, or run with other code than the chapter has now (its ``code_sha256``)."""
    rows = {r["chapter"]: r for r in report["chapters"]}
    why = {}
    for name in chapters(book, from_source=True):
        row = rows.get(name)
        if row is None:
            why[name] = "not in the report"
        elif row["status"] != "ok":
            why[name] = f"status {row['status']}"
        elif row.get("code_sha256") != code_digest(load_chapter(name, report.get("lang", "en"), book=book)):
            why[name] = "ran other code than the chapter has now (run it again with --only and --merge)"
    return why


def load_chapter(name: str, lang: str = "en", *, book: Path = BOOK, from_source: bool = True):
    """The notebook of chapter ``name`` in ``lang``: built from ``book/src/NAME.nbpy`` (the code as it is now, as
    ``book/make_notebooks.py`` writes it) or, with ``from_source=False``, the stored ``book/LANG/NAME.ipynb``."""
    import nbformat
    if not from_source:
        return nbformat.read(book / lang / f"{name}.ipynb", as_version=4)
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_notebooks", book / "make_notebooks.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    return mk.build(name, lang, mk.parse(book / "src" / f"{name}.nbpy"))


def run_chapter(name: str, profile: str, timeout: float = 600.0, *, lang: str = "en", book: Path = BOOK,
                from_source: bool = True, cache_root: str | os.PathLike | None = None) -> dict:
    """Execute one chapter in a fresh kernel (in its folder, in ``profile``) within ``timeout`` seconds in all.

    Returns a report row: chapter, status, seconds, and for a failure the failing code cell (1-based), its first
    lines and the error's last lines.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    row = {"chapter": name, "status": "ok"}
    t0 = time.perf_counter()
    current = {"cell": None}

    def time_left(cell) -> int:  # nbclient asks before every cell: the chapter's remaining budget
        current["cell"] = cell
        return max(1, int(timeout - (time.perf_counter() - t0)))

    nb = None
    try:
        nb = load_chapter(name, lang, book=book, from_source=from_source)
        row["code_sha256"] = code_digest(nb)
        client = NotebookClient(nb, kernel_name="python3", timeout_func=time_left,
                                resources={"metadata": {"path": str(book / lang)}})
        client.execute(env=_kernel_env(profile, Path(cache_root) / name if cache_root else None))
    except CellTimeoutError as e:
        row.update(status="timeout", error=f"stopped after {timeout:.0f} s in all\n" + _last_lines(str(e)))
    except DeadKernelError as e:
        row.update(status="dead kernel", error=_last_lines(str(e)))
    except CellExecutionError as e:
        row.update(status="error", error=_last_lines(str(e)))
    except Exception as e:  # the kernel did not start, a source that does not parse, ...
        row.update(status="error", error=f"{type(e).__name__}: {_last_lines(str(e))}")
    row["seconds"] = round(time.perf_counter() - t0, 1)
    row["date"] = datetime.date.today().isoformat()  # a merged report holds rows of several days
    cell = current["cell"]
    if row["status"] != "ok" and nb is not None and cell is not None:
        code = [c for c in nb.cells if c.cell_type == "code"]
        row["cell"] = next((k + 1 for k, c in enumerate(code) if c is cell), None)
        row["cell_start"] = cell.source.splitlines()[:3]
    return row


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine(profile: str) -> dict:
    import torch
    cuda = torch.cuda.is_available()
    return {"profile": profile, "device": "cuda" if cuda else "cpu",
            "device_name": torch.cuda.get_device_name(0) if cuda else _cpu_name(),
            "gpus": torch.cuda.device_count() if cuda else 0, "cpu_count": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count(), "torch": str(torch.__version__),
            "python": platform.python_version(), "date": datetime.date.today().isoformat()}


def _merge(report: dict, merge: str | os.PathLike, names: list[str]) -> None:
    """Keep an earlier report's rows for the chapters not run now (the same profile, device and language only)."""
    earlier = json.loads(Path(merge).read_text(encoding="utf-8"))
    same = {k: (earlier.get(k), report[k]) for k in ("profile", "device_name", "lang")}
    if any(a != b for a, b in same.values()):
        raise ValueError(f"--merge {merge}: another kind of run ({same}); merge only reports of one setting")
    report["chapters"] = [r for r in earlier["chapters"] if r["chapter"] not in names]
    report["merged_from"] = {"date": earlier["date"], "torch": earlier["torch"], "jobs": earlier.get("jobs"),
                             "chapters": [r["chapter"] for r in report["chapters"]]}


def run_book(profile: str, *, lang: str = "en", only: list[str] | None = None, timeout: float = 600.0,
             jobs: int = 1, cores: int | None = None, from_source: bool = True, out: str | os.PathLike | None = None,
             cache_root: str | os.PathLike | None = None, merge: str | os.PathLike | None = None, book: Path = BOOK,
             log=print) -> dict:
    """Run the chapters of ``lang`` (or ``only`` these) in ``profile``; return the report, also written to ``out``
    after every chapter. ``jobs`` > 1 runs that many chapters at a time (each row's seconds then include sharing
    the machine with the others; the report says how many ran at once). ``cores`` pins each chapter to that many
    cores of its own (Linux), e.g. ``jobs=6, cores=2`` measures six "2-core machines" side by side on 12 cores.
    ``cache_root`` gives each chapter an empty cache folder of its own there (data and history cache, see
    ``ALEXNET_CACHE``), so no chapter reuses what another trained. ``merge``: an earlier report of the same profile
    on the same kind of device whose rows are kept for the chapters not run now (a book too long for one session
    is run in parts; each row keeps its own seconds)."""
    from .runs import save_json

    names = chapters(book, lang, from_source=from_source)
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ValueError(f"no such chapter in book/{lang}: {', '.join(unknown)}; choose from {', '.join(names)}")
    names = [n for n in names if not only or n in only]
    report = dict(_machine(profile), lang=lang, jobs=jobs, cores_per_chapter=cores, timeout_s=timeout,
                  notebooks="built from book/src" if from_source else f"stored in book/{lang}",
                  twins=twin_differences(book), chapters=[])
    if merge is not None:
        _merge(report, merge, names)
    for name, what in report["twins"].items():
        log(f"twins differ: {name}: {what}")
    if profile == "full":  # unpack the full data set once, before chapters run side by side
        from .data import load_tensors
        load_tensors(source="full")
    t0 = time.perf_counter()
    kw = dict(lang=lang, book=book, from_source=from_source, cache_root=cache_root)

    def record(row: dict) -> None:
        report["chapters"].append(row)
        report["chapters"].sort(key=lambda r: r["chapter"])
        report["seconds"] = round(time.perf_counter() - t0, 1)
        log(f"{row['chapter']:<22} {row['status']:<11} {row['seconds']:>7.1f} s"
            + (f"  cell {row.get('cell')}: {row['error'].splitlines()[-1]}" if row["status"] == "error" else "")
            + (f"  in cell {row.get('cell')}" if row["status"] in ("timeout", "dead kernel") else ""))
        if out is not None:
            save_json(report, out)

    if jobs <= 1:
        for name in names:
            record(run_chapter(name, profile, timeout, **kw))
    else:
        pin = {}
        if cores:
            import multiprocessing as mp
            slots = mp.get_context("fork").Queue()
            for k in range(jobs):
                slots.put(k)
            pin = dict(initializer=_pin, initargs=(slots, cores), mp_context=mp.get_context("fork"))
        with ProcessPoolExecutor(jobs, **pin) as pool:  # each chapter's kernel is its own process anyway
            for future in as_completed([pool.submit(run_chapter, n, profile, timeout, **kw) for n in names]):
                record(future.result())
    report["ok"] = not report["twins"] and all(r["status"] == "ok" for r in report["chapters"])
    if out is not None:
        save_json(report, out)
    return report


def add_arguments(ap) -> None:
    ap.add_argument("--profile", choices=["quick", "full"], required=True, help="the profile every chapter runs in")
    ap.add_argument("--lang", choices=["en", "zh"], default="en", help="which language's notebooks (default en)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="only these chapters (e.g. 04_activations)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per chapter, all cells together")
    ap.add_argument("--jobs", type=int, default=1, help="chapters run at the same time (default 1)")
    ap.add_argument("--cores", type=int, help="pin each chapter to this many cores of its own (with --jobs)")
    ap.add_argument("--cache-root", help="an empty cache folder per chapter under this one (ALEXNET_CACHE)")
    ap.add_argument("--merge", metavar="REPORT", help="keep this earlier report's rows of the chapters not run now")
    ap.add_argument("--stored", action="store_true",
                    help="run the stored notebooks of book/LANG (default: build them from book/src first)")
    ap.add_argument("--out", help="write the report JSON here (rewritten after every chapter)")


def main(args) -> int:
    """``python -m alexnet_lib notebooks``: exit code 0 if every chapter ran and the twins agree, else 1."""
    report = run_book(args.profile, lang=args.lang, only=args.only, timeout=args.timeout, jobs=args.jobs,
                      cores=args.cores, cache_root=args.cache_root, merge=args.merge, from_source=not args.stored, out=args.out)
    bad = [r["chapter"] for r in report["chapters"] if r["status"] != "ok"]
    print(f"{len(report['chapters']) - len(bad)} of {len(report['chapters'])} chapters ok in {report['seconds']} s "
          f"({report['profile']} profile, {report['device_name']}, torch {report['torch']})"
          + (f"; failed: {', '.join(bad)}" if bad else "") + (f"; twins differ: {', '.join(report['twins'])}"
                                                             if report["twins"] else ""))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m alexnet_lib.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
