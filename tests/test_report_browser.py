"""The HTML report in a real headless Chromium: it renders without console errors and its filters work.

Needs Debian's `chromium` and `chromium-driver` packages and `selenium` (`pip install -e .[report]`); `.ci/run`
installs them. Skipped, saying which is missing, where they are not installed.
"""

import shutil

import pytest

from conformance.report import write_reports
from test_report import DIFFERING, SYNTHETIC, write_synthetic_records

pytestmark = pytest.mark.harness

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
    SELENIUM = True
except ImportError:
    SELENIUM = False

MISSING = [name for name, found in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER),
                                    ("selenium", SELENIUM)) if not found]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A headless Chromium showing the report of the synthetic records (two versions, a fail, a missing)."""
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed: apt-get install chromium chromium-driver; "
                    "pip install -e .[report]")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = tmp_path_factory.mktemp("browser")
    _, path = write_reports(write_synthetic_records(root / "records"), root / "out")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver, so that selenium-manager never downloads one
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(f"file://{path}")
        yield driver
    finally:
        driver.quit()


def visible_rows(driver):
    return {row.get_attribute("data-check") for row in driver.find_elements("css selector", "tr.check-row")
            if row.is_displayed()}


def severe(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def click(driver, selector):
    driver.find_element("css selector", selector).click()


def test_renders_without_console_errors(page):
    assert page.title == "Compatibility report"
    assert visible_rows(page) == set(SYNTHETIC)
    assert page.find_element("id", "shown").text == f"{len(SYNTHETIC)} of {len(SYNTHETIC)} checks shown"
    assert severe(page) == []


def test_filters(page):
    click(page, "#only-differs")
    assert visible_rows(page) == DIFFERING
    click(page, "#only-differs")
    assert visible_rows(page) == set(SYNTHETIC)

    click(page, 'input[name="area"][value="head"]')
    assert visible_rows(page) == set(SYNTHETIC) - {"head.masked_lm"}
    assert not page.find_element("css selector", 'tr.area-row[data-area="head"]').is_displayed()
    click(page, 'input[name="area"][value="head"]')

    others = [o for o in ("pass", "explained", "not_applicable", "missing")]
    for outcome in others:  # leave only `fail`
        click(page, f'input[name="outcome"][value="{outcome}"]')
    assert visible_rows(page) == {"head.masked_lm"}
    details = [d for d in page.find_elements("css selector", "#details details.problem") if d.is_displayed()]
    assert [d.get_attribute("data-outcomes") for d in details] == ["fail"]
    for outcome in others:
        click(page, f'input[name="outcome"][value="{outcome}"]')

    search = page.find_element("id", "search")
    search.send_keys("schedule")
    assert visible_rows(page) == {"schedule.linear"}
    search.clear()
    search.send_keys(" ")  # an input event with no text: every row again
    assert visible_rows(page) == set(SYNTHETIC)
    assert severe(page) == []


def test_columns_and_details(page):
    full = page.find_element("css selector", 'tr[data-check="head.masked_lm"] td.full')
    compact = page.find_element("css selector", 'tr[data-check="head.masked_lm"] td.compact')
    assert full.is_displayed() and not compact.is_displayed()
    page.find_element("css selector", '#columns option[value="versions"]').click()
    assert compact.is_displayed() and not full.is_displayed()
    page.find_element("css selector", '#columns option[value="targets"]').click()

    details = page.find_element("css selector", 'details.problem[data-outcomes="fail"]')
    assert details.get_attribute("open") is None
    click(page, 'tr[data-check="head.masked_lm"] td.o-fail a')
    assert details.get_attribute("open") is not None
    assert "python -m conformance repro head.masked_lm" in details.find_element("css selector", "pre.reproduce").text
    assert severe(page) == []
