"""Each MUST asks no more than its words (issue 19): the behaviour tests, called directly against small
mock targets, pass or Skip what the documents allow and still fail what they forbid.

Every case comes in pairs where it matters: the allowed variation (201 Created, a five-segment JWE, a
pending batch without results, a 422 without detail, a busy 503) must not Fail or Error, and the
deviation next to it must still Fail, so none of these tests can pass by judging nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from requests import Request

from suite.checks import ConformanceFailure, is_busy_503, is_validation_error
from suite.conformance import (
    test_auth,
    test_batch,
    test_chat,
    test_embeddings,
    test_errors,
    test_limits_kv,
    test_models,
)
from suite.conformance._helpers import Memo
from suite.conformance.conftest import AgedToken, ResponseLog
from suite.features import looks_like_chat_model, pick_chat_model, skip_unless_image_taken, with_models
from suite.http import Api
from suite.properties.judge import ExchangeJudge, Findings
from suite.samples import PNG_DATA_URL
from suite.target import Target
from suite.token_segments import b64url_encode

Handler = Callable[[httpx.Request], httpx.Response]
Skipped = pytest.skip.Exception
KEYS = {"free": "sk-free", "pro": "sk-pro", "internal": "sk-internal"}


def _api(handle: Handler, profile: str = "42ai") -> Api:
    target = Target(base_url="http://t", profile=profile, keys=KEYS)  # type: ignore[arg-type]
    return Api(target, transport=httpx.MockTransport(handle))


def _json(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def _jws() -> str:
    header = b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url_encode(json.dumps({"sub": "k", "tier": "free", "iat": 1, "exp": 61}).encode())
    return f"{header}.{payload}.c2lnbmF0dXJlLW9mLXRoZS1pc3N1ZXI"


def _jwe() -> str:
    header = b64url_encode(json.dumps({"alg": "dir", "enc": "A256GCM"}).encode())
    return f"{header}..aXYtaXYtaXYtaXY.Y2lwaGVydGV4dC1jaXBoZXJ0ZXh0.dGFnLXRhZy10YWctdGFnLXRh"


def _token_server(token: str, *, token_status: int = 200, chat: Handler | None = None) -> Handler:
    """A 42ai target: the exchange answers ``token``; chat accepts exactly that bearer (else 401)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            return _json(token_status, {"task_token": token})
        if chat is not None:
            return chat(request)
        if request.headers.get("authorization") == f"Bearer {token}":
            return _json(200, {"choices": []})
        return _json(401, {"error": {"message": "Invalid or expired token", "type": "authentication_error"}})

    return handle


# ------------------------------------------------------------------------------------- auth, item 8
def test_auth001_a_201_created_exchange_passes_and_a_302_fails() -> None:
    with _api(_token_server(_jws(), token_status=201)) as api:
        test_auth.test_token_exchange_returns_task_token(api, "free")
    with _api(_token_server(_jws(), token_status=302)) as api, pytest.raises(ConformanceFailure):
        test_auth.test_token_exchange_returns_task_token(api, "free")


def test_auth011_accepted_means_not_401() -> None:
    """A 503 + Retry-After (a busy server) accepts the token; a 401 refuses it."""
    expired = AgedToken("free", "old", time.monotonic() - 120)
    target = Target(base_url="http://t", keys=KEYS)
    busy = _token_server(_jws(), chat=lambda r: _json(503, {"error": {}}, **{"Retry-After": "30"}))
    with _api(busy) as api, api.impatient():  # the raw 503, not the client's bounded retry of it
        test_auth.test_fresh_exchange_after_expiry_is_accepted(api, target, expired)
    refusing = _token_server(_jws(), chat=lambda r: _json(401, {"error": {}}))
    with _api(refusing) as api, pytest.raises(ConformanceFailure):
        test_auth.test_fresh_exchange_after_expiry_is_accepted(api, target, expired)


# ----------------------------------------------------------------------------------- auth, item 3
@pytest.mark.parametrize("how", ["signature", "exp", "tier"])
def test_auth008_a_jws_is_still_failed_when_a_tampered_token_is_accepted(how: str) -> None:
    target = Target(base_url="http://t", keys=KEYS)
    lenient = _token_server(_jws(), chat=lambda r: _json(200, {"choices": []}))
    with _api(lenient) as api, pytest.raises(ConformanceFailure):
        test_auth.test_tampered_token_is_401(api, target, "free", how)
    with _api(_token_server(_jws())) as api:
        test_auth.test_tampered_token_is_401(api, target, "free", how)


def test_auth008_a_jwe_is_judged_by_its_tag_and_skipped_for_its_encrypted_claims() -> None:
    target = Target(base_url="http://t", keys=KEYS)
    with _api(_token_server(_jwe())) as api:
        test_auth.test_tampered_token_is_401(api, target, "free", "signature")  # tag altered: 401, Pass
        for how in ("exp", "tier"):
            with pytest.raises(Skipped, match="JWE"):
                test_auth.test_tampered_token_is_401(api, target, "free", how)
        # AUTH-009: no copy of encrypted claims, but an unsigned token with made-up ones is judged.
        test_auth.test_unsigned_alg_none_token_is_401(api, target, "free")
        with pytest.raises(Skipped, match="encrypted"):
            test_auth.test_task_token_lifetime_claims_at_most_60_s(api, "free")
        test_auth.test_task_token_is_compact_jwt(api, "free")
    lenient = _token_server(_jwe(), chat=lambda r: _json(200, {"choices": []}))
    with _api(lenient) as api, pytest.raises(ConformanceFailure):
        test_auth.test_tampered_token_is_401(api, target, "free", "signature")
    with _api(lenient) as api, pytest.raises(ConformanceFailure):
        test_auth.test_unsigned_alg_none_token_is_401(api, target, "free")


def test_auth008_009_an_opaque_token_skips_with_the_reason() -> None:
    target = Target(base_url="http://t", keys=KEYS)
    with _api(_token_server("opaque-token-1234")) as api:
        with pytest.raises(Skipped, match="not a compact JWT"):
            test_auth.test_tampered_token_is_401(api, target, "free", "exp")
        with pytest.raises(Skipped, match="not a compact JWT"):
            test_auth.test_unsigned_alg_none_token_is_401(api, target, "free")


# ---------------------------------------------------------------------------------- auth, item 11
def test_auth010_needs_a_refusal_and_auth015_the_401() -> None:
    forbidden = _api(lambda r: _json(403, {"error": {"message": "no", "type": "permission_error"}}))
    with forbidden as api:
        test_auth.test_token_exchange_refuses_bad_api_key(api, None)
        with pytest.raises(ConformanceFailure):
            test_auth.test_token_exchange_refuses_bad_api_key_with_401(api, None)
    with _api(lambda r: _json(200, {"task_token": _jws()})) as api, pytest.raises(ConformanceFailure):
        test_auth.test_token_exchange_refuses_bad_api_key(api, "sk-42ai-unknown")


def test_auth014_a_missing_key_answered_403_is_not_served_but_misses_auth016() -> None:
    target = Target(base_url="http://t", profile="fortytwo", keys=KEYS)

    def fastapi_bearer(request: httpx.Request) -> httpx.Response:
        if "authorization" not in request.headers:
            return _json(403, {"detail": "Not authenticated"})
        return _json(401, {"error": {"message": "Invalid API key", "type": "authentication_error"}})

    with _api(fastapi_bearer, "fortytwo") as api:
        test_auth.test_missing_api_key_is_not_served(api, target)
        test_auth.test_invalid_api_key_is_401(api, target)
        with pytest.raises(ConformanceFailure):
            test_auth.test_missing_api_key_is_401(api, target)
    with _api(lambda r: _json(200, {"choices": []}), "fortytwo") as api, pytest.raises(ConformanceFailure):
        test_auth.test_missing_api_key_is_not_served(api, target)


def test_auth006_a_missing_token_answered_403_is_not_served_but_misses_auth017() -> None:
    """000's 401 row is "Invalid or expired token": a missing one must not be served (AUTH-006), and
    should get 401 (AUTH-017)."""
    target = Target(base_url="http://t", keys=KEYS)

    def fastapi_bearer(request: httpx.Request) -> httpx.Response:
        return _json(403, {"detail": "Not authenticated"})

    with _api(fastapi_bearer) as api:
        test_auth.test_missing_authorization_is_not_served(api, target)
        with pytest.raises(ConformanceFailure):
            test_auth.test_missing_authorization_is_401(api, target)
    with _api(lambda r: _json(200, {"choices": []})) as api, pytest.raises(ConformanceFailure):
        test_auth.test_missing_authorization_is_not_served(api, target)


# ---------------------------------------------------------------------------------- batch, item 1
def _batch_server(polls: list[dict[str, Any]], poll_status: int = 200) -> Handler:
    answers = iter(polls)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            return _json(200, {"task_token": _jws()})
        if request.method == "POST":
            return _json(202, {"batch_id": "b1", "status": "pending", "total": 2})
        return _json(poll_status, next(answers, polls[-1]))

    return handle


PENDING = {"batch_id": "b1", "status": "pending", "total": 2}
DONE = {**PENDING, "status": "completed", "completed": 2, "results": {"t1": {"content": "y"}}}


def test_batch005_a_pending_poll_needs_no_completed_or_results() -> None:
    target = Target(base_url="http://t", keys=KEYS)
    with _api(_batch_server([PENDING, DONE])) as api:
        test_batch.test_status_has_documented_members(api, Memo(), target)


def test_batch005_a_completed_poll_without_results_still_fails() -> None:
    target = Target(base_url="http://t", keys=KEYS)
    broken = {k: v for k, v in DONE.items() if k != "results"}
    with _api(_batch_server([PENDING, broken])) as api, pytest.raises(ConformanceFailure):
        test_batch.test_status_has_documented_members(api, Memo(), target)


def test_batch005_any_2xx_poll_is_an_answer_and_a_redirect_is_not() -> None:
    """000 names no status for GET /v1/batch/{batch_id}: a 203 poll is read by every batch test."""
    target = Target(base_url="http://t", keys=KEYS)
    with _api(_batch_server([PENDING, DONE], poll_status=203)) as api:
        memo = Memo()
        test_batch.test_status_has_documented_members(api, memo, target)
        test_batch.test_completed_count_equals_total(api, memo, target)
        test_batch.test_progress_is_monotonic(api, memo, target)
    with _api(_batch_server([PENDING, DONE], poll_status=302)) as api, pytest.raises(ConformanceFailure):
        test_batch.test_status_has_documented_members(api, Memo(), target)


def test_batch010_a_pending_poll_without_completed_passes_a_falling_count_fails() -> None:
    target = Target(base_url="http://t", keys=KEYS)
    with _api(_batch_server([PENDING, {**PENDING, "status": "running", "completed": 1}, DONE])) as api:
        test_batch.test_progress_is_monotonic(api, Memo(), target)
    falling = [{**PENDING, "status": "running", "completed": 2}, {**PENDING, "completed": 1}, DONE]
    with _api(_batch_server(falling)) as api, pytest.raises(ConformanceFailure):
        test_batch.test_progress_is_monotonic(api, Memo(), target)


# --------------------------------------------------------------------------------- errors, item 2
@pytest.mark.parametrize(
    ("body", "must", "should"),
    [
        ({"detail": [{"loc": ["body", "model"], "msg": "x", "type": "missing"}]}, True, True),
        ({}, True, False),
        ({"detail": []}, True, False),
        ({"detail": [{"msg": "no loc"}]}, False, False),
        ({"detail": "model is required"}, False, False),
        (["not an object"], False, False),
    ],
    ids=["fastapi", "no-detail", "empty-detail", "item-without-loc", "detail-string", "array"],
)
def test_err005_detail_is_optional_its_items_are_not(body: Any, must: bool, should: bool) -> None:
    assert is_validation_error(body) is must
    assert is_validation_error(body, detail_required=True) is should


def _schemathesis_response(status: int, body: Any, headers: dict[str, list[str]]) -> schemathesis.Response:
    request = Request("POST", "http://t/v1/chat/completions", json={}).prepare()
    content = json.dumps(body).encode()
    return schemathesis.Response(status, headers, content, request, 0.01, True)


def test_judge_err005_takes_a_422_without_detail_and_fails_a_bad_item() -> None:
    findings = Findings()
    judge = ExchangeJudge("fortytwo", {}, findings)
    judge._validation_body("POST /v1/chat/completions", _schemathesis_response(422, {}, {}))
    assert not findings.failures
    judge._validation_body("POST /v1/chat/completions", _schemathesis_response(422, {"detail": [1]}, {}))
    assert ("ERR-005", "POST /v1/chat/completions") in findings.failures


# -------------------------------------------------------------------------------- errors, item 10
def _logged(*responses: httpx.Response) -> ResponseLog:
    log = ResponseLog()
    for response in responses:
        log.record(response)
    return log


def _answer(method: str, path: str, status: int, body: Any, **headers: str) -> httpx.Response:
    response = _json(status, body, **headers)
    response.request = httpx.Request(method, f"http://t{path}")
    return response


def test_err001_judges_chat_completions_errors_only() -> None:
    models_401 = _answer("GET", "/v1/models", 401, {"error": "Unauthorized"})
    test_errors.test_every_fortytwo_error_seen_has_envelope(_logged(models_401))
    chat_401 = _answer("POST", "/v1/chat/completions", 401, {"error": "Unauthorized"})
    with pytest.raises(ConformanceFailure):
        test_errors.test_every_fortytwo_error_seen_has_envelope(_logged(models_401, chat_401))


def test_judge_err001_ignores_other_operations() -> None:
    findings = Findings()
    judge = ExchangeJudge("fortytwo", {}, findings)
    judge._envelope("GET /v1/models", _schemathesis_response(401, {"error": "Unauthorized"}, {}))
    assert not findings.failures
    judge._envelope("POST /v1/chat/completions", _schemathesis_response(401, {"error": "Unauthorized"}, {}))
    assert ("ERR-001", "POST /v1/chat/completions") in findings.failures


# ----------------------------------------------------------------------------- errors, ERR-006 503
def _invalid_input_answered(status: int, **headers: str) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            return _json(200, {"task_token": _jws()})
        return _json(status, {"error": {"message": "busy", "type": "service_unavailable"}}, **headers)

    return handle


def test_err006_a_busy_503_with_retry_after_is_not_judged_a_500_is() -> None:
    target = Target(base_url="http://t", keys=KEYS)
    busy = _api(_invalid_input_answered(503, **{"Retry-After": "30"}))
    with busy as api, api.impatient(), pytest.raises(Skipped, match="busy server"):
        test_errors.test_invalid_input_never_gets_5xx(api, Memo(), target, "free", "unknown-role")
    for status in (500, 503):  # a 503 without Retry-After is judged
        with _api(_invalid_input_answered(status)) as api, pytest.raises(ConformanceFailure):
            test_errors.test_invalid_input_never_gets_5xx(api, Memo(), target, "free", "unknown-role")


def _busy_for_invalid_input_only(valid_status: int) -> Handler:
    """Every chat request with an unknown role answered 503 + Retry-After; any other with ``valid_status``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            return _json(200, {"task_token": _jws()})
        if b"wizard" in request.content:  # the unknown-role case's role
            return _json(503, {"error": {"message": "busy", "type": "x"}}, **{"Retry-After": "30"})
        return _json(valid_status, {"choices": []})

    return handle


def test_err006_busy_on_every_try_is_skip_unless_a_valid_request_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("suite.patience.time.sleep", lambda _s: None)
    target = Target(base_url="http://t", keys=KEYS)
    with _api(_busy_for_invalid_input_only(503)) as api, pytest.raises(Skipped, match="stayed busy"):
        test_errors.test_invalid_input_never_gets_5xx(api, Memo(), target, "free", "unknown-role")
    with _api(_busy_for_invalid_input_only(200)) as api, pytest.raises(ConformanceFailure, match="valid"):
        test_errors.test_invalid_input_never_gets_5xx(api, Memo(), target, "free", "unknown-role")


def test_judge_err006_passes_over_a_busy_503() -> None:
    assert is_busy_503(503, ["content-type", "Retry-After"]) and not is_busy_503(503, ["content-type"])
    assert not is_busy_503(500, ["retry-after"])


# ------------------------------------------------------------------------------ chat, item 5
def _completion(created: Any) -> Handler:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": created,
        "model": "fortytwo-preview",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return lambda request: _json(200, body)


def test_chat005_an_old_created_passes_the_must_and_fails_chat023() -> None:
    target = Target(base_url="http://t", profile="fortytwo", keys=KEYS)
    with _api(_completion(1677858242), "fortytwo") as api:  # 001's own example, years ago
        test_chat.test_completion_object_created_model(api, Memo(), target, "free")
        with pytest.raises(ConformanceFailure):
            test_chat.test_created_is_near_the_client_clock(api, Memo(), target, "free")
    with _api(_completion("1677858242"), "fortytwo") as api, pytest.raises(ConformanceFailure):
        test_chat.test_completion_object_created_model(api, Memo(), target, "free")


# ------------------------------------------------------------------------------- limits, item 6
def test_limit011_judges_memory_503s_only() -> None:
    proxy = _answer("POST", "/v1/chat/completions", 503, {"error": "no healthy upstream"})
    with pytest.raises(Skipped, match="1 503s for other causes"):
        test_limits_kv.test_503_retry_after_is_30(_logged(proxy))
    memory = _answer(
        "POST", "/v1/chat/completions", 503, {"error": {"message": "Insufficient GPU memory", "type": "x"}}
    )
    with pytest.raises(ConformanceFailure):
        test_limits_kv.test_503_retry_after_is_30(_logged(proxy, memory))
    kv = _answer("POST", "/v1/chat/completions", 503, {"detail": "KV cache is full"}, **{"Retry-After": "30"})
    test_limits_kv.test_503_retry_after_is_30(_logged(proxy, kv))


# ------------------------------------------------------------------------------- models, item 4
def _listing(body: Any) -> Handler:
    return lambda request: _json(200, body)


def test_model010_asks_for_one_listed_model_not_every_item() -> None:
    target = Target(base_url="http://t", profile="fortytwo", keys=KEYS)
    mixed = {"object": "list", "data": [{"id": "fortytwo-preview"}, "legacy-entry", {"name": "x"}]}
    with _api(_listing(mixed), "fortytwo") as api:
        test_models.test_model_list_has_models(api, Memo(), target)
    empty = _api(_listing({"object": "list", "data": ["a", {"id": ""}]}), "fortytwo")
    with empty as api, pytest.raises(ConformanceFailure):
        test_models.test_model_list_has_models(api, Memo(), target)


def test_model011_skips_a_listing_it_cannot_read() -> None:
    target = Target(base_url="http://t", profile="fortytwo", keys=KEYS)
    with _api(_listing({"models": ["fortytwo-preview"]}), "fortytwo") as api, pytest.raises(Skipped):
        test_models.test_a_listed_model_chats(api, Memo(), target)


# -------------------------------------------------------------- success statuses (000 names none)
def _answering(status: int, body: Any) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            return _json(200, {"task_token": _jws()})
        return _json(status, body)

    return handle


CHAT_BODY = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [], "usage": {}}
EMBED_BODY = {
    "data": [{"embedding": [0.6, 0.8], "index": 0}],
    "usage": {"prompt_tokens": 2, "total_tokens": 2},
}


@pytest.mark.parametrize(("model", "body"), [("42-logic", CHAT_BODY), ("42-embed", EMBED_BODY)])
def test_model00x_a_201_use_of_a_granted_model_passes_a_403_fails(model: str, body: Any) -> None:
    with _api(_answering(201, body)) as api:
        test_models.test_tier_may_use_documented_model(api, model, "free")
    for status in (302, 403):
        with _api(_answering(status, body)) as api, pytest.raises(ConformanceFailure):
            test_models.test_tier_may_use_documented_model(api, model, "free")


def test_embed001_a_201_answer_passes_a_302_fails() -> None:
    target = Target(base_url="http://t", keys=KEYS, embed_model="42-embed")
    with _api(_answering(201, EMBED_BODY)) as api:
        test_embeddings.test_single_input_gives_one_embedding(api, Memo(), target, "free")
    with _api(_answering(302, EMBED_BODY)) as api, pytest.raises(ConformanceFailure):
        test_embeddings.test_single_input_gives_one_embedding(api, Memo(), target, "free")


def test_chat001_any_2xx_on_42ai_but_200_on_fortytwo_which_002_declares() -> None:
    ours = Target(base_url="http://t", keys=KEYS)
    with _api(_answering(201, CHAT_BODY)) as api:
        test_chat.test_chat_completion_is_200_json_object(api, Memo(), ours, "free")
    with _api(_answering(302, CHAT_BODY)) as api, pytest.raises(ConformanceFailure):
        test_chat.test_chat_completion_is_200_json_object(api, Memo(), ours, "free")
    fortytwo = Target(base_url="http://t", profile="fortytwo", keys=KEYS)
    with _api(_answering(201, CHAT_BODY), "fortytwo") as api, pytest.raises(ConformanceFailure):
        test_chat.test_chat_completion_is_200_json_object(api, Memo(), fortytwo, "free")
    with _api(_answering(200, CHAT_BODY), "fortytwo") as api:
        test_chat.test_chat_completion_is_200_json_object(api, Memo(), fortytwo, "free")


# --------------------------------------------------------------------------- discovery, item 12
@pytest.mark.parametrize(
    ("ids", "chat"),
    [
        (["whisper-large-v3", "bge-reranker-v2", "tts-1", "llama-3-8b-instruct"], "llama-3-8b-instruct"),
        (["text-embedding-3-small", "omni-moderation-latest", "dall-e-3", "qwen2.5-7b"], "qwen2.5-7b"),
        (["some-chat-model", "fortytwo-preview"], "fortytwo-preview"),
        (["nomic-embed-text", "speech-to-text", "gpt-image-1"], None),
    ],
    ids=["speech-rerank-first", "embedding-moderation-image-first", "documented-id", "none"],
)
def test_discovery_passes_over_models_that_do_not_chat(ids: list[str], chat: str | None) -> None:
    assert pick_chat_model(ids) == chat
    target = with_models(Target(base_url="http://t", profile="fortytwo"), ids, chat=None, embed=None)
    assert target.chat_model == (chat or "42-general")


def test_looks_like_chat_model_reads_whole_words() -> None:
    assert looks_like_chat_model("mistral-7b-instruct") and looks_like_chat_model("llama-3.1-70b")
    assert not looks_like_chat_model("Systran/faster-whisper-small")
    assert not looks_like_chat_model("bge-reranker-base") and not looks_like_chat_model("kokoro-tts")


# ------------------------------------------------------------------------------ images, item 12
def test_a_refused_data_url_image_skips_and_an_https_one_does_not() -> None:
    target = Target(base_url="http://t")
    refused = _json(400, {"error": {"message": "only http(s) image URLs", "type": "invalid_request_error"}})
    with pytest.raises(Skipped, match="--image-url https"):
        skip_unless_image_taken(target, PNG_DATA_URL, refused, "the pipeline")
    skip_unless_image_taken(target, "https://example.com/design.png", refused, "the pipeline")
    skip_unless_image_taken(target, PNG_DATA_URL, _json(500, {}), "the pipeline")  # not a refusal of it
