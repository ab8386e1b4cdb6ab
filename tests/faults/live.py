"""Serve an ASGI app on a loopback port from a thread, for the manifest tests.

A real uvicorn rather than httpx's ASGITransport: streams must arrive event by event, a stalled stream
must stall, and a client that gives up must disconnect, all as over the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serving"]


@contextmanager
def serving(app: ASGIApp, startup_timeout: float = 10.0) -> Iterator[str]:
    """``with serving(app) as base_url:`` uvicorn on 127.0.0.1 (a free port) until the block ends."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            http="h11", ws="none", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-fault", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
