"""One non-streamed chat completion as plain text: what a batch task and a pipeline step both run.

The interactive route (routes/chat.py) does more (streams, images in messages, pass-through of
OpenAI members); background and chained work needs only model, messages and a token cap.
"""

from __future__ import annotations

from typing import Any

from reference_server.engines.base import ChatEngine
from reference_server.errors import ApiError

__all__ = ["complete_text", "kv_tokens_needed"]


def kv_tokens_needed(engine: ChatEngine, messages: list[dict[str, str]], max_tokens: int) -> int:
    """Prompt plus completion cap in tokens, or 400 when that does not fit the model's context."""
    prompt_tokens = engine.count_prompt_tokens(messages)
    if prompt_tokens + max_tokens > engine.max_model_len:
        raise ApiError(
            400,
            f"The messages use {prompt_tokens} tokens and max_tokens is {max_tokens}, more "
            f"than the model's context of {engine.max_model_len} tokens",
            "invalid_request_error",
        )
    return prompt_tokens + max_tokens


async def complete_text(
    engine: ChatEngine, model_id: str, messages: list[dict[str, str]], max_tokens: int
) -> str:
    """The assistant's text for ``messages``; engine failures propagate as ``ApiError``."""
    reply: dict[str, Any] = await engine.complete(
        {"model": model_id, "messages": messages, "max_tokens": max_tokens}
    )
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ApiError(
            500, "The inference engine sent an answer without a message", "internal_error"
        ) from None
    if not isinstance(content, str):
        raise ApiError(500, "The inference engine sent an answer without text content", "internal_error")
    return content
