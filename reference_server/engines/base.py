"""The narrow engine interface: the gateway needs only these methods.

Bodies are OpenAI-shaped JSON objects whose ``model`` is already a 42 model ID the caller may use;
engines know nothing of tiers, keys or limits. ``stream`` yields complete SSE events as bytes
(``b"data: {...}\\n\\n"``, the last one ``b"data: [DONE]\\n\\n"``) so a real engine's stream can be
passed through chunk by chunk without re-encoding. A stream may begin with one empty item, ``b""``,
meaning "accepted": the engine has taken the request, its first event will follow. The gateway then
sends its response headers at once, so a client has read them before the first token is due, as with
vLLM itself, instead of reading headers and first token together when every microsecond counts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

__all__ = ["ChatEngine", "EmbedEngine"]


class ChatEngine(Protocol):
    #: Shown in logs and, for test doubles, in ``system_fingerprint``.
    name: str
    #: KV-cache capacity in tokens, used for 503 admission; None when unknown (no 503 check).
    kv_budget_tokens: int | None
    #: The longest context the model takes (prompt + completion).
    max_model_len: int

    def count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int: ...

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class EmbedEngine(Protocol):
    name: str

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...
