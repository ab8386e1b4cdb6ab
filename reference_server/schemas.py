"""Request bodies of the /v1 inference endpoints, as pydantic v2 models.

Strict types wherever a JSON value of the wrong type must be refused (422) rather than coerced: pydantic's
lax mode would turn ``"model": 42`` into ``"42"`` or ``"stream": "yes"`` into ``True``, and the catalogue
(ERR-004) wants a mistyped field answered as a schema violation. Chat requests keep unknown members
(``additionalProperties: true`` in both specs, CHAT-018) so they reach the engine untouched.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from reference_server.errors import ApiError

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "ContentPart",
    "EmbeddingRequest",
    "ImagePart",
    "ImageUrl",
    "StreamOptions",
    "TextPart",
    "parse_body",
]

M = TypeVar("M", bound=BaseModel)


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


class ImageUrl(BaseModel):
    # ``detail`` and similar OpenAI members are tolerated and ignored: the description does not use them.
    model_config = ConfigDict(extra="ignore")

    url: StrictStr = Field(min_length=1)


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    """One message. A list of content parts is accepted here and refused later for non-vision models,
    so that the refusal can say why (400 naming the model) instead of a generic schema error."""

    # Members such as ``name`` are tolerated but not forwarded: the engine gets role and content only.
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: StrictStr | Annotated[list[ContentPart], Field(min_length=1)]


class StreamOptions(BaseModel):
    # Engine-specific options (vLLM's continuous_usage_stats) pass through.
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    response_format: dict[str, Any] | None = None
    # JSON has one number type: 1 and 1.0 are both a valid temperature, "1" is not.
    temperature: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=2)


class EmbeddingRequest(BaseModel):
    # OpenAI members such as ``user`` or ``dimensions`` are tolerated and passed to the engine.
    model_config = ConfigDict(extra="allow")

    model: StrictStr
    # An empty string has nothing to embed; refusing it (422) beats returning a meaningless vector.
    input: Annotated[StrictStr, Field(min_length=1)] | Annotated[
        list[Annotated[StrictStr, Field(min_length=1)]], Field(min_length=1)
    ]
    # The OpenAI SDK sends "base64" unless told otherwise.
    encoding_format: Literal["float", "base64"] | None = None


def parse_body(raw: bytes, content_type: str | None, model: type[M]) -> M:
    """Validate a raw JSON request body against ``model``.

    The routes call this after authentication rather than declaring the model as a FastAPI body
    parameter: FastAPI parses the JSON before it runs dependencies, which would answer a malformed
    body with 400 even for a caller without credentials (who must get 401). Validating the bytes in one
    pydantic (Rust) pass is also cheaper than ``json.loads`` followed by validation on the hot path.
    Errors take the shapes errors.py renders: ``json_invalid`` -> 400, schema violations -> 422 with
    ``detail`` locations starting at ``body`` as FastAPI's own would.
    """
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        # A missing Content-Type is tolerated (curl users forget it); a different one is a client error.
        if media != "application/json" and not media.endswith("+json"):
            raise ApiError(400, f"Content-Type must be application/json, not {media or 'empty'}")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in errors]
        ) from None
