"""Embeddings: response shape, order of list input, one dimension, usage, unit-length vectors."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx

from suite.checks import disabled, expect
from suite.conformance._helpers import EMBED, Memo, cosine, expect_success, json_object
from suite.http import Api
from suite.markers import requirement
from suite.target import Target

#: The list input: positions 0 and 2 repeat one string, so a server that answers repeated strings once
#: (a cache keyed by text, a set) shows it in the count and the indexes.
LIST_INPUT = ["Hello world", "The lighthouse keeper watched the sea.", "Hello world", "forty two"]
REPEATED = (0, 2)
#: Tolerance for a unit vector's length (float32 vectors and rounding in JSON).
NORM_TOLERANCE = 1e-3
#: Equal inputs give (nearly) equal vectors: batched inference may differ in the last float32 bits.
SAME_INPUT_COSINE = 0.999


def _model(target: Target) -> str:
    if not target.embed_model:
        disabled("no embedding model configured (--embed-model)")
    return target.embed_model


def embed(
    api: Api, memo: Memo, target: Target, tier: str, which: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """``which``: "single" (the documented "Hello world") or "list" (three strings)."""
    payload: Any = "Hello world" if which == "single" else LIST_INPUT

    def fetch() -> tuple[httpx.Response, dict[str, Any]]:
        response = api.post(EMBED, {"model": _model(target), "input": payload}, tier=tier)
        expect_success(target, response, f"POST /v1/embeddings with {which} input failed")
        return response, json_object(response, "the embeddings response")

    return memo(f"embed-{which}-{tier}", fetch)


def _vectors(response: httpx.Response, body: dict[str, Any]) -> list[list[float]]:
    data = body.get("data")
    ok = isinstance(data, list) and all(
        isinstance(item, dict)
        and isinstance(item.get("embedding"), list)
        and item["embedding"]
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in item["embedding"])
        for item in data
    )
    expect(
        ok,
        "the embeddings data is not a list of number arrays",
        expected='data: [{"embedding": [<number>, ...], "index": <int>}, ...]',
        received=json.dumps(data)[:200],
        response=response,
    )
    assert isinstance(data, list)
    return [item["embedding"] for item in data]


@requirement("EMBED-001")
def test_single_input_gives_one_embedding(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = embed(api, memo, target, tier, "single")
    vectors = _vectors(response, body)
    expect(
        len(vectors) == 1 and body["data"][0].get("index") == 0,
        "a string input did not give one item 0",
        expected="one data item with index 0",
        received=f"{len(vectors)} items, indexes {[d.get('index') for d in body['data']]}",
        response=response,
    )


def _usage(response: httpx.Response, body: dict[str, Any]) -> dict[str, Any]:
    usage = body.get("usage")
    ok = isinstance(usage, dict) and all(
        isinstance(usage.get(k), int) and not isinstance(usage.get(k), bool)
        for k in ("prompt_tokens", "total_tokens")
    )
    expect(
        ok,
        "the embeddings usage lacks integer counts",
        expected="usage: integer prompt_tokens and total_tokens",
        received=f"usage: {json.dumps(usage)[:200]}",
        response=response,
    )
    assert isinstance(usage, dict)
    return usage


@requirement("EMBED-002")
def test_usage_has_integer_counts(api: Api, memo: Memo, target: Target, tier: str) -> None:
    _usage(*embed(api, memo, target, tier, "single"))


@requirement("EMBED-003")
def test_usage_total_equals_prompt(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = embed(api, memo, target, tier, "single")
    usage = _usage(response, body)
    expect(
        usage["total_tokens"] == usage["prompt_tokens"] >= 1,
        "embedding usage does not add up",
        expected="total_tokens == prompt_tokens >= 1",
        received=json.dumps(usage),
        response=response,
    )


@requirement("EMBED-004")
def test_list_input_keeps_order(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = embed(api, memo, target, tier, "list")
    vectors = _vectors(response, body)
    expect(
        len(vectors) == len(LIST_INPUT),
        "list input is not answered with one item per input",
        expected=f"{len(LIST_INPUT)} data items for {len(LIST_INPUT)} inputs (one of them repeated)",
        received=f"{len(vectors)} data items",
        response=response,
    )
    indexes = [item.get("index") for item in body["data"]]
    expect(
        indexes == list(range(len(LIST_INPUT))),
        "list input is not answered one item per input, in order",
        expected=f"indexes {list(range(len(LIST_INPUT)))}",
        received=f"indexes {indexes}",
        response=response,
    )


@requirement("EMBED-004")
def test_repeated_inputs_get_equal_embeddings(api: Api, memo: Memo, target: Target, tier: str) -> None:
    """Items are matched to inputs by position: the two copies of one string must get the same vector
    (so a server that answers a repeat once, and shifts the rest, fails here too)."""
    response, body = embed(api, memo, target, tier, "list")
    vectors = _vectors(response, body)
    first, second = REPEATED
    expect(
        len(vectors) == len(LIST_INPUT),
        "list input is not answered with one item per input",
        expected=f"{len(LIST_INPUT)} data items for {len(LIST_INPUT)} inputs",
        received=f"{len(vectors)} data items",
        response=response,
    )
    same = len(vectors[first]) == len(vectors[second]) and (
        cosine(vectors[first], vectors[second]) > SAME_INPUT_COSINE
    )
    expect(
        same,
        "equal inputs of one list got different embeddings",
        expected=f"items {first} and {second} (both {LIST_INPUT[0]!r}) with cosine > {SAME_INPUT_COSINE}",
        received=(
            f"cosine {cosine(vectors[first], vectors[second]):.4f}"
            if len(vectors[first]) == len(vectors[second])
            else f"lengths {len(vectors[first])} and {len(vectors[second])}"
        ),
        response=response,
    )


@requirement("EMBED-005")
def test_vectors_share_one_dimension(api: Api, memo: Memo, target: Target, tier: str) -> None:
    single = embed(api, memo, target, tier, "single")
    listed = embed(api, memo, target, tier, "list")
    lengths = {len(v) for v in _vectors(*single) + _vectors(*listed)}
    expect(
        len(lengths) == 1,
        "embedding vectors differ in length",
        expected="one length for every vector, across inputs and calls",
        received=f"lengths {sorted(lengths)}",
        response=listed[0],
    )


@requirement("EMBED-006")
def test_openai_embedding_members(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = embed(api, memo, target, tier, "single")
    data = body.get("data")
    items: list[Any] = data if isinstance(data, list) else []
    ok = (
        body.get("object") == "list"
        and isinstance(body.get("model"), str)
        and all(isinstance(i, dict) and i.get("object") == "embedding" for i in items)
    )
    expect(
        ok,
        "the embeddings response lacks the OpenAI members",
        expected='object "list", a string model, items with object "embedding"',
        received=f"object {body.get('object')!r}, model {body.get('model')!r}, "
        f"item objects {[i.get('object') for i in items if isinstance(i, dict)]}",
        response=response,
    )


@requirement("EMBED-007")
def test_vectors_are_unit_length(api: Api, memo: Memo, target: Target, tier: str) -> None:
    response, body = embed(api, memo, target, tier, "list")
    norms = [math.sqrt(sum(x * x for x in v)) for v in _vectors(response, body)]
    expect(
        all(abs(n - 1.0) <= NORM_TOLERANCE for n in norms),
        "embedding vectors are not normalised",
        expected=f"L2 norm 1 (within {NORM_TOLERANCE})",
        received=f"norms {[round(n, 4) for n in norms]}",
        response=response,
    )
