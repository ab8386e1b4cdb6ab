"""Turn one pytest phase report (and its exception) into an outcome and a redacted failure detail.

* Fail: an ``AssertionError`` in the test body (``ConformanceFailure``, a plain ``assert``, a schemathesis
  check failure, ``pytest.fail``, pytest-timeout's per-test timeout), or a ``ConformanceFailure`` raised
  by a fixture (a fixture that checks the target's answer).
* Error: anything else: ``TargetUnreachable``, ``TokenExchangeFailed`` (a test or fixture needed a task
  token and got none: the AUTH tests judge the exchange, this test could not judge its own subject), a
  bug in a test or fixture, an unexpected exception.
* Skip / Disabled: a skip whose reason starts with ``suite.checks.DISABLED_PREFIX`` is Disabled.

Exception groups (hypothesis and schemathesis raise them for several failures) count as Fail when any
member is a failure: a proven deviation stands even if another example broke differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import httpx
import pytest

from suite.checks import DISABLED_PREFIX, ConformanceFailure, TargetUnreachable, TokenExchangeFailed, excerpt
from suite.curl import scrub, to_curl
from suite.outcomes import FailureDetail, Outcome

__all__ = ["classify", "leaves", "skip_reason"]

_TIMEOUT = re.compile(r"Timeout \(>([0-9.]+)s\) from pytest-timeout")
_MESSAGE_LIMIT = 2000


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exception itself, or every non-group member of an exception group."""
    if isinstance(exc, BaseExceptionGroup):
        for member in exc.exceptions:
            yield from leaves(member)
    else:
        yield exc


def _is_failure(exc: BaseException, phase: str) -> bool:
    if isinstance(exc, TargetUnreachable | TokenExchangeFailed):
        return False
    if isinstance(exc, ConformanceFailure):
        return True
    if phase != "call":
        return bool(_TIMEOUT.search(str(exc)))
    return isinstance(exc, AssertionError | pytest.fail.Exception)


def skip_reason(report: pytest.TestReport) -> str:
    """The reason of a skipped report, without pytest's ``Skipped: `` prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
    return reason.removeprefix("Skipped: ")


def _first_conformance_failure(exc: BaseException) -> ConformanceFailure | None:
    return next((e for e in leaves(exc) if isinstance(e, ConformanceFailure)), None)


def _detail(
    exc: BaseException, phase: str, keys: Mapping[str, str], last_request: httpx.Request | None
) -> FailureDetail:
    failure = _first_conformance_failure(exc)
    if failure is not None:
        request = failure.request or last_request
        return FailureDetail(
            message=scrub(failure.message, keys),
            expected=scrub(failure.expected, keys),
            received=scrub(failure.received, keys),
            response=scrub(excerpt(failure.response), keys) if failure.response is not None else None,
            curl=to_curl(request, keys) if request is not None else None,
            phase=phase,
        )
    timeout = _TIMEOUT.search(str(exc))
    if timeout:
        message = f"test exceeded {float(timeout.group(1)):g} s (per-test timeout); the target may hang"
    elif isinstance(exc, AssertionError | pytest.fail.Exception):
        message = str(exc) or type(exc).__name__
    else:
        message = f"{type(exc).__name__}: {exc}"
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + "..."
    # Schemathesis failures carry their own reproduce line (for the request that failed); ours would
    # show whatever the suite's client sent last, which is another request.
    own_curl = "Reproduce with:" in message
    # A failed exchange shows what the token endpoint answered (the test never got to its own request).
    exchange = next((e for e in leaves(exc) if isinstance(e, TokenExchangeFailed)), None)
    answer = exchange.response if exchange is not None else None
    return FailureDetail(
        message=scrub(message, keys),
        response=scrub(excerpt(answer), keys) if answer is not None else None,
        curl=to_curl(last_request, keys) if last_request is not None and not own_curl else None,
        phase=phase,
    )


def classify(
    report: pytest.TestReport,
    excinfo: pytest.ExceptionInfo[BaseException] | None,
    *,
    keys: Mapping[str, str],
    last_request: httpx.Request | None = None,
) -> tuple[Outcome, str | None, FailureDetail | None] | None:
    """The outcome this phase contributes, or None (a setup or teardown that passed says nothing)."""
    if report.skipped:
        if hasattr(report, "wasxfail"):
            return Outcome.SKIP, f"expected failure: {report.wasxfail}", None
        reason = scrub(skip_reason(report), keys)
        if reason.startswith(DISABLED_PREFIX):
            return Outcome.DISABLED, reason.removeprefix(DISABLED_PREFIX), None
        return Outcome.SKIP, reason, None
    if report.passed:
        return (Outcome.PASS, None, None) if report.when == "call" else None
    # Failed. Without an exception (a strict xpass), it is a plain failure of the test.
    if excinfo is None:
        message = scrub(str(report.longrepr or "failed"), keys)
        return Outcome.FAIL, None, FailureDetail(message=message, phase=report.when)
    exc = excinfo.value
    failed = any(_is_failure(e, report.when) for e in leaves(exc))
    detail = _detail(exc, report.when, keys, last_request)
    if not failed and report.when != "call":
        detail.message = f"{report.when} error: {detail.message}"
    return (Outcome.FAIL if failed else Outcome.ERROR), None, detail
