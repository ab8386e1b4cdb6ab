"""report.html in a real browser (headless Chromium through Playwright): what a reader sees first, the
failures with their curl line on screen without a click, the matrix, and a filter that hides rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from suite.report.html import write_html
from tests.suite.report_samples import CURL, FAILING_MUST, sample_report

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} for the browser test"),
]


def test_report_in_chromium_verdict_failures_matrix_and_filter(catalogue, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    page_file = write_html(sample_report(catalogue), tmp_path)
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: containers and CI runners (often root) have no user namespaces for the sandbox
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            # offline: the page must render with no request leaving the browser
            context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_file.as_uri())

            verdict = page.locator("#verdict")
            assert verdict.is_visible() and "NON-CONFORMANT" in verdict.inner_text()
            assert verdict.bounding_box()["y"] < page.locator("#failures").bounding_box()["y"]

            card = page.locator(f'#failures article[data-outcome="Fail"]:has(a[href="#{FAILING_MUST}"])')
            assert card.count() == 1
            curl = card.locator("pre.curl")
            assert curl.is_visible() and curl.inner_text().strip() == CURL
            assert card.locator("pre.response").is_visible()

            assert page.locator("#matrix table.matrix").is_visible()
            assert page.locator("#filters").is_visible()  # the script showed it

            passing = page.locator('#requirements tr[data-outcome="Pass"]')
            failing = page.locator('#requirements tr[data-outcome="Fail"]')
            assert passing.count() > 3 and passing.first.is_visible()
            page.locator('#filters button[data-dim="outcome"][data-value="Fail"]').click()
            assert all(not row.is_visible() for row in passing.all())
            assert failing.count() == 2 and all(row.is_visible() for row in failing.all())
            total = page.locator("#requirements tr[data-outcome]").count()
            assert page.locator("#filter-status").inner_text() == f"showing 2 of {total} requirements"
            page.screenshot(path=str(tmp_path / "report-fail-filter.png"), full_page=True)

            page.locator('#filters button[data-dim="outcome"][data-value=""]').click()
            assert passing.first.is_visible()
            assert requests == [page_file.as_uri()]  # nothing but the page itself
        finally:
            browser.close()


def test_without_script_everything_shows_and_the_filters_stay_hidden(catalogue, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) is not installed")
    page_file = write_html(sample_report(catalogue), tmp_path)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_context(java_script_enabled=False).new_page()
            page.goto(page_file.as_uri())
            assert not page.locator("#filters").is_visible()
            rows = page.locator("#requirements tr[data-outcome]")
            assert rows.count() > 3 and all(row.is_visible() for row in rows.all())
            assert page.locator("#failures pre.curl").first.is_visible()
        finally:
            browser.close()
