"""Authentication: the 42ai key -> 60 s task token exchange, and the Fortytwo key-as-bearer scheme."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from suite.checks import expect, expect_json, expect_status, fail
from suite.conformance._helpers import (
    BATCH,
    CHAT,
    EMBED,
    MODELS,
    PIPELINE,
    b64url_decode,
    b64url_encode,
    chat_body,
    json_object,
    json_or_none,
    late,
)
from suite.conformance.conftest import AgedToken
from suite.http import Api
from suite.markers import requirement
from suite.target import Target
from suite.token_segments import JWE_SEGMENTS, JWS_SEGMENTS


def _exchange(api: Api, tier: str) -> tuple[httpx.Response, str]:
    response = api.exchange(api.target.key(tier))
    # 000 shows the exchange's body and names no status code: any success status is an answer (AUTH-001).
    expect(
        response.is_success,
        "POST /api/token with a valid API key was not answered with a success status",
        expected="a 2xx status (000 names none; 200 or 201 Created are usual)",
        received=f"HTTP {response.status_code}",
        response=response,
    )
    body = json_object(response, "the token exchange response")
    token = body.get("task_token")
    expect(
        isinstance(token, str) and token != "",
        "the token exchange response has no task_token string",
        expected='{"task_token": <non-empty string>}',
        received=json.dumps(body)[:200],
        response=response,
    )
    assert isinstance(token, str)
    return response, token


def _chat_with(api: Api, bearer: str | None, model: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
    return api.post(CHAT, chat_body(model, max_tokens=4), tier=None, headers=headers)


def _expect_401(response: httpx.Response, what: str) -> None:
    expect_status(response, 401, message=f"{what} was not rejected with 401")


def _expect_not_served(response: httpx.Response, what: str, status_rid: str) -> None:
    """Refused: any status but 2xx. Which status is ``status_rid``'s question (a SHOULD)."""
    expect(
        not response.is_success,
        f"{what} was served",
        expected=f"a status other than 2xx (401 expected, judged by {status_rid})",
        received=f"HTTP {response.status_code}",
        response=response,
    )


# ------------------------------------------------------------------------------------ exchange
@requirement("AUTH-001")
def test_token_exchange_returns_task_token(api: Api, tier: str) -> None:
    _exchange(api, tier)


@requirement("AUTH-002")
def test_task_token_is_compact_jwt(api: Api, tier: str) -> None:
    """A JWT (RFC 7519) is a JWS (three segments) or a JWE (five, whose payload is encrypted, so only
    its header can be read); 000 does not say which."""
    response, token = _exchange(api, tier)
    parts = token.split(".")
    expect(
        len(parts) in (JWS_SEGMENTS, JWE_SEGMENTS),
        "the task token is not a compact JWT",
        expected="three (JWS) or five (JWE) dot-separated base64url segments",
        received=f"{len(parts)} segment(s)",
        response=response,
    )
    readable = ("header", "payload") if len(parts) == JWS_SEGMENTS else ("header",)
    for name, segment in zip(readable, parts, strict=False):
        try:
            decoded: Any = json.loads(b64url_decode(segment))
        except (ValueError, UnicodeDecodeError):
            decoded = None
        expect(
            isinstance(decoded, dict),
            f"the task token's {name} is not base64url-encoded JSON",
            expected=f"the {name} segment decodes to a JSON object",
            received=f"{segment[:40]!r}",
            response=response,
        )


@requirement("AUTH-003")
def test_task_token_lifetime_claims_at_most_60_s(api: Api, tier: str) -> None:
    response, token = _exchange(api, tier)
    if token.count(".") + 1 == JWE_SEGMENTS:
        pytest.skip("the task token is a JWE (five segments, AUTH-002 allows it): its claims are encrypted")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        fail(
            "the task token's payload cannot be decoded",
            expected="a JWT payload",
            received=str(exc),
            response=response,
        )
    iat, exp = claims.get("iat"), claims.get("exp")
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp))
    expect(
        numeric,
        "the task token lacks numeric iat and exp claims",
        expected="numeric iat and exp (RFC 7519)",
        received=f"iat={iat!r}, exp={exp!r}",
        response=response,
    )
    assert isinstance(iat, int | float) and isinstance(exp, int | float)
    expect(
        0 < exp - iat <= 60,
        "the task token's lifetime claims exceed the documented 60 seconds",
        expected="0 < exp - iat <= 60",
        received=f"exp - iat = {exp - iat}",
        response=response,
    )


BAD_KEYS = pytest.mark.parametrize(
    "credential",
    [None, "not-an-api-key", "sk-42ai-unknown-" + uuid.uuid4().hex],
    ids=["missing", "malformed", "unknown"],
)


@requirement("AUTH-010")
@BAD_KEYS
def test_token_exchange_refuses_bad_api_key(api: Api, credential: str | None) -> None:
    """Refused: no success status and no task token. Which status is AUTH-015's (a SHOULD)."""
    response = api.exchange(credential)
    body = json_or_none(response)
    expect(
        not response.is_success and not (isinstance(body, dict) and body.get("task_token")),
        "POST /api/token with a missing, malformed or unknown API key was not refused",
        expected="a status other than 2xx and no task_token in the body",
        received=f"HTTP {response.status_code}: {json.dumps(body)[:200]}",
        response=response,
    )


@requirement("AUTH-015")
@BAD_KEYS
def test_token_exchange_refuses_bad_api_key_with_401(api: Api, credential: str | None) -> None:
    _expect_401(api.exchange(credential), "POST /api/token with a missing, malformed or unknown API key")


# -------------------------------------------------------------------------------- use of tokens
def _accepting_requests(api: Api, target: Target) -> dict[str, tuple[str, str, Any]]:
    model = target.chat_model
    return {
        "chat": ("POST", CHAT, chat_body(model, max_tokens=4)),
        "embeddings": ("POST", EMBED, {"model": target.embed_model or "42-embed", "input": "Hello world"}),
        "models": ("GET", MODELS, None),
        "batch-submit": (
            "POST",
            BATCH,
            {"model": model, "tasks": [{"id": "t1", "messages": [{"role": "user", "content": "Say yes."}]}]},
        ),
        "batch-status": ("GET", f"{BATCH}/batch_conform42_{uuid.uuid4().hex[:12]}", None),
        "pipeline": (
            "POST",
            PIPELINE,
            {"template": "design-analysis", "input": {"image_url": target.image_url}},
        ),
    }


@requirement("AUTH-004")
@pytest.mark.parametrize(
    "endpoint", ["chat", "embeddings", "models", "batch-submit", "batch-status", "pipeline"]
)
def test_fresh_task_token_is_accepted(api: Api, target: Target, tier: str, endpoint: str) -> None:
    """Accepted means not refused as unauthenticated: any answer but 401 (the endpoint's own checks,
    such as a 403 for a model outside the tier or 404 for an unknown batch, are judged elsewhere)."""
    method, path, body = _accepting_requests(api, target)[endpoint]
    token = api.new_token(tier)
    response = api.request(method, path, json=body, tier=None, headers={"Authorization": f"Bearer {token}"})
    expect(
        response.status_code != 401,
        f"a fresh task token was refused by {method} {path}",
        expected="any status but 401",
        received=f"HTTP {response.status_code}",
        response=response,
    )


@late
@requirement("AUTH-004")
@pytest.mark.parametrize("endpoint", ["chat", "embeddings", "models"])
def test_task_token_is_accepted_late_in_its_life(
    api: Api, target: Target, midlife_token: AgedToken, endpoint: str
) -> None:
    """A token "less than 60 seconds old" may be well into its life: one 30 to 55 s old (the session's
    aged token, or a newer one in a long run) must still be accepted. Late, before the expiry tests, so
    the wait for 30 s overlaps theirs for 60; the cheap endpoints only (batch and pipeline would add
    nothing to a token check)."""
    method, path, body = _accepting_requests(api, target)[endpoint]
    age = time.monotonic() - midlife_token.issued
    response = api.request(
        method, path, json=body, tier=None, headers={"Authorization": f"Bearer {midlife_token.token}"}
    )
    expect(
        response.status_code != 401,
        f"a task token {age:.0f} s old was refused by {method} {path}",
        expected=f"any status but 401 (the token is younger than {target.token_ttl_s:g} s)",
        received=f"HTTP {response.status_code}",
        response=response,
    )


@requirement("AUTH-006")
def test_missing_authorization_is_not_served(api: Api, target: Target) -> None:
    """000: "All requests require a JWT task token". The status is AUTH-017's (a SHOULD)."""
    response = _chat_with(api, None, target.chat_model)
    _expect_not_served(response, "a /v1 request without Authorization", "AUTH-017")


@requirement("AUTH-017")
def test_missing_authorization_is_401(api: Api, target: Target) -> None:
    _expect_401(_chat_with(api, None, target.chat_model), "a /v1 request without Authorization")


@requirement("AUTH-007")
def test_raw_api_key_is_not_a_task_token(api: Api, target: Target, tier: str) -> None:
    response = _chat_with(api, target.key(tier), target.chat_model)
    _expect_401(response, "a /v1 request with the raw API key as bearer")


def _signed_parts(token: str, what: str, *, jwe: str) -> list[str]:
    """The segments of a compact JWS; Skip with the reason for any other token.

    AUTH-002 allows a five-segment JWE, whose claims are encrypted (``jwe`` says what then cannot be
    built), and a token that is no compact JWT at all is AUTH-002's failure, not this test's: neither
    can be altered the way ``what`` needs, so neither is an Error or a Fail here."""
    parts = token.split(".")
    if len(parts) == JWE_SEGMENTS:
        pytest.skip(f"the task token is a JWE (five segments, allowed by AUTH-002): {jwe}")
    if len(parts) != JWS_SEGMENTS:
        pytest.skip(
            f"the task token is not a compact JWT ({len(parts)} segments; AUTH-002 judges that): "
            f"{what} cannot be built from it"
        )
    return parts


def _flip_middle(segment: str) -> str:
    middle = len(segment) // 2
    flipped = "A" if segment[middle] != "A" else "B"
    return f"{segment[:middle]}{flipped}{segment[middle + 1 :]}"


def _tampered(token: str, how: str) -> str:
    if how == "signature" and token.count(".") + 1 == JWE_SEGMENTS:
        # A JWE's integrity is its authentication tag (the fifth segment): alter that instead.
        *rest, tag = token.split(".")
        return ".".join([*rest, _flip_middle(tag)])
    header, payload, signature = _signed_parts(
        token, f"a token with an altered {how}", jwe=f"its {how} claim is encrypted and cannot be altered"
    )
    if how == "signature":
        return f"{header}.{payload}.{_flip_middle(signature)}"
    claims = json.loads(b64url_decode(payload))
    if how == "exp":
        claims["exp"] = int(claims.get("exp", 0)) + 3600
    else:
        claims["tier"] = "internal"
        claims["sub"] = str(claims.get("sub", "")) + "x"
    return f"{header}.{b64url_encode(json.dumps(claims).encode())}.{signature}"


@requirement("AUTH-008")
@pytest.mark.parametrize("how", ["signature", "exp", "tier"])
def test_tampered_token_is_401(api: Api, target: Target, tier: str, how: str) -> None:
    token = api.new_token(tier)
    response = _chat_with(api, _tampered(token, how), target.chat_model)
    _expect_401(response, f"a task token with an altered {how}")


@requirement("AUTH-009")
def test_unsigned_alg_none_token_is_401(api: Api, target: Target, tier: str) -> None:
    token = api.new_token(tier)
    if token.count(".") + 1 == JWE_SEGMENTS:
        # A JWE's claims are encrypted, so no copy can be made; an unsigned token with the claims such a
        # token plausibly holds (its tier, a life of 60 s) was not issued either, and must be refused.
        now = int(time.time())
        claims = {"tier": tier, "iat": now, "exp": now + int(target.token_ttl_s)}
        payload = b64url_encode(json.dumps(claims).encode())
    else:
        _header, payload, _signature = _signed_parts(
            token, "an unsigned copy", jwe="unreachable: a JWE is handled above"
        )
    header = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    response = _chat_with(api, f"{header}.{payload}.", target.chat_model)
    _expect_401(response, 'an unsigned token (alg "none") copying a valid token\'s claims')


# ----------------------------------------------------------------------------- after expiry
@late
@requirement("AUTH-005")
def test_expired_task_token_is_401(api: Api, target: Target, expired_token: AgedToken) -> None:
    assert expired_token.token is not None
    response = _chat_with(api, expired_token.token, target.chat_model)
    # The status only: the error body is ERR-002's (a SHOULD for 42ai), judged by its own tests.
    _expect_401(response, f"a task token more than {target.token_ttl_s:g} s old")


@late
@requirement("AUTH-011")
def test_fresh_exchange_after_expiry_is_accepted(api: Api, target: Target, expired_token: AgedToken) -> None:
    assert expired_token.tier is not None
    _response, token = _exchange(api, expired_token.tier)
    response = _chat_with(api, token, target.chat_model)
    # "Accepted" as in AUTH-004: not refused as unauthenticated (000's only token status is 401).
    expect(
        response.status_code != 401,
        "a token from a fresh exchange after expiry was refused",
        expected="any status but 401",
        received=f"HTTP {response.status_code}",
        response=response,
    )


@late
@requirement("AUTH-012")
def test_batch_poll_with_expired_token_is_401(api: Api, target: Target, expired_token: AgedToken) -> None:
    """The batch is submitted with a fresh token of the same key, then polled with the expired one. If
    the target cannot take the batch (judged by the BATCH tests), an unknown id is polled instead: the
    401 must come before any lookup either way."""
    assert expired_token.tier is not None
    submitted = api.post(
        BATCH,
        {
            "model": target.chat_model,
            "tasks": [{"id": "t1", "messages": [{"role": "user", "content": "Say yes."}]}],
        },
        tier=expired_token.tier,
    )
    batch_id = f"batch_conform42_{uuid.uuid4().hex[:12]}"
    if submitted.status_code in (200, 202):
        body = expect_json(submitted)
        if isinstance(body, dict) and isinstance(body.get("batch_id"), str) and body["batch_id"]:
            batch_id = body["batch_id"]
    response = api.get(
        f"{BATCH}/{batch_id}", tier=None, headers={"Authorization": f"Bearer {expired_token.token}"}
    )
    _expect_401(response, "polling a batch with an expired task token")


# ------------------------------------------------------------------------------------- fortytwo
@requirement("AUTH-013")
def test_api_key_is_the_bearer(api: Api, target: Target, tier: str) -> None:
    response = _chat_with(api, target.key(tier), target.chat_model)
    expect_status(response, 200, message="the API key sent as Bearer was not accepted")


@requirement("AUTH-014")
def test_invalid_api_key_is_401(api: Api, target: Target) -> None:
    _expect_401(_chat_with(api, "invalid-" + uuid.uuid4().hex, target.chat_model), "an invalid API key")


@requirement("AUTH-014")
def test_missing_api_key_is_not_served(api: Api, target: Target) -> None:
    """002's security is bearerAuth: no key, no completion. The status is AUTH-016's (a SHOULD)."""
    response = _chat_with(api, None, target.chat_model)
    _expect_not_served(response, "a chat completion request without an API key", "AUTH-016")


@requirement("AUTH-016")
def test_missing_api_key_is_401(api: Api, target: Target) -> None:
    _expect_401(_chat_with(api, None, target.chat_model), "a chat completion request without an API key")
