"""The chat route's streaming response at the ASGI level: it ends cleanly when the client leaves,
lets anyone else's cancellation through, and releases (on_close, body closed) on every path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest

from reference_server.chat_stream import ClosingStreamingResponse


class _Body:
    """An endless event source that records whether it was closed."""

    def __init__(self, delay_s: float, limit: int | None = None) -> None:
        self.delay_s, self.limit, self.closed, self.sent = delay_s, limit, False, 0

    async def events(self) -> AsyncIterator[bytes]:
        try:
            while self.limit is None or self.sent < self.limit:
                await asyncio.sleep(self.delay_s)
                self.sent += 1
                yield b"data: {}\n\n"
        finally:
            self.closed = True


def _run(
    body: _Body, disconnect_after_s: float | None, cancel_after_s: float | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"sent": [], "closes": 0, "outcome": "returned"}

    async def scenario() -> None:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            out["sent"].append(message)

        def on_close() -> None:
            out["closes"] += 1

        events = body.events()
        response = ClosingStreamingResponse(events, on_close, events)
        task = asyncio.create_task(response({"type": "http"}, receive, send))
        if disconnect_after_s is not None:
            asyncio.get_running_loop().call_later(disconnect_after_s, gone.set)
        if cancel_after_s is not None:
            asyncio.get_running_loop().call_later(cancel_after_s, task.cancel)
        try:
            await asyncio.wait_for(task, 5)
        except asyncio.CancelledError:
            out["outcome"] = "cancelled"
        # The server's own disconnect after a complete response must not count as the client leaving.
        gone.set()
        await asyncio.sleep(0.01)

    asyncio.run(scenario())
    return out


def test_a_complete_stream_sends_everything_once_and_releases():
    body = _Body(0.001, limit=3)
    out = _run(body, disconnect_after_s=None)
    kinds = [(m["type"], m.get("more_body")) for m in out["sent"]]
    assert kinds == [
        ("http.response.start", None),
        *[("http.response.body", True)] * 3,
        ("http.response.body", False),
    ]
    assert out["outcome"] == "returned" and out["closes"] == 1 and body.closed


def test_a_client_that_leaves_ends_the_stream_at_once_without_an_error():
    body = _Body(0.02)  # endless: only the disconnect can end it
    out = _run(body, disconnect_after_s=0.1)
    assert out["outcome"] == "returned"
    assert out["closes"] == 1 and body.closed
    assert out["sent"][-1].get("more_body") is True  # never completed: the client was gone
    assert body.sent < 20


@pytest.mark.parametrize("with_disconnect", [False, True], ids=["shutdown", "shutdown after the client left"])
def test_a_cancellation_from_elsewhere_goes_through_and_still_releases(with_disconnect):
    body = _Body(0.02)
    out = _run(body, disconnect_after_s=0.1 if with_disconnect else None, cancel_after_s=0.1)
    if not with_disconnect:
        assert out["outcome"] == "cancelled"
    assert out["closes"] == 1 and body.closed


def test_an_engine_stream_is_closed_even_when_the_response_dies_before_reading_it():
    body = _Body(0.001)
    closes: list[str] = []

    async def scenario() -> None:
        source = body.events()
        await anext(source)  # the route pulls the first item before it answers

        async def content() -> AsyncIterator[bytes]:
            async for event in source:
                yield event

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(10)
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            raise OSError("connection reset")  # the very first send fails

        response = ClosingStreamingResponse(content(), lambda: closes.append("slot"), source)
        with pytest.raises(OSError):
            await response({"type": "http"}, receive, send)

    asyncio.run(scenario())
    assert closes == ["slot"] and body.closed
