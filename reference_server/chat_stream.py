"""A chat completion streamed to the client as server-sent events, straight from the engine's bytes.

``event_stream_response`` turns an engine stream into the response the chat route returns. Whatever
way the response ends (finished, failed, client gone, never started) the caller's ``release`` runs
at once and the engine stream is closed, so the concurrency slot and the KV reservation are never
held until garbage collection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from reference_server.errors import ApiError, envelope

__all__ = ["ClosingStreamingResponse", "aclose_stream", "event_stream_response"]

log = logging.getLogger(__name__)

_SSE_HEADERS = {"Cache-Control": "no-cache"}


async def aclose_stream(stream: AsyncIterator[bytes]) -> None:
    """Close ``stream`` now if it can be closed."""
    # The protocol promises an AsyncIterator; generators (all real engines) also need closing so their
    # own finally blocks (HTTP connections to vLLM) run now rather than at garbage collection.
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


class ClosingStreamingResponse(StreamingResponse):
    """Streams the events, closes its body iterator and runs ``on_close`` however the response ends.

    Starlette leaves a generator suspended at ``yield`` when a send fails or the client disconnects, and
    never starts it when the response dies before the first send; its finally (which frees the
    concurrency slot) would then wait for garbage collection or never run. Doing both here makes the
    release immediate and certain.

    The streaming itself replaces Starlette's: for ASGI 2.3 servers (uvicorn) that runs the stream and
    a disconnect listener in an anyio task group, a measurable cost before the first byte (see
    docs/benchmarks.md). The contract is the same with one plain asyncio task: a watcher waits
    for ``http.disconnect`` and cancels the streaming task, which takes that cancellation as the normal
    end of a response whose client left.
    """

    def __init__(
        self, content: AsyncIterator[bytes], on_close: Callable[[], None], source: AsyncIterator[bytes]
    ) -> None:
        """``source``: the engine stream ``content`` reads; closed too, as ``content`` may never start."""
        super().__init__(content, media_type="text/event-stream", headers=_SSE_HEADERS)
        self._content = content
        self._source = source
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            streaming: asyncio.Task[Any] | None = asyncio.current_task()
        except RuntimeError:  # no asyncio loop (another anyio backend)
            streaming = None
        if streaming is None:  # not under asyncio (never the case with uvicorn): Starlette's way
            try:
                await super().__call__(scope, receive, send)
            finally:
                await self._close()
            return
        client_gone = False
        finished = False

        async def watch() -> None:
            nonlocal client_gone
            try:
                while (await receive())["type"] != "http.disconnect":
                    pass
            except Exception:
                # Never seen with uvicorn; without this the failure would only surface at garbage
                # collection, and the stream would go on without disconnect detection.
                log.exception("waiting for the client's disconnect failed")
                return
            # Servers also send http.disconnect once the response is complete; only an earlier one
            # means the client left.
            if not finished:
                client_gone = True
                streaming.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            try:
                await send(
                    {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                )
                async for chunk in self.body_iterator:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                # No await between the last send and here, so the watcher cannot cancel us after this.
                finished = True
                watcher.cancel()
        except asyncio.CancelledError:
            # Only our own cancellation is swallowed; anyone else's (server shutdown), alone or on top
            # of ours, goes through.
            if not client_gone or streaming.uncancel() > 0:
                raise
        finally:
            await self._close()

    async def _close(self) -> None:
        self._on_close()
        with anyio.CancelScope(shield=True):
            await aclose_stream(self._content)
            # A generator that never started has no finally to run: close the engine stream itself.
            await aclose_stream(self._source)


async def event_stream_response(
    events: AsyncIterator[bytes], release: Callable[[], None]
) -> ClosingStreamingResponse:
    """The streaming response for ``events``; ``release`` (called again must do nothing) runs as soon
    as the response is over.

    Raises (after releasing) when the engine fails before its first item, so the caller still answers
    with a JSON error and its status.
    """
    try:
        # Pull the first item before answering: an engine error before any byte is sent (engine down,
        # request refused) must still be a JSON error with its status, not a broken 200 stream. A real
        # engine's first item is b"" (accepted, see engines/base.py): the headers then leave before the
        # first token exists.
        first = await anext(events)
    except BaseException as exc:
        release()
        with anyio.CancelScope(shield=True):
            await aclose_stream(events)
        if isinstance(exc, StopAsyncIteration):
            raise ApiError(500, "The engine ended the stream without any event", "internal_error") from None
        raise

    async def gen() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for event in events:
                yield event
        except Exception as exc:
            # Headers are gone already: the only way left to tell the client is an error event, which
            # OpenAI SDKs raise as APIError, instead of a silently truncated stream.
            log.exception("chat stream failed after its headers were sent")
            message = exc.message if isinstance(exc, ApiError) else "Internal server error"
            error_type = exc.error_type if isinstance(exc, ApiError) else "internal_error"
            yield b"data: " + json.dumps(envelope(message, error_type)).encode() + b"\n\n"
        finally:
            # Runs when the stream ends, fails or is closed on disconnect: the slot is held until then.
            release()
            with anyio.CancelScope(shield=True):
                await aclose_stream(events)

    return ClosingStreamingResponse(gen(), release, events)
