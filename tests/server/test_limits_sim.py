"""Admission limits: tier concurrency (429, Retry-After 5) and KV-cache room (503, Retry-After 30).

Overlap comes from the sim engine's per-token delay. Complete requests overlap in process through
httpx's ASGITransport (server-side timing is real, only the client buffers). Streams are tested against
a real uvicorn on a loopback port, because only there does the client see the first event while the
server is still generating, and only there can it hang up mid-stream.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi.testclient import TestClient

from reference_server.auth import DEMO_KEYS
from reference_server.config import ServerConfig
from reference_server.gateway import gateway_of

#: Per-token delay that makes requests overlap: 16 tokens -> ~0.5 s in flight.
SLOW_TOKEN_S = 0.03
URL = "/v1/chat/completions"
BODY = {"model": "42-logic", "messages": [{"role": "user", "content": "Hello!"}]}


def headers_of(app, token_headers, tier):
    with TestClient(app) as client:
        return token_headers(client, tier)


def statuses(responses):
    return sorted(r.status_code for r in responses)


def assert_429(response):
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["type"] == "rate_limit_exceeded"


def test_second_simultaneous_free_request_is_429(make_app, token_headers, run_async):
    app = make_app(token_delay_s=SLOW_TOKEN_S)
    headers = headers_of(app, token_headers, "free")

    async def scenario(client):
        return await asyncio.gather(*(client.post(URL, headers=headers, json=BODY) for _ in range(2)))

    responses = run_async(app, scenario)
    assert statuses(responses) == [200, 429]
    assert_429(next(r for r in responses if r.status_code == 429))


def test_free_key_is_admitted_again_after_its_request_finished(make_app, token_headers, run_async):
    app = make_app(token_delay_s=SLOW_TOKEN_S)
    headers = headers_of(app, token_headers, "free")

    async def scenario(client):
        await asyncio.gather(*(client.post(URL, headers=headers, json=BODY) for _ in range(2)))
        return await client.post(URL, headers=headers, json=BODY)

    assert run_async(app, scenario).status_code == 200


def test_pro_key_gets_three_simultaneous_requests_and_the_fourth_is_429(make_app, token_headers, run_async):
    app = make_app(token_delay_s=SLOW_TOKEN_S)
    headers = headers_of(app, token_headers, "pro")

    async def scenario(client):
        return await asyncio.gather(*(client.post(URL, headers=headers, json=BODY) for _ in range(4)))

    responses = run_async(app, scenario)
    assert statuses(responses) == [200, 200, 200, 429]
    assert_429(next(r for r in responses if r.status_code == 429))


def test_internal_key_gets_eight_simultaneous_requests(make_app, token_headers, run_async):
    app = make_app(token_delay_s=SLOW_TOKEN_S)
    headers = headers_of(app, token_headers, "internal")

    async def scenario(client):
        return await asyncio.gather(*(client.post(URL, headers=headers, json=BODY) for _ in range(8)))

    assert statuses(run_async(app, scenario)) == [200] * 8


def test_limit_counts_chat_and_embeddings_of_a_key_together(make_app, token_headers, run_async):
    app = make_app(token_delay_s=SLOW_TOKEN_S)
    headers = headers_of(app, token_headers, "free")
    gateway = gateway_of(app)
    caller = gateway.auth.keystore.lookup(DEMO_KEYS["free"])
    assert caller is not None

    async def scenario(client):
        chat = asyncio.create_task(client.post(URL, headers=headers, json=BODY))
        # Wait on the state itself: the embedding request goes out once the chat holds the key's slot.
        deadline = time.monotonic() + 5
        while not gateway.limiter.in_flight(caller.key_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert gateway.limiter.in_flight(caller.key_id) == 1
        embed = await client.post("/v1/embeddings", headers=headers, json={"model": "42-embed", "input": "x"})
        return await chat, embed

    chat, embed = run_async(app, scenario)
    assert chat.status_code == 200
    assert_429(embed)


def test_open_stream_holds_the_slot_until_it_ends(make_app, token_headers, live_server):
    # 40 tokens at 50 ms: a 2 s stream, ample time for the second request to arrive while it is open.
    app = make_app(token_delay_s=0.05, answer_tokens=40)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        headers = token_headers(http, "free")
        with http.stream("POST", URL, headers=headers, json={**BODY, "stream": True}) as response:
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")  # the stream is open and generating
            during = http.post(URL, headers=headers, json=BODY)
            rest = [line for line in lines if line]
        after = http.post(URL, headers=headers, json=BODY)
    assert_429(during)
    assert rest[-1] == "data: [DONE]"
    assert after.status_code == 200


def test_client_hanging_up_mid_stream_frees_the_slot(make_app, token_headers, live_server):
    # 200 tokens at 50 ms: the stream would run 10 s, far longer than the release may take.
    app = make_app(token_delay_s=0.05, answer_tokens=200)
    gateway = gateway_of(app)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=10) as http:
        headers = token_headers(http, "free")
        with http.stream("POST", URL, headers=headers, json={**BODY, "stream": True}) as response:
            # Keep the iterator referenced: dropping a half-read httpx iterator closes the connection.
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            assert gateway.kv.reserved > 0
        # Leaving the block closed the connection with most of the stream unread. The server releases
        # on its own thread: wait for both counters (checking one alone would race the other).
        caller = gateway.auth.keystore.lookup(DEMO_KEYS["free"])
        assert caller is not None
        key_id = caller.key_id
        deadline = time.monotonic() + 5
        while (gateway.kv.reserved or gateway.limiter.in_flight(key_id)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gateway.kv.reserved == 0
        assert gateway.limiter.in_flight(key_id) == 0
        assert http.post(URL, headers=headers, json={**BODY, "max_tokens": 1}).status_code == 200


def test_request_over_the_kv_budget_is_503_with_retry_after_30(make_app, token_headers):
    with TestClient(make_app(ServerConfig(kv_budget_tokens=50))) as client:
        headers = token_headers(client, "internal")
        response = client.post(URL, headers=headers, json={**BODY, "max_tokens": 100})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert response.json()["error"]["type"] == "service_unavailable"


def test_request_within_the_kv_budget_is_admitted_and_returns_its_room(make_app, token_headers):
    app = make_app(ServerConfig(kv_budget_tokens=50))
    with TestClient(app) as client:
        headers = token_headers(client, "internal")
        response = client.post(URL, headers=headers, json={**BODY, "max_tokens": 10})
    assert response.status_code == 200
    assert gateway_of(app).kv.reserved == 0


def test_kv_room_is_held_while_requests_are_in_flight(make_app, token_headers, run_async):
    # Each request reserves prompt (1 word + 3) + 20 = 24 tokens; two of them need 48 of 30.
    app = make_app(ServerConfig(kv_budget_tokens=30), token_delay_s=SLOW_TOKEN_S)
    headers = headers_of(app, token_headers, "internal")

    async def scenario(client):
        body = {**BODY, "max_tokens": 20}
        return await asyncio.gather(*(client.post(URL, headers=headers, json=body) for _ in range(2)))

    responses = run_async(app, scenario)
    assert statuses(responses) == [200, 503]
    assert gateway_of(app).kv.reserved == 0
