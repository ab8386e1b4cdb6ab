"""Embeddings over the sim engine (EMBED-*, MODEL-006)."""

from __future__ import annotations

import base64
import math
import struct

URL = "/v1/embeddings"


def embed(client, headers, value, **extra):
    return client.post(URL, headers=headers, json={"model": "42-embed", "input": value, **extra})


def test_string_input_gives_one_item_at_index_0(client, headers_for):
    response = embed(client, headers_for("free"), "Hello world")
    assert response.status_code == 200
    [item] = response.json()["data"]
    assert item["index"] == 0
    assert item["embedding"] and all(isinstance(x, float) for x in item["embedding"])


def test_list_input_gives_items_in_input_order(client, headers_for):
    headers = headers_for("free")
    texts = ["alpha", "beta gamma", "delta"]
    data = embed(client, headers, texts).json()["data"]
    assert [item["index"] for item in data] == [0, 1, 2]
    singles = [embed(client, headers, t).json()["data"][0]["embedding"] for t in texts]
    assert [item["embedding"] for item in data] == singles


def test_all_vectors_have_the_same_dimension(client, headers_for):
    headers = headers_for("free")
    data = embed(client, headers, ["a", "b c d e f", "g" * 500]).json()["data"]
    dims = {len(item["embedding"]) for item in data}
    dims.add(len(embed(client, headers, "another call").json()["data"][0]["embedding"]))
    assert len(dims) == 1


def test_vectors_have_unit_norm(client, headers_for):
    for item in embed(client, headers_for("free"), ["one", "two words", "Hello world"]).json()["data"]:
        assert math.isclose(math.sqrt(sum(x * x for x in item["embedding"])), 1.0, rel_tol=1e-9)


def test_usage_total_equals_prompt_tokens_and_is_positive(client, headers_for):
    usage = embed(client, headers_for("free"), "Hello world").json()["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"] >= 1


def test_response_has_the_openai_list_shape(client, headers_for):
    body = embed(client, headers_for("free"), "Hello world").json()
    assert body["object"] == "list"
    assert body["model"] == "42-embed"
    assert {item["object"] for item in body["data"]} == {"embedding"}


def test_base64_encoding_decodes_to_the_float_vector(client, headers_for):
    headers = headers_for("free")
    floats = embed(client, headers, "Hello world").json()["data"][0]["embedding"]
    encoded = embed(client, headers, "Hello world", encoding_format="base64").json()["data"][0]["embedding"]
    raw = base64.b64decode(encoded)
    decoded = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(decoded) == len(floats)
    assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7) for a, b in zip(decoded, floats, strict=True))


def test_empty_input_is_422(client, headers_for):
    headers = headers_for("free")
    for value in ("", [], [""], [1, 2]):
        assert embed(client, headers, value).status_code == 422


def test_unknown_model_is_404(client, headers_for):
    response = client.post(URL, headers=headers_for("free"), json={"model": "42-embed-xl", "input": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "model_not_found"
