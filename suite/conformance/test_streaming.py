"""Streamed chat completions: SSE framing, chunk shape and order, the terminator, usage on request.

Two streams are read once per session (without and with ``stream_options.include_usage``) through
``suite.sse``, which bounds every read in time, events and bytes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from suite.checks import expect, expect_json
from suite.conformance._helpers import CHAT, Memo, chat_body
from suite.http import Api
from suite.markers import requirement
from suite.sse import SseTranscript, read_stream
from suite.target import Target

FINISH_REASONS = ("stop", "length", "content_filter")
#: The completion cap of the session's two streams.
STREAM_MAX_TOKENS = 16


def stream_deadline(api: Api, target: Target, max_tokens: int = STREAM_MAX_TOKENS) -> float:
    """How long reading a stream of ``max_tokens`` may take: what the target's measured speed gives (the
    session's ``pace`` fixture sets ``api.pace``; ``suite.pace``), never less than the request timeout."""
    return api.pace.deadline(max_tokens) if api.pace is not None else target.timeout


def transcript(
    api: Api, memo: Memo, target: Target, tier: str, *, include_usage: bool = False
) -> SseTranscript:
    def fetch() -> SseTranscript:
        extra: dict[str, Any] = {"stream": True}
        if include_usage:
            extra["stream_options"] = {"include_usage": True}
        body = chat_body(
            target.chat_model, "Tell me a story in two sentences.", max_tokens=STREAM_MAX_TOKENS, **extra
        )
        with api.stream("POST", CHAT, tier=tier, json=body) as response:
            return read_stream(response, deadline_s=stream_deadline(api, target))

    return memo(f"stream-{tier}-{include_usage}", fetch)


def chunks(t: SseTranscript) -> list[dict[str, Any]]:
    payloads = t.payloads()
    for number, payload in enumerate(payloads, start=1):
        expect(
            isinstance(payload, dict),
            f"streamed event {number} is not a JSON object",
            expected="a JSON object per event",
            received=json.dumps(payload)[:200],
            response=t.response,
        )
    return payloads


def content_chunks(t: SseTranscript) -> list[dict[str, Any]]:
    """Chunks with a choice (the usage-only chunk of include_usage has none)."""
    return [c for c in chunks(t) if c.get("choices")]


def _delta(chunk: dict[str, Any]) -> Any:
    choice = chunk["choices"][0] if isinstance(chunk.get("choices"), list) and chunk["choices"] else None
    return choice.get("delta") if isinstance(choice, dict) else None


@requirement("STREAM-001")
def test_stream_is_200_event_stream(api: Api, memo: Memo, target: Target, tier: str) -> None:
    transcript(api, memo, target, tier)


@requirement("STREAM-002")
def test_42ai_stream_is_200_event_stream(api: Api, memo: Memo, target: Target, tier: str) -> None:
    transcript(api, memo, target, tier)


@requirement("STREAM-003")
def test_every_chunk_has_a_delta(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier)
    for number, chunk in enumerate(chunks(t), start=1):
        delta = _delta(chunk)
        ok = isinstance(delta, dict) and (
            delta.get("content") is None or isinstance(delta.get("content"), str)
        )
        expect(
            ok,
            f"streamed chunk {number} has no readable choices[0].delta",
            expected="choices[0].delta: an object whose content is a string, null or absent",
            received=json.dumps(chunk)[:200],
            response=t.response,
        )


@requirement("STREAM-004")
def test_events_are_single_data_lines(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier)
    odd = [e for e in t.events + t.after_done if e.data_lines != 1 or e.other_fields]
    problems = [f"{len(odd)} event(s) with several data lines or other fields"] if odd else []
    if t.unterminated:
        problems.append("the stream ended inside an event (no closing blank line)")
    if t.stray_lines:
        problems.append(f"non-SSE lines: {t.stray_lines[:3]}")
    expect(
        not problems,
        "the stream is not framed as one data: line per event",
        expected="data: <JSON> lines separated by blank lines",
        received="; ".join(problems),
        response=t.response,
    )


@requirement("STREAM-005")
def test_chunks_share_object_and_id(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier)
    cs = chunks(t)
    objects = {c.get("object") for c in cs}
    ids = {c.get("id") for c in cs}
    expect(
        objects == {"chat.completion.chunk"} and len(ids) == 1 and all(isinstance(i, str) for i in ids),
        "streamed chunks differ in object or id",
        expected='object "chat.completion.chunk" and one id on every chunk',
        received=f"objects {sorted(map(str, objects))}, ids {sorted(map(str, ids))[:3]}",
        response=t.response,
    )


@requirement("STREAM-006")
def test_first_chunk_carries_assistant_role(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier)
    cs = chunks(t)
    first = _delta(cs[0]) if cs else None
    expect(
        isinstance(first, dict) and first.get("role") == "assistant",
        "the first streamed chunk does not carry the assistant role",
        expected='choices[0].delta.role == "assistant" in the first chunk',
        received=json.dumps(cs[0])[:200] if cs else "no chunks",
        response=t.response,
    )


@requirement("STREAM-007")
def test_exactly_one_finish_reason_last(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier)
    cs = content_chunks(t)
    finishing = [i for i, c in enumerate(cs) if c["choices"][0].get("finish_reason") is not None]
    expect(
        len(finishing) == 1,
        "the stream does not carry exactly one finish_reason",
        expected="1 chunk with a non-null finish_reason",
        received=f"{len(finishing)}",
        response=t.response,
    )
    at = finishing[0]
    reason = cs[at]["choices"][0]["finish_reason"]
    expect(
        reason in FINISH_REASONS,
        "the stream's finish_reason is outside the documented set",
        expected=f"one of {FINISH_REASONS}",
        received=repr(reason),
        response=t.response,
    )
    late_content = [c for c in cs[at + 1 :] if (_delta(c) or {}).get("content")]
    expect(
        not late_content,
        "content was streamed after the finish_reason",
        expected="no content after the finishing chunk",
        received=f"{len(late_content)} chunk(s)",
        response=t.response,
    )


@requirement("STREAM-008")
def test_done_is_last_event(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier)
    expect(
        t.done_seen and t.events[-1].is_done,
        "the stream does not end with data: [DONE]",
        expected="data: [DONE] as the last event",
        received=f"last event {t.events[-1].data[:80]!r}" if t.events else "no events",
        response=t.response,
    )
    expect(
        not t.after_done and t.closed,
        "the stream went on after data: [DONE]",
        expected="nothing after [DONE], then the end of the stream",
        received=f"{len(t.after_done)} event(s) after [DONE]"
        + ("" if t.closed else "; the stream stayed open"),
        response=t.response,
    )


@requirement("STREAM-009")
def test_no_usage_unless_requested(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier)
    with_usage = [c for c in chunks(t) if c.get("usage") is not None]
    expect(
        not with_usage,
        "a stream without stream_options.include_usage carries usage",
        expected="no chunk with a non-null usage",
        received=json.dumps(with_usage[0])[:200] if with_usage else "",
        response=t.response,
    )


@requirement("STREAM-010")
def test_usage_chunk_on_request(api: Api, memo: Memo, target: Target, tier: str) -> None:
    t = transcript(api, memo, target, tier, include_usage=True)
    cs = chunks(t)
    last = cs[-1] if cs else {}
    usage = last.get("usage")
    expect(
        last.get("choices") == [] and isinstance(usage, dict),
        "with include_usage the last chunk is not the usage chunk",
        expected='last chunk before [DONE]: "choices": [] and a usage object',
        received=json.dumps(last)[:200],
        response=t.response,
    )
    assert isinstance(usage, dict)
    counts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")]
    prompt, completion, total = counts
    expect(
        isinstance(prompt, int)
        and isinstance(completion, int)
        and isinstance(total, int)
        and total == prompt + completion,
        "the streamed usage does not add up",
        expected="integer counts with total_tokens == prompt_tokens + completion_tokens",
        received=json.dumps(usage),
        response=t.response,
    )


def _reply(t: SseTranscript) -> str:
    return "".join(str((_delta(c) or {}).get("content") or "") for c in content_chunks(t))


def _finish_reasons(t: SseTranscript) -> list[Any]:
    return [
        c["choices"][0].get("finish_reason")
        for c in content_chunks(t)
        if isinstance(c["choices"][0], dict) and c["choices"][0].get("finish_reason") is not None
    ]


@requirement("STREAM-011")
def test_deltas_concatenate_to_reply(api: Api, memo: Memo, target: Target, tier: str) -> None:
    """The reply is checked for shape (a non-empty string from the deltas), not for its words. A stream
    cut off by its token cap (finish_reason "length") may carry no visible text: a reasoning model
    behind a reasoning parser can spend the cap on hidden reasoning, which judges the model, not the
    API, so that case passes."""
    t = transcript(api, memo, target, tier)
    reply = _reply(t)
    if reply.strip() == "" and "length" in _finish_reasons(t):
        return
    expect(
        reply.strip() != "",
        "the streamed deltas concatenate to an empty reply",
        expected='non-empty text from delta.content (or finish_reason "length")',
        received=f"{reply!r}, finish_reasons {_finish_reasons(t)}",
        response=t.response,
    )


def _failing_stream(api: Api, target: Target, tier: str, case: str) -> httpx.Response:
    body: dict[str, Any] = chat_body(target.chat_model, max_tokens=8, stream=True)
    headers: dict[str, str] = {}
    use_tier: str | None = tier
    if case == "bad-credentials":
        use_tier, headers = None, {"Authorization": f"Bearer invalid-{uuid.uuid4().hex}"}
    elif case == "unknown-model":
        body["model"] = f"conform42-no-such-model-{uuid.uuid4().hex[:8]}"
    else:
        body["messages"] = "not a list"
    with api.stream("POST", CHAT, tier=use_tier, json=body, headers=headers) as response:
        response.read()
        return response


@requirement("STREAM-012")
@pytest.mark.parametrize("case", ["bad-credentials", "unknown-model", "invalid-body"])
def test_stream_request_failing_early_is_json_error(api: Api, target: Target, tier: str, case: str) -> None:
    response = _failing_stream(api, target, tier, case)
    content_type = response.headers.get("content-type", "")
    expect(
        response.status_code >= 400 and "text/event-stream" not in content_type,
        f"a stream request with {case.replace('-', ' ')} was answered as a stream",
        expected="its error status (4xx) with a JSON body",
        received=f"HTTP {response.status_code}, Content-Type: {content_type}",
        response=response,
    )
    body = expect_json(response)
    expect(
        isinstance(body, dict) and ("error" in body or "detail" in body),
        "the early stream failure has no JSON error body",
        expected='{"error": {...}} (or a 422 {"detail": [...]})',
        received=json.dumps(body)[:200],
        response=response,
    )
