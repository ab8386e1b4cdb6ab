"""Non-streamed chat completions: shape and invariants (not model text), and the accepted request members.

Most checks read one shared completion (``chat_completion``), so the suite sends one request for them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from suite.checks import expect
from suite.conformance._helpers import CHAT, Memo, chat_body, chat_completion, expect_success, json_object
from suite.http import Api
from suite.markers import requirement
from suite.target import Target

FINISH_REASONS = ("stop", "length", "content_filter")
#: A prompt whose honest answer is far longer than the caps used below.
LONG_PROMPT = "Write a long essay of at least 500 words about the history of lighthouses."


def _first_choice(response: httpx.Response, body: dict[str, Any]) -> dict[str, Any]:
    choices = body.get("choices")
    expect(
        isinstance(choices, list) and choices and isinstance(choices[0], dict),
        "the completion has no choices",
        expected="choices: a non-empty array of objects",
        received=f"choices: {json.dumps(choices)[:200]}",
        response=response,
    )
    assert isinstance(choices, list) and isinstance(choices[0], dict)
    return choices[0]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@requirement("CHAT-001")
def test_chat_completion_is_200_json_object(api: Api, memo: Memo, target: Target, tier: str) -> None:
    chat_completion(api, memo, target, tier)


@requirement("CHAT-002")
def test_completion_has_string_id(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    expect(
        isinstance(body.get("id"), str) and body["id"],
        "the completion has no id",
        expected="id: a non-empty string",
        received=f"id: {body.get('id')!r}",
        response=response,
    )


@requirement("CHAT-003")
def test_completion_id_has_chatcmpl_prefix(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    expect(
        str(body.get("id", "")).startswith("chatcmpl-"),
        "the completion id lacks the chatcmpl- prefix",
        expected='id starting with "chatcmpl-"',
        received=f"id: {body.get('id')!r}",
        response=response,
    )


@requirement("CHAT-004")
def test_completion_ids_are_unique(api: Api, memo: Memo, target: Target, tier: str) -> None:
    _first, body = chat_completion(api, memo, target, tier)
    response = api.post(
        CHAT, chat_body(target.chat_model, "Say hello in one short sentence.", max_tokens=16), tier=tier
    )
    expect_success(target, response, "a second chat completion was not answered with success")
    second = json_object(response)
    expect(
        second.get("id") != body.get("id"),
        "two chat completions carry the same id",
        expected="distinct ids",
        received=f"both {body.get('id')!r}",
        response=response,
    )


def _expect_metadata(response: httpx.Response, body: dict[str, Any]) -> None:
    created = body.get("created")
    expect(
        body.get("object") == "chat.completion",
        "the completion's object is wrong",
        expected='object: "chat.completion"',
        received=f"object: {body.get('object')!r}",
        response=response,
    )
    expect(
        _is_int(created),
        "the completion's created is not an integer",
        expected="created: integer Unix seconds",
        received=f"created: {created!r}",
        response=response,
    )
    expect(
        isinstance(body.get("model"), str) and body["model"],
        "the completion names no model",
        expected="model: a non-empty string",
        received=f"model: {body.get('model')!r}",
        response=response,
    )


@requirement("CHAT-005")
def test_completion_object_created_model(api: Api, memo: Memo, target: Target, tier: str) -> None:
    _expect_metadata(*chat_completion(api, memo, target, tier))  # the clock is CHAT-023's (a SHOULD)


@requirement("CHAT-023")
def test_created_is_near_the_client_clock(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    _expect_metadata(response, body)
    expect(  # our tolerance: a day rejects milliseconds and zero without depending on clock sync
        abs(body["created"] - time.time()) <= 86400,
        "the completion's created is not a Unix timestamp in seconds near now",
        expected=f"within 86400 s of the client clock ({int(time.time())})",
        received=f"created: {body['created']}",
        response=response,
    )


@requirement("CHAT-006")
def test_42ai_completion_has_openai_members(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    _expect_metadata(response, body)
    _expect_choice_indexes(response, body)


def _expect_choice_indexes(response: httpx.Response, body: dict[str, Any]) -> None:
    _first_choice(response, body)
    indexes = [c.get("index") if isinstance(c, dict) else None for c in body["choices"]]
    expect(
        indexes == list(range(len(indexes))),
        "the choices are not indexed from 0",
        expected=f"index values {list(range(len(indexes)))}",
        received=f"{indexes}",
        response=response,
    )


@requirement("CHAT-007")
def test_first_choice_is_assistant_message(api: Api, memo: Memo, target: Target, tier: str) -> None:
    """The shape, not the words. Content null (or absent) is accepted when the choice was cut off by its
    token cap (finish_reason "length"): a reasoning model behind a reasoning parser can spend the cap on
    hidden reasoning, which says nothing about the API."""
    response, body = chat_completion(api, memo, target, tier)
    choice = _first_choice(response, body)
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    cut_off = choice.get("finish_reason") == "length"
    ok = (
        isinstance(message, dict)
        and message.get("role") == "assistant"
        and (isinstance(content, str) or (content is None and cut_off))
    )
    expect(
        ok,
        "the first choice is not an assistant message with string content",
        expected='message: {"role": "assistant", "content": <string>} '
        '(content null only with finish_reason "length")',
        received=f"message: {json.dumps(message)[:200]}, finish_reason {choice.get('finish_reason')!r}",
        response=response,
    )


@requirement("CHAT-008")
def test_choices_have_index_message_finish_reason(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    _expect_choice_indexes(response, body)
    for choice in body["choices"]:
        expect(
            isinstance(choice.get("message"), dict) and "finish_reason" in choice,
            "a choice lacks its message or finish_reason",
            expected="index, message and finish_reason on every choice",
            received=json.dumps(choice)[:200],
            response=response,
        )


def _expect_finish_reasons(response: httpx.Response, body: dict[str, Any]) -> None:
    _first_choice(response, body)
    reasons = [c.get("finish_reason") for c in body["choices"] if isinstance(c, dict)]
    expect(
        all(r in FINISH_REASONS for r in reasons),
        "a finish_reason is outside the documented set",
        expected=f"finish_reason in {FINISH_REASONS}",
        received=f"{reasons}",
        response=response,
    )


@requirement("CHAT-009")
def test_finish_reason_is_documented_value(api: Api, memo: Memo, target: Target, tier: str) -> None:
    _expect_finish_reasons(*chat_completion(api, memo, target, tier))


@requirement("CHAT-010")
def test_42ai_finish_reason_is_documented_value(api: Api, memo: Memo, target: Target, tier: str) -> None:
    _expect_finish_reasons(*chat_completion(api, memo, target, tier))


def _usage(response: httpx.Response, body: dict[str, Any]) -> dict[str, Any]:
    usage = body.get("usage")
    ok = isinstance(usage, dict) and all(
        _is_int(usage.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    )
    expect(
        ok,
        "usage lacks integer token counts",
        expected="usage: integer prompt_tokens, completion_tokens, total_tokens",
        received=f"usage: {json.dumps(usage)[:200]}",
        response=response,
    )
    assert isinstance(usage, dict)
    return usage


@requirement("CHAT-011")
def test_usage_has_integer_counts(api: Api, memo: Memo, target: Target, tier: str) -> None:
    _usage(*chat_completion(api, memo, target, tier))


@requirement("CHAT-012")
def test_usage_total_is_prompt_plus_completion(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    u = _usage(response, body)
    expect(
        u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"],
        "usage.total_tokens is not prompt_tokens + completion_tokens",
        expected=f"total_tokens == {u['prompt_tokens']} + {u['completion_tokens']}",
        received=f"total_tokens == {u['total_tokens']}",
        response=response,
    )


@requirement("CHAT-013")
def test_usage_counts_are_plausible(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    u = _usage(response, body)
    expect(
        u["prompt_tokens"] >= 1 and u["completion_tokens"] >= 0,
        "usage counts are implausible",
        expected="prompt_tokens >= 1 and completion_tokens >= 0",
        received=f"prompt_tokens {u['prompt_tokens']}, completion_tokens {u['completion_tokens']}",
        response=response,
    )


# --------------------------------------------------------------------------- request members
def _variant(model: str, name: str) -> dict[str, Any]:
    short = "Reply with the single word: yes."
    if name == "roles":
        return {
            "model": model,
            "max_tokens": 8,
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!"},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": short},
            ],
        }
    values: dict[str, Any] = {
        "max_tokens=8": {"max_tokens": 8},
        "max_tokens=null": {"max_tokens": None},
        "max_completion_tokens=8": {"max_completion_tokens": 8},
        "max_completion_tokens=null": {"max_completion_tokens": None, "max_tokens": 8},
        "extra-members": {"temperature": 0.5, "user": "conform42", "x_probe": {"any": ["thing", 1]}},
        "response_format=text": {"response_format": {"type": "text"}},
        "response_format=null": {"response_format": None},
    }
    body = chat_body(model, short, max_tokens=None if name.startswith("max_") else 8)
    body.update(values[name])
    return body


def _expect_accepted(api: Api, target: Target, tier: str, name: str) -> None:
    response = api.post(CHAT, _variant(target.chat_model, name), tier=tier)
    expect_success(target, response, f"a chat request with {name} was not accepted")


@requirement("CHAT-014")
def test_system_user_assistant_conversation_accepted(api: Api, target: Target, tier: str) -> None:
    _expect_accepted(api, target, tier, "roles")


@requirement("CHAT-016")
@pytest.mark.parametrize("name", ["max_tokens=8", "max_tokens=null"])
def test_max_tokens_integer_or_null_accepted(api: Api, target: Target, tier: str, name: str) -> None:
    _expect_accepted(api, target, tier, name)


@requirement("CHAT-017")
@pytest.mark.parametrize("name", ["max_completion_tokens=8", "max_completion_tokens=null"])
def test_max_completion_tokens_integer_or_null_accepted(
    api: Api, target: Target, tier: str, name: str
) -> None:
    _expect_accepted(api, target, tier, name)


@requirement("CHAT-018")
def test_extra_members_accepted(api: Api, target: Target, tier: str) -> None:
    _expect_accepted(api, target, tier, "extra-members")


@requirement("CHAT-019")
@pytest.mark.parametrize("name", ["response_format=text", "response_format=null"])
def test_response_format_object_or_null_accepted(api: Api, target: Target, tier: str, name: str) -> None:
    _expect_accepted(api, target, tier, name)


@requirement("CHAT-020")
@pytest.mark.parametrize(
    "name", ["roles", "max_tokens=8", "max_completion_tokens=8", "response_format=text", "extra-members"]
)
def test_42ai_accepts_fortytwo_request_members(api: Api, target: Target, tier: str, name: str) -> None:
    _expect_accepted(api, target, tier, name)


@requirement("CHAT-015")
@pytest.mark.parametrize("stream", ["omitted", "false"])
def test_non_streamed_answer_is_single_json(api: Api, target: Target, tier: str, stream: str) -> None:
    body = chat_body(target.chat_model, max_tokens=8)
    if stream == "false":
        body["stream"] = False
    response = api.post(CHAT, body, tier=tier)
    expect_success(target, response, "a non-streamed chat request was not answered with success")
    content_type = response.headers.get("content-type", "")
    expect(
        content_type.split(";")[0].strip() == "application/json",
        "a non-streamed completion is not application/json",
        expected="Content-Type: application/json",
        received=f"Content-Type: {content_type}",
        response=response,
    )
    body_json = json_object(response, "the completion")
    expect(
        body_json.get("object") != "chat.completion.chunk" and "choices" in body_json,
        "a non-streamed completion looks like a stream chunk",
        expected="one chat completion",
        received=json.dumps(body_json)[:200],
        response=response,
    )


# ------------------------------------------------------------------------------------ token caps
CAPS = ["max_tokens", "max_completion_tokens"]


def _capped(
    api: Api, memo: Memo, target: Target, tier: str, cap: str, n: int
) -> tuple[httpx.Response, dict[str, Any]]:
    def fetch() -> tuple[httpx.Response, dict[str, Any]]:
        body = chat_body(target.chat_model, LONG_PROMPT, max_tokens=None)
        body[cap] = n
        response = api.post(CHAT, body, tier=tier)
        expect_success(target, response, f"a request with {cap}={n} was not accepted")
        return response, json_object(response)

    return memo(f"capped-{cap}-{n}-{tier}", fetch)


@requirement("CHAT-021")
@pytest.mark.parametrize("cap", CAPS)
def test_completion_tokens_within_cap(api: Api, memo: Memo, target: Target, tier: str, cap: str) -> None:
    response, body = _capped(api, memo, target, tier, cap, 4)
    u = _usage(response, body)
    expect(
        u["completion_tokens"] <= 4,
        f"{cap} did not cap the completion",
        expected="completion_tokens <= 4",
        received=f"completion_tokens {u['completion_tokens']}",
        response=response,
    )


@requirement("CHAT-022")
@pytest.mark.parametrize("cap", CAPS)
def test_cut_off_answer_has_finish_reason_length(
    api: Api, memo: Memo, target: Target, tier: str, cap: str
) -> None:
    response, body = _capped(api, memo, target, tier, cap, 1)
    reason = _first_choice(response, body).get("finish_reason")
    expect(
        reason == "length",
        f"an answer cut off by {cap}=1 does not say so",
        expected='finish_reason "length"',
        received=f"finish_reason {reason!r}",
        response=response,
    )
