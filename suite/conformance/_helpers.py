"""Shared pieces of the behaviour tests: request bodies, memoised exchanges, JWT surgery.

Held and burst streams live in ``suite.conformance._streams``.

Nothing here judges a server by itself except through ``suite.checks``; the tests decide.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import httpx
import pytest

from suite.checks import TargetBusy, disabled, expect, fail
from suite.http import Api
from suite.samples import PNG_DATA_URL
from suite.target import Target
from suite.token_segments import b64url_decode, b64url_encode

__all__ = [
    "BATCH",
    "CHAT",
    "EMBED",
    "LATE_ATTR",
    "MODELS",
    "PIPELINE",
    "PNG_DATA_URL",
    "Memo",
    "b64url_decode",
    "b64url_encode",
    "chat_body",
    "chat_completion",
    "cosine",
    "expect_feature",
    "expect_success",
    "first_tier",
    "json_object",
    "json_or_none",
    "late",
    "other_tier",
    "per_test_timeout_s",
    "slow_stream_body",
]

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
MODELS = "/v1/models"
BATCH = "/v1/batch"
PIPELINE = "/v1/pipeline"


#: Function attribute set by :func:`late`; the conftest moves such tests to the end of the run.
LATE_ATTR = "_conform42_late"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def late(func: F) -> F:
    """Run this test after all others (it waits for a token to expire or reads the session's log)."""
    setattr(func, LATE_ATTR, True)
    return func


def chat_body(
    model: str, content: str = "Say hello.", *, max_tokens: int | None = 8, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": content}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    body.update(extra)
    return body


def slow_stream_body(model: str) -> dict[str, Any]:
    """A stream that stays open for a while: a long answer asked for, a generous token cap."""
    return chat_body(
        model,
        "Write a very long story about a lighthouse keeper and the sea, at least 600 words.",
        max_tokens=400,
        stream=True,
    )


def first_tier(target: Target, order: Sequence[str] = ("free", "pro", "internal")) -> str:
    """The first tier of ``order`` with a key; the test is Disabled when none has one."""
    for tier in order:
        if target.has_key(tier):
            return tier
    disabled(f"no API key for any of the tiers {', '.join(order)}")


def other_tier(target: Target, tier: str) -> str:
    """A tier with another API key than ``tier``'s; Disabled when the target was given only one key."""
    for candidate in ("free", "pro", "internal"):
        if candidate != tier and target.has_key(candidate) and target.keys[candidate] != target.keys[tier]:
            return candidate
    disabled("needs API keys of two different tiers (a second --key-*)")


def json_or_none(response: httpx.Response) -> Any:
    """The decoded body, or None when it is not JSON (for checks that look at a body if there is one)."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def json_object(response: httpx.Response, what: str = "response body") -> dict[str, Any]:
    """The body as a JSON object, or a Fail."""
    body = json_or_none(response)
    expect(
        isinstance(body, dict),
        f"{what} is not a JSON object",
        expected="a JSON object",
        received=response.text[:200] if body is None else type(body).__name__,
        response=response,
    )
    assert isinstance(body, dict)
    return body


def expect_feature(target: Target, response: httpx.Response, feature: str) -> None:
    """A documented submission (valid input) answered 404/405 means the target lacks the feature.

    Only an unknown *model* could make such a request 404, so any other 404 or a 405 is absence. For the
    42ai profile (000 documents batch and pipeline) absence is a Fail; elsewhere the test is Disabled.
    """
    if response.status_code not in (404, 405):
        return
    body = json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("type") == "model_not_found":
        return
    if target.profile != "42ai":
        disabled(f"the target does not offer {feature} (optional outside the 42ai profile)")
    fail(
        f"the target does not offer {feature}, which the 42 AI document (000) documents",
        expected=f"{response.request.method} {response.request.url.path} implemented",
        received=f"HTTP {response.status_code} (the route or feature does not exist)",
        response=response,
    )


def expect_success(target: Target, response: httpx.Response, message: str) -> None:
    """The success status a MUST may ask for. 002 declares '200' (Successful Response) for the Fortytwo
    chat completions; 000 names no status code for any answer of the 42ai API, so there (and for any
    other Fortytwo operation) every 2xx is a success, as the OpenAI SDK 000 points to takes it. An
    exact 200 where 000 names none is SPEC-001's question (a SHOULD: 200 is what our 42ai spec declares)."""
    request = response.request
    chat = request.method == "POST" and request.url.path.rstrip("/").endswith(CHAT)
    if target.profile == "fortytwo" and chat:
        ok, wanted = response.status_code == 200, "HTTP 200 (002 declares it)"
    else:
        ok, wanted = response.is_success, "a 2xx status (200 expected; 000 names none)"
    expect(ok, message, expected=wanted, received=f"HTTP {response.status_code}", response=response)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors of one length (0.0 when either is all zeros)."""
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / norms if norms else 0.0


class Memo:
    """Session-wide memo of exchanges shared by several tests (one request, many checks).

    A failure while producing a value is remembered and raised again for every test that asks, so each
    of them reports it in its own call phase (a Fail, not a fixture Error).
    """

    def __init__(self) -> None:
        self._values: dict[str, tuple[bool, Any]] = {}
        self._lock = threading.RLock()

    def __call__(self, key: str, factory: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._values:
                try:
                    self._values[key] = (True, factory())
                except (KeyboardInterrupt, SystemExit, TargetBusy):
                    # A busy spell is this moment's, not the exchange's: the next test asks again.
                    raise
                except BaseException as exc:
                    self._values[key] = (False, exc)
            ok, value = self._values[key]
        if not ok:
            raise value
        result: T = value
        return result


# ------------------------------------------------------------------------------- shared exchanges
def chat_completion(api: Api, memo: Memo, target: Target, tier: str) -> tuple[httpx.Response, dict[str, Any]]:
    """The session's one ordinary non-streamed chat completion (checked 2xx, 200 on the Fortytwo
    profile (``expect_success``), and a JSON object)."""

    def fetch() -> tuple[httpx.Response, dict[str, Any]]:
        response = api.post(
            CHAT, chat_body(target.chat_model, "Say hello in one short sentence.", max_tokens=16), tier=tier
        )
        expect_success(target, response, "a plain chat completion was not answered with success")
        return response, json_object(response, "the chat completion")

    return memo(f"chat-{tier}", fetch)


def per_test_timeout_s(pytestconfig: pytest.Config) -> float:
    """The per-test timeout pytest-timeout enforces (its ``timeout`` ini), 0 when none is set."""
    try:
        return float(pytestconfig.getini("timeout") or 0)
    except (ValueError, TypeError):
        return 0.0
