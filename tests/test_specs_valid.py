"""Both OpenAPI documents are valid OpenAPI 3.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

from suite.openapi import SPEC_FILES, load_spec, operation
from suite.resources import specs_dir


@pytest.mark.parametrize("name", sorted(SPEC_FILES.values()))
def test_spec_is_valid_openapi_31(name: str) -> None:
    document, _ = read_from_filename(str(specs_dir() / name))
    assert document["openapi"].startswith("3.1")
    validate(document)


@pytest.mark.parametrize(
    "op",
    [
        "POST /api/token",
        "POST /v1/chat/completions",
        "POST /v1/embeddings",
        "POST /v1/batch",
        "GET /v1/batch/{batch_id}",
        "POST /v1/pipeline",
        "GET /v1/models",
    ],
)
def test_42ai_spec_declares_every_documented_operation(op: str) -> None:
    assert operation(load_spec("42ai"), op) is not None


@pytest.mark.parametrize("op", ["POST /v1/chat/completions", "GET /v1/models"])
def test_fortytwo_spec_declares_its_operations(op: str) -> None:
    assert operation(load_spec("fortytwo"), op) is not None


@pytest.mark.parametrize("status", ["429", "503"])
def test_42ai_retry_after_is_required_on_429_and_503(status: str) -> None:
    spec = load_spec("42ai")
    response = spec["components"]["responses"]
    found = [name for name, body in response.items() if "Retry-After" in body.get("headers", {})]
    assert found, f"no reusable response declares Retry-After (wanted on {status})"
    chat = operation(spec, "POST /v1/chat/completions")
    assert chat is not None
    ref = chat["responses"][status]["$ref"].rsplit("/", 1)[-1]
    header = response[ref]["headers"]["Retry-After"]
    header = spec["components"]["headers"][header["$ref"].rsplit("/", 1)[-1]] if "$ref" in header else header
    assert header.get("required") is True


def test_batch_submission_links_to_status_operation() -> None:
    spec = load_spec("42ai")
    submit = operation(spec, "POST /v1/batch")
    assert submit is not None
    links = [
        link
        for code, response in submit["responses"].items()
        if code.startswith("2")
        for link in response.get("links", {}).values()
    ]
    assert links, "POST /v1/batch declares no OpenAPI link"
    assert all(link["operationId"] == "getBatch" for link in links)
    assert all(link["parameters"]["batch_id"] == "$response.body#/batch_id" for link in links)
    assert operation(spec, "GET /v1/batch/{batch_id}")["operationId"] == "getBatch"  # type: ignore[index]


def test_fortytwo_request_schema_is_faithful_to_the_fragment() -> None:
    schema = load_spec("fortytwo")["components"]["schemas"]["ChatCompletionRequest"]
    assert schema["additionalProperties"] is True
    assert set(schema["required"]) == {"messages", "model"}
    assert {"max_tokens", "max_completion_tokens", "response_format", "stream"} <= set(schema["properties"])


# ------------------------------------------------------------------ inferred constraints, marked
INFERRED = "x-conform42-inferred"
INFERRED_REQUIRED = "x-conform42-inferred-required"


def _nodes(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every mapping of the document with its JSON-pointer-like path."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _nodes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _nodes(value, f"{path}/{index}")


def _marked(profile: str) -> list[tuple[str, dict[str, Any]]]:
    return [(path, node) for path, node in _nodes(load_spec(profile)) if INFERRED in node]


@pytest.mark.parametrize("profile", ["42ai", "fortytwo"])
def test_inferred_marks_name_keywords_of_their_own_schema(profile: str) -> None:
    """Each mark lists JSON-Schema keywords that its object really holds; the required-names list goes
    with a marked `required` and names only members that object requires."""
    marked = _marked(profile)
    assert marked, f"the {profile} spec marks no inferred constraint"
    for path, node in marked:
        keywords = node[INFERRED]
        assert isinstance(keywords, list) and keywords, path
        assert all(k in node and not k.startswith("x-") for k in keywords), (path, keywords)
        names = node.get(INFERRED_REQUIRED)
        if names is not None:
            assert "required" in keywords, path
            assert isinstance(names, list) and names and set(names) <= set(node["required"]), (path, names)
    for path, node in _nodes(load_spec(profile)):
        if INFERRED_REQUIRED in node:
            assert INFERRED in node, f"{path}: {INFERRED_REQUIRED} without {INFERRED}"


def _schema(profile: str, *path: str) -> Any:
    node: Any = load_spec(profile)["components"]["schemas"]
    for key in path:
        node = node[key]
    return node


@pytest.mark.parametrize("profile", ["42ai", "fortytwo"])
def test_constraints_the_documents_do_not_state_are_marked(profile: str) -> None:
    request = _schema(profile, "ChatCompletionRequest", "properties")
    assert "minItems" in request["messages"][INFERRED]
    for cap in ("max_tokens", "max_completion_tokens"):
        branch = next(b for b in request[cap]["anyOf"] if b.get("type") == "integer")
        assert branch[INFERRED] == ["minimum"], cap
    response_format = next(b for b in request["response_format"]["anyOf"] if b.get("type") == "object")
    assert response_format[INFERRED] == ["required"]
    assert response_format[INFERRED_REQUIRED] == ["type"]
    assert response_format["properties"]["type"][INFERRED] == ["enum"]


def test_42ai_embedding_model_and_input_bounds_are_marked() -> None:
    """000's SDK call ai.embed("Hello world") names no model; nothing bounds the input's length."""
    request = _schema("42ai", "EmbeddingRequest")
    assert request[INFERRED_REQUIRED] == ["model"]
    string, array = request["properties"]["input"]["anyOf"]
    assert string[INFERRED] == ["minLength"]
    assert array[INFERRED] == ["minItems"] and array["items"][INFERRED] == ["minLength"]


def test_fortytwo_documented_request_members_stay_required() -> None:
    """001 and 002 state model and messages required: never marked."""
    assert INFERRED not in _schema("fortytwo", "ChatCompletionRequest")
