"""Planted liberties of the token exchange, the model listing and admission (auth, models, limits).

Quotes are from the seed documents: 000 is the 42 AI lab page, 001 the Fortytwo chat page, 002 its
OpenAPI fragment.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import hmac
import json
import os
import random
import threading

from fastapi import FastAPI
from starlette.types import ASGIApp

from reference_server.errors import ApiError
from reference_server.limits import KvBudget, Reservation
from tests.faults import swaps
from tests.faults.asgi import Call, Reply, Rewrite, WithContext, on
from tests.faults.catalogue import CHAT, EMBED, MODELS_LIST, TOKEN, anywhere
from tests.faults.liberties_base import liberty

__all__ = ["JweWrapper", "RandomlyBusyKv"]

DOC_TOKEN = (
    '000: "Obtain one by exchanging your API key: curl -X POST https://the-42-lab.com/api/token ... '
    '# Response: { "task_token": "eyJ..." }"'
)


# ------------------------------------------------------------------------------------------- auth


@liberty(
    "auth_token_201_created",
    "auth",
    "POST /api/token answers 201 Created (a token is a newly created resource), same body",
    f"{DOC_TOKEN}: the exchange is shown with its body and no status code.",
    touches="SPEC-001",
    exercises="AUTH SDK-004 SDK-008",
)
def _auth_token_201_created(app: FastAPI) -> ASGIApp:
    def created(_call: Call, reply: Reply) -> None:
        if reply.status == 200:
            reply.status = 201

    return Rewrite(app, TOKEN, head=created)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class JweWrapper:
    """Five-part compact JWE (``alg: dir``, so an empty encrypted key) around the server's own JWS.

    The cipher is a SHA-256 keystream and the tag an HMAC over header, IV and ciphertext: a real JWE's
    AEAD covers the protected header too, so *any* altered part makes the token invalid (AUTH-008 still
    holds), and nobody but the server can read the claims, as with real encryption.
    """

    HEADER = _b64(json.dumps({"alg": "dir", "enc": "A256GCM", "typ": "JWT", "cty": "JWT"}).encode())

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret or os.urandom(32)

    def _stream(self, iv: bytes, length: int) -> bytes:
        count = -(-length // 32)
        blocks = (hashlib.sha256(self.secret + iv + n.to_bytes(4, "big")).digest() for n in range(count))
        return b"".join(blocks)[:length]

    def _tag(self, header: str, iv: str, ciphertext: str) -> str:
        signed = f"{header}..{iv}.{ciphertext}".encode()
        return _b64(hmac.new(self.secret, signed, hashlib.sha256).digest()[:16])

    def wrap(self, token: str) -> str:
        iv = os.urandom(12)
        plain = token.encode()
        cipher = bytes(a ^ b for a, b in zip(plain, self._stream(iv, len(plain)), strict=True))
        iv_text, cipher_text = _b64(iv), _b64(cipher)
        return f"{self.HEADER}..{iv_text}.{cipher_text}.{self._tag(self.HEADER, iv_text, cipher_text)}"

    def unwrap(self, jwe: str) -> str | None:
        """The JWS inside, or None when the token is not one of ours or was altered."""
        parts = jwe.split(".")
        if len(parts) != 5 or parts[1]:
            return None
        header, _, iv_text, cipher_text, tag = parts
        if not hmac.compare_digest(tag, self._tag(header, iv_text, cipher_text)):
            return None
        try:
            iv, cipher = _unb64(iv_text), _unb64(cipher_text)
            plain = bytes(a ^ b for a, b in zip(cipher, self._stream(iv, len(cipher)), strict=True))
            return plain.decode()
        except ValueError:
            return None


@liberty(
    "auth_token_jwe_five_parts",
    "auth",
    "the task token is an encrypted JWT (five-part compact JWE, alg dir), opaque to the client",
    '000: "All requests require a JWT task token" (RFC 7519: a JWT is a JWS or a JWE); the example '
    '"eyJ..." is also how a JWE header begins. 000 never asks the client to read the claims.',
    touches="AUTH-003",
    exercises="AUTH SDK-004 SDK-008",
)
def _auth_token_jwe_five_parts(app: FastAPI) -> ASGIApp:
    jwe = JweWrapper()

    def issue(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status == 200 and isinstance(data, dict) and isinstance(data.get("task_token"), str):
            data["task_token"] = jwe.wrap(data["task_token"])
            reply.set_json(data)

    def accept(call: Call) -> None:
        scheme, _, credential = call.headers.get("authorization", "").partition(" ")
        if credential.strip().count(".") == 4:
            inner = jwe.unwrap(credential.strip())
            # An altered or foreign JWE reaches the server as a token it refuses (401), as a real one would.
            call.headers["authorization"] = f"{scheme} {inner or 'invalid.jwe.token'}"

    return Rewrite(Rewrite(app, TOKEN, reply=issue), anywhere, request=accept)


@liberty(
    "auth_token_oauth_style",
    "auth",
    "the token answer adds token_type, expires_in and scope; every 401 has WWW-Authenticate",
    f"{DOC_TOKEN}: the body shows task_token and does not say it holds nothing else; 002's 401 "
    'names a body only ("Invalid API key"), no header set.',
    exercises="AUTH ERR-001 ERR-002 ERR-008",
)
def _auth_token_oauth_style(app: FastAPI) -> ASGIApp:
    def extras(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status == 200 and isinstance(data, dict):
            data.update(token_type="Bearer", expires_in=60, scope="chat embeddings batch pipeline")
            reply.set_json(data)

    def challenge(_call: Call, reply: Reply) -> None:
        if reply.status == 401:
            reply.headers["www-authenticate"] = 'Bearer realm="42ai", error="invalid_token"'

    return Rewrite(Rewrite(app, TOKEN, reply=extras), anywhere, head=challenge)


# ----------------------------------------------------------------------------------------- models

#: Listed first: a model the chat endpoint refuses as the wrong kind (400), and a dated alias it serves.
EXTRA_MODELS = ("42-rerank", "42-general-latest")


@liberty(
    "models_listing_richer",
    "models",
    "GET /v1/models lists a rerank model and an alias first, the rest in reverse, with extra fields",
    '001: model is the "ID of the model to use (from /v1/models)"; neither document says the list holds '
    "only chat models, in which order, or which members an item may not have.",
    touches="MODEL-007 SDK-007",
    profile="fortytwo",
    exercises="MODEL SDK CHAT-001",
)
def _models_listing_richer(app: FastAPI) -> ASGIApp:
    def listing(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status != 200 or not isinstance(data, dict) or not isinstance(data.get("data"), list):
            return
        items = [
            {
                "id": "42-rerank",
                "object": "model",
                "created": 1767225600,
                "owned_by": "42ai",
                "type": "rerank",
            },
            {"id": "42-general-latest", "object": "model", "created": 1767225600, "owned_by": "42ai"},
            *reversed(data["data"]),
        ]
        for item in items:
            item.setdefault("type", "chat" if "embed" not in item["id"] else "embedding")
            item.update(context_length=8192, permission=[], root=item["id"].removesuffix("-latest"))
        data["data"] = items
        reply.set_json(data)

    def route(call: Call) -> Reply | None:
        data = call.json()
        model = data.get("model") if isinstance(data, dict) else None
        if model == "42-rerank":
            envelope = {"message": "Model 42-rerank is a rerank model", "type": "invalid_request_error"}
            return Reply.json_reply(400, {"error": envelope})
        if model == "42-general-latest" and isinstance(data, dict):
            data["model"] = "42-general"
            call.set_json(data)
            call.headers["x-liberty-alias"] = "42-general-latest"  # for the echo below; the server ignores it
        return None

    def echo(call: Call, reply: Reply) -> None:
        if "x-liberty-alias" in call.headers and reply.status == 200:
            payload = reply.json()
            if isinstance(payload, dict):
                payload["model"] = "42-general-latest"
                reply.set_json(payload)

    chat = Rewrite(app, CHAT, request=route, reply=echo)
    return Rewrite(chat, MODELS_LIST, reply=listing)


# ----------------------------------------------------------------------------------------- limits

#: Set while a chat request is handled, so only chat admissions (not batch or pipeline steps) refuse.
IN_CHAT: contextvars.ContextVar[bool] = contextvars.ContextVar("liberty_in_chat", default=False)
#: About one chat or embeddings request in this many is refused for memory.
BUSY_ONE_IN = 30
BUSY_MESSAGE = "Insufficient GPU memory: try again later. Retry after 30s"


class _NowAndThen:
    """Decides the "now and then": about one call in ``one_in``, never twice in a row for one path."""

    def __init__(self, one_in: int = BUSY_ONE_IN) -> None:
        self.one_in = one_in
        self.last: dict[str, bool] = {}
        self.rng = random.Random()
        self.lock = threading.Lock()

    def __call__(self, path: str) -> bool:
        with self.lock:
            refuse = not self.last.get(path, False) and self.rng.random() < 1 / self.one_in
            self.last[path] = refuse
            return refuse


class RandomlyBusyKv(KvBudget):
    """The KV budget of a server whose GPU memory is sometimes taken by something else: a chat request
    is refused exactly where the reference refuses for memory (after auth, validation, model, tier and
    slot), with the reference's own 503."""

    def __init__(self, base: KvBudget, decide: _NowAndThen) -> None:
        super().__init__(base.capacity, int(base._retry_after))
        self.decide = decide

    def reserve(self, tokens: int) -> Reservation:
        if IN_CHAT.get() and self.decide("/v1/chat/completions"):
            raise ApiError(503, BUSY_MESSAGE, "service_unavailable", headers={"Retry-After": "30"})
        return super().reserve(tokens)


@liberty(
    "limits_503_now_and_then",
    "limits",
    "about one chat or embeddings request in 30 gets 503 + Retry-After: 30 (GPU memory), never twice "
    "in a row on one path",
    '000, Error Codes: "503 Insufficient GPU memory (Retry-After: 30s)"; it says neither when that '
    "happens nor that it cannot happen to a well-formed request.",
    touches="LIMIT-010 SPEC-001 SPEC-003 BATCH-007",
    exercises="CHAT MODEL EMBED LIMIT SDK",
)
def _limits_503_now_and_then(app: FastAPI) -> ASGIApp:
    decide = _NowAndThen()
    gateway = swaps.gateway(app)
    gateway.kv = RandomlyBusyKv(gateway.kv, decide)

    def embeddings(call: Call) -> Reply | None:
        # Only a request the server would otherwise serve: valid caller, a slot free, a proper body.
        caller = swaps.caller_of(app, call.headers.get("authorization"))
        data = call.json()
        if caller is None or not isinstance(data, dict) or data.get("model", "42-embed") != "42-embed":
            return None
        limit = gateway.limiter.limit(caller.tier)
        if not isinstance(data.get("input"), (str, list)) or (
            limit is not None and gateway.limiter.in_flight(caller.key_id) >= limit
        ):
            return None
        if not decide(call.path):
            return None
        envelope = {"message": BUSY_MESSAGE, "type": "service_unavailable"}
        return Reply.json_reply(503, {"error": envelope}, {"Retry-After": "30"})

    chat = WithContext(app, CHAT, IN_CHAT, lambda _call: True)
    return Rewrite(chat, EMBED, request=embeddings)


@liberty(
    "limits_429_extra_headers",
    "limits",
    "a 429 also carries X-RateLimit-Limit/-Remaining, retry-after-ms: 5000 and its own wording",
    '000: "429 Concurrency limit reached (Retry-After: 5s)" names one header and no others; the message '
    "text is the server's.",
    exercises="LIMIT ERR-010",
)
def _limits_429_extra_headers(app: FastAPI) -> ASGIApp:
    def head(_call: Call, reply: Reply) -> None:
        if reply.status == 429:
            reply.headers["x-ratelimit-limit-requests"] = "concurrency"
            reply.headers["x-ratelimit-remaining-requests"] = "0"
            reply.headers["retry-after-ms"] = "5000"

    def body(_call: Call, reply: Reply) -> None:
        data = reply.json()
        if reply.status == 429 and isinstance(data, dict) and isinstance(data.get("error"), dict):
            data["error"]["message"] = "Slow down! Your key has as many requests running as its tier allows."
            reply.set_json(data)

    return Rewrite(app, on("POST", r"/v1/.*"), head=head, reply=body)
