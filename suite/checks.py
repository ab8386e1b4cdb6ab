"""Assertions that turn a deviation into a readable, reproducible failure.

Every check raises ``ConformanceFailure`` (an AssertionError, so plain pytest reports it as a
failure) carrying what was expected, what was received, the response excerpt and the request, from
which the plugin prints the schemathesis-style message with a "Reproduce with:" curl line.
``TargetUnreachable`` is the opposite case: the suite or the network broke, which is an *Error*,
never a *Fail*; so is ``TokenExchangeFailed``, a test that could not get the task token it needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NoReturn

import httpx
import pytest
from _pytest.outcomes import Skipped

__all__ = [
    "DISABLED_PREFIX",
    "ConformanceFailure",
    "TargetBusy",
    "TargetUnreachable",
    "TokenExchangeFailed",
    "disabled",
    "excerpt",
    "expect",
    "expect_envelope",
    "expect_json",
    "expect_retry_after",
    "expect_status",
    "fail",
    "is_busy_503",
    "is_chat_completions",
    "is_validation_error",
]

DISABLED_PREFIX = "Disabled: "
_EXCERPT_LIMIT = 600


class ConformanceFailure(AssertionError):
    """The target does not conform: an outcome of *Fail*."""

    def __init__(
        self,
        message: str,
        *,
        expected: str,
        received: str,
        response: httpx.Response | None = None,
        request: httpx.Request | None = None,
    ) -> None:
        super().__init__(f"{message}\n    Expected: {expected}\n    Received: {received}")
        self.message = message
        self.expected = expected
        self.received = received
        self.response = response
        if request is None and response is not None:
            try:
                request = response.request
            except RuntimeError:
                request = None
        self.request = request


class TargetUnreachable(Exception):
    """The target could not be reached at all (connection refused, DNS): an outcome of *Error*."""


class TargetBusy(Skipped):
    """The target kept answering "busy, retry later" (503 + Retry-After, or a 429 the suite's own
    requests of the key explain) past the suite's patience: the test could not judge its subject, so it
    is *Skip* with this reason, never a Fail of the requirement it judges (``suite.http``)."""

    def __init__(self, message: str, *, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


class TokenExchangeFailed(Exception):
    """A test needed a task token and the exchange did not give one: an outcome of *Error*.

    The test meant to judge something else, so it cannot say whether that conforms; the exchange itself
    is judged (and failed) by the AUTH tests, which call ``Api.exchange`` and check its answer.
    """

    def __init__(self, message: str, *, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


def disabled(reason: str) -> NoReturn:
    """Mark the running test Disabled (a profile, option or feature is off); never a failure."""
    pytest.skip(DISABLED_PREFIX + reason)


def excerpt(response: httpx.Response | None, limit: int = _EXCERPT_LIMIT) -> str:
    """Status line, content type and the start of the body, for a failure message."""
    if response is None:
        return "(no response)"
    try:
        body = response.text
    except (httpx.ResponseNotRead, httpx.StreamError):
        body = "(streamed body)"
    if len(body) > limit:
        body = body[:limit] + f"... ({len(body) - limit} more characters)"
    content_type = response.headers.get("content-type", "(none)")
    return f"HTTP {response.status_code} (content-type: {content_type})\n{body}"


def fail(message: str, *, expected: str, received: str, response: httpx.Response | None = None) -> NoReturn:
    raise ConformanceFailure(message, expected=expected, received=received, response=response)


def expect(
    condition: object,
    message: str,
    *,
    expected: str,
    received: str,
    response: httpx.Response | None = None,
) -> None:
    if not condition:
        fail(message, expected=expected, received=received, response=response)


def expect_status(response: httpx.Response, *statuses: int, message: str | None = None) -> None:
    if response.status_code not in statuses:
        wanted = " or ".join(str(s) for s in statuses)
        fail(
            message or f"unexpected status for {response.request.method} {response.request.url.path}",
            expected=f"HTTP {wanted}",
            received=f"HTTP {response.status_code}",
            response=response,
        )


def expect_json(response: httpx.Response) -> Any:
    """The decoded JSON body, or a Fail that says the body is not JSON."""
    content_type = response.headers.get("content-type", "")
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        fail(
            "response body is not JSON",
            expected="a JSON body (application/json)",
            received=f"content-type {content_type or '(none)'}, undecodable body",
            response=response,
        )


def expect_envelope(response: httpx.Response, *, error_type: str | None = None) -> dict[str, Any]:
    """Check the documented error envelope ``{"error": {"message": str, "type": str}}``."""
    body = expect_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    expect(
        isinstance(error, dict)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("type"), str),
        "error response is not in the documented envelope",
        expected='{"error": {"message": <string>, "type": <string>}}',
        received=json.dumps(body)[:200],
        response=response,
    )
    assert isinstance(error, dict)  # narrowed by the check above
    if error_type is not None:
        expect(
            error["type"] == error_type,
            "error envelope has the wrong type",
            expected=f"error.type == {error_type!r}",
            received=f"error.type == {error['type']!r}",
            response=response,
        )
    return error


def expect_retry_after(response: httpx.Response, seconds: int) -> None:
    """``Retry-After`` must be present and equal ``seconds`` (an integer number of seconds)."""
    value = response.headers.get("retry-after")
    expect(
        value is not None and value.strip() == str(seconds),
        f"HTTP {response.status_code} without the documented Retry-After",
        expected=f"Retry-After: {seconds}",
        received=f"Retry-After: {value}" if value is not None else "no Retry-After header",
        response=response,
    )


def _validation_item(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("loc"), list)
        and all(isinstance(p, str | int) and not isinstance(p, bool) for p in item["loc"])
        and isinstance(item.get("msg"), str)
        and isinstance(item.get("type"), str)
    )


def is_validation_error(body: Any, *, detail_required: bool = False) -> bool:
    """Whether ``body`` is 002's ``HTTPValidationError``: an object whose ``detail``, when present, is an
    array of ``{loc, msg, type}`` items. 002 lists no ``required`` for the object, so by its words an
    absent or empty ``detail`` is allowed (ERR-005); ``detail_required`` asks for a non-empty one, which
    says what was wrong (ERR-004, a SHOULD)."""
    if not isinstance(body, dict):
        return False
    if "detail" not in body:
        return not detail_required
    detail = body["detail"]
    return (
        isinstance(detail, list)
        and (bool(detail) or not detail_required)
        and all(_validation_item(item) for item in detail)
    )


def is_chat_completions(method: str, path: str) -> bool:
    """Whether a request is ``POST /v1/chat/completions`` (under any base path): the one operation 002
    documents, whose error envelope ERR-001 judges."""
    return method.upper() == "POST" and path.rstrip("/").endswith("/v1/chat/completions")


def is_busy_503(status: int, header_names: Iterable[str]) -> bool:
    """A 503 with a ``Retry-After`` header: 000's "503 Insufficient GPU memory (Retry-After: 30s)", a busy
    server telling the client to come back. It says nothing about the request, so a rule about what a
    request deserves (ERR-006: invalid input never gets a 5xx) does not judge it."""
    return status == 503 and any(name.lower() == "retry-after" for name in header_names)
