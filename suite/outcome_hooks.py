"""Each test's outcome as it runs: the progress line, the outcome per test, quiet test status."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Generator
from datetime import UTC, datetime

import pytest

from suite.classify import classify
from suite.http import Api
from suite.outcomes import Outcome, TestResult
from suite.progress import Progress, open_progress_stream
from suite.run_state import STATE, RunState

__all__ = ["pytest_report_teststatus", "pytest_runtest_makereport", "pytest_runtest_protocol"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """The progress line of ``conform42 run`` (``suite.progress``); pytest prints its own otherwise."""
    state = item.config.stash[STATE]
    progress = _progress(item, state)
    if progress is not None:
        progress.test_started(state.item_ids.get(item.nodeid, ()))
    try:
        return (yield)
    finally:
        state.done += 1
        if progress is not None:
            test = state.tests.get(item.nodeid)
            outcome = test.outcome if test is not None else None
            progress.test_finished(failed=outcome is Outcome.FAIL, error=outcome is Outcome.ERROR)


def _progress(item: pytest.Item, state: RunState) -> Progress | None:
    """The run's progress line, started with its first test (None: not ``conform42 run``, or ``-q``)."""
    if state.progress is None and state.compact and state.active and not state.quiet:
        stream = open_progress_stream()
        if stream is None:
            return None
        live = stream.isatty()
        width = 120
        if live:
            with contextlib.suppress(OSError):
                width = os.get_terminal_size(stream.fileno()).columns
        state.progress = Progress(
            stream,
            total=len(item.session.items),
            live=live,
            areas={r.id: r.area for r in state.selected},
            started=time.monotonic() - (datetime.now(UTC) - state.started).total_seconds(),
            width=width,
        )
        state.progress.start()
    return state.progress


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = item.config.stash[STATE]
    if state.active and item.nodeid in state.item_ids:
        test = state.tests.setdefault(item.nodeid, TestResult(item.nodeid, state.item_ids[item.nodeid]))
        test.duration_s += report.duration
        client = getattr(item, "funcargs", {}).get("api")
        last = client.last_request if isinstance(client, Api) else None
        if call.when == "setup":
            state.request_before[item.nodeid] = last
        elif last is state.request_before.get(item.nodeid):
            last = None  # sent by an earlier test
        phase = classify(report, call.excinfo, keys=state.keys, last_request=last)
        if phase is not None:
            outcome, reason, detail = phase
            test.record(outcome, reason=reason, failure=detail)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """In compact mode, count outcomes as usual but print nothing per test (the summary says it all)."""
    state = config.stash[STATE]
    if not (state.compact and state.active) or report.nodeid not in state.item_ids:
        return None
    if report.when != "call" and report.passed:
        return "", "", ""
    if report.when != "call" and report.failed:
        return "error", "", ""
    return report.outcome, "", ""
