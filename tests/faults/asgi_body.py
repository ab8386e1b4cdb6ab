"""A generic ASGI tool beside ``asgi.py``: re-cut an answer's body bytes on their way out.

:class:`BodyFilter` changes how an answer travels, not what it says: another content encoding, other
write boundaries, pauses between writes, a delay before the request is passed on. Those are the
transport freedoms a server (or the network path in front of it) has, used by the planted liberties
(``liberties*.py``); like everything in ``asgi.py`` it wraps the app from outside.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.faults.asgi import Matcher, Reply

__all__ = ["BodyCutter", "BodyFilter"]


class BodyCutter(Protocol):
    """Re-cuts one answer's body: each returned item is sent as its own write, ``pause`` seconds apart."""

    pause: float

    def feed(self, chunk: bytes) -> list[bytes]: ...

    def end(self) -> list[bytes]: ...


class BodyFilter:
    """Requests that ``match`` pass to the app unchanged (after ``before()`` seconds, when given); their
    answer's head goes through ``make(scope, reply)``, which may change status and headers in place and
    return a :class:`BodyCutter` for the body (its Content-Length is then dropped: the body is re-cut,
    so it goes out chunked). Unlike :class:`Rewrite` nothing is buffered: streams stay streams."""

    def __init__(
        self,
        app: ASGIApp,
        match: Matcher,
        make: Callable[[Scope, Reply], BodyCutter | None],
        *,
        before: Callable[[], float] | None = None,
    ) -> None:
        self.app = app
        self.match = match
        self.make = make
        self.before = before

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.match(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        if self.before is not None:
            await asyncio.sleep(self.before())
        cutter: BodyCutter | None = None

        async def sender(message: Message) -> None:
            nonlocal cutter
            if message["type"] == "http.response.start":
                reply = Reply.of(message["status"], message.get("headers", []))
                cutter = self.make(scope, reply)
                if cutter is not None and "content-length" in reply.headers:
                    del reply.headers["content-length"]
                await send({**message, "status": reply.status, "headers": reply.raw_headers})
                return
            if message["type"] != "http.response.body" or cutter is None:
                await send(message)
                return
            more = message.get("more_body", False)
            items = cutter.feed(message.get("body", b""))
            if not more:
                items += cutter.end()
            for item in items:
                if cutter.pause > 0:
                    await asyncio.sleep(cutter.pause)
                if item:
                    await send({"type": "http.response.body", "body": item, "more_body": True})
            if not more:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app(scope, receive, sender)
