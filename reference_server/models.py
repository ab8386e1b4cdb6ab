"""The documented model table (000) and tier rules, as data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MODELS", "TIERS", "TIER_CONCURRENCY", "Model", "Tier", "allowed"]

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
