"""Request bodies of the /v1 inference endpoints, as pydantic v2 models.

Strict types wherever a JSON value of the wrong type must be refused (422) rather than coerced: pydantic's
lax mode would turn ``"model": 42`` into ``"42"`` or ``"stream": "yes"`` into ``True``, and the catalogue
(ERR-004) wants a mistyped field answered as a schema violation. Chat requests keep unknown members
(``additionalProperties: true`` in both specs, CHAT-018) so they reach the engine untouched.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from reference_server.errors import ApiError

__all__ = [
    "MAX_BATCH_TASKS",
    "BatchMessage",
    "BatchRequest",
    "BatchTask",
    "ChatCompletionRequest",
    "ChatMessage",
    "ContentPart",
    "EmbeddingRequest",
    "ImagePart",
    "ImageUrl",
    "PipelineRequest",
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


class ResponseFormat(BaseModel):
    """OpenAI's response_format: its kind in ``type``; the rest (json_schema, ...) goes to the engine."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]


class StreamOptions(BaseModel):
    # Engine-specific options (vLLM's continuous_usage_stats) pass through.
    model_config = ConfigDict(extra="allow")

    include_usage: StrictBool = False


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 16.0 is the integer 16 (JSON Schema agrees), but 16.5 and "16" are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: A token count: an integer, or a float with no fractional part; never a string or a boolean.
WholeNumber = Annotated[StrictInt, BeforeValidator(_whole_number)]


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: StrictStr
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    max_tokens: WholeNumber | None = Field(default=None, ge=1)
    max_completion_tokens: WholeNumber | None = Field(default=None, ge=1)
    response_format: ResponseFormat | None = None
    # JSON has one number type: 1 and 1.0 are both a valid temperature, "1" is not.
    temperature: StrictFloat | StrictInt | None = Field(default=None, ge=0, le=2)


class EmbeddingRequest(BaseModel):
    # OpenAI members such as ``user`` or ``dimensions`` are tolerated and passed to the engine.
    model_config = ConfigDict(extra="allow")

    model: StrictStr
    # An empty string has nothing to embed; refusing it (422) beats returning a meaningless vector.
    input: (
        Annotated[StrictStr, Field(min_length=1)]
        | Annotated[list[Annotated[StrictStr, Field(min_length=1)]], Field(min_length=1)]
    )
    # The OpenAI SDK sends "base64" unless told otherwise.
    encoding_format: Literal["float", "base64"] | None = None


#: Tasks per batch: every task is validated and stored before the answer, so the request stays bounded.
MAX_BATCH_TASKS = 1000


class BatchMessage(BaseModel):
    """A batch task's message: text only, as the Message schema of the 42ai spec."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: StrictStr


class BatchTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: StrictStr = Field(min_length=1, max_length=256)
    messages: list[BatchMessage] = Field(min_length=1)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr
    tasks: list[BatchTask] = Field(min_length=1, max_length=MAX_BATCH_TASKS)
    #: Not in 000: a cap per task's completion; the server's default applies without it.
    max_tokens: WholeNumber | None = Field(default=None, ge=1)

    @field_validator("tasks")
    @classmethod
    def _unique_ids(cls, tasks: list[BatchTask]) -> list[BatchTask]:
        # Results are keyed by task id: a repeated id would lose a result (catalogue BATCH-011).
        repeated = sorted(task_id for task_id, n in Counter(t.id for t in tasks).items() if n > 1)
        if repeated:
            names = ", ".join(map(repr, repeated))
            raise ValueError(f"task ids must be unique within a batch; repeated: {names}")
        return tasks


class PipelineRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    #: Any string: an empty or unknown name is an unknown template (404), as the spec sets no minLength.
    template: StrictStr
    #: Template inputs; which members a template needs is checked against the template itself.
    input: dict[str, Any]


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
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
