"""Faults that replace one component of a built gateway from outside: test doubles, not switches.

``create_app`` keeps its parts in a ``Gateway`` dataclass (``gateway_of(app)``); a fault built here
swaps one of them (the limiter, the authenticator, its token service) for a subclass with one wrong
behaviour. The production classes stay as they are; these subclasses exist only under ``tests/``.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import hashlib
import threading
import time
from typing import Any

import jwt
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from reference_server.auth import Authenticator, Caller, TokenService
from reference_server.engines.base import ChatEngine
from reference_server.errors import ApiError
from reference_server.gateway import Gateway, gateway_of
from reference_server.limits import ConcurrencyLimiter, Slot
from reference_server.models import TIER_CONCURRENCY, TIERS, Tier
from tests.faults.asgi import ClientGone

__all__ = [
    "ANONYMOUS",
    "CLIENT_GONE",
    "PIPELINE_OUTPUTS",
    "STREAMING",
    "TOKEN_SCOPED",
    "DelayedReleaseLimiter",
    "ForgetfulChatEngine",
    "LeakOnDisconnectLimiter",
    "LenientAuthenticator",
    "StreamExemptLimiter",
    "TokenScopedLimiter",
    "caller_of",
    "claims_ignoring_expiry",
    "gateway",
    "set_limits",
    "swap_auth",
    "swap_chat_engine",
    "swap_limiter",
    "swap_tokens",
]

_ALG = "HS256"
#: Who a server that lets unauthenticated callers in takes them for.
ANONYMOUS = Caller(key_id="anonymous", label="anonymous", tier="free")
#: Set (by an asgi.set_flag wrapper) while a streaming chat request is handled.
STREAMING: contextvars.ContextVar[bool] = contextvars.ContextVar("fault_streaming", default=False)
#: Whether the client of the request being handled hung up (set by an asgi.WatchDisconnect wrapper).
CLIENT_GONE: contextvars.ContextVar[ClientGone | None] = contextvars.ContextVar("fault_gone", default=None)
#: The Authorization header of the request being handled (for per-token concurrency).
TOKEN_SCOPED: contextvars.ContextVar[str] = contextvars.ContextVar("fault_token", default="")


def gateway(app: FastAPI) -> Gateway:
    return gateway_of(app)


def _secret(app: FastAPI) -> str:
    secret = gateway(app).config.jwt_secret
    if not secret:
        raise RuntimeError("faults that re-sign task tokens need ServerConfig.jwt_secret set")
    return secret


def claims_ignoring_expiry(app: FastAPI, authorization: str | None) -> dict[str, Any] | None:
    """The claims of a correctly signed task token, expired or not; None for anything else."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            authorization.split(" ", 1)[1].strip(),
            _secret(app),
            algorithms=[_ALG],
            options={"verify_exp": False},
        )
    except jwt.InvalidTokenError:
        return None
    return claims


def caller_of(app: FastAPI, authorization: str | None) -> Caller | None:
    """The caller a valid (unexpired) task token names, or None."""
    try:
        return gateway(app).auth.authenticate(authorization)
    except ApiError:
        return None


# ------------------------------------------------------------------------------------------ tokens


class _ResigningTokens(TokenService):
    """Base of the lenient token services: re-sign what they let through, then verify as usual."""

    def _resign(self, claims: dict[str, Any]) -> str:
        fresh = {**claims, "exp": int(time.time()) + 60}
        return jwt.encode(fresh, self._secret, algorithm=_ALG)


class TokensIgnoringExpiry(_ResigningTokens):
    """Checks the signature and claims but never ``exp``: tokens live for ever."""

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALG], options={"verify_exp": False})
        except jwt.InvalidTokenError:
            return super().verify(token)
        return super().verify(self._resign(claims))


class TokensAcceptingAlgNone(_ResigningTokens):
    """Takes an unsigned token (``alg: none``) at its word."""

    def verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return super().verify(token)
        if str(header.get("alg", "")).lower() == "none":
            claims = jwt.decode(token, options={"verify_signature": False})
            return super().verify(self._resign(claims))
        return super().verify(token)


class TokensIgnoringSignature(_ResigningTokens):
    """Decodes tokens without checking the signature: altered claims are believed."""

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": True})
        except jwt.InvalidTokenError:
            return super().verify(token)
        return super().verify(self._resign(claims))


class TokensWithShortLife(TokenService):
    """Issues tokens that say 60 s (``exp``) but refuses them once they are older than ``max_age_s``."""

    def __init__(self, secret: str, ttl_s: int = 60, max_age_s: int = 10) -> None:
        super().__init__(secret, ttl_s)
        self.max_age_s = max_age_s

    def verify(self, token: str) -> Caller:
        caller = super().verify(token)
        issued = jwt.decode(token, options={"verify_signature": False}).get("iat", 0)
        if time.time() - float(issued) > self.max_age_s:
            raise ApiError(
                401,
                "Task token expired: exchange your API key at POST /api/token for a new one",
                "authentication_error",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return caller


def swap_tokens(app: FastAPI, cls: type[TokenService], **kwargs: Any) -> FastAPI:
    gw = gateway(app)
    tokens = cls(_secret(app), gw.auth.tokens.ttl_s, **kwargs)
    gw.auth = dataclasses.replace(gw.auth, tokens=tokens)
    return app


# ------------------------------------------------------------------------------------ authenticator


class LenientAuthenticator(Authenticator):
    """An authenticator with one of a few documented rules relaxed (``leniency``)."""

    leniency: str = ""

    def authenticate(self, authorization: str | None) -> Caller:
        credential = (authorization or "").partition(" ")[2].strip()
        if self.leniency == "raw_key" and credential.startswith("sk-"):
            return self.key_caller(authorization)
        if self.leniency == "no_header" and not (authorization or "").strip():
            return ANONYMOUS
        if self.leniency == "expired_is_403":
            try:
                return super().authenticate(authorization)
            except ApiError as exc:
                if exc.status == 401 and "expired" in exc.message:
                    raise ApiError(403, "Task token expired", "permission_error") from None
                raise
        return super().authenticate(authorization)

    def exchange_caller(self, authorization: str | None) -> tuple[Caller, str]:
        if self.leniency == "unknown_key":
            try:
                return super().exchange_caller(authorization)
            except ApiError:
                return ANONYMOUS, self.tokens.issue(ANONYMOUS)
        return super().exchange_caller(authorization)


def swap_auth(app: FastAPI, leniency: str) -> FastAPI:
    gw = gateway(app)
    auth = LenientAuthenticator(gw.auth.keystore, gw.auth.tokens, gw.auth.flavour)
    object.__setattr__(auth, "leniency", leniency)
    gw.auth = auth
    return app


# ------------------------------------------------------------------------------------------ engines

#: The answers given so far within the pipeline request being handled (None outside pipelines).
PIPELINE_OUTPUTS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "fault_outputs", default=None
)


class ForgetfulChatEngine:
    """Wraps the chat engine: within a pipeline, earlier steps' answers are blanked out of later
    prompts, as if every ``{{step.content}}`` reference resolved to nothing."""

    def __init__(self, inner: ChatEngine) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        earlier = PIPELINE_OUTPUTS.get()
        if earlier is None:
            return await self._inner.complete(body)
        messages = []
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                for text in earlier:
                    content = content.replace(text, "")
            messages.append({**message, "content": content})
        reply = await self._inner.complete({**body, "messages": messages})
        earlier.append(str(reply["choices"][0]["message"]["content"]))
        return reply


def swap_chat_engine(app: FastAPI, engine: Any) -> FastAPI:
    gateway(app).chat = engine
    return app


# ------------------------------------------------------------------------------------------- limits


def set_limits(app: FastAPI, **limits: int | None) -> FastAPI:
    """A limiter with other per-tier limits (``free=2``: over-admission; ``pro=2``: 429 too early)."""
    unknown = set(limits) - set(TIERS)
    if unknown:
        raise ValueError(f"unknown tiers {sorted(unknown)}")
    table: dict[Tier, int | None] = {**TIER_CONCURRENCY}
    table.update({tier: value for tier, value in limits.items() if tier in TIERS})
    return swap_limiter(app, ConcurrencyLimiter(gateway(app).config.retry_after_429_s, table))


def swap_limiter(app: FastAPI, limiter: ConcurrencyLimiter) -> FastAPI:
    gateway(app).limiter = limiter
    return app


class DelayedReleaseLimiter(ConcurrencyLimiter):
    """Frees a finished request's slot only ``delay_s`` later (a deferred clean-up)."""

    def __init__(self, retry_after_s: int = 5, delay_s: float = 8.0) -> None:
        super().__init__(retry_after_s)
        self.delay_s = delay_s

    def _release(self, key_id: str) -> None:
        timer = threading.Timer(self.delay_s, super()._release, args=(key_id,))
        timer.daemon = True
        timer.start()


class StreamExemptLimiter(ConcurrencyLimiter):
    """Checks the limit when a stream starts but does not count the stream while it runs."""

    def try_acquire(self, key_id: str, tier: Tier) -> Slot:
        slot = super().try_acquire(key_id, tier)
        if STREAMING.get():
            slot.release()
        return slot


class LeakOnDisconnectLimiter(ConcurrencyLimiter):
    """Never frees the slot of a request whose client hung up (its clean-up path forgets the slot)."""

    def _release(self, key_id: str) -> None:
        flag = CLIENT_GONE.get()
        if flag is None or not flag.gone:
            super()._release(key_id)


class TokenScopedLimiter(ConcurrencyLimiter):
    """Counts concurrency per task token instead of per API key."""

    def try_acquire(self, key_id: str, tier: Tier) -> Slot:
        token = hashlib.sha256(TOKEN_SCOPED.get().encode()).hexdigest()[:16]
        return super().try_acquire(f"{key_id}/{token}", tier)


class QueueForSlot:
    """ASGI wrapper: a chat request of a key with every slot taken waits (up to ``wait_s``) until one is
    free instead of getting its 429 at once: the request queue of a gateway that never refuses. The
    limiter underneath stays as it is, so a request that waited too long still gets the 429."""

    def __init__(self, app: FastAPI, wait_s: float = 120.0) -> None:
        self.app = app
        self.wait_s = wait_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/chat/completions":
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            caller = caller_of(self.app, headers.get("authorization"))
            if caller is not None:
                limiter = gateway(self.app).limiter
                limit = limiter.limit(caller.tier)
                end = time.monotonic() + self.wait_s
                while (
                    limit is not None and limiter.in_flight(caller.key_id) >= limit and time.monotonic() < end
                ):
                    await asyncio.sleep(0.01)
        await self.app(scope, receive, send)
