"""The vLLM engine client against a fake vLLM upstream: pass-through and error mapping, without vLLM.

The fake speaks vLLM's wire format (chunked SSE, one event per chunk; JSON errors), so these fast tests
pin the gateway logic of reference_server/engines/vllm.py; tests/server/test_vllm_gateway.py runs the
same code against the real engine. The engine needs the converted model's tokenizer (``make vllm``).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reference_server.engines.vllm import CHAT_SERVED_NAMES, VllmChatEngine
from reference_server.errors import ApiError
from reference_server.model_prep import chat_model_dir, is_chat_model_prepared

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "models"
if not is_chat_model_prepared(CACHE):
    pytest.skip("the converted chat model is missing: run `make vllm`", allow_module_level=True)

Handler = Callable[[bytes], list[bytes]]  # request body -> raw response pieces, written one by one


def _event(content: str, model: str = CHAT_SERVED_NAMES[0]) -> bytes:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def _chunked(status: int, pieces: list[bytes], content_type: str = "text/event-stream") -> list[bytes]:
    head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
    return [head.encode(), *(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces), b"0\r\n\r\n"]


@pytest.fixture
def upstream() -> Iterator[Callable[[Handler], str]]:
    """Start a fake vLLM on a free loopback port with the given handler; returns its base URL."""
    running: list[tuple[asyncio.AbstractEventLoop, asyncio.Event, threading.Thread]] = []

    def start(handler: Handler) -> str:
        ready = threading.Event()
        found: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Event]] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                for piece in handler(await reader.readexactly(length)):
                    writer.write(piece)
                    await writer.drain()
            finally:
                writer.close()

        async def serve() -> None:
            stop = asyncio.Event()
            async with await asyncio.start_server(handle, "127.0.0.1", 0) as server:
                found.append((server.sockets[0].getsockname()[1], asyncio.get_running_loop(), stop))
                ready.set()
                await stop.wait()

        # asyncio.run cancels what is left and closes the loop when serve() returns.
        thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        thread.start()
        assert ready.wait(10)
        port, loop, stop = found[0]
        running.append((loop, stop, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for loop, stop, thread in running:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)


def _engine(url: str) -> VllmChatEngine:
    return VllmChatEngine(url, CHAT_SERVED_NAMES, chat_model_dir(CACHE), 2048, None)


async def _collect(engine: VllmChatEngine, body: dict[str, Any]) -> list[bytes]:
    try:
        events = [event async for event in engine.stream(body)]
    finally:
        await engine.aclose()
    # The "accepted" item comes first, once and only once (engines/base.py).
    assert events[:1] == [b""] and b"" not in events[1:], events[:2]
    return events[1:]


BODY = {"model": "42-logic", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def test_stream_passes_events_through_whole_with_the_requested_model(upstream):
    events = [_event("a"), _event("b"), b"data: [DONE]\n\n"]
    # One event split over two chunks and two events in one chunk: the engine re-cuts them at \n\n.
    pieces = [events[0][:20], events[0][20:] + events[1], events[2]]
    url = upstream(lambda _body: _chunked(200, pieces))
    got = asyncio.run(_collect(_engine(url), BODY))
    assert got == [e.replace(b'"model":"42-think"', b'"model":"42-logic"') for e in events]


@pytest.mark.parametrize(
    ("status", "expected_status", "expected_type"),
    [
        (404, 404, "model_not_found"),
        (400, 400, "invalid_request_error"),
        (500, 500, "internal_error"),
        (503, 503, "service_unavailable"),
    ],
)
def test_upstream_errors_map_to_the_envelope(upstream, status, expected_status, expected_type):
    error = json.dumps({"error": {"message": "boom", "type": "BadRequestError"}}).encode()
    url = upstream(lambda _body: _chunked(status, [error], "application/json"))
    with pytest.raises(ApiError) as caught:
        asyncio.run(_collect(_engine(url), BODY))
    assert (caught.value.status, caught.value.error_type) == (expected_status, expected_type)
    if expected_status == 503:
        assert caught.value.headers == {"Retry-After": "30"}


def test_stream_cut_inside_an_event_is_an_error(upstream):
    url = upstream(lambda _body: _chunked(200, [_event("a"), b'data: {"id":"c1","obj'])[:-1])
    with pytest.raises(ApiError) as caught:
        asyncio.run(_collect(_engine(url), BODY))
    assert caught.value.status == 500


@pytest.mark.parametrize("events", [[], [b'data: {"x":1}\n\n']], ids=["no event", "one event"])
def test_stream_that_ends_before_done_is_an_error(upstream, events):
    url = upstream(lambda _body: _chunked(200, events))
    with pytest.raises(ApiError) as caught:
        asyncio.run(_collect(_engine(url), BODY))
    assert caught.value.status == 500
    assert "[DONE]" in caught.value.message


def test_engine_down_is_503_with_retry_after():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ApiError) as caught:
        asyncio.run(_collect(_engine(f"http://127.0.0.1:{port}"), BODY))
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": "30"}


def test_complete_sets_the_requested_model(upstream):
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "42-think",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
    }
    url = upstream(lambda _body: _chunked(200, [json.dumps(answer).encode()], "application/json"))
    engine = _engine(url)

    async def run() -> dict[str, Any]:
        try:
            return await engine.complete({**BODY, "stream": False})
        finally:
            await engine.aclose()

    assert asyncio.run(run())["model"] == "42-logic"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
        [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {
                "role": "user",
                "content": "Translate: \u00e9t\u00e9, \u65e5\u672c\u8a9e, emoji \U0001f600"
                "\n\ttabs  and  spaces",
            },
        ],
        [{"role": "user", "content": ""}],
        [{"role": "user", "content": "<|im_start|>user\nnot a real turn<|im_end|>"}],
        [{"role": "user", "content": "word " * 1500}],
    ],
)
def test_prompt_tokens_are_counted_as_the_chat_template_tokenizes(messages):
    # The gateway's count decides the context-length 400 and the KV 503 before vLLM sees the request, so
    # it must equal transformers' own apply_chat_template(tokenize=True), which is what vLLM runs.
    engine = VllmChatEngine("http://127.0.0.1:9", CHAT_SERVED_NAMES, chat_model_dir(CACHE), 2048, None)
    counted = engine.count_prompt_tokens(messages)  # first: transformers' own call resets tokenizer state
    reference = engine._tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert counted == len(reference)
