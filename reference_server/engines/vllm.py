"""The real engines: vLLM's OpenAI-compatible servers, reached over loopback HTTP with aiohttp.

The gateway has done everything a 42 API promises before a request gets here (auth, model rules,
limits); what is left is to hand the body to vLLM and the answer back with as little work as possible,
because the gateway's cost is measured against calling vLLM directly (target: >= 0.97 of its throughput,
<= 2 ms added median latency). So a stream is passed through as vLLM's own bytes, cut into whole SSE
events, and never JSON-decoded.

The chat server is started with every chat model ID as a served name
(``--served-model-name 42-think 42-vision 42-logic 42-coder 42-general``), so it accepts the 42 ID the
caller sent. vLLM 0.32 does *not* echo that ID, though: every answer names the first served name
(``OpenAIServingModels.model_name`` returns ``base_model_paths[0].name``). The engines therefore put the
requested ID back: in a completion by setting ``model`` in the decoded JSON, in a stream by one
``bytes.replace(..., 1)`` per event, done only when the requested ID differs from the first served name.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from reference_server.errors import ApiError

__all__ = ["CHAT_SERVED_NAMES", "EMBED_SERVED_NAME", "VllmChatEngine", "VllmEmbedEngine"]

#: The names the chat vLLM server is started with; the first is the one vLLM writes into every answer.
CHAT_SERVED_NAMES: tuple[str, ...] = ("42-think", "42-vision", "42-logic", "42-coder", "42-general")
EMBED_SERVED_NAME = "42-embed"

#: Connections to one vLLM server. The internal tier has no concurrency cap, and a request that finds
#: the pool full waits for a connection, so keep it well above the >= 64 concurrent streams the gateway
#: must carry.
POOL_CONNECTIONS = 256

#: Generation may legitimately run for minutes (long answers under load), so the wait for the next byte
#: is long; connecting to a loopback server that is up takes microseconds, so 5 s already means "down".
CHAT_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=300.0)
#: One embedding batch takes milliseconds to seconds; a minute is a generous bound.
EMBED_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=60.0)

_EVENT_END = b"\n\n"
_DONE = b"data: [DONE]"


def _vllm_message(content: bytes) -> str:
    """The message of a vLLM error body (``{"error": {"message": ...}}``), or the raw text."""
    try:
        data = json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace").strip()[:500] or "no error message"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(data.get("message"), str):
            return str(data["message"])
        if isinstance(data.get("detail"), str):
            return str(data["detail"])
    return str(data)[:500]


class _HttpEngine:
    """What both engines share: one pooled aiohttp session, and vLLM's failures in our error envelope.

    Why aiohttp and not httpx (which the suite uses): this client sits on the streaming hot path, one
    read per token, and aiohttp's reader (C parser, no anyio layers) costs the gateway clearly less CPU
    per streamed event than httpx's (tests/bench/gateway_cpu.py; figures in the README). On two cores
    every microsecond of it is taken from vLLM itself.
    """

    def __init__(
        self,
        base_url: str,
        timeout: aiohttp.ClientTimeout,
        is_alive: Callable[[], bool] | None,
        retry_after_s: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._is_alive = is_alive
        self._retry_after = str(retry_after_s)

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the event loop that is running then.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self.base_url + "/",
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=POOL_CONNECTIONS, keepalive_timeout=60.0),
                # vLLM does not compress; a compressed stream could not be passed through as bytes.
                auto_decompress=False,
                headers={"Accept-Encoding": "identity"},
                # Loopback only: a proxy from the environment (HTTP_PROXY) must never sit between us and vLLM.
                trust_env=False,
            )
        return self._session

    def _down(self, detail: str) -> ApiError:
        return ApiError(
            503,
            f"The inference engine is not available ({detail}). Retry after {self._retry_after}s",
            "service_unavailable",
            headers={"Retry-After": self._retry_after},
        )

    def _dead(self) -> bool:
        return self._is_alive is not None and not self._is_alive()

    def _status_error(self, status: int, content: bytes, model: object) -> ApiError:
        """A non-2xx answer from vLLM as our error; vLLM's own ``type`` values are never passed on."""
        if status == 404:
            # vLLM's message lists every served alias; ours names only what the caller asked for.
            return ApiError(404, f"The model `{model}` does not exist", "model_not_found")
        if status == 503 or (status >= 500 and self._dead()):
            return self._down(f"HTTP {status}")
        if status >= 500:
            return ApiError(500, f"The inference engine failed: {_vllm_message(content)}", "internal_error")
        if status in (401, 403):
            # vLLM runs without credentials behind us; a refusal means the gateway is misconfigured.
            return ApiError(
                500, "The gateway could not authenticate to its inference engine", "internal_error"
            )
        # 400 (bad parameters, prompt too long, ...) and anything else the client caused: vLLM's message
        # says what is wrong with the request, so it is passed on.
        return ApiError(400, _vllm_message(content), "invalid_request_error")

    def _transport_error(self, exc: BaseException) -> ApiError:
        """A connection-level failure: the engine is down (503) unless it is demonstrably alive."""
        if isinstance(exc, aiohttp.ClientConnectorError) or self._dead():
            return self._down(type(exc).__name__)
        if isinstance(exc, TimeoutError):
            return ApiError(
                500, f"The inference engine did not answer in time ({type(exc).__name__})", "internal_error"
            )
        # Connection dropped mid-request by a live engine (ServerDisconnectedError, payload errors, ...).
        return ApiError(
            500, f"The connection to the inference engine failed ({type(exc).__name__})", "internal_error"
        )

    async def _post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._http().post(path.lstrip("/"), json=body) as response:
                content = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from exc
        if status >= 300:
            raise self._status_error(status, content, body.get("model"))
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise ApiError(500, "The inference engine sent a malformed answer", "internal_error") from exc
        if not isinstance(data, dict):
            raise ApiError(500, "The inference engine sent a malformed answer", "internal_error")
        return data

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class VllmChatEngine(_HttpEngine):
    """Chat completions from a vLLM server serving every chat model ID (see the module docstring)."""

    name = "vllm"

    def __init__(
        self,
        base_url: str,
        served_names: Sequence[str],
        tokenizer_dir: Path | str,
        max_model_len: int,
        kv_budget_tokens: int | None,
        *,
        is_alive: Callable[[], bool] | None = None,
        retry_after_s: int = 30,
    ) -> None:
        """``served_names`` must be given in the order of ``--served-model-name`` (the first is echoed).

        Loads the model's tokenizer from ``tokenizer_dir`` (about a second, plus importing transformers)
        so ``count_prompt_tokens`` can count exactly as vLLM will. ``is_alive`` (e.g. the supervising
        ``VllmProcess.is_running``) tells a crashed engine (503, retry later) from a failing one (500).
        """
        super().__init__(base_url, CHAT_TIMEOUT, is_alive, retry_after_s)
        self.max_model_len = max_model_len
        self.kv_budget_tokens = kv_budget_tokens
        self.set_served_names(served_names)
        # transformers comes with the `vllm` extra only; mypy also runs where it is absent.
        from transformers import AutoTokenizer  # type: ignore[import-not-found, unused-ignore]

        self._tokenizer: Any = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        # The Rust tokenizer under a fast tokenizer, used directly by count_prompt_tokens, but only
        # without truncation or padding stored in the tokenizer file: transformers resets those before
        # it encodes, the bare tokenizer would apply them and miscount. Decided once, off the hot path.
        backend = getattr(self._tokenizer, "_tokenizer", None)
        bare = getattr(backend, "truncation", None) is None and getattr(backend, "padding", None) is None
        usable = backend is not None and hasattr(backend, "encode") and bare
        self._bare_tokenizer: Any = backend if usable else None

    def set_served_names(self, served_names: Sequence[str]) -> None:
        """Record the server's names in vLLM's order (``/v1/models``); the first is the one it echoes."""
        if not served_names:
            raise ValueError("served_names must name at least one model")
        self.served_names = tuple(served_names)
        self._echoed_field = b'"model":' + json.dumps(self.served_names[0]).encode()

    def count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens as vLLM counts them: the chat template with the generation prompt, tokenized.

        The gateway sends string contents only (image parts are described in text first); a list of parts
        is reduced to its text so a direct caller gets a count, not a template error.
        """
        plain = [
            m if isinstance(m.get("content"), str) else {**m, "content": _text_of(m.get("content"))}
            for m in messages
        ]
        rendered: str = self._tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
        # What apply_chat_template(tokenize=True) does next, minus its layers: the template already holds
        # the special tokens, so none are added. transformers' path goes through the Rust tokenizer's
        # batch encoder (a thread pool hand-off) and costs about twice as much per request; the result is
        # the same (tests/server/test_vllm_engine_wire.py compares both).
        if self._bare_tokenizer is not None:
            return len(self._bare_tokenizer.encode(rendered, add_special_tokens=False).ids)
        return len(self._tokenizer.encode(rendered, add_special_tokens=False))

    async def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        data = await self._post_json("v1/chat/completions", body)
        requested = body.get("model")
        if requested is not None:
            data["model"] = requested  # vLLM names its first served name; see the module docstring
        return data

    async def stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        """vLLM's SSE events, each one whole and as sent, with ``model`` set to the requested ID.

        Errors before the first event raise ``ApiError`` (the route then answers with a JSON error);
        errors later raise it too, and the route turns that into an error event.
        """
        requested = body.get("model")
        old = self._echoed_field
        new = b'"model":' + json.dumps(requested).encode() if isinstance(requested, str) else old
        rewrite = new != old
        try:
            async with self._http().post("v1/chat/completions", json=body) as response:
                if response.status >= 300:
                    raise self._status_error(response.status, await response.read(), requested)
                # vLLM sends its headers when it has accepted the request, long before the first token;
                # say so (the base module's "accepted" item) so the client gets ours as early.
                yield b""
                buffer = b""
                last = b""
                # iter_any: whatever arrived, as soon as it arrived (no line or size buffering).
                async for chunk in response.content.iter_any():
                    # Hot path: vLLM writes one event per chunk, so a chunk that ends the only event it
                    # holds goes out as it is, without copying it into the buffer.
                    if not buffer and chunk.endswith(_EVENT_END) and chunk.find(_EVENT_END) == len(chunk) - 2:
                        last = chunk
                        yield chunk.replace(old, new, 1) if rewrite else chunk
                        continue
                    buffer += chunk
                    start = 0
                    while (end := buffer.find(_EVENT_END, start)) >= 0:
                        last = buffer[start : end + 2]
                        start = end + 2
                        yield last.replace(old, new, 1) if rewrite else last
                    buffer = buffer[start:]
                if buffer.strip():
                    # The connection ended inside an event: the engine stopped mid-answer.
                    raise ApiError(500, "The inference engine ended the stream mid-event", "internal_error")
                if not last.startswith(_DONE):
                    # Ended between events: the client must not take a cut answer for a whole one.
                    raise ApiError(
                        500, "The inference engine ended the stream before data: [DONE]", "internal_error"
                    )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from exc


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return "" if content is None else str(content)


class VllmEmbedEngine(_HttpEngine):
    """Embeddings from a vLLM pooling server started with ``--served-model-name 42-embed``."""

    name = "vllm"

    def __init__(
        self,
        base_url: str,
        *,
        served_name: str = EMBED_SERVED_NAME,
        is_alive: Callable[[], bool] | None = None,
        retry_after_s: int = 30,
    ) -> None:
        super().__init__(base_url, EMBED_TIMEOUT, is_alive, retry_after_s)
        self.served_name = served_name

    async def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        requested = body.get("model")
        # The pooling server knows one name; the gateway has already checked the caller's model ID.
        data = await self._post_json("v1/embeddings", {**body, "model": self.served_name})
        if requested is not None:
            data["model"] = requested
        return data
