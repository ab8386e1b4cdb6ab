"""POST /v1/chat/completions: admission checks in a fixed order, then the engine.

Order: auth (dependency, 401) -> JSON body (400/422) -> model exists / is a chat model / is open to
the tier (404 / 400 / 403) -> image parts only for a vision model (400) -> tier concurrency (429) ->
image descriptions (400 for a bad image) -> context length (400) -> KV-cache room (503) -> engine.
The checks that cost nothing come first; the concurrency slot is taken before the image work, so a
key cannot make the server decode images beyond its tier's concurrency. Everything after the slot is
taken runs under try/finally so the slot and the KV reservation are released on every exit path,
including a client that disconnects mid-stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from reference_server.auth import Caller, require_caller
from reference_server.errors import ApiError, envelope
from reference_server.images import describe_image
from reference_server.routes.models import resolve_model
from reference_server.schemas import ChatCompletionRequest, ImagePart, parse_body

if TYPE_CHECKING:
    from pathlib import Path

    from reference_server.app import Gateway

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter()

_SSE_HEADERS = {"Cache-Control": "no-cache"}


async def _flatten_content(parts: list[dict[str, Any]], image_dir: Path | None) -> str:
    """A list of content parts as the one string the engines take; images become descriptions."""
    texts: list[str] = []
    image_no = 0
    for part in parts:
        if part["type"] == "text":
            texts.append(part["text"])
            continue
        image_no += 1
        # Decoding and quantizing can take tens of ms for a large image: keep it off the event loop.
        description = await run_in_threadpool(describe_image, part["image_url"]["url"], image_dir)
        texts.append(f"[Image {image_no}: {description}]")
    return "\n".join(texts)


def _context_error(max_model_len: int, prompt_tokens: int, max_completion: int | None) -> ApiError:
    asked = f"max_tokens asks for {max_completion}" if max_completion else "no room is left for an answer"
    return ApiError(
        400,
        f"This model's maximum context length is {max_model_len} tokens; the messages use "
        f"{prompt_tokens} and {asked}. Shorten the messages or lower max_tokens",
        "invalid_request_error",
    )


def _has_image(req: ChatCompletionRequest) -> bool:
    return any(isinstance(part, ImagePart)
               for m in req.messages if not isinstance(m.content, str) for part in m.content)


async def _aclose(stream: AsyncIterator[bytes]) -> None:
    # The protocol promises an AsyncIterator; generators (all real engines) also need closing so their
    # own finally blocks (HTTP connections to vLLM) run now rather than at garbage collection.
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


class _ClosingStreamingResponse(StreamingResponse):
    """Streams the events, closes its body iterator and runs ``on_close`` however the response ends.

    Starlette leaves a generator suspended at ``yield`` when a send fails or the client disconnects, and
    never starts it when the response dies before the first send; its finally (which frees the
    concurrency slot) would then wait for garbage collection or never run. Doing both here makes the
    release immediate and certain.

    The streaming itself replaces Starlette's: for ASGI 2.3 servers (uvicorn) that runs the stream and
    a disconnect listener in an anyio task group, which cost about 0.25 ms before the first byte with
    the CPU caches cold from vLLM's work (measured on 2026-12-02). The contract is the same with one
    plain asyncio task: a watcher waits for ``http.disconnect`` and cancels the streaming task, which
    takes that cancellation as the normal end of a response whose client left.
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
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
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
            await _aclose(self._content)
            # A generator that never started has no finally to run: close the engine stream itself.
            await _aclose(self._source)


@router.post("/v1/chat/completions")
async def create_chat_completion(
    request: Request, caller: Annotated[Caller, Depends(require_caller)]
) -> Response:
    gateway: Gateway = request.app.state.gateway
    req = parse_body(await request.body(), request.headers.get("content-type"), ChatCompletionRequest)
    model = resolve_model(req.model, "chat", caller.tier)
    engine = gateway.chat

    if not model.vision and _has_image(req):
        raise ApiError(400, f"Model {model.id} does not accept images; use a vision model (42-vision)",
                       "invalid_request_error")
    body = req.model_dump(exclude_none=True)
    # One cap for the engine: max_completion_tokens is OpenAI's newer name and wins when both are sent.
    max_completion: int | None = body.pop("max_completion_tokens", None) or body.get("max_tokens")
    if max_completion is not None:
        body["max_tokens"] = max_completion
    if not req.stream:
        # OpenAI and vLLM refuse stream_options without stream; it is harmless, so drop it instead.
        body.pop("stream_options", None)

    # The slot is taken before any costly work (image decoding), so the tier limit also bounds that work.
    slot = gateway.limiter.try_acquire(caller.key_id, caller.tier)
    try:
        for message in body["messages"]:
            if not isinstance(message["content"], str):
                message["content"] = await _flatten_content(message["content"], gateway.config.image_dir)
        prompt_tokens = engine.count_prompt_tokens(body["messages"])
        room = engine.max_model_len - prompt_tokens
        if room <= 0 or (max_completion is not None and max_completion > room):
            raise _context_error(engine.max_model_len, prompt_tokens, max_completion)
        # Without a cap the engine may fill the whole context, so that is what must fit.
        reservation = gateway.kv.reserve(prompt_tokens + (max_completion or room))
    except BaseException:
        slot.release()
        raise

    def release() -> None:
        reservation.release()
        slot.release()

    if not req.stream:
        try:
            return JSONResponse(await engine.complete(body))
        finally:
            release()
    try:
        events = engine.stream(body)
    except BaseException:
        release()
        raise
    try:
        # Pull the first item before answering: an engine error before any byte is sent (engine down,
        # request refused) must still be a JSON error with its status, not a broken 200 stream. A real
        # engine's first item is b"" (accepted, see engines/base.py): the headers then leave before the
        # first token exists.
        first = await anext(events)
    except BaseException as exc:
        release()
        with anyio.CancelScope(shield=True):
            await _aclose(events)
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
                await _aclose(events)

    return _ClosingStreamingResponse(gen(), release, events)
