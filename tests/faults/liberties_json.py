"""Planted liberties of the JSON answers and their HTTP framing (chat, embeddings, batch, pipeline,
errors, sdk): what RFC 8259 and HTTP/1.1 let a server choose that the documents do not fix."""

from __future__ import annotations

import json
import random
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Scope

from tests.faults.asgi import Call, Reply, Rewrite, on
from tests.faults.asgi_body import BodyCutter, BodyFilter
from tests.faults.catalogue import BATCH_GET, BATCH_SUBMIT, EMBED, PIPELINE, anywhere
from tests.faults.liberties_base import liberty

__all__ = ["escaped_json", "exponent_json"]

JSON_SILENCE = (
    "JSON (RFC 8259, the format every example of 000 and 002 is in) lets a server choose member order, "
    "insignificant whitespace and how a string's characters are escaped; the documents fix none of them."
)


def json_bodies(encode: Callable[[Any], str]) -> Callable[[Call, Reply], None]:
    """A reply hook that re-encodes every JSON answer (any status) with ``encode``, same value."""

    def hook(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.is_json and data is not None:
            reply.body = encode(data).encode()

    return hook


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@liberty(
    "json_pretty_reordered",
    "chat",
    "every JSON answer pretty-printed (indent 2, trailing newline), members in reverse order",
    JSON_SILENCE,
    exercises="CHAT EMBED-001 BATCH-005 PIPE-001 ERR-001 SDK",
)
def _json_pretty_reordered(app: FastAPI) -> ASGIApp:
    encode = json_bodies(lambda data: json.dumps(_reversed_keys(data), indent=2) + "\n")
    return Rewrite(app, anywhere, reply=encode)


def _escape_char(ch: str) -> str:
    if ch == "/":
        return "\\/"
    if ch == "-" or ord(ch) > 126:
        return "".join(f"\\u{unit:04x}" for unit in _utf16(ch))
    return json.dumps(ch)[1:-1]


def _utf16(ch: str) -> list[int]:
    raw = ch.encode("utf-16-be")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def escaped_json(value: Any) -> str:
    """JSON as PHP's json_encode writes it, plus \\u002d for every hyphen: the same value."""
    if isinstance(value, str):
        return '"' + "".join(_escape_char(ch) for ch in value) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{escaped_json(k)}:{escaped_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(escaped_json(v) for v in value) + "]"
    return json.dumps(value)


@liberty(
    "json_escaped_strings",
    "chat",
    'strings escaped as \\/ and \\uXXXX: "chatcmpl\\u002d...", "42\\u002dgeneral", non-ASCII as \\u00e9',
    JSON_SILENCE + ' RFC 8259 section 7: "Any character may be escaped."',
    exercises="CHAT MODEL-001 MODEL-005 EMBED-001 BATCH PIPE ERR-001 SDK",
)
def _json_escaped_strings(app: FastAPI) -> ASGIApp:
    return Rewrite(app, anywhere, reply=json_bodies(escaped_json))


def _add_members(value: Any, extra: dict[str, Any]) -> None:
    if isinstance(value, dict):
        value.update({k: v for k, v in extra.items() if k not in value})


def _enrich(call: Call, data: Any) -> None:
    if not isinstance(data, dict):
        return
    _add_members(data, {"x_request_id": f"req_{uuid.uuid4().hex[:16]}", "x_region": "eu-west-42"})
    for choice in data.get("choices") or []:
        _add_members(choice, {"logprobs": None})
        _add_members(choice.get("message"), {"refusal": None, "annotations": []})
    _add_members(data.get("usage"), {"prompt_tokens_details": {"cached_tokens": 0}})
    for item in data.get("data") or []:
        _add_members(item, {"x_norm": 1.0} if call.path == "/v1/embeddings" else {"x_ready": True})
    results = data.get("results")
    # A batch's results is a map keyed by task id (no member may be added there), a pipeline's a list.
    for result in results.values() if isinstance(results, dict) else results or []:
        _add_members(result, {"finish_reason": "stop", "x_attempts": 1})
    _add_members(data.get("error"), {"code": None, "param": None})


@liberty(
    "json_extra_members",
    "chat",
    "every JSON object the server answers carries members the documents do not name (request id, "
    "logprobs, refusal, usage details, per-item and per-result extras, error code and param)",
    "000 and 002 show response members and never say an object holds only those; 002's chat "
    "response schema sets no additionalProperties: false (JSON Schema: extra members are allowed).",
    touches="SPEC-002",
    exercises="CHAT MODEL EMBED BATCH PIPE ERR SDK",
)
def _json_extra_members(app: FastAPI) -> ASGIApp:
    def hook(call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.is_json and isinstance(data, dict):
            _enrich(call, data)
            reply.set_json(data)

    return Rewrite(app, anywhere, reply=hook)


class _Pieces:
    """A non-streamed body re-sent chunked, in pieces of 1-64 bytes."""

    pause = 0.0

    def __init__(self) -> None:
        self.rng = random.Random()

    def feed(self, chunk: bytes) -> list[bytes]:
        pieces = []
        while chunk:
            size = self.rng.randint(1, 64)
            pieces.append(chunk[:size])
            chunk = chunk[size:]
        return pieces

    def end(self) -> list[bytes]:
        return []


@liberty(
    "http_chunked_json",
    "chat",
    "every non-streamed answer goes out with Transfer-Encoding: chunked (no Content-Length), in "
    "pieces of 1-64 bytes",
    "HTTP/1.1 (RFC 9112) lets a server frame any body by chunked transfer coding instead of "
    "Content-Length, and split it anywhere; the documents name no framing.",
    exercises="CHAT EMBED-001 BATCH-005 PIPE-001 ERR SDK",
)
def _http_chunked_json(app: FastAPI) -> ASGIApp:
    def make(_scope: Scope, reply: Reply) -> BodyCutter | None:
        return (
            _Pieces() if not reply.headers.get("content-type", "").startswith("text/event-stream") else None
        )

    return BodyFilter(app, anywhere, make)


class _Gzip:
    """gzip for a whole body, flushed after every write so a stream stays a stream."""

    pause = 0.0

    def __init__(self) -> None:
        self.zip = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def feed(self, chunk: bytes) -> list[bytes]:
        return [self.zip.compress(chunk) + self.zip.flush(zlib.Z_SYNC_FLUSH)] if chunk else []

    def end(self) -> list[bytes]:
        return [self.zip.flush()]


def accepts_gzip(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"accept-encoding" and b"gzip" in value.lower():
            return True
    return False


@liberty(
    "http_gzip",
    "chat",
    "answers (JSON and event streams, each write flushed) are gzip-encoded whenever the request's "
    "Accept-Encoding allows it (httpx and the OpenAI SDK send gzip by default)",
    "HTTP (RFC 9110 section 12.5.3): a client's Accept-Encoding: gzip lets the server use it; the "
    "documents name no encoding, and 002's content types are about the body after decoding.",
    profile="fortytwo",
    exercises="CHAT STREAM SDK ERR-001 MODEL",
)
def _http_gzip(app: FastAPI) -> ASGIApp:
    def make(scope: Scope, reply: Reply) -> BodyCutter | None:
        if not accepts_gzip(scope):
            return None
        reply.headers["content-encoding"] = "gzip"
        reply.headers["vary"] = "Accept-Encoding"
        return _Gzip()

    return BodyFilter(app, anywhere, make)


@liberty(
    "http_extra_headers",
    "sdk",
    "every answer carries headers the documents do not name (x-request-id, openai-processing-ms, "
    "cache-control: no-store, strict-transport-security, x-42-region)",
    "The documents name only Retry-After and Content-Type; HTTP lets a server send any other field.",
    exercises="CHAT STREAM SDK AUTH-001",
)
def _http_extra_headers(app: FastAPI) -> ASGIApp:
    def head(_call: Call, reply: Reply) -> None:
        reply.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
        reply.headers["openai-processing-ms"] = str(random.randint(3, 90))
        reply.headers["cache-control"] = "no-store"
        reply.headers["strict-transport-security"] = "max-age=31536000"
        reply.headers["x-42-region"] = "eu-west-42"

    return Rewrite(app, anywhere, head=head)


@liberty(
    "http_content_type_charset",
    "sdk",
    "Content-Type with a charset parameter: application/json; charset=utf-8, "
    "text/event-stream; charset=utf-8",
    "002 names the media types application/json and text/event-stream; a media type's parameters "
    "(RFC 9110 section 8.3.1) do not change it, and utf-8 is the only charset either allows.",
    touches="SPEC-001",
    profile="fortytwo",
    exercises="CHAT STREAM SDK ERR-001",
)
def _http_content_type_charset(app: FastAPI) -> ASGIApp:
    def head(_call: Call, reply: Reply) -> None:
        kind = reply.headers.get("content-type", "")
        if kind in ("application/json", "text/event-stream") or kind.startswith("text/event-stream;"):
            reply.headers["content-type"] = kind.split(";")[0] + "; charset=utf-8"

    return Rewrite(app, anywhere, head=head)


# ------------------------------------------------------------------------------------- embeddings


def exponent_json(value: Any) -> str:
    """JSON with every float written in exponent form (1.0e0 style): 0.25 -> 2.5000000e-01."""
    if isinstance(value, float):
        return f"{value:.8e}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{exponent_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(exponent_json(v) for v in value) + "]"
    return json.dumps(value)


@liberty(
    "embed_exponent_floats",
    "embeddings",
    "embedding numbers are written in exponent form (-2.00000000e-01, 1.00000000e+00)",
    '000 shows "embedding": [0.1, -0.2, ...], numbers; RFC 8259 section 6 gives a number an optional '
    "exponent, and the value is the same.",
    exercises="EMBED SDK-005 MODEL-006",
)
def _embed_exponent_floats(app: FastAPI) -> ASGIApp:
    return Rewrite(app, EMBED, reply=json_bodies(exponent_json))


# ------------------------------------------------------------------------------------------ batch


@liberty(
    "batch_submit_200",
    "batch",
    "POST /v1/batch answers 200 OK instead of 202 Accepted, same body",
    '000: "POST /v1/batch Submit batch of tasks for async processing", a Response body and no status code.',
    touches="SPEC-001",
    exercises="BATCH AUTH-004 AUTH-012",
)
def _batch_submit_200(app: FastAPI) -> ASGIApp:
    def ok(_call: Call, reply: Reply) -> None:
        if 200 <= reply.status < 300:
            reply.status = 200

    return Rewrite(app, BATCH_SUBMIT, head=ok)


#: A batch queue that picks a batch up only after this many seconds: until then it is "pending".
QUEUE_DELAY_S = 2.0


@liberty(
    "batch_pending_until_done",
    "batch",
    'a batch says "pending" until it is "completed" (never "running"), shows completed and results '
    f"only once completed, and is picked up {QUEUE_DELAY_S:g} s after submission",
    '000 shows a batch with "status": "pending" (submission) and one with "status": "completed", '
    '"completed": 2, "results": {...}; it shows no other state and no results before completion.',
    touches="BATCH-010 BATCH-015 SPEC-002",
    exercises="BATCH AUTH-004 AUTH-012",
)
def _batch_pending_until_done(app: FastAPI) -> ASGIApp:
    submitted: dict[str, float] = {}

    def remember(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if 200 <= reply.status < 300 and isinstance(data, dict) and isinstance(data.get("batch_id"), str):
            submitted[data["batch_id"]] = time.monotonic()

    def status(call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status != 200 or not isinstance(data, dict):
            return
        started = submitted.get(call.path.rsplit("/", 1)[-1], 0.0)
        done = data.get("status") == "completed" and time.monotonic() - started >= QUEUE_DELAY_S
        if not done and data.get("status") in ("pending", "running", "completed"):
            data["status"] = "pending"
            for member in ("completed", "failed", "results"):
                data.pop(member, None)
        reply.set_json(data)

    return Rewrite(Rewrite(app, BATCH_SUBMIT, reply=remember), BATCH_GET, reply=status)


# --------------------------------------------------------------------------------------- pipeline


@liberty(
    "pipeline_extra_fields",
    "pipeline",
    "a pipeline answer adds pipeline_id, template, created, usage and per-step timing and usage",
    "000's pipeline Response shows status, results (id, model, status, content) and final_output, "
    "and does not say an answer holds nothing else.",
    touches="SPEC-002",
    exercises="PIPE",
)
def _pipeline_extra_fields(app: FastAPI) -> ASGIApp:
    def hook(call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status != 200 or not isinstance(data, dict):
            return
        request = call.json()
        template = request.get("template") if isinstance(request, dict) else None
        data = {"pipeline_id": f"pipe_{uuid.uuid4().hex[:12]}", "template": template, **data}
        data.update(created=int(time.time()), usage={"prompt_tokens": 10, "completion_tokens": 20})
        for step in data.get("results") or []:
            if isinstance(step, dict):
                step.update(started_at=int(time.time()), usage={"total_tokens": 15}, attempts=1)
        reply.set_json(data)

    return Rewrite(app, PIPELINE, reply=hook)


@liberty(
    "pipeline_201_created",
    "pipeline",
    "POST /v1/pipeline answers 201 Created with the finished run, same body",
    '000: "POST /v1/pipeline Sequential model chaining with reference resolution", a Response body '
    "and no status code.",
    touches="SPEC-001",
    exercises="PIPE",
)
def _pipeline_201_created(app: FastAPI) -> ASGIApp:
    def created(_call: Call, reply: Reply) -> None:
        if reply.status == 200:
            reply.status = 201

    return Rewrite(app, PIPELINE, head=created)


# ----------------------------------------------------------------------------------------- errors


@liberty(
    "errors_400_for_schema",
    "errors",
    "a body that breaks the request schema gets 400 invalid_request_error (the envelope), never 422",
    '002 lists "400 Invalid request parameters" beside 422; a request whose parameters are invalid may '
    "be answered by either. (Judged under 42ai: 002's 422 shape is a Fortytwo requirement.)",
    touches="ERR-004 ERR-007 SPEC-001",
    exercises="ERR CHAT-018 CHAT-020",
)
def _errors_400_for_schema(app: FastAPI) -> ASGIApp:
    def flatten(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status != 422 or not isinstance(data, dict):
            return
        reply.status = 400
        detail = data.get("detail")
        first = detail[0] if isinstance(detail, list) and detail and isinstance(detail[0], dict) else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body") or "body"
        message = f"Invalid request parameters: {where}: {first.get('msg', 'invalid')}"
        reply.set_json({"error": {"message": message, "type": "invalid_request_error"}})

    return Rewrite(app, on("POST", r"/v1/.*"), reply=flatten)
