"""The report renders in a real browser: headless Chromium (Debian `chromium` and
`chromium-driver`) driven through chromedriver by selenium, offline, fresh profile.

Checks: no console message at level SEVERE (a failed resource load, a script or CSS
error), every figure image decoded (naturalWidth > 0), no request other than the file
itself and inline data, no horizontal overflow at 1280 px (neither the page nor any table
wider than its column), no Python None / NaN / <NA> in a table cell, the summary box first,
tables sorted by a click, and a screenshot can be taken.

Under CI (`CI` set) a missing browser, driver or selenium FAILS this test; elsewhere it
skips. .ci/run installs `chromium chromium-driver`; selenium is in the `test` extra.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_report import InProcessExecutor, make_sweep, make_train_records  # noqa: E402,F401

from ffbench.analysis.report import build_report  # noqa: E402

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(
            f"{what} is required under CI (.ci/run installs chromium chromium-driver; "
            f"selenium comes with the 'test' extra)"
        )
    pytest.skip(f"{what} not installed (apt-get install chromium chromium-driver; pip install selenium)")


def _browser() -> tuple[str, str]:
    binary = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    driver = shutil.which("chromedriver")
    if binary is None:
        _missing("chromium")
    if driver is None:
        _missing("chromedriver (Debian package chromium-driver)")
    return binary, driver


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    binary, chromedriver = _browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    drv = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    sweep = make_sweep(
        root / "sweep",
        {"trainers": ["bp", "ff", "ff-summed"], "depths": [1, 2], "batch_sizes": [8, 32], "widths": [16]},
    )
    train = make_train_records(root)
    return build_report([sweep, *train], root / "reports" / "browser.html")


def test_report_renders_without_console_errors(driver, report, tmp_path):
    import json

    driver.get_log("performance")  # drop what the browser did before (its new-tab page)
    driver.get_log("browser")
    driver.get(report.html_path.resolve().as_uri())
    assert driver.title.startswith("ffbench report")
    drawn = [f for f in report.figures if f.file is not None]
    state = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);"
    )
    assert len(state) == len(drawn) >= 8
    for complete, width, alt in state:
        assert complete and width > 0, f"figure not rendered: {alt}"
    assert driver.execute_script("return document.querySelectorAll('article[id^=claim-]').length") >= 8
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, errors
    # nothing fetched but the page itself (figures are data: URIs)
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    page = [u for u in urls if not u.startswith(("chrome:", "chrome-extension:", "about:"))]
    assert page and all(u.startswith(("file://", "data:")) for u in page), page
    shot = tmp_path / "report.png"
    driver.set_window_size(1280, min(20000, driver.execute_script("return document.body.scrollHeight") + 50))
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("FFBENCH_SCREENSHOT"):
        shutil.copy(shot, os.environ["FFBENCH_SCREENSHOT"])


def _open(driver, report, width: int = 1280):
    driver.set_window_size(width, 1000)
    driver.get(report.html_path.resolve().as_uri())
    driver.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")


def test_no_horizontal_overflow_at_1280_px(driver, report):
    _open(driver, report)
    page = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert page[0] <= page[1], f"page is {page[0]} px wide in a {page[1]} px window"
    wide = driver.execute_script(
        "return Array.from(document.querySelectorAll('table')).filter(t => t.offsetWidth > "
        "t.closest('body').clientWidth || t.scrollWidth > t.parentElement.clientWidth + 1)"
        ".map(t => t.className + ' ' + t.scrollWidth)"
    )
    assert not wide, f"tables wider than their column: {wide}"
    cards = driver.execute_script(
        "return Array.from(document.querySelectorAll('.card, figure')).filter(e => e.scrollWidth > e.clientWidth + 1).length"
    )
    assert cards == 0


def test_summary_first_tables_clean_and_sortable(driver, report):
    _open(driver, report)
    first = driver.execute_script(
        "return document.querySelector('h1').nextElementSibling.nextElementSibling.nextElementSibling.id"
    )
    assert first == "summary"
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('td')).map(c => c.textContent.trim())"
    )
    assert cells and not {"None", "nan", "NaN", "<NA>", "null"} & set(cells)
    order = driver.execute_script(
        """const t = document.querySelector('#results table.sortable');
        const col = Array.from(t.tHead.rows[0].cells).findIndex(h => h.textContent.startsWith('peak'));
        t.tHead.rows[0].cells[col].click();
        const up = Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[col].dataset.v));
        t.tHead.rows[0].cells[col].click();
        const down = Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[col].dataset.v));
        return [up, down];"""
    )
    up, down = order
    assert up == sorted(up) and down == sorted(down, reverse=True) and len(up) >= 8


def test_the_results_filter_keeps_the_rows_holding_its_words(driver, report):
    _open(driver, report)
    shown = driver.execute_script(
        """const box = document.querySelector('#results input.filter');
        const rows = Array.from(document.querySelectorAll('#results tbody tr'));
        const word = rows[rows.length - 1].cells[0].textContent.trim();
        const count = (text) => { box.value = text; box.dispatchEvent(new Event('input'));
          return [rows.filter(r => !r.hidden).length, rows.filter(r => !r.hidden && !r.textContent.includes(word)).length]; };
        return [rows.length, count(word), count('no-such-trainer'), count('')];"""
    )
    total, (kept, stray), (none, _), (every, _) = shown
    assert 0 < kept <= total and stray == 0
    assert none == 0 and every == total
