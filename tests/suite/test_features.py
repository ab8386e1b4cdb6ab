"""Model discovery and optional features for targets that document only chat (fortytwo profile)."""

from __future__ import annotations

import httpx
import pytest

from suite.checks import DISABLED_PREFIX
from suite.features import Features, discover_models
from suite.http import Api
from suite.target import Target


def _api(target: Target, models: list[str], batch_status: int = 404) -> Api:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": m} for m in models]})
        if request.url.path == "/v1/batch":
            return httpx.Response(batch_status, json={"error": {"message": "x", "type": "y"}})
        return httpx.Response(404)

    return Api(target, transport=httpx.MockTransport(handle))


def _target(**kwargs: object) -> Target:
    return Target(base_url="http://t", profile="fortytwo", keys={"free": "k"}, **kwargs)  # type: ignore[arg-type]


def test_discovery_takes_the_first_embed_model_and_the_first_other_one():
    target = _target()
    with _api(target, ["fortytwo-large", "text-embed-3", "fortytwo-small"]) as api:
        found, note = discover_models(api, target, chat=None, embed=None)
    assert (found.chat_model, found.embed_model, note) == ("fortytwo-large", "text-embed-3", None)


def test_given_models_win_over_discovery():
    target = _target()
    with _api(target, ["a", "b-embed"]) as api:
        found, _ = discover_models(api, target, chat="mine", embed=None)
    assert (found.chat_model, found.embed_model) == ("mine", "b-embed")


def test_no_embedding_model_disables_embedding_tests():
    target = _target()
    with _api(target, ["chat-only"]) as api:
        found, _ = discover_models(api, target, chat=None, embed=None)
        with pytest.raises(pytest.skip.Exception, match=f"^{DISABLED_PREFIX}the target does not offer emb"):
            Features(found, api).require_embeddings()


def test_batch_404_disables_batch_tests_and_is_probed_once():
    target = _target()
    with _api(target, []) as api:
        features = Features(target, api)
        assert features.batch is False and features.batch is False
        with pytest.raises(pytest.skip.Exception, match="POST /v1/batch answered 404"):
            features.require("batch")


def test_42ai_profile_assumes_the_documented_features():
    target = Target(base_url="http://t", profile="42ai")
    with _api(target, []) as api:
        features = Features(target, api)
        features.require("batch")
        assert features.require_embeddings() == "42-embed"
