"""The access log: one JSON line per request, streams timed to their end, nothing secret in it.

Most tests drive the middleware through a small FastAPI app over httpx's ASGI transport; the ones
about message flow (no buffering, disconnects, failing sends) call it as a bare ASGI app, where the
test controls ``receive`` and ``send`` exactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from reference_server.access_log import ACCESS_LOGGER, AccessLogMiddleware
from reference_server.auth import DEMO_KEYS, Authenticator, Caller, KeyStore, TokenService
from reference_server.config import DEMO_KEYS_FILE
from reference_server.errors import install_error_handlers
from reference_server.gateway import get_gateway, require_caller

FIELDS = {"ts", "method", "path", "status", "duration_ms", "ttfb_ms", "bytes", "caller", "disconnected"}
CHUNK_GAP_S = 0.05


@dataclass
class _Gateway:
    auth: Authenticator


def make_app() -> FastAPI:
    app = FastAPI()
    # fortytwo flavour: the API key is the bearer, so a labelled request needs no token exchange.
    auth = Authenticator(KeyStore.from_file(DEMO_KEYS_FILE), TokenService("s" * 32), "fortytwo")
    gateway = _Gateway(auth)
    app.dependency_overrides[get_gateway] = lambda: gateway
    install_error_handlers(app)
    app.add_middleware(AccessLogMiddleware)

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/whoami")
    async def whoami(caller: Annotated[Caller, Depends(require_caller)]) -> dict[str, str]:
        return {"label": caller.label}

    @app.post("/echo-size")
    async def echo_size(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for n in range(3):
                if n:
                    await asyncio.sleep(CHUNK_GAP_S)
                yield f"data: {n}\n\n".encode()

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail of the failure")

    return app


def request(app: FastAPI, method: str, url: str, **kwargs: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert all(r.levelno == logging.INFO for r in records)
    return [json.loads(r.getMessage()) for r in records]


def only_line(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    found = lines(caplog)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)


# ---- through FastAPI --------------------------------------------------------------------------------


def test_one_json_line_per_request_with_the_documented_fields(caplog):
    response = request(make_app(), "GET", "/plain")
    line = only_line(caplog)
    assert set(line) == FIELDS
    assert (line["method"], line["path"], line["status"]) == ("GET", "/plain", 200)
    assert line["bytes"] == len(response.content)
    assert line["caller"] is None and line["disconnected"] is False
    assert 0 <= line["ttfb_ms"] <= line["duration_ms"]
    started = datetime.fromisoformat(line["ts"])
    assert started.tzinfo is not None and abs(datetime.now(UTC) - started) < timedelta(seconds=30)
    assert line["ts"].endswith("Z")


def test_every_request_gets_its_own_line(caplog):
    app = make_app()
    for path in ("/plain", "/missing", "/plain"):
        request(app, "GET", path)
    assert [(line["path"], line["status"]) for line in lines(caplog)] == [
        ("/plain", 200),
        ("/missing", 404),
        ("/plain", 200),
    ]


def test_caller_label_set_by_require_caller_is_logged(caplog):
    request(make_app(), "GET", "/whoami", headers={"Authorization": f"Bearer {DEMO_KEYS['pro']}"})
    line = only_line(caplog)
    assert (line["status"], line["caller"]) == (200, "demo-pro")


def test_rejected_caller_is_logged_without_label(caplog):
    request(make_app(), "GET", "/whoami", headers={"Authorization": "Bearer sk-42ai-unknown"})
    line = only_line(caplog)
    assert (line["status"], line["caller"]) == (401, None)


def test_query_string_headers_and_bodies_are_never_logged(caplog):
    key = DEMO_KEYS["internal"]
    request(
        make_app(),
        "GET",
        "/whoami?api_key=query-secret",
        headers={"Authorization": f"Bearer {key}", "Cookie": "session=cookie-secret"},
    )
    request(make_app(), "POST", "/echo-size?token=query-secret", content=b"body-secret")
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER)
    for secret in (key, "query-secret", "cookie-secret", "body-secret", "Bearer", "api_key", "?"):
        assert secret not in text
    assert [line["path"] for line in lines(caplog)] == ["/whoami", "/echo-size"]


def test_stream_is_timed_to_the_end_of_its_body(caplog):
    response = request(make_app(), "GET", "/stream")
    line = only_line(caplog)
    assert line["status"] == 200
    assert line["bytes"] == len(response.content) == len(b"data: 0\n\n") * 3
    # Two gaps between three chunks: the end comes well after the first byte.
    assert line["duration_ms"] - line["ttfb_ms"] >= 2 * CHUNK_GAP_S * 1000 * 0.9
    assert line["ttfb_ms"] < CHUNK_GAP_S * 1000


def test_unhandled_exception_is_logged_as_500_with_its_class_only(caplog):
    response = request(make_app(), "GET", "/boom")
    assert response.status_code == 500
    line = only_line(caplog)
    assert (line["status"], line["error"]) == (500, "RuntimeError")
    assert "secret detail" not in json.dumps(line)


def test_http_errors_keep_their_status_and_have_no_error_field(caplog):
    request(make_app(), "DELETE", "/plain")
    line = only_line(caplog)
    assert line["status"] == 405
    assert "error" not in line


# ---- as a bare ASGI app -----------------------------------------------------------------------------


def http_scope(**extra: Any) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/x",
        "raw_path": b"/x",
        "query_string": b"q=secret",
        "root_path": "",
        "headers": [(b"authorization", b"Bearer sk-42ai-secret")],
        "client": ("127.0.0.1", 1),
        "server": ("gateway", 80),
        **extra,
    }


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def test_stream_chunks_pass_through_before_the_app_finishes(caplog):
    first_chunk_out = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        # A buffering middleware would hold "one" back and this would never be set.
        await asyncio.wait_for(first_chunk_out.wait(), timeout=2)
        await send({"type": "http.response.body", "body": b"two", "more_body": False})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message.get("body") == b"one":
            first_chunk_out.set()

    asyncio.run(AccessLogMiddleware(app)(http_scope(), _no_body, send))
    assert [m.get("body") for m in sent] == [None, b"one", b"two"]
    assert only_line(caplog)["bytes"] == 6


def test_disconnect_seen_by_the_app_is_flagged(caplog):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        assert (await receive())["type"] == "http.disconnect"

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(AccessLogMiddleware(app)(http_scope(), receive, send))
    line = only_line(caplog)
    assert (line["status"], line["bytes"], line["disconnected"]) == (200, 7, True)


def test_disconnect_after_the_last_body_message_is_not_flagged(caplog):
    # Starlette's streaming response keeps listening for http.disconnect until the end, and servers
    # deliver it once the response is complete: that is the normal end, not a client gone away.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
        assert (await receive())["type"] == "http.disconnect"

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    asyncio.run(AccessLogMiddleware(app)(http_scope(), receive, send))
    assert only_line(caplog)["disconnected"] is False


def test_failed_send_is_flagged_as_disconnect_and_reraised(caplog):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"lost", "more_body": True})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(AccessLogMiddleware(app)(http_scope(), _no_body, send))
    line = only_line(caplog)
    assert (line["status"], line["disconnected"], line["error"]) == (200, True, "ConnectionResetError")


def test_caller_label_is_found_in_preexisting_and_copied_scope_state(caplog):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # An inner layer that copies the scope still shares the state dict with the middleware.
        Request(dict(scope)).state.caller_label = "demo-free"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        pass

    # uvicorn puts a state dict in every scope; httpx's ASGI transport does not (covered above).
    asyncio.run(AccessLogMiddleware(app)(http_scope(state={}), _no_body, send))
    line = only_line(caplog)
    assert (line["status"], line["caller"], line["bytes"], line["ttfb_ms"]) == (204, "demo-free", 0, None)


def test_app_that_never_responds_is_logged_with_null_status(caplog):
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    async def send(message: Message) -> None:
        pass

    asyncio.run(AccessLogMiddleware(app)(http_scope(), _no_body, send))
    assert only_line(caplog)["status"] is None


def test_non_http_scopes_pass_through_unlogged(caplog):
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def send(message: Message) -> None:
        pass

    asyncio.run(AccessLogMiddleware(app)({"type": "lifespan"}, _no_body, send))
    assert seen == ["lifespan"]
    assert lines(caplog) == []


def test_no_wrapping_and_no_line_when_the_logger_is_off(caplog):
    caplog.set_level(logging.WARNING, logger=ACCESS_LOGGER)
    received: list[tuple[Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append((receive, send))

    async def send(message: Message) -> None:
        pass

    asyncio.run(AccessLogMiddleware(app)(http_scope(), _no_body, send))
    assert received == [(_no_body, send)]
    assert lines(caplog) == []
