"""The report in a real headless Chromium: the front page, a table page and a run page load from disk
without console errors and show their tables and every figure. Screenshots of each page are kept in
``.cache/test-artifacts/report/`` (look at them). Chromium is Debian's ``chromium`` (``.ci/run``
installs it where missing): missing, the test is skipped on a developer's machine and fails in CI."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.report.build import build, page_name
from bench.tables.__main__ import build as build_tables
from tests.browser import Browser, chromium
from tests.conftest import ROOT
from tests.report_store import generate, record

ARTIFACTS = ROOT / ".cache" / "test-artifacts" / "report"
# plotly.js marks the element of every figure it has drawn with the class js-plotly-plot
PLOTS_DRAWN = ("document.querySelectorAll('.figure').length > 0"
               " && document.querySelectorAll('.figure:not(.js-plotly-plot)').length === 0")


@pytest.fixture(scope="module")
def browser():
    executable = chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium on PATH; .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    with Browser(executable) as running:
        yield running


def test_pages_render_without_errors_with_tables_and_figures(browser: Browser, tmp_path: Path) -> None:
    store = tmp_path / "results"
    generate(store, 24)
    out = tmp_path / "report"
    build(store, out)
    _, tables = build_tables(store)
    paper = [t for t in tables if "paper" in t.columns]

    assert browser.open((out / "index.html").as_uri()) == []
    assert browser.evaluate("document.querySelectorAll('section table.data').length") == len(paper)
    assert browser.evaluate("document.querySelectorAll('tr.missing').length") > 0
    assert browser.evaluate("document.querySelectorAll('td.links a').length") > 0
    browser.screenshot(ARTIFACTS / "index.png")

    table = next(t for t in paper if any(t.runs))
    assert browser.open((out / "tables" / f"{table.name}.html").as_uri()) == []
    assert browser.poll(PLOTS_DRAWN), "every figure of the table page is drawn"
    browser.screenshot(ARTIFACTS / "table.png")

    run = record(2)  # AdaS: curves and per-layer learning rates
    assert browser.open((out / "runs" / page_name(run["run_id"])).as_uri()) == []
    assert browser.poll(PLOTS_DRAWN), "every figure of the run page is drawn"
    assert browser.evaluate("document.querySelectorAll('.figure').length") >= 6
    assert browser.evaluate("document.body.innerText.includes('per-layer learning rate')")
    assert browser.errors() == []
    browser.screenshot(ARTIFACTS / "run.png")


def test_the_browser_check_catches_a_broken_page(browser: Browser, tmp_path: Path) -> None:
    """A page whose script fails (here: plotly.js missing) is reported, so the test above can fail."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><script src="missing.js"></script><script>Plotly.newPlot("x", [])</script>'
                    "</body></html>")
    errors = browser.open(page.as_uri())
    assert any("Plotly is not defined" in e for e in errors) and any("missing.js" in e for e in errors)
