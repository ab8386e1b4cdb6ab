"""Shared pieces of the behaviour tests: request bodies, memoised exchanges, held streams, JWT surgery.

Nothing here judges a server by itself except through ``suite.checks``; the tests decide.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from suite.checks import ConformanceFailure, disabled, expect, fail
from suite.http import Api
from suite.samples import PNG_DATA_URL
from suite.sse import SseReader
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
    "HeldStream",
    "Memo",
    "Probe",
    "StreamHold",
    "b64url_decode",
    "b64url_encode",
    "chat_body",
    "chat_completion",
    "cosine",
    "ends_stream",
    "expect_feature",
    "first_tier",
    "holding",
    "json_object",
    "json_or_none",
    "late",
    "other_tier",
    "probe_while_held",
    "slow_stream_body",
    "wait_admitted",
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
                except (KeyboardInterrupt, SystemExit):
                    raise
                except BaseException as exc:
                    self._values[key] = (False, exc)
            ok, value = self._values[key]
        if not ok:
            raise value
        result: T = value
        return result


# ------------------------------------------------------------------------------------------ limits
@dataclass
class HeldStream:
    """One stream held open by a :class:`StreamHold` thread."""

    status: int | None = None
    response: httpx.Response | None = None
    admitted_at: float | None = None
    #: When the stream ended by itself (finish_reason, [DONE] or EOF seen); None while open.
    ended_at: float | None = None
    content_events: int = 0
    error: BaseException | None = None
    settled: threading.Event = field(default_factory=threading.Event)


class StreamHold:
    """Hold ``n`` streaming chat completions of one tier open, each read by its own thread.

    Streams are opened one after another, each once the previous one sent its first event (so the
    server certainly admitted it). The threads keep reading (recording when a stream ends by itself)
    until the hold is released, then close their streams, which disconnects them.
    """

    def __init__(self, api: Api, tier: str, body: dict[str, Any], *, admit_deadline_s: float = 30.0) -> None:
        self.api = api
        self.tier = tier
        self.body = body
        self.admit_deadline_s = admit_deadline_s
        self.streams: list[HeldStream] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def open(self, count: int) -> None:
        for _ in range(count):
            held = self.try_open(self.admit_deadline_s)
            if not held.settled.is_set():
                fail(
                    "a streaming request sent no event in time",
                    expected=f"the first event within {self.admit_deadline_s:g} s",
                    received="nothing",
                )
            if held.error is not None:
                raise held.error
            if held.status != 200:
                return  # the caller judges the refusal

    def try_open(self, deadline_s: float) -> HeldStream:
        """Open one more stream and wait up to ``deadline_s`` for its first event or its refusal.

        Never fails: the caller reads ``settled``, ``status`` and ``error`` of the returned stream (which
        is held, and closed by ``release``, whatever happened).
        """
        held = HeldStream()
        thread = threading.Thread(
            target=self._run,
            args=(held, self.body),
            daemon=True,
            name=f"conform42-hold-{self.tier}-{len(self.streams)}",
        )
        self.streams.append(held)
        self._threads.append(thread)
        thread.start()
        held.settled.wait(max(0.0, deadline_s))
        return held

    def _run(self, held: HeldStream, body: dict[str, Any]) -> None:
        try:
            with self.api.stream("POST", CHAT, tier=self.tier, json=body) as response:
                held.status = response.status_code
                held.response = response
                if response.status_code != 200:
                    response.read()
                    return
                for event in SseReader(response, deadline_s=300.0):
                    if held.admitted_at is None:
                        held.admitted_at = event.arrived
                        held.settled.set()
                    elif ends_stream(event.data):
                        held.ended_at = held.ended_at or event.arrived
                    else:
                        held.content_events += 1
                    if self._stop.is_set():
                        return
                held.ended_at = held.ended_at or time.monotonic()
        except BaseException as exc:
            held.error = exc
        finally:
            held.settled.set()

    @property
    def admitted(self) -> list[HeldStream]:
        return [s for s in self.streams if s.status == 200 and s.admitted_at is not None]

    def open_after(self, moment: float, margin_s: float = 0.05) -> bool:
        """True when every admitted stream was still open ``margin_s`` after ``moment``."""
        return all(s.ended_at is None or s.ended_at > moment + margin_s for s in self.admitted)

    def wait_content(self, events: int, deadline_s: float = 10.0) -> None:
        """Wait until every admitted stream delivered ``events`` content events (or ended)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if all(s.content_events >= events or s.ended_at is not None for s in self.admitted):
                return
            time.sleep(0.005)

    def release(self, join_s: float = 10.0) -> None:
        self._stop.set()
        end = time.monotonic() + join_s
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))


def ends_stream(data: str) -> bool:
    """Whether an SSE data field ends a chat stream: [DONE], a finish_reason, or the usage chunk."""
    if data.strip() == "[DONE]":
        return True
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError:
        return False
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return (
        isinstance(choices, list)
        and any(isinstance(c, dict) and c.get("finish_reason") is not None for c in choices)
    ) or (isinstance(choices, list) and not choices)


@contextmanager
def holding(api: Api, tier: str, body: dict[str, Any], count: int) -> Iterator[StreamHold]:
    hold = StreamHold(api, tier, body)
    try:
        hold.open(count)
        yield hold
    finally:
        hold.release()


def wait_admitted(api: Api, tier: str, deadline_s: float = 10.0) -> httpx.Response:
    """Poll ``GET /v1/models`` until the key is admitted again (not 429); the last response."""
    end = time.monotonic() + deadline_s
    while True:
        response = api.get(MODELS, tier=tier)
        if response.status_code != 429 or time.monotonic() >= end:
            return response
        time.sleep(0.05)


@dataclass
class Probe:
    """The extra request sent while streams were held, and whether the observation is conclusive."""

    response: httpx.Response
    hold_admitted: int
    conclusive: bool
    #: True when ``response`` is the refusal of one of the held streams, not of the probe.
    held_refused: bool = False


def probe_while_held(
    api: Api,
    tier: str,
    body: dict[str, Any],
    count: int,
    send: Callable[[], httpx.Response],
    *,
    content_events: int = 0,
    attempts: int = 3,
) -> Probe:
    """Hold ``count`` streams of ``tier``, then ``send()`` one more request; repeat until conclusive.

    Conclusive means every held stream was admitted and still open when the probe's answer came, so a
    2xx answer then proves the limit was not enforced. Each attempt starts once the key is admitted.
    Refusals of held streams are returned as the probe (status != 200) for the caller to judge.
    """
    last: Probe | None = None
    for _ in range(attempts):
        wait_admitted(api, tier)
        with holding(api, tier, body, count) as hold:
            if len(hold.admitted) < count:
                refused = next((s for s in hold.streams if s.status != 200), None)
                if refused is not None and refused.response is not None:
                    return Probe(refused.response, len(hold.admitted), conclusive=False, held_refused=True)
                continue
            if content_events:
                hold.wait_content(content_events)
            response = send()
            received = time.monotonic()
            last = Probe(response, count, hold.open_after(received))
        if last.conclusive or last.response.status_code == 429:
            break
    wait_admitted(api, tier)
    if last is None:
        raise ConformanceFailure(
            "could not hold streams open",
            expected=f"{count} admitted streams",
            received="streams that ended before they could be held",
        )
    return last


# ------------------------------------------------------------------------------- shared exchanges
def chat_completion(api: Api, memo: Memo, target: Target, tier: str) -> tuple[httpx.Response, dict[str, Any]]:
    """The session's one ordinary non-streamed chat completion (checked 200 + JSON object)."""

    def fetch() -> tuple[httpx.Response, dict[str, Any]]:
        response = api.post(
            CHAT, chat_body(target.chat_model, "Say hello in one short sentence.", max_tokens=16), tier=tier
        )
        if response.status_code != 200:
            fail(
                "a plain chat completion was not answered 200",
                expected="HTTP 200",
                received=f"HTTP {response.status_code}",
                response=response,
            )
        return response, json_object(response, "the chat completion")

    return memo(f"chat-{tier}", fetch)
