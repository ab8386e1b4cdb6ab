"""suite.sse: framing records, [DONE] handling, and bounded reading of endless or oversized streams."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from suite.checks import ConformanceFailure
from suite.sse import read_stream


def _stream(body: bytes, content_type: str = "text/event-stream") -> httpx.Response:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": content_type}, content=body)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return client.send(client.build_request("POST", "http://target.invalid/v1/chat/completions"), stream=True)


def test_reads_events_and_done():
    t = read_stream(_stream(b'data: {"a": 1}\n\ndata: {"a": 2}\r\n\r\ndata: [DONE]\n\n'))
    assert [e.data for e in t.events] == ['{"a": 1}', '{"a": 2}', "[DONE]"]
    assert t.done_seen and t.closed and not t.after_done and not t.unterminated
    assert t.payloads() == [{"a": 1}, {"a": 2}]
    assert all(e.arrived >= t.started for e in t.events)


def test_records_framing_deviations():
    t = read_stream(_stream(b"event: x\ndata: {}\ndata: {}\n\n: comment\nnonsense\ndata: [DONE]\n\ndata: {}"))
    assert t.events[0].data_lines == 2 and t.events[0].other_fields == ("event",)
    assert t.stray_lines == ["nonsense"]
    assert len(t.after_done) == 1 and t.unterminated


def test_non_json_chunk_fails_with_its_number():
    t = read_stream(_stream(b"data: {}\n\ndata: oops\n\ndata: [DONE]\n\n"))
    with pytest.raises(ConformanceFailure, match="streamed event 2 is not JSON"):
        t.payloads()


def test_wrong_content_type_fails():
    with pytest.raises(ConformanceFailure, match="not a 200 event stream"):
        read_stream(_stream(b"{}", content_type="application/json"))


def test_event_cap_bounds_an_endless_stream():
    with pytest.raises(ConformanceFailure, match="event count"):
        read_stream(_stream(b"data: {}\n\n" * 50), max_events=10)


def test_byte_cap_bounds_a_flood():
    with pytest.raises(ConformanceFailure, match="size"):
        read_stream(_stream(b"data: " + b"x" * 5000 + b"\n\n"), max_bytes=1000)


def test_deadline_bounds_a_slow_stream():
    def slow() -> Iterator[bytes]:
        while True:
            yield b"data: {}\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=slow())

    client = httpx.Client(transport=httpx.MockTransport(handler))
    response = client.send(client.build_request("GET", "http://target.invalid/"), stream=True)
    with pytest.raises(ConformanceFailure, match="time"):
        read_stream(response, deadline_s=0.2, max_events=10**9, max_bytes=10**12)
