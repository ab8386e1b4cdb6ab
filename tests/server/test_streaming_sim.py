"""Streamed chat completions over the sim engine (STREAM-*)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

from fastapi.testclient import TestClient

from reference_server.config import ServerConfig
from reference_server.engines.sim import SimChatEngine
from reference_server.errors import ApiError
from reference_server.gateway import gateway_of

URL = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Tell me a story about a lighthouse."}]


def stream(client, headers, **body):
    payload = {"model": "42-logic", "messages": HELLO, "stream": True, **body}
    return client.post(URL, headers=headers, json=payload)


def events(response) -> list[str]:
    """The data payloads of the SSE body, in order (asserting the framing on the way)."""
    text = response.text
    assert text.endswith("\n\n")
    out = []
    for event in text[:-2].split("\n\n"):
        assert event.startswith("data: ") and "\n" not in event, event
        out.append(event[len("data: ") :])
    return out


def chunks(response) -> list[dict[str, Any]]:
    return [json.loads(e) for e in events(response) if e != "[DONE]"]


def test_stream_answers_text_event_stream(client, headers_for):
    response = stream(client, headers_for("free"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")


def test_first_chunk_carries_the_assistant_role(client, headers_for):
    first = chunks(stream(client, headers_for("free")))[0]
    assert first["choices"][0]["delta"]["role"] == "assistant"


def test_chunks_share_one_id_and_object(client, headers_for):
    parsed = chunks(stream(client, headers_for("free")))
    assert {c["id"] for c in parsed} == {parsed[0]["id"]}
    assert parsed[0]["id"].startswith("chatcmpl-")
    assert {c["object"] for c in parsed} == {"chat.completion.chunk"}
    assert {c["model"] for c in parsed} == {"42-logic"}


def test_exactly_one_finish_reason_and_no_content_after_it(client, headers_for):
    parsed = chunks(stream(client, headers_for("free")))
    finishing = [i for i, c in enumerate(parsed) if c["choices"] and c["choices"][0].get("finish_reason")]
    assert len(finishing) == 1
    assert parsed[finishing[0]]["choices"][0]["finish_reason"] in ("stop", "length", "content_filter")
    after = parsed[finishing[0] + 1 :]
    assert not any(c["choices"] and c["choices"][0]["delta"].get("content") for c in after)


def test_done_is_the_last_event(client, headers_for):
    all_events = events(stream(client, headers_for("free")))
    assert all_events[-1] == "[DONE]"
    assert all_events.count("[DONE]") == 1


def test_no_usage_unless_requested(client, headers_for):
    parsed = chunks(stream(client, headers_for("free")))
    assert all(c.get("usage") is None for c in parsed)
    assert all(c["choices"] for c in parsed)


def test_include_usage_adds_a_final_usage_chunk_with_empty_choices(client, headers_for):
    parsed = chunks(stream(client, headers_for("free"), stream_options={"include_usage": True}))
    last = parsed[-1]
    assert last["choices"] == []
    usage = last["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert all(c.get("usage") is None for c in parsed[:-1])


def test_deltas_concatenate_to_the_non_stream_content(client, headers_for):
    headers = headers_for("internal")
    parsed = chunks(stream(client, headers))
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in parsed if c["choices"])
    whole = client.post(URL, headers=headers, json={"model": "42-logic", "messages": HELLO}).json()
    assert streamed and streamed == whole["choices"][0]["message"]["content"]


def test_streamed_usage_matches_the_token_cap(client, headers_for):
    parsed = chunks(stream(client, headers_for("free"), max_tokens=2, stream_options={"include_usage": True}))
    assert parsed[-1]["usage"]["completion_tokens"] == 2
    assert [c["choices"][0]["finish_reason"] for c in parsed if c["choices"]][-1] == "length"


class _RefusingEngine(SimChatEngine):
    """Fails before its first event, as an engine that is down or rejects the request would."""

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        raise ApiError(400, "engine refused the request")
        yield b""  # pragma: no cover - makes this an async generator


class _BreakingEngine(SimChatEngine):
    """Fails after its first event."""

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        agen = cast(AsyncGenerator[bytes, None], super().stream(body))
        yield await anext(agen)
        await agen.aclose()
        raise RuntimeError("engine died mid-stream")


def test_engine_error_before_first_event_is_a_json_error(make_app, token_headers):
    app = make_app(ServerConfig(), chat=_RefusingEngine())
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = token_headers(client, "free")
        response = stream(client, headers)
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["error"]["type"] == "invalid_request_error"
        # The refused stream gave its slot back: the free key's next request is admitted.
        assert gateway_of(app).kv.reserved == 0
        follow_up = client.post(URL, headers=headers, json={"model": "42-logic", "messages": HELLO})
        assert follow_up.status_code == 200


def test_engine_error_mid_stream_ends_with_an_error_event(make_app, token_headers):
    app = make_app(ServerConfig(), chat=_BreakingEngine())
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = token_headers(client, "free")
        response = stream(client, headers)
        assert response.status_code == 200
        last = json.loads(events(response)[-1])
        assert last["error"]["type"] == "internal_error"
        assert gateway_of(app).kv.reserved == 0
        assert stream(client, headers).status_code == 200  # the slot was released
