"""Each test's outcome as it runs: the live progress line, the outcome per test, quiet test status."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from suite.classify import classify
from suite.http import Api
from suite.outcomes import TestResult
from suite.run_state import STATE

__all__ = ["pytest_report_teststatus", "pytest_runtest_makereport", "pytest_runtest_protocol"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """A live progress line in ``conform42 run`` on a terminal (pytest prints its own otherwise)."""
    state = item.config.stash[STATE]
    reporter: pytest.TerminalReporter | None = item.config.pluginmanager.get_plugin("terminalreporter")
    live = bool(state.compact and state.active and reporter is not None and reporter.isatty)
    if live and reporter is not None:
        ids = ", ".join(state.item_ids.get(item.nodeid, ())) or "-"
        line = f"conform42: [{state.done + 1}/{len(item.session.items)}] {ids}  {item.name}"
        reporter.rewrite(line[: item.config.get_terminal_writer().fullwidth - 1], erase=True)
    try:
        return (yield)
    finally:
        state.done += 1
        if live and reporter is not None and nextitem is None:
            reporter.rewrite("", erase=True)


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
