"""The bundled reference server as the suite starts it: ready with a base URL, stopped afterwards, and a
start that fails is reported at once with the server's own output."""

from __future__ import annotations

import time

import httpx
import pytest

from suite.reference import DEMO_KEYS, ReferenceServer, ReferenceServerError

pytestmark = pytest.mark.slow


def test_sim_server_starts_answers_and_stops():
    messages: list[str] = []
    with ReferenceServer("sim", progress=messages.append) as server:
        url = server.base_url
        token = httpx.post(
            f"{url}/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS['free']}"}, timeout=10
        )
        assert token.status_code == 200
    assert any("ready" in m for m in messages)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health", timeout=2)


def test_a_server_that_exits_fails_fast_with_its_output():
    started = time.monotonic()
    with pytest.raises(ReferenceServerError, match="exited with code") as info:
        ReferenceServer("sim", extra_args=("--no-such-option",)).__enter__()
    assert "--no-such-option" in str(info.value)  # the log tail: argparse's complaint
    assert time.monotonic() - started < 30
