"""Both OpenAPI documents are valid OpenAPI 3.1."""

from __future__ import annotations

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
    found = [
        name
        for name, body in response.items()
        if "Retry-After" in body.get("headers", {})
    ]
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
