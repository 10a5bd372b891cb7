"""The HTML report's content without a browser: tables with captions and scoped headers, the data block, the shade
and colour scales, the schedule drift curves, the mutation score, the run date and commit, and the page size on a
matrix of the committed report's size (`realistic_records`)."""

import json
import os
import re
import time

import pytest

from conformance import drift
from conformance.report import html, merge
from conformance.report.html_page import grade
from conformance.report.html_views import CURVES, multipliers
from conformance.report.svg import ratio_color, scale_bounds
from test_report import MESSAGE, env, synthetic_record, write_synthetic_records
from test_report import load as load_records  # the loader test_report uses, whatever the storage

pytestmark = pytest.mark.harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the versions of the committed report
VERSIONS = ("4.4.2", "4.6.1", "4.17.0", "4.27.0", "4.36.0", "4.41.0", "4.47.1", "4.49.0", "4.50.0", "4.54.0", "5.0.0",
            "5.4.0", "5.19.0", "5.24.0")
TARGETS = ("cpu-float64-eager", "cpu-float32-eager", "cpu-float64-sdpa", "cpu-float32-sdpa")


@pytest.fixture
def matrix(tmp_path):
    return merge(*load_records(write_synthetic_records(tmp_path / "records")))


def realistic_records(checks=150, versions=VERSIONS):
    """Records of `checks` checks in 10 areas on every version: the two eager targets on every version, the sdpa
    ones from 4.41.0, a spread of ratios over six decades, some not applicable, explained and failing cells, and a
    change of outcome now and then."""
    records = []
    for i in range(checks):
        area = f"area{i % 10}"
        for j, version in enumerate(versions):
            targets = TARGETS if j >= 5 else TARGETS[:2]
            for k, target in enumerate(targets):
                outcome = "not_applicable" if i % 13 == 0 and j < 3 else "explained" if i % 17 == 0 else "pass"
                outcome = "fail" if (i, version) in ((7, "5.0.0"), (40, "4.17.0")) else outcome
                record = synthetic_record(f"{area}.check{i}", area, version, target, outcome, None, time=j)
                record["max_error_ratio"] = 10.0 ** -((i + j + k) % 7)
                records.append(record)
    return records


def test_tables_have_captions_and_scoped_headers(matrix):
    page = html(matrix, mutants_dir=os.path.join(ROOT, "reports"))
    assert page.count("<table") == page.count("<caption>") >= 4
    headers = re.findall(r"<th[ >][^>]*>|<th>", page)
    assert headers and all("scope=" in h for h in headers)


def test_data_block_has_a_row_per_cell(matrix):
    page = html(matrix)
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert "<" not in block  # a message's "<b>" or "</script>" cannot close the block
    data = json.loads(block)
    assert len(data["cells"]) == len(matrix.cells)
    links = {int(n) for n in re.findall(r'<a href="#c-(\d+)">', page)}
    assert links == set(range(len(matrix.cells)))  # every cell links to its detail
    for n, outcome in re.findall(r'<details class="problem filterable o-(?:\w+)" id="c-(\d+)" .*?data-outcomes="(\w+)"',
                                 page):
        assert data["outcomes"][data["cells"][int(n)][3]] == outcome
    assert MESSAGE.split("\n")[0] in data["reasons"]


def test_ratio_shades_and_colours_follow_the_decade():
    assert (grade(0), grade(None), grade(3e-7), grade(0.0019), grade(0.012), grade(0.48), grade(float("inf"))) == (
        0, 0, 1, 4, 5, 6, 6)
    bounds = scale_bounds([0.0019, 0.48, 340.0, 0.0, None])
    assert bounds == (-3, 3)
    colours = [ratio_color(r, bounds) for r in (0.0019, 0.48, 2.0, 340.0)]
    assert len(set(colours)) == 4 and ratio_color(0, bounds) == "#ffffff"


def test_shaded_cells_in_the_page(matrix):
    page = html(matrix)
    assert 'class="full o-pass g5"><a href="#c-' in page  # the synthetic ratio 0.0123
    assert 'class="full o-explained g0">' in page  # an explained cell with no ratio
    assert 'class="full o-fail changed"><a href="#c-' in page


def test_schedule_drift_curves_come_from_the_reference(matrix):
    page = html(matrix)
    figures = re.findall(r'<figure class="curve-plot">.*?<figcaption><a href="#change-([\w-]+)">', page)
    assert figures and sorted(figures) == sorted(c.id for c in drift.CHANGES if c.area == "schedule" and c.id in CURVES)
    name, params, steps, how = CURVES["wsd-warmup-from-min-lr"]
    after, before = (multipliers(name, params, steps, how, new) for new in (True, False))
    assert after[0] == pytest.approx(0.3) and before[0] == 0.0 and after[-1] == before[-1]
    name, params, steps, how = CURVES["get-scheduler-wsd-branch"]
    assert multipliers(name, params, steps, how, False) is None  # refused before the change: no curve drawn
    wsd = page[:page.index('<figcaption><a href="#change-get-scheduler-wsd-branch">')]
    assert "before: refused, no curve" in wsd[wsd.rindex("<figure"):]


def test_an_unknown_schedule_change_gets_no_plot(matrix, monkeypatch):
    change = drift.Change(id="made-up", since="5.0.0", area="schedule", title="t", old="o", new="n",
                          checks=("schedule.linear",))
    monkeypatch.setattr(drift, "CHANGES", [change])
    page = html(matrix)
    assert 'id="change-made-up"' in page and "curve-plot" not in page


def test_mutation_score_run_date_and_commit(tmp_path):
    records = [synthetic_record("head.masked_lm", "head", "5.24.0", "cpu-float64-eager", "pass", "r", 5.0)]
    records[0]["env"] = dict(env("5.24.0"), commit="0123456789abcdef0123")
    run = {"type": "run", "run_id": "r", "env": records[0]["env"], "start": 1.7e9, "end": 1.7e9 + 60,
           "expected": [{"check": "head.masked_lm", "area": "head", "target": "cpu-float64-eager"}]}
    m = merge([run], records)
    page = html(m, mutants_dir=os.path.join(ROOT, "reports"))
    lead = page[page.index('<p class="lead">'):page.index('<nav id="filters">')]
    assert "newest run ended 2023-11-14 22:14 UTC" in lead and "commit 0123456789ab" in lead
    assert re.search(r'<a href="#mutants">mutation score \d+/\d+ \(\d+%\)</a>', lead)
    assert '<section id="mutants">' in page and "<td>0123456789ab</td>" in page
    (tmp_path / "none").mkdir()
    page = html(m, mutants_dir=str(tmp_path / "none"))
    assert '<section id="mutants">' not in page and "mutation score" not in page


def test_heat_map_has_one_rect_per_check_and_version(matrix):
    page = html(matrix)
    heat = page[page.index('<svg id="heatmap"'):]
    heat = heat[:heat.index("</svg>")]
    assert heat.count('<rect class="hm"') == len(matrix.checks) * len(matrix.versions)


def test_a_report_of_the_committed_size():
    """150 checks on 14 versions (about 4,000 cells): the page stays under 400 bytes a cell (the committed page of
    1,858 cells took 222 before the compare views, heat map and curves), rendered in seconds."""
    records = realistic_records()
    m = merge([], records)
    start = time.perf_counter()
    page = html(m)
    seconds = time.perf_counter() - start
    assert len(m.cells) == len(records) == 150 * (5 * 2 + 9 * 4)
    assert len(page.encode()) / len(m.cells) < 400
    assert seconds < 30
    assert page.count('<rect class="hm"') == 150 * len(VERSIONS)
