"""The maintainers' notebook runner (python -m alexnet_lib notebooks): statuses, error lines, time limit, twins."""
import json

import nbformat
import pytest

from alexnet_lib import notebooks


def _book(tmp_path, chapters: dict[str, list[str]], zh_changes: dict[str, list[str]] | None = None):
    """A small book: book/{zh,en}/NAME.ipynb with these code cells (zh may differ where asked)."""
    for lang in ("zh", "en"):
        (tmp_path / lang).mkdir(parents=True, exist_ok=True)
        for name, code in chapters.items():
            code = (zh_changes or {}).get(name, code) if lang == "zh" else code
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name} {lang}")]
                                          + [nbformat.v4.new_code_cell(c) for c in code])
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            nbformat.write(nb, tmp_path / lang / f"{name}.ipynb")
    return tmp_path


def test_twin_differences_name_the_chapter_and_cell(tmp_path):
    book = _book(tmp_path, {"01_a": ["x = 1", "print(x)"], "02_b": ["y = 2"]}, zh_changes={"01_a": ["x = 1", "x"]})
    (book / "en" / "03_c.ipynb").write_text((book / "en" / "02_b.ipynb").read_text())
    assert notebooks.twin_differences(book) == {"01_a": "code cell 2 differs (2 code cells in zh, 2 in en)",
                                                "03_c": "only in book/en"}


@pytest.mark.slow
def test_report_rows_for_ok_error_and_timeout(tmp_path):
    book = _book(tmp_path, {"01_ok": ["import os", "import alexnet_lib\nassert os.environ['ALEXNET_PROFILE'] == 'quick'"],
                            "02_error": ["a = 1", "raise RuntimeError('weight type (torch.cuda.FloatTensor)')"],
                            "03_slow": ["import time", "time.sleep(300)"]})
    out = tmp_path / "report.json"
    report = notebooks.run_book("quick", book=book, from_source=False, timeout=10, jobs=3, out=out, log=lambda _: None)
    assert json.loads(out.read_text()) == report
    rows = {r["chapter"]: r for r in report["chapters"]}
    assert list(rows) == ["01_ok", "02_error", "03_slow"]
    assert rows["01_ok"]["status"] == "ok" and "error" not in rows["01_ok"]
    err = rows["02_error"]
    assert err["status"] == "error" and err["cell"] == 2
    assert err["error"].splitlines()[-1].startswith("RuntimeError: weight type (torch.cuda.FloatTensor)")
    slow = rows["03_slow"]
    assert slow["status"] == "timeout" and slow["cell"] == 2 and slow["seconds"] < 60
    assert report["ok"] is False and report["profile"] == "quick" and report["twins"] == {}
    for k in ("device_name", "torch", "date", "python", "cpu_count"):
        assert report[k]


def test_unknown_chapter_is_an_error_before_anything_runs(tmp_path):
    book = _book(tmp_path, {"01_a": ["1"]})
    with pytest.raises(ValueError, match="no such chapter in book/en: 09_x"):
        notebooks.run_book("quick", book=book, from_source=False, only=["09_x"])


@pytest.mark.slow
def test_a_book_run_in_parts_merges_into_one_report(tmp_path):
    book = _book(tmp_path, {"01_a": ["1"], "02_b": ["2"]})
    notebooks.run_book("quick", book=book, from_source=False, only=["01_a"], out=tmp_path / "a.json",
                       log=lambda _: None)
    both = notebooks.run_book("quick", book=book, from_source=False, only=["02_b"], merge=tmp_path / "a.json",
                              log=lambda _: None)
    assert [(r["chapter"], r["status"]) for r in both["chapters"]] == [("01_a", "ok"), ("02_b", "ok")]
    assert both["merged_from"]["chapters"] == ["01_a"]
    with pytest.raises(ValueError, match="another kind of run"):
        notebooks.run_book("full", book=book, from_source=False, only=["02_b"], merge=tmp_path / "a.json")


@pytest.mark.parametrize("report", sorted((notebooks.BOOK / "runs" / "notebooks").glob("*.json")),
                         ids=lambda p: p.name)
def test_committed_reports_ran_the_code_the_chapters_have_now(report):
    # The preface's table and the README cite these reports as proof that every chapter runs there: a row that ran
    # older code proves nothing about the chapter now.
    assert notebooks.stale(json.loads(report.read_text())) == {}


def test_a_changed_chapter_makes_its_row_stale():
    # Rows built from the chapters as they are now (so this test does not hang on whether the committed reports are
    # current; the test above asks that): all current, then one row's code changed, one timed out, one dropped.
    names = notebooks.chapters(from_source=True)
    rows = [{"chapter": n, "status": "ok", "code_sha256": notebooks.code_digest(notebooks.load_chapter(n))}
            for n in names]
    report = {"lang": "en", "chapters": rows}
    assert notebooks.stale(report) == {}
    rows[names.index("03_data")]["code_sha256"] = "0" * 64
    rows[names.index("05_dropout")]["status"] = "timeout"
    report["chapters"] = [r for r in rows if r["chapter"] != "01_architecture"]
    assert notebooks.stale(report) == {"01_architecture": "not in the report", "05_dropout": "status timeout",
                                       "03_data": "ran other code than the chapter has now (run it again with "
                                                  "--only and --merge)"}
