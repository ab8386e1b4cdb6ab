"""What the target offers beyond the core: model discovery and optional features.

For the 42ai profile every documented feature is required, so its absence is a Fail of the test that
uses it, never Disabled. Other targets (fortytwo profile) document only chat: their chat and embedding
models come from ``--chat-model`` / ``--embed-model`` or ``GET /v1/models``, and a feature they do not
offer (no embedding model, 404 on ``POST /v1/batch``) disables the tests that need it, with a reason.

Behaviour tests use the session fixture ``features``::

    def test_embeddings_shape(api, features):
        model = features.require_embeddings()      # Disabled when the target has no embedding model
        features.require("batch")                   # Disabled when POST /v1/batch is a 404
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

from suite.checks import disabled
from suite.http import Api
from suite.target import TIERS, Target

__all__ = ["FEATURES", "Features", "discover_models", "listed_models", "with_models"]

#: Feature names ``Features.require`` knows.
FEATURES = ("embeddings", "batch")


def _model_ids(body: Any) -> list[str]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return []
    return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


def listed_models(response: httpx.Response) -> list[str]:
    """The model IDs of a ``GET /v1/models`` answer; empty for any other status or a body without a list."""
    if response.status_code != 200:
        return []
    try:
        return _model_ids(response.json())
    except ValueError:  # not JSON: the models tests say so; here it only means "nothing discovered"
        return []


def with_models(target: Target, ids: list[str], *, chat: str | None, embed: str | None) -> Target:
    """``target`` with the given models, else the listed ones: the first ID containing "embed" is the
    embedding model (none listed: no embeddings), the first other ID the chat model."""
    found_embed = next((m for m in ids if "embed" in m.lower()), None)
    found_chat = next((m for m in ids if "embed" not in m.lower()), None)
    return dataclasses.replace(
        target,
        chat_model=chat or found_chat or target.chat_model,
        embed_model=embed or found_embed,
    )


def discover_models(
    api: Api, target: Target, *, chat: str | None, embed: str | None
) -> tuple[Target, str | None]:
    """Fill in the models ``GET /v1/models`` lists; return the new target and a note (or None).

    The first ID containing "embed" is the embedding model, the first other ID the chat model.
    (A conformance run discovers in ``suite.preflight``, from the answer that also checks a key.)
    """
    tier = next((t for t in TIERS if target.has_key(t)), None)
    if tier is None:
        return (
            dataclasses.replace(target, chat_model=chat or target.chat_model, embed_model=embed),
            "model discovery skipped: no API key given",
        )
    response = api.get("/v1/models", tier=tier)
    ids = listed_models(response)
    note = (
        None
        if ids
        else f"model discovery: GET /v1/models answered HTTP {response.status_code} without a model list"
    )
    return with_models(target, ids, chat=chat, embed=embed), note


class Features:
    """Lazily probed optional features of one target (session fixture ``features``)."""

    def __init__(self, target: Target, api: Api) -> None:
        self.target = target
        self.api = api
        self._batch: bool | None = None

    @property
    def embeddings(self) -> bool:
        return self.target.embed_model is not None

    @property
    def batch(self) -> bool:
        """42ai: documented, so assumed. Otherwise one probe: a 404 on POST /v1/batch means absent."""
        if self.target.profile == "42ai":
            return True
        if self._batch is None:
            tier = next((t for t in TIERS if self.target.has_key(t)), None)
            response = self.api.post("/v1/batch", json={}, tier=tier)
            self._batch = response.status_code != 404
        return self._batch

    def require(self, feature: str) -> None:
        """Disable the calling test when the target does not offer ``feature``."""
        if feature not in FEATURES:
            raise ValueError(f"unknown feature {feature!r} (known: {', '.join(FEATURES)})")
        if not getattr(self, feature):
            disabled(f"the target does not offer {feature} ({self.target.profile} profile; {_HOW[feature]})")

    def require_embeddings(self) -> str:
        """The embedding model ID, or Disabled."""
        self.require("embeddings")
        assert self.target.embed_model is not None  # checked by require
        return self.target.embed_model


_HOW = {
    "embeddings": "no embedding model in GET /v1/models; pass --embed-model",
    "batch": "POST /v1/batch answered 404",
}
