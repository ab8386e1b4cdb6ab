"""The documented model table (000) and tier rules, as data, and the model check of every inference route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reference_server.errors import ApiError

__all__ = ["MODELS", "TIERS", "TIER_CONCURRENCY", "Model", "Tier", "allowed", "resolve_model"]

Tier = Literal["free", "pro", "internal"]
TIERS: tuple[Tier, ...] = ("free", "pro", "internal")

#: Concurrent in-flight requests per API key; None is unlimited ("internalUnlimitedAll models").
TIER_CONCURRENCY: dict[Tier, int | None] = {"free": 1, "pro": 3, "internal": None}


@dataclass(frozen=True)
class Model:
    id: str
    description: str
    kind: Literal["chat", "embed"]
    tiers: tuple[Tier, ...]
    vision: bool = False


_PAID: tuple[Tier, ...] = ("pro", "internal")
MODELS: dict[str, Model] = {
    m.id: m
    for m in (
        Model("42-think", "Deep reasoning (70B)", "chat", _PAID),
        Model("42-vision", "Image understanding (72B)", "chat", _PAID, vision=True),
        Model("42-logic", "Fast logic (27B)", "chat", TIERS),
        Model("42-coder", "Code generation", "chat", _PAID),
        Model("42-general", "General purpose", "chat", TIERS),
        Model("42-embed", "Text embeddings", "embed", TIERS),
    )
}


def allowed(model: Model, tier: Tier) -> bool:
    return tier in model.tiers


_ENDPOINT = {"chat": "POST /v1/chat/completions", "embed": "POST /v1/embeddings"}
_KIND_NAME = {"chat": "a chat model", "embed": "an embedding model"}
_TIER_MODELS: dict[Tier, str] = {
    tier: ", ".join(m.id for m in MODELS.values() if tier in m.tiers) for tier in TIERS
}


def resolve_model(model_id: str, kind: Literal["chat", "embed"], tier: Tier) -> Model:
    """The model a request names, checked in the documented order: exists (404), suits this endpoint
    (400), is open to the caller's tier (403)."""
    model = MODELS.get(model_id)
    if model is None:
        raise ApiError(
            404, f"Model {model_id!r} not found; GET /v1/models lists the models", "model_not_found"
        )
    if model.kind != kind:
        raise ApiError(
            400,
            f"Model {model_id} is {_KIND_NAME[model.kind]}; use {_ENDPOINT[model.kind]}",
            "invalid_request_error",
        )
    if tier not in model.tiers:
        raise ApiError(
            403,
            f"Model {model_id} is not available on the {tier} tier; "
            f"the {tier} tier may use: {_TIER_MODELS[tier]}",
            "permission_error",
        )
    return model
