"""The HTML report in a real headless Chromium: it renders without console errors, its navigation, filters, URL
state, compare and "what changed" views and heat map work.

The page is the report of the synthetic records of `test_report` (two versions, a fail, a missing, a not applicable)
with one extra drift entry for head.masked_lm between the two versions. One browser for the module; a test that
changes the page's state starts from a fresh load (`fresh`).

Needs Debian's `chromium` and `chromium-driver` packages and `selenium` (`pip install -e .[report]`); `.ci/run`
installs them. Skipped, saying which is missing, where they are not installed.
"""

import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from conformance import drift
from conformance.report import write_reports
from test_report import DIFFERING, NA_REASON, NEW, OLD, SYNTHETIC, write_synthetic_records

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
# a drift entry between OLD and NEW, so that the compare view has one to show inline
CHANGE = drift.Change(id="masked-lm-synthetic-change", since="5.10.0", area="head", title="a synthetic rule change",
                      old="the rule before", new="the rule after", checks=("head.masked_lm",),
                      example=lambda: {"input": "synthetic input", "old": "old value", "new": "new value"})


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A headless Chromium showing the report of the synthetic records; its URL is `page.base_url`."""
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not installed: apt-get install chromium chromium-driver; "
                    "pip install -e .[report]")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = tmp_path_factory.mktemp("browser")
    saved = drift.CHANGES
    drift.CHANGES = [*saved, CHANGE]
    try:
        _, path = write_reports(write_synthetic_records(root / "records"), root / "out")
    finally:
        drift.CHANGES = saved
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,800"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver, so that selenium-manager never downloads one
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.base_url = f"file://{path}"
    try:
        driver.get(driver.base_url)
        yield driver
    finally:
        driver.quit()


def fresh(driver, suffix=""):
    """Load the page anew (no filters, no target), or with `suffix` (a query string and/or a fragment)."""
    driver.get("about:blank")
    driver.get(driver.base_url + suffix)
    return driver


def visible_rows(driver):
    return {row.get_attribute("data-check") for row in driver.find_elements("css selector", "tr.check-row")
            if row.is_displayed()}


def severe(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def press(driver, element):
    """Click `element` as a user would: scrolled to the middle of the window first (Selenium's own scrolling
    puts it at the top, under the fixed filter bar)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'});", element)
    element.click()


def click(driver, selector):
    press(driver, driver.find_element("css selector", selector))


def select(driver, select_id, text):
    driver.find_element("css selector", f"#{select_id} option[value='{option_value(driver, select_id, text)}']").click()


def option_value(driver, select_id, text):
    return next(o.get_attribute("value") for o in driver.find_elements("css selector", f"#{select_id} option")
                if o.text == text)


def rect(driver, element):
    return driver.execute_script("var r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom];", element)


def bar_bottom(driver):
    return rect(driver, driver.find_element("id", "filters"))[1]


def highlighted(driver, element):
    return driver.execute_script("return arguments[0].matches(':target') || arguments[0].classList.contains('hl');",
                                 element)


def test_renders_without_console_errors(page):
    assert page.title == "Compatibility report"
    assert visible_rows(page) == set(SYNTHETIC)
    assert page.find_element("id", "shown").text == f"{len(SYNTHETIC)} of {len(SYNTHETIC)} checks shown"
    assert severe(page) == []


def test_filters(page):
    fresh(page)
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
    fresh(page)
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


def test_header_stays_below_the_bar_when_scrolled(page):
    fresh(page)
    table = page.find_element("id", "matrix")
    page.execute_script("window.scrollTo(0, arguments[0].getBoundingClientRect().top + window.scrollY + 40);", table)
    bar = bar_bottom(page)
    assert rect(page, table)[0] < bar  # the table's top has gone under the bar
    header = page.find_element("css selector", "#matrix thead th.full")
    top, bottom = rect(page, header)
    assert abs(top - bar) <= 1 and bottom > top and header.is_displayed()


def test_every_cell_links_to_a_detail_below_the_bar(page):
    fresh(page)
    links = page.find_elements("css selector", "#matrix td.full a")
    assert len(links) == sum(len(targets) for _, outcomes in SYNTHETIC.values() for targets in outcomes.values())
    # a pass cell: its short detail is built, shown below the bar and highlighted
    link = page.find_element("css selector", 'tr[data-check="encoder.bidirectional"] td.o-pass a')
    target_id = link.get_attribute("href").split("#")[1]
    press(page, link)
    detail = page.find_element("id", target_id)
    assert detail.is_displayed() and highlighted(page, detail)
    assert rect(page, detail)[0] >= bar_bottom(page) - 1
    assert "pass: encoder.bidirectional on transformers 5.3.0" in detail.text and "error/tolerance 0.012" in detail.text
    assert "tolerance rtol 1e-12, atol 1e-12" in detail.text
    # an explained cell: its detail gives the reason
    click(page, 'tr[data-check="loss.sequence_classification.int32_labels"] td.o-explained a')
    assert "Explained: " in page.find_element("css selector", "details.cell.hl").text
    # a row target from the drift catalog: below the bar and the sticky header
    click(page, '#drift a[href="#row-head.masked_lm"]')
    row = page.find_element("id", "row-head.masked_lm")
    header_bottom = rect(page, page.find_element("css selector", "#matrix thead th.full"))[1]
    assert rect(page, row)[0] >= header_bottom - 1 and highlighted(page, row)
    assert severe(page) == []


def test_links_reveal_what_the_filters_hide(page):
    fresh(page)
    click(page, 'input[name="area"][value="head"]')
    assert "head.masked_lm" not in visible_rows(page)
    click(page, '#compare-result a[href="#row-head.masked_lm"]')
    assert "head.masked_lm" in visible_rows(page)
    assert page.find_element("css selector", 'input[name="area"][value="head"]').is_selected()

    click(page, 'input[name="outcome"][value="fail"]')
    click(page, 'input[name="outcome"][value="pass"]')
    assert "head.masked_lm" not in visible_rows(page)
    failing = page.find_element("css selector", 'details.problem[data-outcomes="fail"]')
    assert not failing.is_displayed()
    press(page, page.find_element("css selector", f'#heatmap a[href="#{failing.get_attribute("id")}"]'))
    assert failing.is_displayed() and failing.get_attribute("open") is not None and highlighted(page, failing)
    assert rect(page, failing)[0] >= bar_bottom(page) - 1
    assert severe(page) == []


def test_filters_round_trip_through_the_url(page):
    fresh(page)
    click(page, 'input[name="area"][value="loss"]')
    click(page, "#only-differs")
    page.find_element("id", "search").send_keys("masked")
    page.find_element("css selector", '#columns option[value="versions"]').click()
    select(page, "compare-a", f"transformers {NEW}")
    select(page, "compare-b", f"transformers {OLD}")
    shown = visible_rows(page)
    assert shown == {"head.masked_lm"}
    url = page.current_url
    query = parse_qs(urlsplit(url).query)
    assert query["differs"] == ["1"] and query["q"] == ["masked"] and query["columns"] == ["versions"]
    assert "loss" not in query["area"][0].split(",") and query["a"] == [f"transformers {NEW}"]

    page.get("about:blank")
    page.get(url)
    assert visible_rows(page) == shown
    assert not page.find_element("css selector", 'input[name="area"][value="loss"]').is_selected()
    assert page.find_element("id", "only-differs").is_selected()
    assert page.find_element("id", "search").get_attribute("value") == "masked"
    assert page.find_element("id", "columns").get_attribute("value") == "versions"
    assert page.find_element("css selector", "#compare-a option:checked").text == f"transformers {NEW}"
    assert page.find_element("css selector", "#compare-b option:checked").text == f"transformers {OLD}"
    assert severe(page) == []


def compared_rows(driver):
    return {r.get_attribute("data-check") for r in driver.find_elements("css selector", "#compare-result tr.diff-row")}


def test_compare_lists_exactly_the_differing_rows(page):
    fresh(page)
    select(page, "compare-a", f"transformers {OLD}")
    select(page, "compare-b", f"transformers {NEW}")
    assert compared_rows(page) == DIFFERING
    assert page.find_element("id", "compare-count").text == "2 checks, 2 cells differ"
    why = {r.get_attribute("data-check"): r.find_elements("css selector", "td")[-1].text
           for r in page.find_elements("css selector", "#compare-result tr.diff-row")}
    assert NA_REASON in why["optim.transformers.AdamW"]
    assert "check head.masked_lm on cpu-float64-eager: logits: mismatched elements 1/12" in why["head.masked_lm"]
    assert "masked-lm-synthetic-change: a synthetic rule change (first release 5.10.0)" in why["head.masked_lm"]
    assert "Before: the rule before" in why["head.masked_lm"] and "old: old value" in why["head.masked_lm"]
    assert "No drift entry" in why["optim.transformers.AdamW"]

    select(page, "compare-a", f"transformers {NEW}")
    select(page, "compare-b", f"transformers {OLD}")
    assert compared_rows(page) == DIFFERING
    select(page, "compare-b", f"transformers {NEW}")
    assert compared_rows(page) == set() and "No check differs" in page.find_element("id", "compare-result").text
    assert severe(page) == []


def test_what_changed_in_a_version(page):
    fresh(page)
    assert page.find_element("css selector", "#changed-version option:checked").text == f"transformers {NEW}"
    rows = page.find_elements("css selector", "#changed-result tr.diff-row")
    assert {r.get_attribute("data-check") for r in rows} == DIFFERING
    masked = next(r for r in rows if r.get_attribute("data-check") == "head.masked_lm")
    assert "cpu-float64-eager: pass" in masked.text and "cpu-float64-eager: fail 3.4e+02" in masked.text
    assert "masked-lm-synthetic-change" in masked.text
    select(page, "changed-version", f"transformers {OLD}")
    assert f"No outcome changed in transformers {OLD}" in page.find_element("id", "changed-result").text
    # the summary's count of changed cells opens the view on its version
    click(page, f'#summary a[data-changed="{option_value(page, "changed-version", f"transformers {NEW}")}"]')
    assert page.find_element("css selector", "#changed-version option:checked").text == f"transformers {NEW}"
    assert severe(page) == []


def test_heat_map(page):
    fresh(page)
    rects = page.find_elements("css selector", "#heatmap rect.hm")
    assert len(rects) == len(SYNTHETIC) * 2  # one per (check, version)
    hrefs = page.execute_script("return Array.prototype.map.call(arguments[0], function (r) { "
                                "return r.parentNode.tagName === 'a' ? r.parentNode.getAttribute('href') : null; });",
                                rects)
    assert all(h and h.startswith("#c-") for h in hrefs)
    assert page.find_elements("css selector", "#heatmap g.boundary")  # the synthetic change's boundary
    assert page.find_elements("css selector", "svg.scale")  # the colour legend
    press(page, rects[0])
    target = page.find_element("id", hrefs[0].split("#")[1])
    assert target.is_displayed() and highlighted(page, target)
    assert severe(page) == []


def test_a_target_in_the_url_opens_on_load(page):
    fresh(page, "?area=encoder#row-head.masked_lm")
    row = page.find_element("id", "row-head.masked_lm")
    assert row.is_displayed() and highlighted(page, row)
    assert rect(page, row)[0] >= bar_bottom(page) - 1
    fresh(page, "?outcome=fail#c-0")  # the first pass cell's short detail, hidden by the filter until revealed
    detail = page.find_element("id", "c-0")
    assert detail.is_displayed() and highlighted(page, detail) and detail.text.startswith("pass: encoder.bidirectional")
    assert page.find_element("css selector", 'input[name="outcome"][value="pass"]').is_selected()
    assert severe(page) == []
