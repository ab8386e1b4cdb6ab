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
import re
from typing import Any

import httpx
import pytest

from suite.checks import disabled
from suite.http import Api
from suite.target import TIERS, Target

__all__ = [
    "DOCUMENTED_CHAT_MODELS",
    "FEATURES",
    "Features",
    "discover_models",
    "is_embedding_model",
    "listed_models",
    "looks_like_chat_model",
    "pick_chat_model",
    "skip_unless_image_taken",
    "with_models",
]

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


#: Model ids the documents use for chat, preferred when listed (001 and 002's examples, then 000's).
DOCUMENTED_CHAT_MODELS = ("fortytwo-preview", "fortytwo-prime", "42-general", "42-logic")
#: Parts of a model id that mark a model which does not chat: embeddings, rerankers, speech (whisper,
#: TTS, audio, transcription), moderation and image generation. Matched as whole words of the id
#: (split at "-", "_", "/", "." and ":"), plus the prefixes of such names ("embedding" of "embed").
_NOT_CHAT_WORDS = (
    "embed",
    "embedding",
    "embeddings",
    "rerank",
    "reranker",
    "whisper",
    "tts",
    "speech",
    "audio",
    "transcribe",
    "transcription",
    "moderation",
    "guard",
    "dall",
    "dalle",
    "image",
    "imagen",
    "diffusion",
    "sdxl",
    "flux",
)
_ID_PARTS = re.compile(r"[-_/.:]+")


def is_embedding_model(model_id: str) -> bool:
    """Whether a listed id names an embedding model (it contains "embed")."""
    return "embed" in model_id.lower()


def looks_like_chat_model(model_id: str) -> bool:
    """Whether a listed id may name a chat model: none of its words marks an embedding, reranking,
    speech, moderation or image-generation model (``_NOT_CHAT_WORDS``). A guess from the name alone,
    used only to pick the model the chat tests use when none is given (``--chat-model`` wins)."""
    if is_embedding_model(model_id):
        return False
    words = {w for w in _ID_PARTS.split(model_id.lower()) if w}
    return not any(word.startswith(marker) for word in words for marker in _NOT_CHAT_WORDS)


def pick_chat_model(ids: list[str]) -> str | None:
    """The chat model to test with from a listing: a documented chat id when listed (fortytwo-preview
    first), else the first id that looks like a chat model, else None."""
    documented = next((m for m in DOCUMENTED_CHAT_MODELS if m in ids), None)
    return documented or next((m for m in ids if looks_like_chat_model(m)), None)


def with_models(target: Target, ids: list[str], *, chat: str | None, embed: str | None) -> Target:
    """``target`` with the given models, else the listed ones: the first ID containing "embed" is the
    embedding model (none listed: no embeddings), the chat model is ``pick_chat_model``'s choice."""
    found_embed = next((m for m in ids if is_embedding_model(m)), None)
    found_chat = pick_chat_model(ids)
    return dataclasses.replace(
        target,
        chat_model=chat or found_chat or target.chat_model,
        embed_model=embed or found_embed,
    )


def discover_models(
    api: Api, target: Target, *, chat: str | None, embed: str | None
) -> tuple[Target, str | None]:
    """Fill in the models ``GET /v1/models`` lists; return the new target and a note (or None).

    The first ID containing "embed" is the embedding model; the chat model is ``pick_chat_model``'s.
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


#: Statuses with which a target may refuse an image it will not take (a data: URL where it fetches
#: only http(s) images): a bad request, an unsupported media type, a validation error.
_IMAGE_REFUSALS = (400, 415, 422)


def skip_unless_image_taken(target: Target, image_url: str, response: httpx.Response, what: str) -> None:
    """Skip the calling test, with the reason, when the target refused the suite's own ``data:`` image.

    000's example sends an https URL (``"image_url": "https://example.com/design.png"``); the suite sends
    a small PNG as a ``data:`` URL by default, for targets that do not fetch images (``--image-url``).
    A target that takes only URLs it can fetch may refuse ours with 400/415/422: that is our choice of
    image, not the target's deviation, so it is a Skip (a skipped MUST makes the run INCONCLUSIVE
    until the user gives an https ``--image-url`` the target can fetch), never a Fail."""
    if image_url.startswith("data:") and response.status_code in _IMAGE_REFUSALS:
        pytest.skip(
            f"{what}: the target refused the suite's data: URL image with HTTP {response.status_code}; "
            "000's example is an https URL: pass --image-url https://... (an image the target can fetch)"
        )
