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

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from reference_server.chat_stream import event_stream_response
from reference_server.errors import ApiError
from reference_server.gateway import CallerDep, GatewayDep
from reference_server.images import describe_image
from reference_server.models import resolve_model
from reference_server.schemas import ChatCompletionRequest, ImagePart, parse_body

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["router"]

router = APIRouter()


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
    return any(
        isinstance(part, ImagePart)
        for m in req.messages
        if not isinstance(m.content, str)
        for part in m.content
    )


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request, gateway: GatewayDep, caller: CallerDep) -> Response:
    req = parse_body(await request.body(), request.headers.get("content-type"), ChatCompletionRequest)
    model = resolve_model(req.model, "chat", caller.tier)
    engine = gateway.chat

    if not model.vision and _has_image(req):
        raise ApiError(
            400,
            f"Model {model.id} does not accept images; use a vision model (42-vision)",
            "invalid_request_error",
        )
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
    return await event_stream_response(events, release)
