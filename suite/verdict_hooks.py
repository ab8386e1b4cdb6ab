"""The run's end: each requirement's outcome, the verdict and exit code, the reports and the summary."""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime

import pytest

from suite.outcomes import EXIT_SUITE_ERROR, aggregate, decide_verdict
from suite.report import RunReport, render_summary, write_reports
from suite.run_state import STATE, require_settings

__all__ = ["pytest_sessionfinish", "pytest_terminal_summary"]


def _session_error(session: pytest.Session, exitstatus: int) -> str | None:
    state = session.config.stash[STATE]
    if state.reference_error:
        return state.reference_error
    if state.collect_errors:
        return f"{len(state.collect_errors)} error(s) while collecting the tests"
    if isinstance(session.shouldfail, str) and "session-timeout" in session.shouldfail:
        return f"the run was stopped: {session.shouldfail}"
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "the run was interrupted"
    if exitstatus in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        return f"pytest ended with {pytest.ExitCode(exitstatus).name}"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[STATE]
    if state.progress is not None:
        # Here rather than after the last test: -x, --maxfail and the session timeout end a run early,
        # and the line must be gone before the summary is written whichever way the tests ended.
        state.progress.stop()
    if state.usage_error:
        # Said on stderr when it happened; no verdict and no report: nothing was judged.
        session.exitstatus = EXIT_SUITE_ERROR
        return
    if state.compact and state.collect_errors:
        state.active = True  # a suite that cannot even be collected still gets a verdict: INCONCLUSIVE
    if not state.active:
        return
    settings = require_settings(session.config)
    results = aggregate(state.selected, state.tests.values())
    verdict = decide_verdict(
        results,
        session_error=_session_error(session, exitstatus),
        gate=settings.gate,
        accepted_skips=settings.accept_skip,
    )
    stopped = state.liveness.stopped()
    if stopped and verdict.label != "CONFORMANT":
        # Name the cause after the verdict's own reason: the Errors are the tests not sent to it.
        verdict = dataclasses.replace(verdict, reason=f"{verdict.reason}; {'; '.join(stopped)}")
    target_url = settings.target or (state.reference.base_url if state.reference else "(reference server)")
    state.report = RunReport(
        target=target_url,
        profile=settings.profile,
        level=settings.level,
        config=settings.redacted(),
        started=state.started,
        finished=datetime.now(UTC),
        requirements=results,
        tests=list(state.tests.values()),
        verdict=verdict,
        notes=list(state.notes)
        + [f"collection error: {e}" for e in state.collect_errors]
        + [f"liveness: {s}" for s in stopped],
    )
    if settings.report_dir is not None:
        try:
            state.written = [str(p) for p in write_reports(state.report, settings.report_dir)]
        except OSError as exc:
            state.notes.append(f"could not write the report into {settings.report_dir}: {exc}")
            session.exitstatus = EXIT_SUITE_ERROR
            return
    session.exitstatus = verdict.exit_code


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    state = config.stash[STATE]
    if not state.active or state.report is None:
        return
    writer = config.get_terminal_writer()
    color = writer.hasmarkup and not os.environ.get("NO_COLOR")
    terminalreporter.write(
        render_summary(state.report, width=writer.fullwidth, color=color, written=state.written)
    )
