"""The planted-fault catalogue: small, named deviations of the reference server, each tagged with the
requirement IDs (specs/requirements.yaml) that it breaks.

A :class:`Fault` is applied to a freshly built gateway (``create_app`` on the sim engines) and returns
the ASGI app to serve: the same app with a swapped component (``swaps.py``) or wrapped in a rewriting
middleware (``asgi.py``). Each fault is one deviation a real implementation could have, visible over
HTTP; ``test_faults_manifest.py`` proves each one shows, and ``prove.py`` checks the suite catches it.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from reference_server.auth import Caller
from reference_server.models import MODELS
from tests.faults import swaps
from tests.faults.asgi import (
    STALL,
    Call,
    Hang,
    Reply,
    Rewrite,
    WatchDisconnect,
    WithContext,
    chunk_rewriter,
    on,
)

__all__ = ["AREAS", "FAULTS", "Fault", "by_area", "get"]

#: Areas in catalogue order (specs/requirements.yaml).
AREAS = ("auth", "models", "limits", "chat", "streaming", "embeddings", "batch", "pipeline", "errors", "sdk")

Apply = Callable[[FastAPI], ASGIApp]


@dataclass(frozen=True)
class Fault:
    name: str
    area: str
    requirements: tuple[str, ...]
    description: str
    apply: Apply = field(repr=False, compare=False)
    #: Endpoints (paths) of the reference server this fault needs to show at all.
    needs: tuple[str, ...] = ()


FAULTS: dict[str, Fault] = {}


def fault(
    name: str, area: str, requirements: str, description: str, needs: tuple[str, ...] = ()
) -> Callable[[Apply], Apply]:
    def register(apply: Apply) -> Apply:
        if name in FAULTS:
            raise ValueError(f"fault {name!r} registered twice")
        if area not in AREAS:
            raise ValueError(f"fault {name!r}: unknown area {area!r}")
        FAULTS[name] = Fault(name, area, tuple(requirements.split()), description, apply, needs)
        return apply

    return register


def get(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise KeyError(f"no fault named {name!r}; known: {', '.join(sorted(FAULTS))}") from None


def by_area() -> dict[str, list[Fault]]:
    return {area: [f for f in FAULTS.values() if f.area == area] for area in AREAS}


# ------------------------------------------------------------------------------------------- helpers

CHAT = on("POST", "/v1/chat/completions")
EMBED = on("POST", "/v1/embeddings")
MODELS_LIST = on("GET", "/v1/models")
TOKEN = on("POST", "/api/token")
BATCH_SUBMIT = on("POST", "/v1/batch")
BATCH_GET = on("GET", r"/v1/batch/[^/]+")
PIPELINE = on("POST", "/v1/pipeline")
PREMIUM = frozenset(m.id for m in MODELS.values() if "free" not in m.tiers)


def anywhere(_method: str, _path: str) -> bool:
    return True


def ok_json(change: Callable[[Call, dict[str, Any]], None]) -> Callable[[Call, Reply], None]:
    """A reply hook that changes the JSON object of a 200 answer."""

    def hook(call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status == 200 and isinstance(data, dict):
            change(call, data)
            reply.set_json(data)

    return hook


def error_json(
    status: int | None, change: Callable[[Reply, dict[str, Any]], None]
) -> Callable[[Call, Reply], None]:
    """A reply hook that changes the JSON body of error answers (of one status, or all >= 400)."""

    def hook(_call: Call, reply: Reply) -> None:
        data = reply.json()
        wanted = reply.status == status if status is not None else reply.status >= 400
        if wanted and isinstance(data, dict):
            change(reply, data)
            reply.set_json(data)

    return hook


def set_error_type(error_type: str) -> Callable[[Reply, dict[str, Any]], None]:
    def change(_reply: Reply, data: dict[str, Any]) -> None:
        if isinstance(data.get("error"), dict):
            data["error"]["type"] = error_type

    return change


def retry_after(status: int, value: str | None) -> Callable[[Call, Reply], None]:
    def head(_call: Call, reply: Reply) -> None:
        if reply.status == status and "retry-after" in reply.headers:
            if value is None:
                del reply.headers["retry-after"]
            else:
                reply.headers["retry-after"] = value

    return head


def rewrite_authorization(app: FastAPI, decide: Callable[[Call], Caller | None]) -> Callable[[Call], None]:
    """A request hook that presents a fresh task token of ``decide(call)``'s caller instead of the
    caller's own: the server then acts as if it had authorised that caller."""

    def hook(call: Call) -> None:
        caller = decide(call)
        if caller is not None:
            call.headers["authorization"] = f"Bearer {swaps.gateway(app).auth.tokens.issue(caller)}"

    return hook


def chat(app: FastAPI, **hooks: Any) -> ASGIApp:
    return Rewrite(app, CHAT, **hooks)


def model_of(call: Call) -> str | None:
    data = call.json()
    model = data.get("model") if isinstance(data, dict) else None
    return model if isinstance(model, str) else None


# ------------------------------------------------------------------------------------------- auth


@fault(
    "auth_token_never_expires",
    "auth",
    "AUTH-005 AUTH-012 SDK-008",
    "task tokens are accepted however old they are (exp is not checked)",
)
def _auth_token_never_expires(app: FastAPI) -> ASGIApp:
    return swaps.swap_tokens(app, swaps.TokensIgnoringExpiry)


@fault(
    "auth_token_expires_early", "auth", "AUTH-004", "tokens say exp = iat + 60 but are refused once 10 s old"
)
def _auth_token_expires_early(app: FastAPI) -> ASGIApp:
    return swaps.swap_tokens(app, swaps.TokensWithShortLife, max_age_s=10)


@fault(
    "auth_raw_key_accepted",
    "auth",
    "AUTH-007",
    "a raw API key (sk-42ai-...) is accepted as the bearer of /v1 calls",
)
def _auth_raw_key_accepted(app: FastAPI) -> ASGIApp:
    return swaps.swap_auth(app, "raw_key")


@fault("auth_alg_none_accepted", "auth", "AUTH-009", "an unsigned token (alg: none) is accepted at its word")
def _auth_alg_none_accepted(app: FastAPI) -> ASGIApp:
    return swaps.swap_tokens(app, swaps.TokensAcceptingAlgNone)


@fault(
    "auth_signature_unchecked",
    "auth",
    "AUTH-008 AUTH-009",
    "token signatures are not verified, so altered claims are believed",
)
def _auth_signature_unchecked(app: FastAPI) -> ASGIApp:
    return swaps.swap_tokens(app, swaps.TokensIgnoringSignature)


@fault(
    "auth_missing_header_allowed",
    "auth",
    "AUTH-006",
    "a /v1 call without Authorization is served as an anonymous free caller",
)
def _auth_missing_header_allowed(app: FastAPI) -> ASGIApp:
    return swaps.swap_auth(app, "no_header")


@fault(
    "auth_unknown_key_gets_token",
    "auth",
    "AUTH-010",
    "POST /api/token with an unknown or missing key hands out a (free-tier) task token",
)
def _auth_unknown_key_gets_token(app: FastAPI) -> ASGIApp:
    return swaps.swap_auth(app, "unknown_key")


def _opaque(token: str) -> str:
    return "tok_" + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _unopaque(credential: str) -> str | None:
    if not credential.startswith("tok_"):
        return None
    body = credential[4:]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except ValueError:
        return None


@fault(
    "auth_opaque_token", "auth", "AUTH-002 AUTH-003", "the task token is an opaque string, not a compact JWT"
)
def _auth_opaque_token(app: FastAPI) -> ASGIApp:
    def issue(_call: Call, data: dict[str, Any]) -> None:
        if isinstance(data.get("task_token"), str):
            data["task_token"] = _opaque(data["task_token"])

    def accept(call: Call) -> None:
        scheme, _, credential = call.headers.get("authorization", "").partition(" ")
        token = _unopaque(credential.strip())
        if token is not None:
            call.headers["authorization"] = f"{scheme} {token}"

    return Rewrite(Rewrite(app, TOKEN, reply=ok_json(issue)), anywhere, request=accept)


@fault(
    "auth_expired_batch_poll_allowed",
    "auth",
    "AUTH-012",
    "GET /v1/batch/{id} accepts an expired (but correctly signed) task token",
    needs=("/v1/batch",),
)
def _auth_expired_batch_poll_allowed(app: FastAPI) -> ASGIApp:
    def expired_caller(call: Call) -> Caller | None:
        header = call.headers.get("authorization")
        claims = swaps.claims_ignoring_expiry(app, header)
        if claims is None or swaps.caller_of(app, header) is not None:
            return None
        return Caller(str(claims["sub"]), str(claims.get("label", "")), claims["tier"])

    return Rewrite(app, BATCH_GET, request=rewrite_authorization(app, expired_caller))


# ----------------------------------------------------------------------------------------- models


@fault(
    "model_unknown_served",
    "models",
    "MODEL-009 MODEL-012 ERR-009 SDK-003",
    "a chat request for a model that does not exist is served by 42-general (200)",
)
def _model_unknown_served(app: FastAPI) -> ASGIApp:
    def fallback(call: Call) -> None:
        data = call.json()
        if isinstance(data, dict) and isinstance(data.get("model"), str) and data["model"] not in MODELS:
            data["model"] = "42-general"
            call.set_json(data)

    return chat(app, request=fallback)


@fault(
    "model_echo_wrong",
    "models",
    "MODEL-008",
    "the completion names the engine's model (SmolLM2-135M-Instruct), not the requested ID",
)
def _model_echo_wrong(app: FastAPI) -> ASGIApp:
    def rename(_call: Call, data: dict[str, Any]) -> None:
        data["model"] = "SmolLM2-135M-Instruct"

    return chat(app, reply=ok_json(rename))


@fault("models_list_incomplete", "models", "MODEL-007", "GET /v1/models leaves out 42-coder and 42-embed")
def _models_list_incomplete(app: FastAPI) -> ASGIApp:
    def drop(_call: Call, data: dict[str, Any]) -> None:
        data["data"] = [m for m in data.get("data", []) if m.get("id") not in ("42-coder", "42-embed")]

    return Rewrite(app, MODELS_LIST, reply=ok_json(drop))


@fault(
    "models_list_wrong_shape",
    "models",
    "MODEL-007 MODEL-010 SDK-007",
    'GET /v1/models answers {"models": [...]} instead of an object list with data',
)
def _models_list_wrong_shape(app: FastAPI) -> ASGIApp:
    def reshape(_call: Call, data: dict[str, Any]) -> None:
        data["models"] = data.pop("data", [])
        data.pop("object", None)

    return Rewrite(app, MODELS_LIST, reply=ok_json(reshape))


# ----------------------------------------------------------------------------------------- limits


@fault(
    "limit_429_no_retry_after", "limits", "LIMIT-004 LIMIT-005", "a 429 comes without a Retry-After header"
)
def _limit_429_no_retry_after(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, head=retry_after(429, None))


@fault("limit_429_wrong_retry_after", "limits", "LIMIT-004", "a 429 says Retry-After: 10 instead of 5")
def _limit_429_wrong_retry_after(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, head=retry_after(429, "10"))


@fault(
    "limit_503_no_retry_after",
    "limits",
    "LIMIT-011",
    "a 503 for lack of KV-cache room comes without a Retry-After header",
)
def _limit_503_no_retry_after(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, head=retry_after(503, None))


@fault(
    "limit_503_wrong_retry_after",
    "limits",
    "LIMIT-011",
    "a 503 for lack of KV-cache room says Retry-After: 5 instead of 30",
)
def _limit_503_wrong_retry_after(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, head=retry_after(503, "5"))


@fault(
    "limit_free_over_admission",
    "limits",
    "LIMIT-001",
    "a free key gets two concurrent requests instead of one",
)
def _limit_free_over_admission(app: FastAPI) -> ASGIApp:
    return swaps.set_limits(app, free=2)


@fault(
    "limit_pro_over_admission",
    "limits",
    "LIMIT-002",
    "a pro key gets four concurrent requests instead of three",
)
def _limit_pro_over_admission(app: FastAPI) -> ASGIApp:
    return swaps.set_limits(app, pro=4)


@fault(
    "limit_pro_429_too_early",
    "limits",
    "LIMIT-002",
    "a pro key gets 429 at its third concurrent request instead of its fourth",
)
def _limit_pro_429_too_early(app: FastAPI) -> ASGIApp:
    return swaps.set_limits(app, pro=2)


@fault(
    "limit_queue_instead_of_429",
    "limits",
    "LIMIT-001 LIMIT-002",
    "a request over the tier's limit waits for a free slot (a gateway queue) instead of getting 429",
)
def _limit_queue_instead_of_429(app: FastAPI) -> ASGIApp:
    return swaps.QueueForSlot(app)


@fault(
    "limit_internal_capped",
    "limits",
    "LIMIT-003",
    "an internal key is capped at four concurrent requests instead of unlimited",
)
def _limit_internal_capped(app: FastAPI) -> ASGIApp:
    return swaps.set_limits(app, internal=4)


@fault(
    "limit_slot_released_late",
    "limits",
    "LIMIT-006",
    "a finished request's concurrency slot is freed only 8 s later",
)
def _limit_slot_released_late(app: FastAPI) -> ASGIApp:
    gw = swaps.gateway(app)
    return swaps.swap_limiter(app, swaps.DelayedReleaseLimiter(gw.config.retry_after_429_s))


@fault(
    "limit_stream_not_counted",
    "limits",
    "LIMIT-007",
    "a streamed completion gives its concurrency slot back as soon as it is admitted",
)
def _limit_stream_not_counted(app: FastAPI) -> ASGIApp:
    gw = swaps.gateway(app)
    swaps.swap_limiter(app, swaps.StreamExemptLimiter(gw.config.retry_after_429_s))
    return WithContext(app, CHAT, swaps.STREAMING, lambda call: call.streaming)


@fault(
    "limit_disconnect_leaks_slot",
    "limits",
    "LIMIT-012",
    "a stream whose client hangs up never gives its concurrency slot back",
)
def _limit_disconnect_leaks_slot(app: FastAPI) -> ASGIApp:
    gw = swaps.gateway(app)
    swaps.swap_limiter(app, swaps.LeakOnDisconnectLimiter(gw.config.retry_after_429_s))
    return WatchDisconnect(app, CHAT, swaps.CLIENT_GONE)


@fault(
    "limit_per_token",
    "limits",
    "LIMIT-010",
    "concurrency is counted per task token, so a second token of the same key gets more slots",
)
def _limit_per_token(app: FastAPI) -> ASGIApp:
    gw = swaps.gateway(app)
    swaps.swap_limiter(app, swaps.TokenScopedLimiter(gw.config.retry_after_429_s))
    return WithContext(app, anywhere, swaps.TOKEN_SCOPED, lambda call: call.headers.get("authorization", ""))


def _elevate_free(app: FastAPI, when: Callable[[Call], bool]) -> Callable[[Call], None]:
    def decide(call: Call) -> Caller | None:
        caller = swaps.caller_of(app, call.headers.get("authorization"))
        if caller is None or caller.tier != "free" or not when(call):
            return None
        return Caller(caller.key_id, caller.label, "pro")

    return rewrite_authorization(app, decide)


@fault(
    "model_tier_not_enforced",
    "limits",
    "LIMIT-008 LIMIT-009",
    "a free key's chat request for 42-think, 42-vision or 42-coder is served",
)
def _model_tier_not_enforced(app: FastAPI) -> ASGIApp:
    return chat(app, request=_elevate_free(app, lambda call: model_of(call) in PREMIUM))


# ------------------------------------------------------------------------------------------- chat


@fault("chat_missing_created", "chat", "CHAT-005 CHAT-006", "chat completions have no created timestamp")
def _chat_missing_created(app: FastAPI) -> ASGIApp:
    return chat(app, reply=ok_json(lambda _call, data: data.pop("created", None)))


@fault("chat_wrong_object", "chat", "CHAT-005 CHAT-006", 'chat completions say object "text_completion"')
def _chat_wrong_object(app: FastAPI) -> ASGIApp:
    return chat(app, reply=ok_json(lambda _call, data: data.__setitem__("object", "text_completion")))


@fault(
    "chat_usage_not_adding_up",
    "chat",
    "CHAT-012",
    "usage.total_tokens is one more than prompt_tokens + completion_tokens",
)
def _chat_usage_not_adding_up(app: FastAPI) -> ASGIApp:
    def bump(_call: Call, data: dict[str, Any]) -> None:
        if isinstance(data.get("usage"), dict):
            data["usage"]["total_tokens"] += 1

    return chat(app, reply=ok_json(bump))


@fault("chat_id_without_prefix", "chat", "CHAT-003", "chat completion ids do not start with chatcmpl-")
def _chat_id_without_prefix(app: FastAPI) -> ASGIApp:
    return chat(app, reply=ok_json(lambda _call, data: data.__setitem__("id", uuid.uuid4().hex)))


@fault(
    "chat_finish_reason_invalid",
    "chat",
    "CHAT-009 CHAT-010",
    'finish_reason is "eos" instead of stop/length/content_filter',
)
def _chat_finish_reason_invalid(app: FastAPI) -> ASGIApp:
    def eos(_call: Call, data: dict[str, Any]) -> None:
        for choice in data.get("choices", []):
            choice["finish_reason"] = "eos"

    return chat(app, reply=ok_json(eos))


@fault(
    "chat_ignores_max_tokens",
    "chat",
    "CHAT-021 CHAT-022",
    "max_tokens and max_completion_tokens are ignored: the answer runs to its natural end",
)
def _chat_ignores_max_tokens(app: FastAPI) -> ASGIApp:
    def strip(call: Call) -> None:
        data = call.json()
        if isinstance(data, dict) and ("max_tokens" in data or "max_completion_tokens" in data):
            data.pop("max_tokens", None)
            data.pop("max_completion_tokens", None)
            call.set_json(data)

    return chat(app, request=strip)


_CHAT_MEMBERS = frozenset({"model", "messages", "stream", "stream_options", "max_tokens"})


@fault(
    "chat_rejects_unknown_members",
    "chat",
    "CHAT-018 CHAT-020",
    "a chat request with a member outside model/messages/stream/max_tokens gets 422",
)
def _chat_rejects_unknown_members(app: FastAPI) -> ASGIApp:
    def strict(call: Call) -> Reply | None:
        data = call.json()
        if not isinstance(data, dict):
            return None
        extra = sorted(set(data) - _CHAT_MEMBERS)
        if not extra:
            return None
        detail = [
            {"loc": ["body", name], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
            for name in extra
        ]
        return Reply.json_reply(
            422,
            {
                "detail": detail,
                "error": {
                    "message": f"Invalid request: {extra[0]}: Extra inputs are not permitted",
                    "type": "invalid_request_error",
                },
            },
        )

    return chat(app, request=strict)


@fault("chat_content_null", "chat", "CHAT-007", "the assistant message has content null")
def _chat_content_null(app: FastAPI) -> ASGIApp:
    def null(_call: Call, data: dict[str, Any]) -> None:
        for choice in data.get("choices", []):
            choice.get("message", {})["content"] = None

    return chat(app, reply=ok_json(null))


@fault(
    "chat_json_as_text_plain",
    "chat",
    "CHAT-015 SDK-004",
    "a non-streamed chat completion is sent as text/plain",
)
def _chat_json_as_text_plain(app: FastAPI) -> ASGIApp:
    def head(_call: Call, reply: Reply) -> None:
        if reply.status == 200 and reply.is_json:
            reply.headers["content-type"] = "text/plain; charset=utf-8"

    return chat(app, head=head)


@fault("server_hangs", "chat", "CHAT-001 SDK-004", "a non-streamed chat completion request is never answered")
def _server_hangs(app: FastAPI) -> ASGIApp:
    return Hang(app, CHAT)


# -------------------------------------------------------------------------------------- streaming


def stream(
    app: FastAPI,
    on_chunk: Callable[[dict[str, Any], int], list[Any]],
    on_done: Callable[[], list[Any]] | None = None,
) -> ASGIApp:
    return Rewrite(app, CHAT, events=chunk_rewriter(on_chunk, on_done))


def _finish(chunk: dict[str, Any]) -> str | None:
    choices = chunk.get("choices") or [{}]
    reason: str | None = choices[0].get("finish_reason")
    return reason


@fault("stream_missing_done", "streaming", "STREAM-008", "the stream ends without data: [DONE]")
def _stream_missing_done(app: FastAPI) -> ASGIApp:
    return stream(app, lambda chunk, _i: [chunk], lambda: [])


@fault("stream_two_finish_reasons", "streaming", "STREAM-007", "the finish_reason chunk is sent twice")
def _stream_two_finish_reasons(app: FastAPI) -> ASGIApp:
    return stream(app, lambda chunk, _i: [chunk, chunk] if _finish(chunk) else [chunk])


@fault(
    "stream_content_after_finish",
    "streaming",
    "STREAM-007",
    "a content chunk follows the finish_reason chunk",
)
def _stream_content_after_finish(app: FastAPI) -> ASGIApp:
    def late(chunk: dict[str, Any], _i: int) -> list[Any]:
        if not _finish(chunk):
            return [chunk]
        extra = {**chunk, "choices": [{"index": 0, "delta": {"content": " late"}, "finish_reason": None}]}
        return [chunk, extra]

    return stream(app, late)


@fault(
    "stream_wrong_content_type",
    "streaming",
    "STREAM-001 STREAM-002",
    "the event stream is sent as text/plain",
)
def _stream_wrong_content_type(app: FastAPI) -> ASGIApp:
    def head(_call: Call, reply: Reply) -> None:
        if reply.headers.get("content-type", "").startswith("text/event-stream"):
            reply.headers["content-type"] = "text/plain; charset=utf-8"

    return chat(app, head=head)


@fault("stream_no_role_first", "streaming", "STREAM-006", "the first chunk's delta has no role")
def _stream_no_role_first(app: FastAPI) -> ASGIApp:
    def drop_role(chunk: dict[str, Any], _i: int) -> list[Any]:
        for choice in chunk.get("choices", []):
            choice.get("delta", {}).pop("role", None)
        return [chunk]

    return stream(app, drop_role)


@fault(
    "stream_usage_unrequested",
    "streaming",
    "STREAM-009",
    "the finish chunk carries usage although stream_options.include_usage was not set",
)
def _stream_usage_unrequested(app: FastAPI) -> ASGIApp:
    def usage(chunk: dict[str, Any], _i: int) -> list[Any]:
        if _finish(chunk) and chunk.get("usage") is None:
            chunk["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        return [chunk]

    return stream(app, usage)


@fault(
    "stream_usage_not_adding_up",
    "streaming",
    "STREAM-010",
    "the stream's usage chunk has total_tokens one more than prompt + completion",
)
def _stream_usage_not_adding_up(app: FastAPI) -> ASGIApp:
    def bump(chunk: dict[str, Any], _i: int) -> list[Any]:
        if isinstance(chunk.get("usage"), dict):
            chunk["usage"]["total_tokens"] += 1
        return [chunk]

    return stream(app, bump)


@fault("stream_ids_differ", "streaming", "STREAM-005", "every chunk of one stream has a different id")
def _stream_ids_differ(app: FastAPI) -> ASGIApp:
    def renumber(chunk: dict[str, Any], i: int) -> list[Any]:
        chunk["id"] = f"{chunk.get('id', 'chatcmpl-')}-{i}"
        return [chunk]

    return stream(app, renumber)


@fault(
    "stream_stalls",
    "streaming",
    "STREAM-008 STREAM-011",
    "the stream stops sending after its first content chunk and never ends",
)
def _stream_stalls(app: FastAPI) -> ASGIApp:
    def stall(chunk: dict[str, Any], i: int) -> list[Any]:
        return [chunk, STALL] if i == 1 else [chunk]

    return stream(app, stall)


@fault(
    "stream_error_as_200",
    "streaming",
    "STREAM-012",
    "a stream request that fails before generation gets 200 text/event-stream with an error event",
)
def _stream_error_as_200(app: FastAPI) -> ASGIApp:
    def hook(call: Call, reply: Reply) -> None:
        if call.streaming and reply.status >= 400 and reply.is_json:
            reply.status = 200
            reply.headers["content-type"] = "text/event-stream; charset=utf-8"
            for name in ("retry-after", "www-authenticate"):
                if name in reply.headers:
                    del reply.headers[name]
            reply.body = b"data: " + reply.body + b"\n\ndata: [DONE]\n\n"

    return chat(app, reply=hook)


# ------------------------------------------------------------------------------------- embeddings


def embed(app: FastAPI, change: Callable[[Call, dict[str, Any]], None]) -> ASGIApp:
    return Rewrite(app, EMBED, reply=ok_json(change))


@fault(
    "embed_misordered", "embeddings", "EMBED-004", "the data items of a list input come back in reverse order"
)
def _embed_misordered(app: FastAPI) -> ASGIApp:
    return embed(app, lambda _call, data: data["data"].reverse())


@fault(
    "embed_unnormalised",
    "embeddings",
    "EMBED-007",
    "embedding vectors are not scaled to unit length (each is multiplied by 3)",
)
def _embed_unnormalised(app: FastAPI) -> ASGIApp:
    def scale(_call: Call, data: dict[str, Any]) -> None:
        for item in data["data"]:
            if isinstance(item.get("embedding"), list):
                item["embedding"] = [3 * x for x in item["embedding"]]
            elif isinstance(item.get("embedding"), str):
                raw = base64.b64decode(item["embedding"])
                floats = struct.unpack(f"<{len(raw) // 4}f", raw)
                item["embedding"] = base64.b64encode(
                    struct.pack(f"<{len(floats)}f", *(3 * x for x in floats))
                ).decode()

    return embed(app, scale)


@fault("embed_index_off_by_one", "embeddings", "EMBED-001 EMBED-004", "data item indexes start at 1")
def _embed_index_off_by_one(app: FastAPI) -> ASGIApp:
    def shift(_call: Call, data: dict[str, Any]) -> None:
        for item in data["data"]:
            item["index"] += 1

    return embed(app, shift)


@fault(
    "embed_dimension_varies",
    "embeddings",
    "EMBED-005",
    "every embedding after the first of a list input is cut to 256 dimensions",
)
def _embed_dimension_varies(app: FastAPI) -> ASGIApp:
    def cut(_call: Call, data: dict[str, Any]) -> None:
        for item in data["data"][1:]:
            if isinstance(item.get("embedding"), list):
                item["embedding"] = item["embedding"][:256]

    return embed(app, cut)


@fault(
    "embed_usage_not_adding_up",
    "embeddings",
    "EMBED-003",
    "usage.total_tokens is one more than usage.prompt_tokens",
)
def _embed_usage_not_adding_up(app: FastAPI) -> ASGIApp:
    def bump(_call: Call, data: dict[str, Any]) -> None:
        data["usage"]["total_tokens"] += 1

    return embed(app, bump)


@fault(
    "embed_wrong_object",
    "embeddings",
    "EMBED-006",
    'the response says object "embeddings" and its items carry no object',
)
def _embed_wrong_object(app: FastAPI) -> ASGIApp:
    def rename(_call: Call, data: dict[str, Any]) -> None:
        data["object"] = "embeddings"
        for item in data["data"]:
            item.pop("object", None)

    return embed(app, rename)


@fault(
    "embed_drops_duplicate_inputs",
    "embeddings",
    "EMBED-004",
    "repeated strings of a list input get one data item between them",
)
def _embed_drops_duplicate_inputs(app: FastAPI) -> ASGIApp:
    def dedupe(call: Call, data: dict[str, Any]) -> None:
        request = call.json()
        texts = request.get("input") if isinstance(request, dict) else None
        if not isinstance(texts, list):
            return
        seen: set[str] = set()
        kept = []
        for item, text in zip(data["data"], texts, strict=False):
            if json.dumps(text) not in seen:
                seen.add(json.dumps(text))
                kept.append(item)
        data["data"] = kept

    return embed(app, dedupe)


@fault(
    "embed_base64_float64",
    "embeddings",
    "EMBED-005 SDK-005",
    "encoding_format base64 packs float64 (SDKs decode float32: twice the dimensions, garbage values)",
)
def _embed_base64_float64(app: FastAPI) -> ASGIApp:
    def repack(_call: Call, data: dict[str, Any]) -> None:
        for item in data["data"]:
            if isinstance(item.get("embedding"), str):
                raw = base64.b64decode(item["embedding"])
                floats = struct.unpack(f"<{len(raw) // 4}f", raw)
                item["embedding"] = base64.b64encode(struct.pack(f"<{len(floats)}d", *floats)).decode()

    return embed(app, repack)


# ------------------------------------------------------------------------------------------ batch

BATCH = ("/v1/batch",)


@fault(
    "batch_loses_result",
    "batch",
    "BATCH-008",
    "a completed batch's results lack the last task's result",
    needs=BATCH,
)
def _batch_loses_result(app: FastAPI) -> ASGIApp:
    def lose(_call: Call, data: dict[str, Any]) -> None:
        results = data.get("results")
        if data.get("status") == "completed" and isinstance(results, dict) and results:
            results.pop(list(results)[-1])

    return Rewrite(app, BATCH_GET, reply=ok_json(lose))


@fault(
    "batch_counts_a_result_twice",
    "batch",
    "BATCH-009 BATCH-010",
    "a completed batch counts one task result twice (completed = total + 1)",
    needs=BATCH,
)
def _batch_counts_a_result_twice(app: FastAPI) -> ASGIApp:
    def twice(_call: Call, data: dict[str, Any]) -> None:
        if data.get("status") == "completed" and isinstance(data.get("completed"), int):
            data["completed"] += 1

    return Rewrite(app, BATCH_GET, reply=ok_json(twice))


@fault(
    "batch_readable_by_other_key",
    "batch",
    "BATCH-013",
    "any caller can read any batch: ownership is not checked",
    needs=BATCH,
)
def _batch_readable_by_other_key(app: FastAPI) -> ASGIApp:
    owners: dict[str, Caller] = {}

    def remember(call: Call, reply: Reply) -> None:
        data = reply.json()
        caller = swaps.caller_of(app, call.headers.get("authorization"))
        if reply.status in (200, 202) and isinstance(data, dict) and caller is not None:
            owners[str(data.get("batch_id"))] = caller

    def owner(call: Call) -> Caller | None:
        found = owners.get(call.path.rsplit("/", 1)[-1])
        caller = swaps.caller_of(app, call.headers.get("authorization"))
        return found if found is not None and caller is not None and caller != found else None

    submit = Rewrite(app, BATCH_SUBMIT, reply=remember)
    return Rewrite(submit, BATCH_GET, request=rewrite_authorization(app, owner))


@fault(
    "batch_status_nonstandard",
    "batch",
    "BATCH-006 BATCH-007",
    'a finished batch says status "done" instead of "completed"',
    needs=BATCH,
)
def _batch_status_nonstandard(app: FastAPI) -> ASGIApp:
    def done(_call: Call, data: dict[str, Any]) -> None:
        if data.get("status") == "completed":
            data["status"] = "done"

    return Rewrite(app, BATCH_GET, reply=ok_json(done))


@fault(
    "batch_submission_not_pending",
    "batch",
    "BATCH-003",
    'the batch submission answers status "queued" instead of "pending"',
    needs=BATCH,
)
def _batch_submission_not_pending(app: FastAPI) -> ASGIApp:
    def queued(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status in (200, 202) and isinstance(data, dict):
            data["status"] = "queued"
            reply.set_json(data)

    return Rewrite(app, BATCH_SUBMIT, reply=queued)


@fault(
    "batch_accepts_duplicate_ids",
    "batch",
    "BATCH-011",
    "a batch whose tasks repeat an id is accepted (the last task of an id wins)",
    needs=BATCH,
)
def _batch_accepts_duplicate_ids(app: FastAPI) -> ASGIApp:
    def dedupe(call: Call) -> None:
        data = call.json()
        tasks = data.get("tasks") if isinstance(data, dict) else None
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            return
        by_id = {json.dumps(t.get("id")): t for t in tasks}
        if len(by_id) < len(tasks):
            data["tasks"] = list(by_id.values())
            call.set_json(data)

    return Rewrite(app, BATCH_SUBMIT, request=dedupe)


@fault(
    "batch_unknown_id_500",
    "batch",
    "BATCH-012",
    "GET /v1/batch/{id} for an id never issued answers 500",
    needs=BATCH,
)
def _batch_unknown_id_500(app: FastAPI) -> ASGIApp:
    def crash(reply: Reply, data: dict[str, Any]) -> None:
        reply.status = 500
        data.clear()
        data["error"] = {"message": "Internal server error", "type": "internal_error"}

    return Rewrite(app, BATCH_GET, reply=error_json(404, crash))


# --------------------------------------------------------------------------------------- pipeline

PIPE = ("/v1/pipeline",)


def pipeline(app: FastAPI, change: Callable[[Call, dict[str, Any]], None]) -> ASGIApp:
    return Rewrite(app, PIPELINE, reply=ok_json(change))


def _steps(data: dict[str, Any]) -> list[dict[str, Any]]:
    steps = data.get("results")
    return steps if isinstance(steps, list) else []


@fault(
    "pipeline_skips_step",
    "pipeline",
    "PIPE-002",
    "the pipeline runs only its last step: results lack the scan step",
    needs=PIPE,
)
def _pipeline_skips_step(app: FastAPI) -> ASGIApp:
    return pipeline(app, lambda _call, data: data.__setitem__("results", _steps(data)[1:]))


@fault(
    "pipeline_steps_reversed",
    "pipeline",
    "PIPE-002",
    "the results list the steps in reverse order",
    needs=PIPE,
)
def _pipeline_steps_reversed(app: FastAPI) -> ASGIApp:
    return pipeline(app, lambda _call, data: data.__setitem__("results", _steps(data)[::-1]))


# No catalogue statement says a later step must see an earlier one's output; PIPE-002 is the nearest (it
# cites "Sequential model chaining with reference resolution"). Until the catalogue has such a
# requirement this fault is expected to go undetected: it marks the gap.
@fault(
    "pipeline_ignores_references",
    "pipeline",
    "PIPE-008",
    "a later step's prompt gets nothing for {{scan.content}}: the plan ignores the scan",
    needs=PIPE,
)
def _pipeline_ignores_references(app: FastAPI) -> ASGIApp:
    swaps.swap_chat_engine(app, swaps.ForgetfulChatEngine(swaps.gateway(app).chat))
    return WithContext(app, PIPELINE, swaps.PIPELINE_OUTPUTS, lambda _call: [])


@fault(
    "pipeline_final_output_wrong",
    "pipeline",
    "PIPE-005",
    "final_output is the first step's content instead of the last's",
    needs=PIPE,
)
def _pipeline_final_output_wrong(app: FastAPI) -> ASGIApp:
    def first(_call: Call, data: dict[str, Any]) -> None:
        steps = _steps(data)
        if steps:
            data["final_output"] = steps[0].get("content")

    return pipeline(app, first)


@fault(
    "pipeline_step_status_wrong",
    "pipeline",
    "PIPE-003",
    'each finished step says status "done" instead of "completed"',
    needs=PIPE,
)
def _pipeline_step_status_wrong(app: FastAPI) -> ASGIApp:
    def done(_call: Call, data: dict[str, Any]) -> None:
        for step in _steps(data):
            if step.get("status") == "completed":
                step["status"] = "done"

    return pipeline(app, done)


@fault(
    "pipeline_unknown_template_runs",
    "pipeline",
    "PIPE-006",
    "an unknown template name runs design-analysis instead of answering 404",
    needs=PIPE,
)
def _pipeline_unknown_template_runs(app: FastAPI) -> ASGIApp:
    def default(call: Call) -> None:
        data = call.json()
        if (
            isinstance(data, dict)
            and isinstance(data.get("template"), str)
            and data["template"] != "design-analysis"
        ):
            data["template"] = "design-analysis"
            if not isinstance(data.get("input"), dict) or "image_url" not in data["input"]:
                data["input"] = {"image_url": _PIXEL}
            call.set_json(data)

    return Rewrite(app, PIPELINE, request=default)


#: A 1x1 PNG: what the faulty server falls back to when the request names no image.
_PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ"
    "/pLvAAAAAElFTkSuQmCC"
)


@fault(
    "pipeline_tier_not_enforced",
    "pipeline",
    "PIPE-007",
    "a free key can run design-analysis (42-vision and 42-think)",
    needs=PIPE,
)
def _pipeline_tier_not_enforced(app: FastAPI) -> ASGIApp:
    return Rewrite(app, PIPELINE, request=_elevate_free(app, lambda _call: True))


# ----------------------------------------------------------------------------------------- errors


@fault(
    "err_envelope_detail",
    "errors",
    "ERR-001 ERR-002 SDK-003",
    'error bodies are FastAPI\'s {"detail": message} instead of {"error": {message, type}}',
)
def _err_envelope_detail(app: FastAPI) -> ASGIApp:
    def flatten(reply: Reply, data: dict[str, Any]) -> None:
        if reply.status != 422 and isinstance(data.get("error"), dict):
            data["detail"] = data.pop("error").get("message", "")

    return Rewrite(app, anywhere, reply=error_json(None, flatten))


@fault(
    "err_401_wrong_type",
    "errors",
    "ERR-008",
    "401 answers say type invalid_request_error instead of authentication_error",
)
def _err_401_wrong_type(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, reply=error_json(401, set_error_type("invalid_request_error")))


@fault(
    "err_429_wrong_type",
    "errors",
    "ERR-010",
    "429 answers say type too_many_requests instead of rate_limit_exceeded",
)
def _err_429_wrong_type(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, reply=error_json(429, set_error_type("too_many_requests")))


@fault(
    "err_unknown_model_wrong_type",
    "errors",
    "ERR-009",
    "404 for an unknown model says type not_found instead of model_not_found",
)
def _err_unknown_model_wrong_type(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, reply=error_json(404, set_error_type("not_found")))


def _internal_error() -> Reply:
    return Reply.json_reply(500, {"error": {"message": "Internal server error", "type": "internal_error"}})


@fault(
    "err_bad_json_500",
    "errors",
    "ERR-003 ERR-006 ERR-013",
    "a body that is not valid JSON gets 500 instead of 400",
)
def _err_bad_json_500(app: FastAPI) -> ASGIApp:
    def crash(call: Call) -> Reply | None:
        if call.method == "POST" and call.body and call.json() is None:
            return _internal_error()
        return None

    return Rewrite(app, lambda _m, path: path.startswith("/v1/"), request=crash)


@fault(
    "err_unknown_role_500",
    "errors",
    "ERR-006 ERR-007 ERR-013",
    "a message with a role other than system/user/assistant gets 500 instead of 422",
)
def _err_unknown_role_500(app: FastAPI) -> ASGIApp:
    def crash(call: Call) -> Reply | None:
        data = call.json()
        messages = data.get("messages") if isinstance(data, dict) else None
        messages = messages if isinstance(messages, list) else []
        roles = {m.get("role") for m in messages if isinstance(m, dict)}
        if roles - {"system", "user", "assistant"}:
            return _internal_error()
        return None

    return chat(app, request=crash)


@fault(
    "err_422_without_detail",
    "errors",
    "ERR-004 ERR-005",
    "a schema violation answers 422 with the error envelope only, no detail array",
)
def _err_422_without_detail(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, reply=error_json(422, lambda _reply, data: data.pop("detail", None)))


# -------------------------------------------------------------------------------------------- sdk


@fault(
    "sdk_expired_token_403",
    "sdk",
    "SDK-008 AUTH-005",
    "an expired task token gets 403 permission_error (SDKs raise PermissionDeniedError)",
)
def _sdk_expired_token_403(app: FastAPI) -> ASGIApp:
    return swaps.swap_auth(app, "expired_is_403")


@fault(
    "sdk_stream_chunk_without_delta",
    "sdk",
    "SDK-002 SDK-006 STREAM-003",
    "content chunks carry choices[0].text instead of choices[0].delta",
)
def _sdk_stream_chunk_without_delta(app: FastAPI) -> ASGIApp:
    def legacy(chunk: dict[str, Any], _i: int) -> list[Any]:
        for choice in chunk.get("choices", []):
            delta = choice.get("delta") or {}
            if "content" in delta and "role" not in delta:
                choice["text"] = choice.pop("delta")["content"]
        return [chunk]

    return stream(app, legacy)
