"""GET /v1/models, and the model checks every inference route makes (404 / 400 / 403)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from reference_server.auth import Caller, require_caller
from reference_server.errors import ApiError
from reference_server.models import MODELS, TIERS, Model, Tier

if TYPE_CHECKING:
    from reference_server.app import Gateway

__all__ = ["MODELS_CREATED", "resolve_model", "router"]

router = APIRouter()

#: A fixed ``created`` (2025-01-01T00:00:00Z): the table is static, and a per-start timestamp would make
#: identical servers answer differently.
MODELS_CREATED = 1735689600

_ENDPOINT = {"chat": "POST /v1/chat/completions", "embed": "POST /v1/embeddings"}
_KIND_NAME = {"chat": "a chat model", "embed": "an embedding model"}
_TIER_MODELS: dict[Tier, str] = {
    tier: ", ".join(m.id for m in MODELS.values() if tier in m.tiers) for tier in TIERS
}
# The list never changes: build it once rather than on every call.
_LISTING: dict[str, Any] = {
    "object": "list",
    "data": [
        {"id": m.id, "object": "model", "created": MODELS_CREATED, "owned_by": "42ai", "tiers": list(m.tiers)}
        for m in MODELS.values()
    ],
}

_FORTYTWO_LISTING: dict[Tier, dict[str, Any]] = {
    tier: {"object": "list",
           "data": [{"id": m.id, "object": "model", "created": MODELS_CREATED, "owned_by": "42ai"}
                    for m in MODELS.values() if m.kind == "chat" and tier in m.tiers]}
    for tier in TIERS
}


def resolve_model(model_id: str, kind: Literal["chat", "embed"], tier: Tier) -> Model:
    """The model a request names, checked in the documented order: exists (404), suits this endpoint
    (400), is open to the caller's tier (403)."""
    model = MODELS.get(model_id)
    if model is None:
        raise ApiError(404, f"Model {model_id!r} not found; GET /v1/models lists the models",
                       "model_not_found")
    if model.kind != kind:
        raise ApiError(400, f"Model {model_id} is {_KIND_NAME[model.kind]}; use {_ENDPOINT[model.kind]}",
                       "invalid_request_error")
    if tier not in model.tiers:
        raise ApiError(403, f"Model {model_id} is not available on the {tier} tier; "
                            f"the {tier} tier may use: {_TIER_MODELS[tier]}", "permission_error")
    return model


@router.get("/v1/models")
async def list_models(request: Request, caller: Annotated[Caller, Depends(require_caller)]) -> JSONResponse:
    gateway: Gateway = request.app.state.gateway
    # Even this instant call counts against the key's concurrency (LIMIT-010: all /v1 requests of a
    # key together), so a free key with a chat in flight gets 429 here as it would anywhere.
    gateway.limiter.try_acquire(caller.key_id, caller.tier).release()
    if gateway.config.flavour == "fortytwo":
        # The Fortytwo API lists models "to use" as the chat model (001, MODEL-011): the chat models this
        # key may use. The 42ai listing is the documented table, tiers included.
        return JSONResponse(_FORTYTWO_LISTING[caller.tier])
    return JSONResponse(_LISTING)
