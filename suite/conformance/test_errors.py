"""Errors: each documented status for the input that should cause it, in its envelope with its type;
never a 5xx for a client's mistake (MUST), a 4xx for it (SHOULD). Rare statuses (500, 503) are judged
whenever the session saw one."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from suite.checks import (
    TargetBusy,
    expect,
    expect_envelope,
    expect_json,
    expect_status,
    is_busy_503,
    is_chat_completions,
    is_validation_error,
)
from suite.conformance._helpers import CHAT, Memo, chat_body, late
from suite.conformance.conftest import ResponseLog
from suite.http import Api
from suite.markers import requirement
from suite.target import Target

#: Invalid client inputs -> the status the SHOULDs expect (None: any 4xx). The MUST (ERR-006) asks
#: only that none of them gets a 5xx; which 4xx each gets is for the SHOULDs (ERR-003/004/007/013).
INVALID = {
    "malformed-json": 400,
    "messages-missing": 422,
    "messages-not-array": 422,
    "model-not-string": 422,
    "unknown-role": 422,
    "wrong-content-type": None,
    "unknown-model": 404,
}
SCHEMA_VIOLATIONS = ["messages-missing", "messages-not-array", "model-not-string"]
#: Messages missing a field 001 marks "required" (ERR-014); 002's Message schema requires neither.
MESSAGE_FIELD_MISSING = ["role-missing", "content-missing"]
#: The statuses 002 declares with the error envelope for POST /v1/chat/completions (ERR-001).
FORTYTWO_ENVELOPE_STATUSES = (400, 401, 404, 429, 500)


def invalid_request(api: Api, memo: Memo, target: Target, tier: str, case: str) -> httpx.Response:
    def send() -> httpx.Response:
        model = target.chat_model
        body: dict[str, Any] = chat_body(model, max_tokens=4)
        if case == "malformed-json":
            return api.post(
                CHAT,
                tier=tier,
                content=b'{"model": "' + model.encode() + b'", "messages": [',
                headers={"Content-Type": "application/json"},
            )
        if case == "wrong-content-type":
            return api.post(
                CHAT, tier=tier, content=json.dumps(body).encode(), headers={"Content-Type": "text/plain"}
            )
        if case == "messages-missing":
            del body["messages"]
        elif case == "messages-not-array":
            body["messages"] = "Hello!"
        elif case == "model-not-string":
            body["model"] = 42
        elif case == "unknown-role":
            body["messages"] = [{"role": "wizard", "content": "Hello!"}]
        elif case == "role-missing":
            body["messages"] = [{"content": "Hello!"}]
        elif case == "content-missing":
            body["messages"] = [{"role": "user"}]
        elif case == "unknown-model":
            body["model"] = f"conform42-no-such-model-{uuid.uuid4().hex[:8]}"
        return api.post(CHAT, body, tier=tier)

    return memo(f"invalid-{case}-{tier}", send)


def unauthenticated(api: Api, memo: Memo, target: Target) -> httpx.Response:
    return memo(
        "invalid-credential",
        lambda: api.post(
            CHAT,
            chat_body(target.chat_model, max_tokens=4),
            tier=None,
            headers={"Authorization": f"Bearer invalid-{uuid.uuid4().hex}"},
        ),
    )


def _expect_validation_error(response: httpx.Response, *, detail_required: bool = False) -> None:
    """002's HTTPValidationError; ``detail_required``: with a non-empty detail (ERR-004, a SHOULD; 002
    makes no member of the object required, so ERR-005 asks only that a detail given has its shape)."""
    body = expect_json(response)
    expect(
        is_validation_error(body, detail_required=detail_required),
        "the 422 body is not an HTTPValidationError",
        expected=(
            '{"detail": [{"loc": [<string|int>...], "msg": <string>, "type": <string>}, ...]}'
            if detail_required
            else 'an object whose detail, if given, is [{"loc": [<string|int>...], "msg": <string>, '
            '"type": <string>}, ...]'
        ),
        received=json.dumps(body)[:300],
        response=response,
    )


def _documented_error(api: Api, memo: Memo, target: Target, tier: str, status: int) -> httpx.Response:
    """The exchange meant to draw ``status``: malformed JSON (400), a bad credential (401), an unknown
    model (404)."""
    if status == 401:
        return unauthenticated(api, memo, target)
    return invalid_request(api, memo, target, tier, {400: "malformed-json", 404: "unknown-model"}[status])


def _envelope_applies(response: httpx.Response, profile: str) -> bool:
    """ERR-001 covers the statuses 002 declares with the envelope; ERR-002 every 42ai error but 422."""
    if profile == "fortytwo":
        return response.status_code in FORTYTWO_ENVELOPE_STATUSES
    return response.status_code >= 400 and response.status_code != 422


@pytest.mark.parametrize(
    ("status", "profile"),
    [
        pytest.param(status, profile, marks=requirement(rid), id=f"{status}-{profile}")
        for rid, profile in (("ERR-001", "fortytwo"), ("ERR-002", "42ai"))
        for status in (400, 401, 404)
    ],
)
def test_error_envelope(api: Api, memo: Memo, target: Target, tier: str, status: int, profile: str) -> None:
    """ERR-001 (fortytwo, MUST) and ERR-002 (42ai, SHOULD) ask for the same envelope. They judge the
    body, not the status: the status each input gets is judged by its own requirement (ERR-003 wants 400
    for malformed JSON, which a FastAPI server answers 422; AUTH-014/AUTH-005, MODEL-012/MODEL-009), so
    an answer outside the envelope rule's statuses is a Skip here, never a Fail."""
    response = _documented_error(api, memo, target, tier, status)
    if not _envelope_applies(response, profile):
        pytest.skip(
            f"the input meant to draw {status} was answered {response.status_code}, to which the envelope "
            f"rule of {profile} does not apply (the status is judged by its own requirement)"
        )
    expect_envelope(response)


@requirement("ERR-003")
def test_malformed_json_is_400(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response = invalid_request(api, memo, target, tier, "malformed-json")
    expect_status(response, 400, message="an unparseable JSON body was not answered 400")
    expect_envelope(response, error_type="invalid_request_error")


@requirement("ERR-004")
@pytest.mark.parametrize("case", SCHEMA_VIOLATIONS)
def test_schema_violation_is_422(api: Api, memo: Memo, target: Target, tier: str, case: str) -> None:
    response = invalid_request(api, memo, target, tier, case)
    expect_status(response, 422, message=f"a body with {case.replace('-', ' ')} was not answered 422")
    _expect_validation_error(response, detail_required=True)


@requirement("ERR-005")
@pytest.mark.parametrize("case", [*SCHEMA_VIOLATIONS, "unknown-role"])
def test_422_detail_items_shape(api: Api, memo: Memo, target: Target, tier: str, case: str) -> None:
    response = invalid_request(api, memo, target, tier, case)
    if response.status_code != 422:
        pytest.skip(f"{case} was answered {response.status_code}, not 422 (judged by ERR-004/ERR-006)")
    _expect_validation_error(response)


@requirement("ERR-006")
@pytest.mark.parametrize("case", [*INVALID, *MESSAGE_FIELD_MISSING])
def test_invalid_input_never_gets_5xx(api: Api, memo: Memo, target: Target, tier: str, case: str) -> None:
    """MUST: only a server error fails here. Whether the input is rejected, and with which 4xx, is judged
    by the SHOULDs (ERR-013, ERR-014, ERR-003, ERR-004)."""
    try:
        response = invalid_request(api, memo, target, tier, case)
    except TargetBusy as busy:
        # Busy every time: a valid request sent at once tells a busy server from one that answers
        # this input with a "busy" 503 (a server error in disguise).
        with api.impatient():
            control = api.post(CHAT, chat_body(target.chat_model, max_tokens=4), tier=tier)
        expect(
            not control.is_success,
            f"invalid input ({case.replace('-', ' ')}) got 503 + Retry-After on every try while a valid "
            "request sent right after was served",
            expected="no 5xx for invalid input (a busy server is busy for valid requests too)",
            received=f"HTTP 503 to the invalid input, HTTP {control.status_code} to the valid one",
            response=busy.response,
        )
        raise
    if is_busy_503(response.status_code, response.headers.keys()):
        pytest.skip(
            f"invalid input ({case.replace('-', ' ')}) met a busy server: HTTP 503 with Retry-After "
            f"{response.headers['retry-after']!r} (000's insufficient-GPU-memory answer) says nothing of the "
            "input"
        )
    expect(
        response.status_code < 500,
        f"invalid input ({case.replace('-', ' ')}) got a server error",
        expected="no 5xx (the mistake is the client's, not an internal server error)",
        received=f"HTTP {response.status_code}",
        response=response,
    )


def _expect_4xx(response: httpx.Response, case: str) -> None:
    expect(
        400 <= response.status_code < 500,
        f"invalid input ({case.replace('-', ' ')}) was not rejected with a 4xx",
        expected="a 4xx status (the client's mistake)",
        received=f"HTTP {response.status_code}",
        response=response,
    )


@requirement("ERR-013")
@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_input_is_4xx(api: Api, memo: Memo, target: Target, tier: str, case: str) -> None:
    _expect_4xx(invalid_request(api, memo, target, tier, case), case)


@requirement("ERR-014")
@pytest.mark.parametrize("case", MESSAGE_FIELD_MISSING)
def test_message_without_role_or_content_is_4xx(
    api: Api, memo: Memo, target: Target, tier: str, case: str
) -> None:
    _expect_4xx(invalid_request(api, memo, target, tier, case), case)


@requirement("ERR-007")
def test_unknown_role_is_422(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response = invalid_request(api, memo, target, tier, "unknown-role")
    expect_status(response, 422, message="a message role outside system|user|assistant was not 422")


@requirement("ERR-008")
def test_401_type_is_authentication_error(api: Api, memo: Memo, target: Target) -> None:
    response = unauthenticated(api, memo, target)
    expect_status(response, 401)
    expect_envelope(response, error_type="authentication_error")


@requirement("ERR-009")
def test_unknown_model_type_is_model_not_found(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response = invalid_request(api, memo, target, tier, "unknown-model")
    expect_status(response, 404)
    expect_envelope(response, error_type="model_not_found")


# ------------------------------------------------------------------------ seen during the session
@late
@requirement("ERR-001")
def test_every_fortytwo_error_seen_has_envelope(response_log: ResponseLog) -> None:
    """002 declares the envelope for its one operation, POST /v1/chat/completions: the errors of other
    endpoints are not ERR-001's."""
    for response in response_log.with_status(*FORTYTWO_ENVELOPE_STATUSES):
        if is_chat_completions(response.request.method, response.request.url.path):
            expect_envelope(response)


@late
@requirement("ERR-002")
def test_every_42ai_error_seen_has_envelope(response_log: ResponseLog) -> None:
    for response in response_log.responses:
        if response.status_code != 422:
            expect_envelope(response)


@late
@requirement("ERR-005")
def test_every_422_seen_is_validation_error(response_log: ResponseLog) -> None:
    seen = response_log.with_status(422)
    if not seen:
        pytest.skip("no 422 was seen in this session (a server may answer invalid input with 400)")
    for response in seen:
        _expect_validation_error(response)


@late
@requirement("ERR-011")
def test_500_type_is_internal_error(response_log: ResponseLog) -> None:
    """A 500 cannot be caused on purpose from outside; every 500 seen in the session is checked, and the
    test Skips when there was none."""
    seen = response_log.with_status(500)
    if not seen:
        pytest.skip("no 500 was seen in this session (it cannot be provoked from outside)")
    for response in seen:
        expect_envelope(response, error_type="internal_error")


@late
@requirement("ERR-012")
def test_503_type_is_service_unavailable(response_log: ResponseLog) -> None:
    """As for LIMIT-011: every 503 seen in the session (the KV-cache test provokes one where it can) is
    checked; Skip when there was none."""
    seen = response_log.with_status(503)
    if not seen:
        pytest.skip("no 503 was seen in this session (the KV-cache test of LIMIT-011 provoked none)")
    for response in seen:
        expect_envelope(response, error_type="service_unavailable")
