"""A run report built directly (no server, no pytest child) for the tests of ``report.html``: most
requirements pass, one MUST fails with every failure detail, one SHOULD fails, one errors, some are
disabled, skipped or not tested, across several areas and all three levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from suite.catalogue import Catalogue
from suite.outcomes import FailureDetail, Outcome, TestResult, aggregate, decide_verdict
from suite.report import RunReport

FAILING_MUST = "AUTH-001"
FAILING_SHOULD = "ERR-003"
ERRORING = "CHAT-001"
CURL = 'curl -sS -i -X POST http://target.test/api/token -H "Authorization: Bearer $CONFORM42_KEY_FREE"'
HOSTILE = '<script>alert("x")</script>'

_SPECIAL = {
    FAILING_MUST: Outcome.FAIL,
    FAILING_SHOULD: Outcome.FAIL,
    ERRORING: Outcome.ERROR,
    "MODEL-002": Outcome.DISABLED,
    "LIMIT-001": Outcome.SKIP,
}


def _test(requirement_id: str, outcome: Outcome) -> TestResult:
    test = TestResult(
        f"suite/conformance/test_x.py::test_{requirement_id.lower().replace('-', '_')}", (requirement_id,)
    )
    test.duration_s = 0.25
    if outcome is Outcome.FAIL:
        test.record(
            outcome,
            failure=FailureDetail(
                message=f"{requirement_id}: the token exchange answered without a task token",
                expected='HTTP 200 {"task_token": <string>}',
                received=f"HTTP 200 {HOSTILE}",
                response=f"HTTP 200 (content-type: text/html)\n{HOSTILE}",
                curl=CURL,
            ),
        )
    elif outcome is Outcome.ERROR:
        test.record(outcome, failure=FailureDetail(message="TargetUnreachable: connection reset"))
    elif outcome in (Outcome.DISABLED, Outcome.SKIP):
        test.record(outcome, reason="no API key for the pro tier")
    else:
        test.record(outcome)
    return test


def sample_report(catalogue: Catalogue, *, seconds: float = 261.4) -> RunReport:
    """The report; the requirements are AUTH, ERR, CHAT, MODEL and LIMIT, the last one untested."""
    selected = [r for r in catalogue.select() if r.area in ("auth", "errors", "chat", "models", "limits")]
    tests = [_test(r.id, _SPECIAL.get(r.id, Outcome.PASS)) for r in selected[:-1]]
    results = aggregate(selected, tests)
    started = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    return RunReport(
        target="http://target.test",
        profile="42ai",
        level="may",
        config={"target": "http://target.test", "keys": {"free": "given"}},
        started=started,
        finished=started + timedelta(seconds=seconds),
        requirements=results,
        tests=tests,
        verdict=decide_verdict(results),
    )
