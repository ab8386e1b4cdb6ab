"""The layout of report.html without a browser: verdict first, failures with their details outside any
fold, the area x level matrix, filters that only appear with the script, readable times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from suite.report.html import render_html
from suite.report.timefmt import human_duration, utc_iso
from tests.suite.report_samples import CURL, FAILING_MUST, FAILING_SHOULD, HOSTILE, sample_report


@pytest.fixture(scope="module")
def page(catalogue) -> str:
    return render_html(sample_report(catalogue))


class _Folds(HTMLParser):
    """Collects the text inside ``<details>`` (what a reader must click to see) and outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.folded: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.depth += tag == "details"

    def handle_endtag(self, tag):
        self.depth -= tag == "details"

    def handle_data(self, data):
        (self.folded if self.depth else self.open).append(data)


@pytest.mark.parametrize(
    "seconds, text",
    [(0.42, "0.4 s"), (12.5, "12.5 s"), (59.9, "59.9 s"), (261.4, "4 min 21 s"), (3723, "1 h 2 min 3 s")],
)
def test_durations_read_like_a_person_would_say_them(seconds, text):
    assert human_duration(seconds) == text


def test_moments_are_utc_iso_to_the_second():
    plus_two = timezone(timedelta(hours=2))
    assert utc_iso(datetime(2026, 11, 22, 10, 0, 5, 123456, tzinfo=plus_two)) == "2026-11-22T08:00:05Z"
    assert utc_iso(datetime(2026, 11, 22, 8, 0, tzinfo=UTC)) == "2026-11-22T08:00:00Z"
    assert utc_iso(datetime(2026, 11, 22, 8, 0)) == "2026-11-22T08:00:00Z"


def test_sections_come_verdict_failures_matrix_table(page):
    positions = [
        page.index(marker)
        for marker in ('id="verdict"', 'id="failures"', 'id="matrix"', 'id="requirements"', "<h2>Versions")
    ]
    assert positions == sorted(positions)
    assert "NON-CONFORMANT" in page[: page.index('id="failures"')]
    facts = page[page.index('class="facts"') : page.index('id="failures"')]
    assert "2026-11-22T08:00:00Z" in facts and "2026-11-22T08:04:21Z" in facts and "4 min 21 s" in facts


def test_failures_show_expected_received_response_and_curl_without_a_click(page):
    section = page[page.index('id="failures"') : page.index('id="matrix"')]
    assert "Failures and errors (3)" in section
    for rid in (FAILING_MUST, FAILING_SHOULD, "CHAT-001"):
        assert f'href="#{rid}"' in section
    assert section.index(FAILING_MUST) < section.index(FAILING_SHOULD)  # MUST first (catalogue order)
    folds = _Folds()
    folds.feed(section)
    shown = "".join(folds.open)
    assert not folds.folded  # nothing in the failures section is behind a <details>
    assert CURL in shown and f"HTTP 200 {HOSTILE}" in shown and "Expected" in shown and "Received" in shown
    assert HOSTILE not in page  # shown as text, escaped


def test_matrix_counts_outcomes_by_area_and_level(page):
    matrix = page[page.index('id="matrix"') : page.index('id="requirements"')]
    header = re.findall(r"<th[^>]*>([^<]*)</th>", matrix)
    assert header == ["area", "MUST", "SHOULD", "all levels"]  # levels the run holds (no MAY here)
    auth = re.search(r'<tr><td class="area">auth</td>(.*?)</tr>', matrix)
    assert auth is not None
    must_cell = re.findall(r"<td>(.*?)</td>", auth.group(1))[0]
    assert 'title="Fail">1 Fail<' in must_cell and 'title="Pass">' in must_cell
    assert '<tr class="total">' in matrix


def test_filters_are_hidden_until_the_script_runs_and_rows_carry_what_they_filter_on(page):
    assert '<nav id="filters" hidden>' in page
    for value in ("Fail", "Pass", "MUST", "SHOULD", "auth", "errors"):
        assert f'data-value="{value}"' in page
    row = re.search(rf'<tr id="{FAILING_MUST}" ([^>]*)>', page)
    assert row is not None
    assert row.group(1) == 'data-outcome="Fail" data-level="MUST" data-area="auth"'
