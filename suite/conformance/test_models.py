"""Models: the documented model table and its tiers (42ai), and GET /v1/models (both APIs)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from suite.checks import excerpt, expect, expect_envelope, expect_status, fail
from suite.conformance._helpers import (
    CHAT,
    EMBED,
    MODELS,
    Memo,
    chat_body,
    chat_completion,
    expect_success,
    first_tier,
    json_object,
    json_or_none,
)
from suite.features import skip_unless_image_taken
from suite.http import Api
from suite.markers import requirement
from suite.target import DOCUMENTED_MODELS, Target

#: requirement -> the model it grants to the tiers of the table in 000.
_GRANTS = {
    "MODEL-001": "42-think",
    "MODEL-002": "42-vision",
    "MODEL-003": "42-logic",
    "MODEL-004": "42-coder",
    "MODEL-005": "42-general",
    "MODEL-006": "42-embed",
}
_CASES = [
    pytest.param(model, tier, marks=requirement(rid), id=f"{model}-{tier}")
    for rid, model in _GRANTS.items()
    for tier in DOCUMENTED_MODELS[model]
]
FORBIDDEN_FOR_FREE = [m for m, tiers in DOCUMENTED_MODELS.items() if "free" not in tiers]


def use_model(api: Api, model: str, tier: str) -> httpx.Response:
    if model == "42-embed":
        return api.post(EMBED, {"model": model, "input": "Hello world"}, tier=tier)
    return api.post(CHAT, chat_body(model, max_tokens=4), tier=tier)


@pytest.mark.parametrize(("model", "tier"), _CASES)
def test_tier_may_use_documented_model(api: Api, model: str, tier: str) -> None:
    """Any 2xx: 000's model table grants the use and names no status code (an exact 200 is SPEC-001's)."""
    response = use_model(api, model, tier)
    expect_success(api.target, response, f"the {tier} tier could not use {model}, which 000 grants it")


def model_list(api: Api, memo: Memo, tier: str) -> tuple[httpx.Response, dict[str, Any]]:
    """``GET /v1/models`` answered with a JSON object (001 names the endpoint, not its status or shape)."""

    def fetch() -> tuple[httpx.Response, dict[str, Any]]:
        response = api.get(MODELS, tier=tier)
        expect(
            response.is_success,
            "GET /v1/models failed",
            expected="a 2xx status (200 expected)",
            received=f"HTTP {response.status_code}",
            response=response,
        )
        return response, json_object(response, "the model list")

    return memo(f"models-{tier}", fetch)


def listed_ids(api: Api, memo: Memo, tier: str) -> tuple[httpx.Response, list[str] | None]:
    """The ids of the OpenAI-style list's model objects (items that are not an object with a string id
    are passed over); None when the answer has no ``data`` array to read them from."""
    response, body = model_list(api, memo, tier)
    data = body.get("data")
    if not isinstance(data, list):
        return response, None
    return response, [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


@requirement("MODEL-007")
def test_model_list_covers_documented_models(api: Api, memo: Memo, target: Target) -> None:
    target.key("pro")  # the requirement is about the pro listing: Disabled without a pro key
    response, body = model_list(api, memo, "pro")
    _response, ids = listed_ids(api, memo, "pro")
    missing = sorted(set(DOCUMENTED_MODELS) - set(ids or ()))
    expect(
        body.get("object") == "list" and not missing,
        "GET /v1/models does not list the documented models",
        expected=f'object "list" with ids {", ".join(DOCUMENTED_MODELS)}',
        received=f"object {body.get('object')!r}, missing {missing}",
        response=response,
    )


@requirement("MODEL-008")
def test_chat_completion_names_requested_model(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = chat_completion(api, memo, target, tier)
    expect(
        body.get("model") == target.chat_model,
        "the completion does not name the requested model",
        expected=f"model == {target.chat_model!r}",
        received=f"model == {body.get('model')!r}",
        response=response,
    )


def unknown_model_response(api: Api, memo: Memo, tier: str) -> httpx.Response:
    return memo(
        "unknown-model",
        lambda: api.post(CHAT, chat_body(f"conform42-no-such-model-{uuid.uuid4().hex[:8]}"), tier=tier),
    )


@requirement("MODEL-009")
def test_unknown_model_is_404(api: Api, memo: Memo, tier: str) -> None:
    expect_status(
        unknown_model_response(api, memo, tier),
        404,
        message="a model ID outside the table was not answered 404",
    )


@requirement("MODEL-010")
def test_model_list_has_models(api: Api, memo: Memo, target: Target) -> None:
    """Its statement: at least one model object with a non-empty string id (other items, such as a
    listing's extra entries of another kind, are not judged)."""
    response, ids = listed_ids(api, memo, first_tier(target))
    expect(
        response.status_code == 200 and any(ids or ()),
        "GET /v1/models lists no model object with a string id",
        expected='HTTP 200, {"data": [{"id": <non-empty string>, ...}, ...]} with at least one such item',
        received=f"HTTP {response.status_code}, ids {ids!r}" if ids is not None else excerpt(response, 200),
        response=response,
    )


@requirement("MODEL-011")
def test_a_listed_model_chats(api: Api, memo: Memo, target: Target) -> None:
    """001 takes the chat model's ID "from /v1/models": some listed model must chat. Not every one: a
    server may list embedding models there too. The configured chat model is tried first when listed,
    then the others in list order, until one answers 200. Uses the strongest key given, so a tier
    restriction is not mistaken for a refusal of the model."""
    tier = first_tier(target, ("internal", "pro", "free"))
    _response, ids = listed_ids(api, memo, tier)
    if ids is None:
        # 001 names the endpoint, not its shape: a listing that is not an OpenAI-style list (MODEL-010,
        # a SHOULD, judges that) gives the suite no id to try.
        pytest.skip("GET /v1/models has no data array of model objects to take ids from (see MODEL-010)")
    candidates = [m for m in ids if m]
    candidates.sort(key=lambda m: m != target.chat_model)  # stable: the chat model first, then list order
    refused: list[str] = []
    last: httpx.Response | None = None
    for model in candidates:
        response = api.post(CHAT, chat_body(model, max_tokens=4), tier=tier)
        if response.status_code == 200:
            return
        refused.append(f"{model}: HTTP {response.status_code}")
        last = response
    fail(
        "no model listed by GET /v1/models is accepted for chat completions",
        expected=f"HTTP 200 for at least one of the {len(candidates)} listed ids",
        received="; ".join(refused) or "no listed model id",
        response=last,
    )


@requirement("MODEL-013")
def test_vision_model_takes_an_image(api: Api, target: Target) -> None:
    """A 42-vision chat request carrying the suite's image (``--image-url``) as an OpenAI image_url
    content part is accepted. Invariants only: 200 and an assistant message; what the model says about
    the image is not judged."""
    tier = first_tier(target, ("pro", "internal"))
    body = {
        "model": "42-vision",
        "max_tokens": 16,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this image in one sentence."},
                    {"type": "image_url", "image_url": {"url": target.image_url}},
                ],
            }
        ],
    }
    response = api.post(CHAT, body, tier=tier)
    skip_unless_image_taken(target, target.image_url, response, "the 42-vision chat request")
    expect_status(response, 200, message="a 42-vision chat request with an image was not accepted")
    completion = json_object(response, "the 42-vision completion")
    choices = completion.get("choices")
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = first.get("message")
    expect(
        isinstance(message, dict) and message.get("role") == "assistant",
        "the 42-vision completion has no assistant message",
        expected='choices[0].message: {"role": "assistant", ...}',
        received=f"choices: {json.dumps(choices)[:200]}",
        response=response,
    )


@requirement("MODEL-012")
def test_unlisted_model_is_404(api: Api, memo: Memo, tier: str) -> None:
    response = unknown_model_response(api, memo, tier)
    expect_status(response, 404, message="a model ID that GET /v1/models does not list was not 404")
    expect_envelope(response)


# ------------------------------------------------------------------------------ tier refusals
def free_forbidden_response(api: Api, memo: Memo, model: str) -> httpx.Response:
    return memo(f"free-{model}", lambda: api.post(CHAT, chat_body(model, max_tokens=4), tier="free"))


@requirement("LIMIT-008")
@pytest.mark.parametrize("model", FORBIDDEN_FOR_FREE)
def test_free_tier_model_refusal_is_403(api: Api, memo: Memo, model: str) -> None:
    response = free_forbidden_response(api, memo, model)
    expect_status(response, 403, message=f"the free tier's request for {model} was not refused with 403")
    expect_envelope(response, error_type="permission_error")


@requirement("LIMIT-009")
@pytest.mark.parametrize("model", FORBIDDEN_FOR_FREE)
def test_free_tier_cannot_use_pro_model(api: Api, memo: Memo, model: str) -> None:
    response = free_forbidden_response(api, memo, model)
    body = json_or_none(response)
    has_completion = isinstance(body, dict) and bool(body.get("choices"))
    expect(
        not response.is_success and not has_completion,
        f"the free tier was served {model}, which 000 reserves for pro and internal",
        expected="a refusal (no 2xx, no completion)",
        received=f"HTTP {response.status_code}{' with choices' if has_completion else ''}",
        response=response,
    )
