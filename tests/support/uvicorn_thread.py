"""Serve an ASGI app with a real uvicorn on a loopback port, from a thread, for the length of a block.

A real server rather than httpx's ASGITransport: streams must arrive event by event, a stalled stream
must stall, and a client that gives up must disconnect, all as over the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from reference_server.cli_serve import bound_port

__all__ = ["serving"]


@contextmanager
def serving(
    app: ASGIApp, *, lifespan: Literal["on", "off"] = "on", startup_timeout: float = 10.0
) -> Iterator[str]:
    """``with serving(app) as base_url:`` uvicorn on 127.0.0.1 (a free port) until the block ends.

    ``lifespan="off"`` for an app whose lifespan already ran (a TestClient around it) or is not wanted.
    """
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan=lifespan,
        http="h11",
        ws="none",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-thread", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{bound_port(server)}"
    finally:
        server.should_exit = True
        thread.join(10)
