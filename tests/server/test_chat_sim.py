"""Non-streaming chat completions over the sim engine (CHAT-*, MODEL-008)."""

from __future__ import annotations

import time
from typing import Any

from reference_server.engines.sim import DEFAULT_ANSWER_TOKENS, MESSAGE_OVERHEAD_TOKENS, SYSTEM_FINGERPRINT

URL = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Hello there!"}]


def chat(client, headers, **body):
    return client.post(URL, headers=headers, json={"model": "42-logic", "messages": HELLO, **body})


def test_completion_has_the_openai_shape(client, headers_for):
    response = chat(client, headers_for("free"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int) and abs(body["created"] - time.time()) < 86400
    assert body["model"] == "42-logic"
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length", "content_filter")


def test_completion_ids_are_unique(client, headers_for):
    headers = headers_for("internal")
    ids = {chat(client, headers).json()["id"] for _ in range(5)}
    assert len(ids) == 5


def test_usage_total_is_prompt_plus_completion(client, headers_for):
    usage = chat(client, headers_for("free")).json()["usage"]
    assert all(isinstance(usage[k], int) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    assert usage["prompt_tokens"] >= 1
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_usage_counts_follow_the_documented_sim_tokenizer(client, headers_for):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}]
    body = chat(client, headers_for("free"), messages=messages).json()
    assert body["usage"]["prompt_tokens"] == 2 + 3 + 2 * MESSAGE_OVERHEAD_TOKENS
    assert body["usage"]["completion_tokens"] == len(body["choices"][0]["message"]["content"].split())


def test_uncapped_answer_finishes_with_stop(client, headers_for):
    body = chat(client, headers_for("free")).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == DEFAULT_ANSWER_TOKENS


def test_max_tokens_cut_gives_finish_reason_length(client, headers_for):
    body = chat(client, headers_for("free"), max_tokens=2).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_max_completion_tokens_cut_gives_finish_reason_length(client, headers_for):
    body = chat(client, headers_for("free"), max_completion_tokens=2).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2


def test_null_token_caps_are_accepted(client, headers_for):
    response = chat(client, headers_for("free"), max_tokens=None, max_completion_tokens=None)
    assert response.status_code == 200


def test_extra_members_are_accepted(client, headers_for):
    response = chat(client, headers_for("free"), temperature=0.5, user="u-1", x_probe={"any": [1, 2]})
    assert response.status_code == 200


def test_response_format_object_or_null_is_accepted(client, headers_for):
    headers = headers_for("free")
    assert chat(client, headers, response_format={"type": "text"}).status_code == 200
    assert chat(client, headers, response_format=None).status_code == 200


def test_system_user_assistant_conversation_is_accepted(client, headers_for):
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"},
        {"role": "user", "content": "u2"},
    ]
    assert chat(client, headers_for("free"), messages=messages).status_code == 200


def test_text_part_lists_are_accepted_by_text_models(client, headers_for):
    parts = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "x"}]
    messages = [{"role": "user", "content": parts}]
    assert chat(client, headers_for("free"), messages=messages).status_code == 200


def test_same_prompt_gives_same_answer(client, headers_for):
    headers = headers_for("internal")
    answers = {chat(client, headers).json()["choices"][0]["message"]["content"] for _ in range(3)}
    assert len(answers) == 1


def test_system_fingerprint_names_the_test_double(client, headers_for):
    body = chat(client, headers_for("free")).json()
    assert body["system_fingerprint"] == SYSTEM_FINGERPRINT
    assert "sim" in body["system_fingerprint"]


def test_prompt_plus_max_tokens_over_context_length_is_400(client, headers_for):
    response = chat(client, headers_for("free"), max_tokens=10_000)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_response_format_needs_a_known_type(client, headers_for):
    # OpenAI-compatible engines refuse a response_format without `type`; the gateway says so as a
    # schema violation (422) instead of passing the engine's 400 on.
    base = {"model": "42-logic", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    headers = headers_for("free")
    bad: dict[str, Any]
    for bad in ({}, {"schema": {}}, {"type": "yaml"}):
        answer = client.post("/v1/chat/completions", headers=headers, json={**base, "response_format": bad})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"]["type"] == "invalid_request_error"
    ok = client.post(
        "/v1/chat/completions", headers=headers, json={**base, "response_format": {"type": "text"}}
    )
    assert ok.status_code == 200, ok.text
