"""Fixtures for the gateway tests: the app over the sim engines, task tokens per tier, a real server.

The sim engines are the deterministic test double (reference_server.engines.sim); nothing here needs
vLLM. ``headers_for(tier)`` exchanges the tier's demo API key at POST /api/token, the way a client
does, so every /v1 call goes through the real authentication path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from reference_server.app import create_app
from reference_server.auth import DEMO_KEYS
from reference_server.config import ServerConfig
from reference_server.engines.sim import SimChatEngine, SimEmbedEngine

AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app() -> AppFactory:
    """Build a gateway over fresh sim engines; keyword arguments go to ServerConfig or SimChatEngine."""

    def build(config: ServerConfig | None = None, chat: SimChatEngine | None = None,
              **engine_kwargs: Any) -> FastAPI:
        return create_app(config or ServerConfig(), chat or SimChatEngine(**engine_kwargs), SimEmbedEngine())

    return build


@pytest.fixture
def app(make_app: AppFactory) -> FastAPI:
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions=False: a bug must show up as the 500 a client would get, so the
    # "never a 5xx" tests see it instead of a Python traceback.
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _headers(http: TestClient | httpx.Client, tier: str) -> dict[str, str]:
    response = http.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS[tier]}",
                                                "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['task_token']}"}


@pytest.fixture
def headers_for(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Authorization headers with a fresh task token of the tier's demo key."""
    return lambda tier: _headers(client, tier)


@pytest.fixture
def token_headers() -> Callable[[TestClient | httpx.Client, str], dict[str, str]]:
    """Like headers_for, for a client of another app (make_app) or a real server."""
    return _headers


@pytest.fixture
def run_async() -> Callable[[FastAPI, Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]], Any]:
    """Run ``scenario(client)`` with an httpx.AsyncClient on the app in process (ASGITransport).

    ASGITransport buffers each response whole, so this suits overlapping complete requests (the
    server-side timing is real), not watching a stream arrive: see ``live_server`` for that.
    """

    def run(app: FastAPI, scenario: Callable[[httpx.AsyncClient], Coroutine[Any, Any, Any]]) -> Any:
        async def main() -> Any:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=30) as c:
                return await scenario(c)

        return asyncio.run(main())

    return run


@contextmanager
def _serve(app: FastAPI) -> Iterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                            http="h11", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live_server() -> Callable[[FastAPI], Any]:
    """``with live_server(app) as base_url:`` a real uvicorn on a loopback port, for true streaming."""
    return _serve
