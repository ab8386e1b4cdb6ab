"""One JSON line per HTTP request on the ``conform42.access`` logger, at INFO.

A pure ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: that one runs the route in another
task and pipes the body through a memory stream, which delays SSE chunks and keeps ``http.disconnect``
from the route, so a stream would go on after its client left. Here ``receive`` and ``send`` are only
wrapped: every message passes straight through and is merely counted.

The line holds what an operator needs to find slow or failing requests, and nothing a caller sent:
no headers, bodies, query string or tokens. The caller appears by the label of its key, which routes
put on ``request.state.caller_label`` (that is ``scope["state"]["caller_label"]``).

Fields: ``ts`` (UTC start), ``method``, ``path``, ``status``, ``duration_ms`` (to the end of the body,
streams included), ``ttfb_ms`` (to the first body byte: for a stream the headers leave before the
engine has produced anything, so the first chunk is the figure that means something), ``bytes`` (body
bytes sent), ``caller``, ``disconnected`` (the client went away: the app received ``http.disconnect``
or a send failed), and ``error`` (exception class) only when the app raised.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ACCESS_LOGGER", "AccessLogMiddleware"]

ACCESS_LOGGER = "conform42.access"


class _Exchange:
    """What one request's messages showed; ``receive``/``send`` replace the server's callables."""

    __slots__ = ("_receive", "_send", "body_bytes", "complete", "disconnected", "first_byte", "status")

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self.status: int | None = None
        self.first_byte: float | None = None
        self.body_bytes = 0
        self.complete = False
        self.disconnected = False

    async def receive(self) -> Message:
        message = await self._receive()
        # Servers also deliver http.disconnect after the last body message (Starlette's streaming
        # response listens for it until the end): only one that comes before is a client gone away.
        if message["type"] == "http.disconnect" and not self.complete:
            self.disconnected = True
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            size = len(message.get("body", b""))
            if size:
                if self.first_byte is None:
                    self.first_byte = time.perf_counter()
                self.body_bytes += size
            if not message.get("more_body", False):
                self.complete = True
        elif kind == "http.response.start":
            self.status = message["status"]
        try:
            await self._send(message)
        except OSError:
            # ASGI 2.4 servers report a gone client by failing the send, not with http.disconnect.
            self.disconnected = True
            raise


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, logger: logging.Logger | None = None) -> None:
        self.app = app
        self.logger = logger if logger is not None else logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        wall = time.time()
        start = time.perf_counter()
        # Hold the state dict itself: request.state writes into it, and an inner layer that copies
        # the scope still shares it.
        state: dict[str, Any] = scope.setdefault("state", {})
        exchange = _Exchange(receive, send)
        error: str | None = None
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            self._log(scope, state, exchange, wall, start, error)

    def _log(
        self,
        scope: Scope,
        state: dict[str, Any],
        exchange: _Exchange,
        wall: float,
        start: float,
        error: str | None,
    ) -> None:
        end = time.perf_counter()
        status = exchange.status
        if status is None and error is not None:
            # No response began and the app raised: Starlette's outermost ServerErrorMiddleware
            # answers 500, which is what the client gets.
            status = 500
        first = exchange.first_byte
        record: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1000):03d}Z",
            "method": scope["method"],
            # scope["path"] never includes the query string, whose values may be secrets.
            "path": scope["path"],
            "status": status,
            "duration_ms": round((end - start) * 1000, 3),
            "ttfb_ms": None if first is None else round((first - start) * 1000, 3),
            "bytes": exchange.body_bytes,
            "caller": state.get("caller_label"),
            "disconnected": exchange.disconnected,
        }
        if error is not None:
            record["error"] = error
        self.logger.info(json.dumps(record, separators=(",", ":")))
