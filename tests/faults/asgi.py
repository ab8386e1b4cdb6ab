"""Test-only ASGI wrappers that plant one deviation in the reference server's HTTP answers.

Everything here sits *outside* the reference server: a fault is the clean app wrapped in one of these
middlewares (or given a swapped component, see ``swaps.py``). Nothing in ``reference_server`` knows about
faults.

:class:`Rewrite` is the one general tool. For requests matching a method and a path pattern it can

* change the request before the server sees it (``request``: mutate the :class:`Call`, or answer in its
  place by returning a :class:`Reply`);
* change status and headers of the answer (``head``, for plain and streamed answers alike);
* change a whole non-streamed answer (``reply``: mutate the buffered :class:`Reply`);
* change a server-sent event stream event by event (``events``: a factory of :class:`EventRewriter`,
  one per response, which may drop, add, alter or stall events).

:class:`Hang` never answers. :class:`WithContext` and :class:`WatchDisconnect` set a context variable
for matching requests, for swapped components (``swaps.py``) that must behave differently on some
routes only.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "STALL",
    "Call",
    "ClientGone",
    "EventRewriter",
    "Hang",
    "Reply",
    "Rewrite",
    "WatchDisconnect",
    "WithContext",
    "chunk_rewriter",
    "on",
]

#: Returned among an EventRewriter's outputs: send what came before it, then never send anything again
#: (the connection stays open until the client gives up).
STALL = object()

Matcher = Callable[[str, str], bool]


def on(method: str, pattern: str) -> Matcher:
    """Match requests by method and a full-match regular expression over the path."""
    compiled = re.compile(pattern)
    return lambda m, path: m == method and compiled.fullmatch(path) is not None


class _JsonBody:
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def set_json(self, data: Any) -> None:
        self.body = json.dumps(data).encode()


@dataclass
class Call(_JsonBody):
    """The request as a fault sees it; request hooks may change ``headers`` and ``body``."""

    method: str
    path: str
    headers: MutableHeaders
    body: bytes

    @property
    def streaming(self) -> bool:
        data = self.json()
        return isinstance(data, dict) and data.get("stream") is True


@dataclass
class Reply(_JsonBody):
    """A response (buffered whole, or only its head for a stream); hooks change it in place."""

    status: int
    headers: MutableHeaders
    body: bytes = b""
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, status: int, raw: Iterable[tuple[bytes, bytes]], body: bytes = b"") -> Reply:
        raw_list = list(raw)
        return cls(status, MutableHeaders(raw=raw_list), body, raw_list)

    @classmethod
    def json_reply(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Reply:
        reply = cls.of(status, [(b"content-type", b"application/json")])
        reply.set_json(data)
        for name, value in (headers or {}).items():
            reply.headers[name] = value
        return reply

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")


class EventRewriter(Protocol):
    """Rewrites one server-sent event stream; ``event`` gets each event's data (``[DONE]`` included).

    Outputs are event data strings (sent as ``data: ...``), raw ``bytes`` (sent verbatim) or STALL.
    """

    def event(self, data: str) -> list[Any]: ...

    def end(self) -> list[Any]: ...


RequestHook = Callable[[Call], Reply | None]
ReplyHook = Callable[[Call, Reply], None]


def _sse(item: Any) -> bytes:
    return item if isinstance(item, bytes) else b"data: " + str(item).encode() + b"\n\n"


def _event_data(raw: bytes) -> str | None:
    lines = [line[5:].removeprefix(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines).decode() if lines else None


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The whole request body, and whether the client disconnected while sending it."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts), True
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), False


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_reply(send: Send, reply: Reply) -> None:
    reply.headers["content-length"] = str(len(reply.body))
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.raw_headers})
    await send({"type": "http.response.body", "body": reply.body, "more_body": False})


class _Intercept:
    """Base of the wrappers: other requests pass untouched; a matching one is read whole (its body
    buffered into a :class:`Call`) and given to ``handle``."""

    def __init__(self, app: ASGIApp, match: Matcher) -> None:
        self.app = app
        self.match = match

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.match(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        body, gone = await _read_body(receive)
        if not gone:
            call = Call(scope["method"], scope["path"], MutableHeaders(scope=dict(scope)), body)
            await self.handle(call, scope, receive, send)

    async def handle(self, call: Call, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    @staticmethod
    def _replay(body: bytes, receive: Receive) -> Receive:
        """A receive that gives the app the (possibly changed) body, then the client's own messages."""
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


class Rewrite(_Intercept):
    """Wrap ``app``; requests that ``match`` go through the given hooks (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        match: Matcher,
        *,
        request: RequestHook | None = None,
        head: ReplyHook | None = None,
        reply: ReplyHook | None = None,
        events: Callable[[Call], EventRewriter | None] | None = None,
    ) -> None:
        super().__init__(app, match)
        self.request_hook = request
        self.head_hook = head
        self.reply_hook = reply
        self.events_factory = events

    async def handle(self, call: Call, scope: Scope, receive: Receive, send: Send) -> None:
        if self.request_hook is not None:
            early = self.request_hook(call)
            if early is not None:
                await _send_reply(send, early)
                return
        if "content-length" in call.headers:
            call.headers["content-length"] = str(len(call.body))
        scope = {**scope, "headers": call.headers.raw}
        await self.app(scope, self._replay(call.body, receive), self._sender(call, send, receive))

    def _sender(self, call: Call, send: Send, receive: Receive) -> Send:
        state: dict[str, Any] = {"mode": "pass", "receive": receive}

        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply = Reply.of(message["status"], message.get("headers", []))
                streaming = reply.headers.get("content-type", "").startswith("text/event-stream")
                rewriter = self.events_factory(call) if streaming and self.events_factory else None
                if self.head_hook is not None:
                    self.head_hook(call, reply)
                if streaming:
                    state.update(mode="stream", rewriter=rewriter, buffer=b"")
                    if "content-length" in reply.headers:
                        del reply.headers["content-length"]
                elif self.reply_hook is not None:
                    state.update(mode="buffer", reply=reply, parts=[])
                    return
                await send({**message, "status": reply.status, "headers": reply.raw_headers})
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            more = message.get("more_body", False)
            if state["mode"] == "buffer":
                state["parts"].append(message.get("body", b""))
                if not more:
                    reply = state["reply"]
                    reply.body = b"".join(state["parts"])
                    assert self.reply_hook is not None
                    self.reply_hook(call, reply)
                    await _send_reply(send, reply)
                return
            if state["mode"] == "stream" and state["rewriter"] is not None:
                await self._stream_body(state, message.get("body", b""), more, send)
                return
            await send(message)

        return sender

    @staticmethod
    async def _stream_body(state: dict[str, Any], chunk: bytes, more: bool, send: Send) -> None:
        rewriter: EventRewriter = state["rewriter"]
        state["buffer"] += chunk
        *complete, state["buffer"] = state["buffer"].split(b"\n\n")
        outputs: list[Any] = []
        for raw in complete:
            data = _event_data(raw)
            outputs += rewriter.event(data) if data is not None else [raw + b"\n\n"]
        if not more:
            if state["buffer"].strip():
                outputs.append(state["buffer"])
            outputs += rewriter.end()
        for item in outputs:
            if item is STALL:
                # Nothing more is sent; the connection stays open until the client hangs up.
                await _until_disconnect(state["receive"])
                raise OSError("the client went away from a stalled stream")
            await send({"type": "http.response.body", "body": _sse(item), "more_body": True})
        if not more:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def chunk_rewriter(
    on_chunk: Callable[[dict[str, Any], int], list[Any]],
    on_done: Callable[[], list[Any]] | None = None,
) -> Callable[[Call], EventRewriter]:
    """An EventRewriter factory from functions over JSON chunks (with their 0-based position).

    ``on_chunk`` returns the replacement items (dicts are JSON-encoded); ``on_done`` those that
    replace ``data: [DONE]`` (default: the terminator unchanged). Other events pass unchanged.
    """

    class _Chunks:
        def __init__(self) -> None:
            self.position = 0

        def event(self, data: str) -> list[Any]:
            if data.strip() == "[DONE]":
                return on_done() if on_done is not None else [data]
            try:
                chunk = json.loads(data)
            except ValueError:
                return [data]
            if not isinstance(chunk, dict) or "choices" not in chunk:
                return [data]
            outputs = on_chunk(chunk, self.position)
            self.position += 1
            return [json.dumps(o, separators=(",", ":")) if isinstance(o, dict) else o for o in outputs]

        def end(self) -> list[Any]:
            return []

    return lambda _call: _Chunks()


class Hang(_Intercept):
    """Requests that match are read and then never answered, until the client goes away."""

    async def handle(self, call: Call, scope: Scope, receive: Receive, send: Send) -> None:
        await _until_disconnect(receive)


class WithContext(_Intercept):
    """Set ``var`` to ``value(call)`` while the server handles a matching request."""

    def __init__(
        self, app: ASGIApp, match: Matcher, var: contextvars.ContextVar[Any], value: Callable[[Call], Any]
    ) -> None:
        super().__init__(app, match)
        self.var = var
        self.value = value

    async def handle(self, call: Call, scope: Scope, receive: Receive, send: Send) -> None:
        token = self.var.set(self.value(call))
        try:
            await self.app(scope, self._replay(call.body, receive), send)
        finally:
            self.var.reset(token)


class ClientGone:
    """Set by :class:`WatchDisconnect` once sending to the client failed because it went away."""

    gone = False


class WatchDisconnect(_Intercept):
    """Put a fresh :class:`ClientGone` in ``var`` for each matching request and set it when the app
    learns that the client hung up: a disconnect message, or a send that fails (ASGI 2.4)."""

    def __init__(self, app: ASGIApp, match: Matcher, var: contextvars.ContextVar[ClientGone | None]) -> None:
        super().__init__(app, match)
        self.var = var

    async def handle(self, call: Call, scope: Scope, receive: Receive, send: Send) -> None:
        flag = ClientGone()
        replay = self._replay(call.body, receive)

        async def listened() -> Message:
            message = await replay()
            if message["type"] == "http.disconnect":
                flag.gone = True
            return message

        async def watched(message: Message) -> None:
            try:
                await send(message)
            except OSError:
                flag.gone = True
                raise

        token = self.var.set(flag)
        try:
            await self.app(scope, listened, watched)
        finally:
            self.var.reset(token)
