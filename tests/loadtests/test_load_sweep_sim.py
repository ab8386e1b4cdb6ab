"""A short capacity sweep end to end (``python -m loadtests --sweep-rates``) against the reference
server on the sim engine: the step table in the JSON summary, the HTML report with its plots, and the
report opened in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.loadtests.conftest import Run, run_harness

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SWEEP = [
    *("--sweep-rates", "4,8,16", "--sweep-step-seconds", "3", "--sweep-warmup-seconds", "1", "--sweep-full"),
    *("--free-users", "1", "--pro-users", "1", "--internal-users", "0"),
    *("--weight-batch", "0", "--weight-pipeline", "0", "--slo-ttft-ms", "2000"),
]


@pytest.fixture(scope="module")
def sweep_run(clean_server, tmp_path_factory) -> tuple[Run, Path]:
    tmp = tmp_path_factory.mktemp("sweep-run")
    return run_harness(tmp, clean_server.base_url, *SWEEP), tmp / "summary.html"


def test_sweep_reports_a_step_table_with_goodput(sweep_run):
    run, _ = sweep_run
    assert run.returncode == 0, run.output[-3000:]
    sweep = run.summary["sweep"]
    steps = sweep["steps"]
    assert [s["load"] for s in steps] == [4.0, 8.0, 16.0]
    for s in steps:
        assert s["all"]["sent"] > 0 and s["all"]["goodput_per_s"] > 0
        assert {"free", "pro", "internal"} <= set(s["tiers"])
        assert s["tiers"]["internal"]["ttft_ms"]["p50"] > 0
    assert steps[2]["tiers"]["internal"]["sent_per_s"] > steps[0]["tiers"]["internal"]["sent_per_s"]
    assert sweep["highest_load_meeting_slo"] == 16.0
    assert run.summary["violations"] == []
    assert "capacity sweep" in run.output and "highest load meeting the SLOs" in run.output


def test_sweep_writes_an_html_report_next_to_the_json(sweep_run):
    _, html = sweep_run
    page = html.read_text(encoding="utf-8")
    assert page.count("<svg") >= 6
    assert 'id="sweep-steps"' in page


def test_html_report_shows_its_plots_and_step_table_in_a_browser(sweep_run):
    _, html = sweep_run
    if not CHROMIUM.exists():
        pytest.skip("no Chromium at /usr/bin/chromium: the browser test needs a local Chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page()
            page.goto(html.as_uri())
            plots = page.locator("figure.plot svg")
            assert plots.count() >= 6
            for i in range(plots.count()):
                assert plots.nth(i).is_visible()
            table = page.locator("#sweep-steps")
            assert table.is_visible()
            assert table.locator("tbody tr").count() >= 3
        finally:
            browser.close()
