"""Planted liberties of the event stream and of the path to the server (streaming, limits).

The stream liberties are the freedoms of the SSE standard (WHATWG HTML, "Server-sent events", the
format 001 names: "streaming via Server-Sent Events (SSE)"). One boundary comes from 001 itself: "The
Fortytwo API is fully compatible with the OpenAI Python and Node.js SDKs", so a freedom the OpenAI SDK's
own SSE decoder mishandles is not taken. That decoder dispatches an event with empty data when a block
holds only ``retry:`` or ``id:`` (and, once an ``id:`` was seen, for every later blank line), and then
fails to parse it; so ``id:``/``retry:`` always travel inside a data event and a stream that uses ``id:``
sends no comment-only blocks. The stream liberties are judged under the Fortytwo profile, where the
stream requirements are MUSTs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Scope

from tests.faults.asgi import Call, EventRewriter, Reply, Rewrite
from tests.faults.asgi_body import BodyCutter, BodyFilter
from tests.faults.catalogue import CHAT, anywhere
from tests.faults.liberties_base import liberty

__all__ = ["sse_rewriter"]

SSE = 'WHATWG HTML, Server-sent events (001: "streaming via Server-Sent Events (SSE)"): '
STREAM_REQS = "STREAM SDK-001 SDK-002 CHAT-001"


def sse_rewriter(serialise: Callable[[str, int], list[bytes]]) -> Callable[[Call], EventRewriter]:
    """An EventRewriter factory writing each event (its data, its 0-based position) as raw bytes."""

    class _Events:
        def __init__(self) -> None:
            self.position = 0

        def event(self, data: str) -> list[Any]:
            out = serialise(data, self.position)
            self.position += 1
            return list(out)

        def end(self) -> list[Any]:
            return []

    return lambda _call: _Events()


def _stream(app: FastAPI, serialise: Callable[[str, int], list[bytes]]) -> ASGIApp:
    return Rewrite(app, CHAT, events=sse_rewriter(serialise))


@liberty(
    "sse_crlf_line_endings",
    "streaming",
    "every line of the event stream ends with CRLF",
    SSE + '"Lines must be separated by either a U+000D CARRIAGE RETURN U+000A LINE FEED (CRLF) '
    'character pair, a single U+000A LINE FEED (LF) character, or a single U+000D CARRIAGE RETURN (CR)".',
    touches="STREAM-004",
    profile="fortytwo",
    exercises=STREAM_REQS,
)
def _sse_crlf(app: FastAPI) -> ASGIApp:
    return _stream(app, lambda data, _n: [b"data: " + data.encode() + b"\r\n\r\n"])


@liberty(
    "sse_cr_line_endings",
    "streaming",
    "every line of the event stream ends with a lone CR",
    SSE + "lines may end with CRLF, LF or a single CR (the same sentence).",
    touches="STREAM-004",
    profile="fortytwo",
    exercises=STREAM_REQS,
)
def _sse_cr(app: FastAPI) -> ASGIApp:
    return _stream(app, lambda data, _n: [b"data: " + data.encode() + b"\r\r"])


PADDING = b": " + b" " * 2048 + b"\n\n"


@liberty(
    "sse_comments_heartbeats",
    "streaming",
    "the stream opens with a 2 KB comment (proxy padding) and sends a ': keep-alive' heartbeat block "
    "between events and a comment line inside each",
    SSE + '"Lines starting with a U+003A COLON character (:) are comments" and "Legacy proxy servers are '
    "known to, in certain cases, drop HTTP connections after a short timeout. To protect against such "
    "proxy servers, authors can include a comment line (one starting with a ':' character) every 15 "
    'seconds or so."',
    touches="STREAM-004",
    profile="fortytwo",
    exercises=STREAM_REQS,
)
def _sse_comments(app: FastAPI) -> ASGIApp:
    def serialise(data: str, n: int) -> list[bytes]:
        event = b": chunk " + str(n).encode() + b"\ndata: " + data.encode() + b"\n\n"
        return [PADDING, event] if n == 0 else [b": keep-alive\n\n", event]

    return _stream(app, serialise)


@liberty(
    "sse_fields_id_event_retry",
    "streaming",
    "each event carries id: N and event: message, the first also retry: 3000",
    SSE + 'the fields "event", "data", "id" and "retry"; an event type "message" is the default type, '
    "so naming it changes nothing.",
    touches="STREAM-004",
    profile="fortytwo",
    exercises=STREAM_REQS,
)
def _sse_fields(app: FastAPI) -> ASGIApp:
    def serialise(data: str, n: int) -> list[bytes]:
        retry = b"retry: 3000\n" if n == 0 else b""
        return [retry + b"id: " + str(n + 1).encode() + b"\nevent: message\ndata: " + data.encode() + b"\n\n"]

    return _stream(app, serialise)


@liberty(
    "sse_data_no_space",
    "streaming",
    'data fields without the space after the colon: "data:{...}", "data:[DONE]"',
    SSE + '"If value starts with a U+0020 SPACE character, remove it from value": the space is optional.',
    touches="STREAM-004 STREAM-008",
    profile="fortytwo",
    exercises=STREAM_REQS,
)
def _sse_data_no_space(app: FastAPI) -> ASGIApp:
    return _stream(app, lambda data, _n: [b"data:" + data.encode() + b"\n\n"])


def _pretty_lines(data: str) -> bytes:
    try:
        text = json.dumps(json.loads(data), indent=1)
    except ValueError:
        text = data
    return b"".join(b"data: " + line.encode() + b"\n" for line in text.split("\n")) + b"\n"


@liberty(
    "sse_multiline_data",
    "streaming",
    "each JSON chunk pretty-printed over several data: lines of one event",
    SSE + 'consecutive data lines are joined with a U+000A LINE FEED ("append the field value to the '
    'data buffer, then append a single U+000A LINE FEED"), and a line feed is insignificant whitespace '
    "between JSON tokens (RFC 8259).",
    touches="STREAM-004",
    profile="fortytwo",
    exercises=STREAM_REQS,
)
def _sse_multiline(app: FastAPI) -> ASGIApp:
    return _stream(app, lambda data, _n: [_pretty_lines(data)])


class _Splitter:
    """An event stream re-cut: its first 256 bytes one byte per write, the rest at random points."""

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.sent = 0
        self.rng = random.Random()

    def feed(self, chunk: bytes) -> list[bytes]:
        pieces: list[bytes] = []
        while chunk:
            size = 1 if self.sent < 256 else self.rng.randint(1, 40)
            pieces.append(chunk[:size])
            chunk = chunk[size:]
            self.sent += size
        return pieces

    def end(self) -> list[bytes]:
        return []


@liberty(
    "sse_split_writes",
    "streaming",
    "events split across TCP writes: the stream's first 256 bytes one byte at a time, then pieces of "
    "1-40 bytes cut anywhere (mid-line, mid-UTF-8, between CR and LF)",
    SSE + "an event stream is a byte stream, parsed as it arrives; TCP keeps no write boundaries, so "
    "neither the documents nor the standard tie an event to a packet.",
    profile="fortytwo",
    exercises=STREAM_REQS,
)
def _sse_split_writes(app: FastAPI) -> ASGIApp:
    def make(_scope: Scope, reply: Reply) -> BodyCutter | None:
        streaming = reply.headers.get("content-type", "").startswith("text/event-stream")
        return _Splitter(pause=0.0005) if streaming else None

    return BodyFilter(app, CHAT, make)


class _Relay:
    """Passes a body through unchanged, ``pause`` seconds before every write (a slower path)."""

    def __init__(self, pause: float) -> None:
        self.pause = pause

    def feed(self, chunk: bytes) -> list[bytes]:
        return [chunk]

    def end(self) -> list[bytes]:
        return []


@liberty(
    "network_slow_path",
    "streaming",
    "a slower network path: 20-150 ms before each request reaches the server, 10 ms more on every "
    "write of the answer (each streamed event included)",
    "The documents promise no latency; 000's base URL is a public host on the internet, where such "
    "delays are ordinary.",
    exercises="LIMIT STREAM CHAT SDK",
)
def _network_slow_path(app: FastAPI) -> ASGIApp:
    rng = random.Random()
    return BodyFilter(app, anywhere, lambda _s, _r: _Relay(0.010), before=lambda: rng.uniform(0.02, 0.15))


# ---------------------------------------------------------------------- the path, not the server

PATH = "The documents describe the API at its URL, not the machine or the hops behind it: "


@liberty(
    "engine_zero_delay",
    "limits",
    "the engine answers at once (sim at 0 s per token: a long answer done in milliseconds, as a small "
    "model on a fast GPU or a response cache gives)",
    PATH + "no minimum generation time is stated anywhere.",
    touches="LIMIT-007 LIMIT-010 LIMIT-012",
    token_delay_s=0.0,
    exercises="LIMIT STREAM-001 CHAT-001",
)
def _engine_zero_delay(app: FastAPI) -> ASGIApp:
    return app


@liberty(
    "machine_busy",
    "limits",
    "the server shares its machine with a busy process (yes > /dev/null taking one core)",
    PATH + "nothing says the server has the machine to itself.",
    touches="LIMIT-007 LIMIT-010 LIMIT-012",
    busy=True,
    exercises="LIMIT STREAM CHAT-001",
)
def _machine_busy(app: FastAPI) -> ASGIApp:
    return app


@liberty(
    "path_slow_proxy",
    "limits",
    "a Python gateway in front (tests/support/slow_proxy.py): up to 0.5 s before it forwards a request, "
    "every stream event parsed and re-serialised, its event loop behind under load; engine at 0 s per "
    "token, machine busy",
    PATH + "an OpenAI-compatible API (000) is routinely served through such gateways.",
    touches="LIMIT-007 LIMIT-010 LIMIT-012 STREAM-004",
    intermediary="slow_proxy",
    busy=True,
    token_delay_s=0.0,
    exercises="LIMIT STREAM CHAT-001 SDK-004",
    # Through this gateway a server that answers at once has finished each stream before the next request
    # of a burst reaches it: no client can tell a correct server from an over-admitting one (README, "When
    # a limit cannot be judged through your proxy"). The run accepts those Skips, as the README tells a
    # user to; a run that could judge them (the requests met at the server) still judges them.
    accepts="LIMIT-001 LIMIT-002 LIMIT-004",
)
def _path_slow_proxy(app: FastAPI) -> ASGIApp:
    return app


@liberty(
    "path_nginx_default",
    "limits",
    "a stock nginx reverse proxy in front (Debian's package, proxy_pass only: HTTP/1.0 upstream, "
    "response buffering on); engine at 0 s per token, machine busy",
    PATH + "the base URL (000: https://42ai.the-42-lab.com) says nothing of what answers at it.",
    touches="LIMIT-007 LIMIT-010 LIMIT-012",
    intermediary="nginx",
    busy=True,
    token_delay_s=0.0,
    exercises="LIMIT STREAM CHAT-001 SDK-004",
)
def _path_nginx_default(app: FastAPI) -> ASGIApp:
    return app
