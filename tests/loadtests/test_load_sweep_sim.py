"""A short capacity sweep end to end (``python -m loadtests --sweep-rates``) against the reference
server on the sim engine: the step table in the JSON summary, the HTML report with its plots, the
report opened in headless Chromium, and the drain after the last step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.loadtests.conftest import SIM_TOKEN_DELAY, Run, run_harness, sim_args
from tests.support.server_process import ServerProcess

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


# ------------------------------------------------------------------------------------------ drain
#: Slow answers (16 tokens at 100 ms: about 1.6 s), so requests are in flight whenever the ladder ends.
SLOW_TOKEN_DELAY = "0.1"
OPEN_LOOP_ONLY = (
    *("--free-users", "0", "--pro-users", "0", "--internal-users", "0"),
    *("--open-loop-arrival", "fixed"),
)
STEPS = ("--sweep-step-seconds", "3", "--sweep-warmup-seconds", "1", "--sweep-full")
DRAIN_SWEEP = ["--sweep-rates", "4,8", *STEPS, *OPEN_LOOP_ONLY]
#: One step is enough where only the last step matters (each step is 3 s of the slow lane).
ONE_STEP = ["--sweep-rates", "8", *STEPS, *OPEN_LOOP_ONLY]


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    args = sim_args(tmp_path_factory.mktemp("slow"))
    args = [SLOW_TOKEN_DELAY if a == SIM_TOKEN_DELAY else a for a in args]
    with ServerProcess(args) as server:
        yield server


def test_requests_still_in_flight_after_the_drain_are_counted_unfinished(slow_server, tmp_path):
    """Answers of about 10 s (100 tokens) against a drain of --request-timeout + 1 s: the late requests
    are counted as sent and unfinished, and a step with unfinished requests does not meet the SLOs."""
    long_answers = ("--prompt", "Write at least 100 words.", "--max-tokens", "100", "--request-timeout", "1")
    run = run_harness(tmp_path, slow_server.base_url, *ONE_STEP, *long_answers)
    sweep = run.summary["sweep"]
    last = sweep["steps"][-1]
    assert last["all"]["sent"] == pytest.approx(16, abs=1)
    assert last["all"]["unfinished"] == last["all"]["sent"]
    assert not last["meets_slo"] and "unfinished" in last["breaches"][0]
    assert sweep["drain"]["seconds"] == pytest.approx(2.0, abs=1.0)
    assert sweep["drain"]["unfinished"] >= last["all"]["sent"]
    assert run.returncode == 1 and "sweep: no step met the SLOs" in run.summary["reasons"]


def test_arrivals_the_client_drops_are_counted_per_step_and_fail_the_step(slow_server, tmp_path):
    """At most 2 in flight against 1.6 s answers: most arrivals are dropped by the client, so the
    steps' load was not offered and no step meets the SLOs."""
    run = run_harness(tmp_path, slow_server.base_url, *ONE_STEP, "--open-loop-max-in-flight", "2")
    sweep = run.summary["sweep"]
    (step,) = sweep["steps"]
    s = step["all"]
    assert s["dropped"] > 0 and s["sent"] + s["dropped"] == pytest.approx(16, abs=1)
    assert not step["meets_slo"] and "dropped by the client" in step["breaches"][0]
    assert run.summary["open_loop"]["dropped_arrivals"] >= s["dropped"]
    assert run.returncode == 1
    # One process: the drain ends as soon as its own requests have (about one answer, 1.6 s).
    assert sweep["drain"]["seconds"] < 5 and sweep["drain"]["unfinished"] == 0


def test_the_last_step_keeps_its_requests_in_flight_when_the_ladder_ends(slow_server, tmp_path):
    """The sweep drains: requests sent late in the last step are answered and measured, not cut off.
    Distributed, so the master hears of its worker's requests in flight through the worker's reports
    (without them it would wait out the drain's 61 s limit)."""
    run = run_harness(tmp_path, slow_server.base_url, *DRAIN_SWEEP, workers=1)
    assert run.returncode == 0, run.output[-3000:]
    sweep = run.summary["sweep"]
    # 2 measured seconds per step at 4 and 8 fixed arrivals/s: 8 and 16 sent (one either way at the edges)
    assert [s["all"]["sent"] for s in sweep["steps"]] == [pytest.approx(8, abs=1), pytest.approx(16, abs=1)]
    last = sweep["steps"][-1]["all"]
    assert last["ok"] == last["sent"] and last["unfinished"] == 0
    assert last["e2e_ms"]["p50"] > 1000  # the slow answers themselves
    assert 1.0 < sweep["drain"]["seconds"] < 10 and sweep["drain"]["unfinished"] == 0
    assert "drained in" in run.output
