"""The two intermediaries of the path liberties, started as the proof starts them: each relays the
reference server's answers (a stream included) and changes the path visibly. Slow: real processes."""

from __future__ import annotations

import time

import pytest

from tests.faults.liberties_probes import LibertyProbe
from tests.faults.liberties_prove import LibertyServer
from tests.support.nginx_proxy import NginxProxy, nginx_binary
from tests.support.slow_proxy import SlowProxy

pytestmark = pytest.mark.slow


def _stream_lines(base_url: str) -> tuple[list[bytes], dict[str, str]]:
    probe = LibertyProbe(base_url)
    try:
        body = {"model": "42-general", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6}
        with probe.http.stream(
            "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=probe.auth()
        ) as response:
            return [line for line in b"".join(response.iter_bytes()).split(b"\n") if line], dict(
                response.headers
            )
    finally:
        probe.close()


@pytest.mark.timeout(120)
def test_slow_proxy_reserialises_every_event_and_delays_requests():
    with LibertyServer("sse_comments_heartbeats", ["--flavour", "42ai", "--sim-token-delay", "0"]) as server:
        direct, _ = _stream_lines(server.base_url)
        with SlowProxy(server.base_url) as proxy:
            relayed, _ = _stream_lines(proxy.base_url)
            probe = LibertyProbe(proxy.base_url)
            started = time.monotonic()
            for _ in range(6):
                probe.http.get("/health")
            probe.close()
    assert any(line.startswith(b":") for line in direct)
    assert relayed and not any(line.startswith(b":") for line in relayed), "comments are not relayed"
    assert relayed[-1] == b"data: [DONE]"
    assert time.monotonic() - started > 0.3, "six requests through up to 0.5 s of delay each"


@pytest.mark.timeout(120)
def test_nginx_proxy_relays_a_stream_with_default_settings():
    if nginx_binary() is None:
        pytest.skip("nginx is not installed (apt-get install nginx; .ci/run installs it when it can)")
    server = LibertyServer("http_extra_headers", ["--flavour", "42ai", "--sim-token-delay", "0"])
    with server, NginxProxy(server.base_url) as proxy:
        lines, headers = _stream_lines(proxy.base_url)
    assert headers.get("server", "").startswith("nginx") and "x-request-id" in headers
    assert lines[-1] == b"data: [DONE]"
