"""KV-cache room: 503 + Retry-After 30 when the KV cache is filled on purpose (internal key, no
concurrency limit) and whenever one is seen during the session.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from suite.checks import expect_retry_after
from suite.conformance._helpers import CHAT, chat_body, late
from suite.conformance._streams import StreamHold
from suite.conformance.conftest import ResponseLog
from suite.http import Api
from suite.markers import requirement
from suite.target import Target

#: The KV-cache test (LIMIT-011): the completion cap asked for first (near a 2048-token context, so
#: about 23 held streams fill the reference server's 46,592-token cache), how many streams it holds at
#: most, how long it may take to open them, and how often it may shrink the cap for a smaller context.
KV_MAX_TOKENS = 2000
KV_STREAM_CAP = 40
KV_DEADLINE_S = 20.0
KV_SHRINKS = 4
#: After the held streams are closed: how long the target may take to give their KV room back.
KV_RECOVERY_S = 10.0
_CONTEXT_HINT = re.compile(r"maximum context length is (\d+)", re.IGNORECASE)
#: A 503 body that gives 000's cause, "Insufficient GPU memory": memory (GPU, VRAM, out of memory), the
#: KV cache, or capacity (the words servers use: "KV cache is full", "insufficient capacity").
MEMORY_CAUSE = re.compile(r"memory|vram|\bkv\b|kv[ _-]?cache|capacity|\boom\b", re.IGNORECASE)
#: "the messages use 12" (reference server), "(12 in the messages, ...)" (vLLM, OpenAI).
_PROMPT_HINT = re.compile(r"messages use (\d+)|(\d+) (?:tokens )?in the messages", re.IGNORECASE)


@pytest.fixture(autouse=True)
def _judging_503(api: Api) -> Iterator[None]:
    """These tests provoke and judge 503s themselves: the client's patience rule is off."""
    with api.impatient():
        yield


def _kv_body(model: str, max_tokens: int) -> dict[str, Any]:
    return chat_body(model, "Count from one to one thousand in words.", max_tokens=max_tokens, stream=True)


def _shrunk(response: httpx.Response | None, max_tokens: int) -> int | None:
    """A smaller completion cap after a 400/422 that may be about the context length: what the error's
    hint leaves room for when it names the context size, else half. None when nothing sensible is left."""
    text = response.text if response is not None else ""
    context = _CONTEXT_HINT.search(text)
    if context:
        prompt = _PROMPT_HINT.search(text)
        used = int(next(g for g in prompt.groups() if g)) if prompt else 64
        smaller = int(context.group(1)) - used - 8  # a few tokens' margin for the count's rounding
    else:
        smaller = max_tokens // 2
    return smaller if 16 <= smaller < max_tokens else None


def _await_kv_room(api: Api, body: dict[str, Any]) -> None:
    """After the held streams were closed, wait (bounded) until a request of the same size is admitted
    again, so the tests after this one do not meet the KV room still taken. Never raises."""
    end = time.monotonic() + KV_RECOVERY_S
    while time.monotonic() < end:
        try:
            with api.stream("POST", CHAT, tier="internal", json=body) as response:
                if response.status_code != 503:
                    return  # closed at once: at most a token or two generated
        except Exception:
            return
        time.sleep(0.2)


@requirement("LIMIT-011")
def test_kv_cache_exhaustion_503_has_retry_after_30(api: Api, target: Target) -> None:
    """The internal key (no concurrency limit) opens long streaming requests one at a time, each held
    once its first event came, until the target answers 503 for lack of KV-cache room, or the cap or the
    deadline is reached (then Skip: a target with more room than that is not at fault). A cap too large
    for the model's context (400/422) is shrunk first. Every stream is closed at the end."""
    target.key("internal")
    max_tokens = KV_MAX_TOKENS
    hold = StreamHold(api, "internal", _kv_body(target.chat_model, max_tokens))
    deadline = time.monotonic() + KV_DEADLINE_S
    refused: httpx.Response | None = None
    shrinks = 0
    try:
        while len(hold.streams) - shrinks < KV_STREAM_CAP and time.monotonic() < deadline:
            held = hold.try_open(deadline - time.monotonic())
            if not held.settled.is_set():
                break  # no first event before the deadline: judged as "no 503 provoked" below
            if held.error is not None:
                raise held.error
            if held.status == 200:
                continue
            if held.status == 503:
                refused = held.response
                break
            smaller = _shrunk(held.response, max_tokens) if held.status in (400, 422) else None
            if smaller is not None and not hold.admitted and shrinks < KV_SHRINKS:
                shrinks += 1
                max_tokens = smaller
                hold.body = _kv_body(target.chat_model, max_tokens)
                continue
            pytest.skip(
                f"no 503 provoked: stream {len(hold.streams)} (max_tokens {max_tokens}) was answered "
                f"HTTP {held.status} after {len(hold.admitted)} were admitted"
            )
    finally:
        hold.release()
        if hold.admitted or refused is not None:
            _await_kv_room(api, hold.body)
    if refused is None:
        pytest.skip(
            f"no 503 provoked with {len(hold.admitted)} streams of max_tokens {max_tokens} "
            f"(cap {KV_STREAM_CAP} streams, {KV_DEADLINE_S:g} s)"
        )
    # The envelope of a 503 is ERR-002/ERR-012's (SHOULD); this MUST is about Retry-After only.
    expect_retry_after(refused, 30)


def memory_cause(response: httpx.Response) -> bool:
    """Whether a 503's body gives 000's cause, "Insufficient GPU memory": it names memory, the KV cache
    or capacity (``MEMORY_CAUSE``). A 503 for another reason (a proxy without an upstream, maintenance) is
    not LIMIT-011's to judge."""
    try:
        text = response.text
    except (httpx.ResponseNotRead, httpx.StreamError):
        return False
    return MEMORY_CAUSE.search(text) is not None


@late
@requirement("LIMIT-011")
def test_503_retry_after_is_30(response_log: ResponseLog) -> None:
    """Every 503 for insufficient GPU memory the suite's client saw during the run is checked: one whose
    body names memory, the KV cache or capacity (the KV test above provokes one where it can and judges it
    itself). 503s for other causes are not this requirement's. Skip (not Pass) when none was seen."""
    seen = response_log.with_status(503)
    judged = [r for r in seen if memory_cause(r)]
    if not judged:
        others = f" ({len(seen)} 503s for other causes were not judged)" if seen else ""
        pytest.skip(f"no 503 for insufficient GPU memory was seen in this session{others}")
    for response in judged:
        expect_retry_after(response, 30)
