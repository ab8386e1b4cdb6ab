"""The sim engines: an in-process, deterministic TEST DOUBLE for the chat and embedding engines.

Nothing here is a language model. The "answer" is a word sequence drawn from a fixed vocabulary with a
random generator seeded by a hash of the messages, so the same prompt always yields the same text and
the tests of the gateway (limits, streaming framing, usage accounting, errors) run in milliseconds
without vLLM. Every chat answer says what it is in ``system_fingerprint`` so a report made against the
sim engine can never be mistaken for one made against a model.

Token counts are exact under one documented tokenizer, so usage assertions can be precise:

* a text's tokens are its whitespace-separated words (``str.split()``);
* a prompt costs the words of every message's content plus :data:`MESSAGE_OVERHEAD_TOKENS` per message
  (standing in for the role and separator tokens of a real chat template);
* every generated word is one completion token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import random
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

__all__ = [
    "DEFAULT_ANSWER_TOKENS",
    "EMBED_DIM",
    "MESSAGE_OVERHEAD_TOKENS",
    "SYSTEM_FINGERPRINT",
    "SimChatEngine",
    "SimEmbedEngine",
    "count_text_tokens",
]

log = logging.getLogger(__name__)

SYSTEM_FINGERPRINT = "conform42-sim-test-double"
MESSAGE_OVERHEAD_TOKENS = 3
#: Length of the sim's "natural" answer: a smaller token limit cuts it (finish_reason "length").
DEFAULT_ANSWER_TOKENS = 16
EMBED_DIM = 384

# Plain lowercase words only, so a whitespace split of the answer gives back exactly its tokens.
_VOCAB: tuple[str, ...] = (
    "the",
    "signal",
    "answer",
    "swarm",
    "model",
    "token",
    "stream",
    "light",
    "river",
    "stone",
    "quiet",
    "bright",
    "forty",
    "two",
    "logic",
    "vector",
    "garden",
    "window",
    "orbit",
    "paper",
    "north",
    "amber",
    "circle",
    "echo",
    "field",
    "harbor",
    "index",
    "lantern",
    "meadow",
    "number",
)


_AT_LEAST_WORDS = re.compile(r"at least (\d{1,5}) words", re.IGNORECASE)


def count_text_tokens(text: str) -> int:
    """Tokens of a text under the sim tokenizer: its whitespace-separated words."""
    return len(text.split())


def _content_text(content: Any) -> str:
    # The gateway always sends plain strings; a list of parts is tolerated so that a direct caller of
    # the engine gets a count instead of a crash (image parts count as nothing).
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _chunk_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class SimChatEngine:
    """Deterministic chat test double; see the module docstring for the tokenizer."""

    name = "sim"

    def __init__(
        self,
        token_delay_s: float = 0.0,
        kv_budget_tokens: int | None = None,
        max_model_len: int = 2048,
        answer_tokens: int = DEFAULT_ANSWER_TOKENS,
    ) -> None:
        self.token_delay_s = token_delay_s
        self.kv_budget_tokens = kv_budget_tokens
        self.max_model_len = max_model_len
        self.answer_tokens = answer_tokens
        log.warning("sim engine: deterministic test double, not a language model")

    def count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        return sum(
            count_text_tokens(_content_text(m.get("content"))) + MESSAGE_OVERHEAD_TOKENS for m in messages
        )

    def _plan(self, body: dict[str, Any]) -> tuple[list[str], str, int]:
        """The answer's words, its finish_reason and the prompt's token count."""
        messages: list[dict[str, Any]] = body.get("messages") or []
        prompt_tokens = self.count_prompt_tokens(messages)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is None:
            # Like a real engine without a cap: whatever room the context leaves.
            limit = max(0, self.max_model_len - prompt_tokens)
        natural = self._natural_length(messages)
        n = min(natural, int(limit))
        seed = hashlib.sha256(
            json.dumps([[m.get("role"), _content_text(m.get("content"))] for m in messages]).encode()
        ).digest()
        rng = random.Random(int.from_bytes(seed[:8], "big"))
        # Drawing the full answer and slicing keeps a capped answer a prefix of the uncapped one.
        words = [rng.choice(_VOCAB) for _ in range(natural)][:n]
        return words, ("length" if n < natural else "stop"), prompt_tokens

    def _natural_length(self, messages: list[dict[str, Any]]) -> int:
        """``answer_tokens``, or N when the last message asks for "at least N words": a real model asked
        for a long text writes one, so clients that need a long stream (the suite's concurrency tests)
        get one from the test double too."""
        last_message = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        last = _content_text(last_message.get("content"))
        asked = _AT_LEAST_WORDS.search(last)
        return (
            max(self.answer_tokens, min(int(asked.group(1)), self.max_model_len))
            if asked
            else (self.answer_tokens)
        )

    @staticmethod
    def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        words, finish_reason, prompt_tokens = self._plan(body)
        if self.token_delay_s > 0 and words:
            # One sleep for the whole answer: the same wall time as per-token sleeps, fewer wake-ups.
            await asyncio.sleep(self.token_delay_s * len(words))
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": self._usage(prompt_tokens, len(words)),
        }

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        words, finish_reason, prompt_tokens = self._plan(body)
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

        def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
            return _chunk_event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        yield chunk({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            # Even at zero delay each token is a turn of the event loop, as with a real engine whose
            # tokens arrive from another process: other requests (of the same key too) are served
            # while a stream is in flight instead of each stream running to its end in one go.
            await asyncio.sleep(self.token_delay_s)
            # Leading spaces on all but the first piece: the deltas concatenate to complete()'s content.
            yield chunk({"content": word if i == 0 else " " + word})
        yield chunk({}, finish_reason)
        options = body.get("stream_options") or {}
        if options.get("include_usage"):
            yield _chunk_event({**base, "choices": [], "usage": self._usage(prompt_tokens, len(words))})
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        return None


class SimEmbedEngine:
    """Deterministic embedding test double: hashed bag of words, L2-normalised.

    Each lowercased word maps to a fixed pseudo-random vector (SHAKE-256 of the word); a text's vector is
    the normalised sum of its words' vectors. That is no semantic model, but texts sharing words do get
    a higher cosine similarity, which keeps retrieval-shaped tests meaningful.
    """

    name = "sim"

    def __init__(self, dim: int = EMBED_DIM) -> None:
        self.dim = dim
        log.warning("sim engine: deterministic test double, not a language model")

    def _vector(self, text: str) -> list[float]:
        words = text.lower().split() or [text]
        acc = [0.0] * self.dim
        for word in words:
            # Signed bytes -128..127 as the word's coordinates.
            raw = hashlib.shake_256(word.encode()).digest(self.dim)
            for i, b in enumerate(raw):
                acc[i] += b - 256 if b > 127 else b
        norm = math.sqrt(sum(x * x for x in acc))
        if norm == 0.0:
            # Practically unreachable, but a zero vector has no direction: use a fixed unit vector.
            return [1.0] + [0.0] * (self.dim - 1)
        return [x / norm for x in acc]

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        raw_input = body.get("input", "")
        texts: list[str] = [raw_input] if isinstance(raw_input, str) else list(raw_input)
        as_base64 = body.get("encoding_format") == "base64"
        data: list[dict[str, Any]] = []
        for index, text in enumerate(texts):
            vector = self._vector(text)
            # base64 is what the OpenAI SDK asks for by default: little-endian float32, as OpenAI sends.
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "embedding": embedding, "index": index})
        tokens = sum(max(1, count_text_tokens(t)) for t in texts)
        return {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    async def aclose(self) -> None:
        return None
