"""GET /v1/models: the documented table, or for the Fortytwo flavour the chat models of the caller's tier."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from reference_server.gateway import CallerDep, GatewayDep
from reference_server.models import MODELS, TIERS, Tier

__all__ = ["MODELS_CREATED", "router"]

router = APIRouter()

#: A fixed ``created`` (2025-01-01T00:00:00Z): the table is static, and a per-start timestamp would make
#: identical servers answer differently.
MODELS_CREATED = 1735689600

# The list never changes: build it once rather than on every call.
_LISTING: dict[str, Any] = {
    "object": "list",
    "data": [
        {"id": m.id, "object": "model", "created": MODELS_CREATED, "owned_by": "42ai", "tiers": list(m.tiers)}
        for m in MODELS.values()
    ],
}

_FORTYTWO_LISTING: dict[Tier, dict[str, Any]] = {
    tier: {
        "object": "list",
        "data": [
            {"id": m.id, "object": "model", "created": MODELS_CREATED, "owned_by": "42ai"}
            for m in MODELS.values()
            if m.kind == "chat" and tier in m.tiers
        ],
    }
    for tier in TIERS
}


@router.get("/v1/models")
async def list_models(gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    # Even this instant call counts against the key's concurrency (LIMIT-010: all /v1 requests of a
    # key together), so a free key with a chat in flight gets 429 here as it would anywhere.
    gateway.limiter.try_acquire(caller.key_id, caller.tier).release()
    if gateway.config.flavour == "fortytwo":
        # The Fortytwo API lists models "to use" as the chat model (001, MODEL-011): the chat models this
        # key may use. The 42ai listing is the documented table, tiers included.
        return JSONResponse(_FORTYTWO_LISTING[caller.tier])
    return JSONResponse(_LISTING)
