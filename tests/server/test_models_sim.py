"""GET /v1/models (MODEL-007, MODEL-010, MODEL-011)."""

from __future__ import annotations

from reference_server.models import MODELS

DOCUMENTED = {"42-think", "42-vision", "42-logic", "42-coder", "42-general", "42-embed"}


def test_models_need_a_token(client):
    assert client.get("/v1/models").status_code == 401


def test_models_list_all_six_documented_models(client, headers_for):
    response = client.get("/v1/models", headers=headers_for("pro"))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert {m["id"] for m in body["data"]} == DOCUMENTED


def test_model_objects_have_the_openai_shape(client, headers_for):
    for m in client.get("/v1/models", headers=headers_for("free")).json()["data"]:
        assert m["object"] == "model"
        assert isinstance(m["created"], int)
        assert m["owned_by"] == "42ai"
        assert m["tiers"] == list(MODELS[m["id"]].tiers)


def test_every_listed_chat_model_answers_an_internal_key(client, headers_for):
    headers = headers_for("internal")
    for m in client.get("/v1/models", headers=headers).json()["data"]:
        if m["id"] == "42-embed":
            response = client.post("/v1/embeddings", headers=headers, json={"model": m["id"], "input": "x"})
        else:
            response = client.post(
                "/v1/chat/completions",
                headers=headers,
                json={"model": m["id"], "messages": [{"role": "user", "content": "hi"}]},
            )
        assert response.status_code == 200, m["id"]


def test_fortytwo_flavour_lists_the_chat_models_the_key_may_use(make_app):
    # MODEL-011: in the Fortytwo API every listed ID is usable as the chat model.
    from fastapi.testclient import TestClient

    from reference_server.auth import DEMO_KEYS
    from reference_server.config import ServerConfig
    from reference_server.models import MODELS

    with TestClient(make_app(ServerConfig(flavour="fortytwo"))) as client:
        for tier in ("free", "pro"):
            headers = {"Authorization": f"Bearer {DEMO_KEYS[tier]}"}
            listed = [m["id"] for m in client.get("/v1/models", headers=headers).json()["data"]]
            assert listed == [m.id for m in MODELS.values() if m.kind == "chat" and tier in m.tiers]
            for model in listed:
                answer = client.post(
                    "/v1/chat/completions",
                    headers=headers,
                    json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                )
                assert answer.status_code == 200, answer.text
