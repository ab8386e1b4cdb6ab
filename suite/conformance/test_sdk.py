"""The official OpenAI Python SDK works unmodified against the target (no retries, a timeout set).

42ai: the SDK's api_key is a fresh task token (the SDK sends it as the Bearer). Fortytwo: the API key.
An SDK exception where the test expects success is a Fail naming the exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import openai
import pytest

from suite.checks import expect, fail
from suite.conformance._helpers import EMBED, MODELS, Memo, cosine, json_or_none, late
from suite.conformance.conftest import AgedToken
from suite.http import Api
from suite.markers import requirement
from suite.target import Target

T = TypeVar("T")
#: The SDK's float32 decoding of a base64 vector against the JSON floats of the same request.
SDK_COSINE = 0.999


def client(target: Target, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=api_key, base_url=f"{target.base_url}/v1", max_retries=0, timeout=target.timeout
    )


@contextmanager
def sdk(api: Api, target: Target, tier: str) -> Iterator[openai.OpenAI]:
    with client(target, api.new_token(tier)) as c:
        yield c


def call(what: str, action: Callable[[], T]) -> T:
    """Run an SDK call; an SDK exception is a Fail that says which call and why."""
    try:
        return action()
    except openai.OpenAIError as exc:
        status = getattr(exc, "status_code", None)
        fail(
            f"the OpenAI SDK failed: {what}",
            expected="the call to succeed",
            received=f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {str(exc)[:300]}",
        )


def _chat_content(api: Api, target: Target, tier: str) -> tuple[object, object]:
    """``choices[0].message.content`` and ``choices[0].finish_reason`` of one SDK completion."""
    with sdk(api, target, tier) as c:
        completion = call(
            "chat.completions.create",
            lambda: c.chat.completions.create(
                model=target.chat_model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
            ),
        )
    if not completion.choices:
        fail("the SDK's completion has no choices", expected="choices[0]", received="choices: []")
    first = completion.choices[0]
    return first.message.content, first.finish_reason


def _expect_string_content(content: object, finish_reason: object) -> None:
    """A string, or null when the token cap cut the reply off before any visible text (a reasoning
    model's hidden reasoning): the words are the model's business, not the API's."""
    expect(
        isinstance(content, str) or (content is None and finish_reason == "length"),
        "the SDK's completion has no string content",
        expected='choices[0].message.content: a string (None only with finish_reason "length")',
        received=f"content {content!r}, finish_reason {finish_reason!r}",
    )


@requirement("SDK-001")
def test_sdk_chat_completion(api: Api, target: Target, tier: str) -> None:
    _expect_string_content(*_chat_content(api, target, tier))


@requirement("SDK-004")
def test_sdk_chat_completion_with_task_token(api: Api, target: Target, tier: str) -> None:
    _expect_string_content(*_chat_content(api, target, tier))


def _streamed_reply(api: Api, target: Target, tier: str) -> tuple[str, set[str]]:
    """The reply 001's loop prints, and the finish_reasons the stream carried."""
    pieces: list[str] = []
    reasons: set[str] = set()
    with sdk(api, target, tier) as c:

        def consume() -> None:
            stream = c.chat.completions.create(
                model=target.chat_model,
                messages=[{"role": "user", "content": "Tell me a story"}],
                max_tokens=16,
                stream=True,
            )
            for chunk in stream:
                # 001's loop, verbatim in spirit: index choices[0] on every chunk.
                if chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if chunk.choices[0].finish_reason:
                    reasons.add(chunk.choices[0].finish_reason)

        try:
            call("chat.completions.create(stream=True)", consume)
        except (IndexError, AttributeError) as exc:
            fail(
                "a streamed chunk cannot be read as 001's SDK loop reads it",
                expected="chunk.choices[0].delta.content readable on every chunk",
                received=f"{type(exc).__name__}: {exc}",
            )
    return "".join(pieces), reasons


def _expect_streamed_text(reply: str, reasons: set[str]) -> None:
    """Non-empty text, unless the token cap cut the stream off first (finish_reason "length"): a
    reasoning model can spend a small cap on hidden reasoning, which judges the model, not the API."""
    expect(
        reply.strip() or "length" in reasons,
        "the SDK stream gave no text",
        expected='a non-empty reply (or finish_reason "length")',
        received=f"{reply!r}, finish_reasons {sorted(reasons)}",
    )


@requirement("SDK-002")
def test_sdk_stream_reads_every_chunk(api: Api, memo: Memo, target: Target, tier: str) -> None:
    """001's loop runs: choices[0].delta.content is read on every chunk (a chunk it cannot read fails
    inside ``_streamed_reply``). What the pieces say is SDK-009's (a SHOULD)."""
    memo(f"sdk-stream-{tier}", lambda: _streamed_reply(api, target, tier))


@requirement("SDK-009")
def test_sdk_stream_gives_a_reply(api: Api, memo: Memo, target: Target, tier: str) -> None:
    _expect_streamed_text(*memo(f"sdk-stream-{tier}", lambda: _streamed_reply(api, target, tier)))


@requirement("SDK-006")
def test_42ai_sdk_stream(api: Api, target: Target, tier: str) -> None:
    _expect_streamed_text(*_streamed_reply(api, target, tier))


@requirement("SDK-003")
@pytest.mark.parametrize("case", ["invalid-key", "unknown-model"])
def test_sdk_raises_documented_errors(api: Api, target: Target, tier: str, case: str) -> None:
    expected_error: type[openai.APIStatusError] = (
        openai.AuthenticationError if case == "invalid-key" else openai.NotFoundError
    )
    key = "invalid-conform42-key" if case == "invalid-key" else api.new_token(tier)
    model = target.chat_model if case == "invalid-key" else "conform42-no-such-model"
    with client(target, key) as c:
        try:
            c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        except expected_error:
            return
        except openai.OpenAIError as exc:
            fail(
                f"the SDK raised the wrong error for {case.replace('-', ' ')}",
                expected=f"openai.{expected_error.__name__}",
                received=f"{type(exc).__name__}: {str(exc)[:200]}",
            )
    fail(
        f"the SDK call with {case.replace('-', ' ')} succeeded",
        expected=f"openai.{expected_error.__name__}",
        received="a completion",
    )


@requirement("SDK-005")
def test_sdk_embeddings(api: Api, target: Target, tier: str) -> None:
    model = target.embed_model or "42-embed"
    with sdk(api, target, tier) as c:
        result = call("embeddings.create", lambda: c.embeddings.create(model=model, input="Hello world"))
    vector = result.data[0].embedding if result.data else None
    expect(
        isinstance(vector, list) and vector and all(isinstance(x, float) for x in vector),
        "the SDK's embedding is not a list of floats",
        expected="data[0].embedding: non-empty list[float]",
        received=repr(vector)[:200],
    )


@requirement("SDK-005")
def test_sdk_embedding_is_the_servers_vector(api: Api, target: Target, tier: str) -> None:
    """The SDK asks for base64 by default and decodes it as little-endian float32 (OpenAI's encoding); the
    vector it hands back must be the one the same request gives as plain JSON floats: same dimension,
    cosine > 0.999 (a base64 packing of another width decodes to garbage of another length)."""
    model = target.embed_model or "42-embed"
    with sdk(api, target, tier) as c:
        result = call("embeddings.create", lambda: c.embeddings.create(model=model, input="Hello world"))
    decoded = list(result.data[0].embedding) if result.data else []
    plain = api.post(EMBED, {"model": model, "input": "Hello world", "encoding_format": "float"}, tier=tier)
    body = json_or_none(plain) if plain.status_code == 200 else None
    data = body.get("data") if isinstance(body, dict) else None
    first = data[0] if isinstance(data, list) and data else None
    reference = first.get("embedding") if isinstance(first, dict) else None
    if not (isinstance(reference, list) and reference and all(isinstance(x, int | float) for x in reference)):
        pytest.skip("no float embedding to compare with (POST /v1/embeddings is judged by the EMBED tests)")
    expect(
        len(decoded) == len(reference),
        "the SDK's embedding has another dimension than the same request's float JSON",
        expected=f"{len(reference)} floats (encoding_format float)",
        received=f"{len(decoded)} floats decoded by the SDK (encoding_format base64)",
        response=plain,
    )
    similarity = cosine(decoded, reference)
    expect(
        similarity > SDK_COSINE,
        "the SDK's embedding is not the vector the same request gives as float JSON",
        expected=f"cosine > {SDK_COSINE} with the encoding_format float vector",
        received=f"cosine {similarity:.4f}",
        response=plain,
    )


@requirement("SDK-007")
def test_sdk_models_list_matches_endpoint(api: Api, target: Target, tier: str) -> None:
    with sdk(api, target, tier) as c:
        sdk_ids = sorted(m.id for m in call("models.list", lambda: list(c.models.list())))
    response = api.get(MODELS, tier=tier)
    body = response.json() if response.status_code == 200 else {}
    http_ids = sorted(str(m.get("id")) for m in body.get("data", []) if isinstance(m, dict))
    expect(
        sdk_ids == http_ids and sdk_ids,
        "models.list() does not return the ids of GET /v1/models",
        expected=f"{http_ids}",
        received=f"{sdk_ids}",
        response=response,
    )


@late
@requirement("SDK-008")
def test_sdk_expired_token_raises_authentication_error(target: Target, expired_token: AgedToken) -> None:
    assert expired_token.token is not None
    with client(target, expired_token.token) as c:
        try:
            c.chat.completions.create(
                model=target.chat_model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4
            )
        except openai.AuthenticationError:
            return
        except openai.OpenAIError as exc:
            fail(
                "the SDK raised the wrong error for an expired task token",
                expected="openai.AuthenticationError",
                received=f"{type(exc).__name__}: {str(exc)[:200]}",
            )
    fail(
        "an expired task token still worked through the SDK",
        expected="openai.AuthenticationError",
        received="a completion",
    )
