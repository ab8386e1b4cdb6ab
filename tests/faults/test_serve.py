"""``python -m tests.faults.serve`` as a real process (what prove.py starts): clean and with a fault."""

from __future__ import annotations

import httpx

from reference_server.auth import DEMO_KEYS
from tests.faults.prove import FaultServer

BODY = {"model": "42-logic", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}


def finish_reasons(base_url: str) -> list[str]:
    with httpx.Client(base_url=base_url, timeout=10, trust_env=False) as client:
        token = client.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS['pro']}"}).json()
        response = client.post(
            "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {token['task_token']}"}
        )
    assert response.status_code == 200, response.text
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    return [e for e in events if '"finish_reason":"' in e.replace(" ", "")]


def test_serve_with_a_fault_plants_it_and_says_so():
    with FaultServer("stream_two_finish_reasons") as server:
        assert len(finish_reasons(server.base_url)) == 2
        assert "planted fault stream_two_finish_reasons" in server.stdout()
    assert server.returncode is not None


def test_serve_none_is_the_clean_reference():
    with FaultServer("none") as server:
        assert len(finish_reasons(server.base_url)) == 1
        assert "no fault" in server.stdout()
