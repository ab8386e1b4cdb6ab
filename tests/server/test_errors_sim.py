"""Client errors get a 4xx with the documented body, never a 5xx (ERR-*, LIMIT-008, MODEL-009)."""

from __future__ import annotations

URL = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Hello!"}]


def assert_envelope(response, status, error_type):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == error_type


def assert_validation_error(response):
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail
    for item in detail:
        assert isinstance(item["loc"], list) and all(isinstance(p, str | int) for p in item["loc"])
        assert isinstance(item["msg"], str) and isinstance(item["type"], str)


def test_malformed_json_is_400_invalid_request_error(client, headers_for):
    headers = {**headers_for("free"), "Content-Type": "application/json"}
    response = client.post(URL, headers=headers, content=b'{"model": "42-logic", "messages": [')
    assert_envelope(response, 400, "invalid_request_error")


def test_malformed_json_without_credentials_is_401(client):
    # Authentication comes first: a caller without a token learns that, not how its body looks.
    response = client.post(URL, headers={"Content-Type": "application/json"}, content=b"{not json")
    assert_envelope(response, 401, "authentication_error")


def test_missing_messages_is_422_with_detail(client, headers_for):
    response = client.post(URL, headers=headers_for("free"), json={"model": "42-logic"})
    assert_validation_error(response)
    assert any(item["loc"][-1] == "messages" for item in response.json()["detail"])


def test_validation_error_also_has_an_error_envelope(client, headers_for):
    response = client.post(URL, headers=headers_for("free"), json={"model": "42-logic"})
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_messages_not_an_array_is_422(client, headers_for):
    response = client.post(URL, headers=headers_for("free"), json={"model": "42-logic", "messages": "hi"})
    assert_validation_error(response)


def test_empty_messages_is_422(client, headers_for):
    response = client.post(URL, headers=headers_for("free"), json={"model": "42-logic", "messages": []})
    assert_validation_error(response)


def test_unknown_role_is_422(client, headers_for):
    body = {"model": "42-logic", "messages": [{"role": "wizard", "content": "hi"}]}
    assert_validation_error(client.post(URL, headers=headers_for("free"), json=body))


def test_model_of_wrong_type_is_422(client, headers_for):
    response = client.post(URL, headers=headers_for("free"), json={"model": 42, "messages": HELLO})
    assert_validation_error(response)


def test_stream_of_wrong_type_is_422(client, headers_for):
    body = {"model": "42-logic", "messages": HELLO, "stream": "yes"}
    assert_validation_error(client.post(URL, headers=headers_for("free"), json=body))


def test_non_positive_max_tokens_is_422(client, headers_for):
    body = {"model": "42-logic", "messages": HELLO, "max_tokens": 0}
    assert_validation_error(client.post(URL, headers=headers_for("free"), json=body))


def test_wrong_content_type_is_a_4xx(client, headers_for):
    headers = {**headers_for("free"), "Content-Type": "text/plain"}
    response = client.post(URL, headers=headers, content=b'{"model": "42-logic", "messages": []}')
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_unknown_model_is_404_model_not_found(client, headers_for):
    response = client.post(URL, headers=headers_for("pro"), json={"model": "42-nope", "messages": HELLO})
    assert_envelope(response, 404, "model_not_found")
    assert "42-nope" in response.json()["error"]["message"]


def test_free_key_on_42_think_is_403_permission_error(client, headers_for):
    response = client.post(URL, headers=headers_for("free"), json={"model": "42-think", "messages": HELLO})
    assert_envelope(response, 403, "permission_error")


def test_free_key_gets_no_paid_model(client, headers_for):
    headers = headers_for("free")
    for model in ("42-think", "42-vision", "42-coder"):
        response = client.post(URL, headers=headers, json={"model": model, "messages": HELLO})
        assert response.status_code == 403
        assert "choices" not in response.json()


def test_embed_model_on_chat_is_400(client, headers_for):
    response = client.post(URL, headers=headers_for("pro"), json={"model": "42-embed", "messages": HELLO})
    assert_envelope(response, 400, "invalid_request_error")


def test_chat_model_on_embeddings_is_400(client, headers_for):
    body = {"model": "42-logic", "input": "x"}
    response = client.post("/v1/embeddings", headers=headers_for("pro"), json=body)
    assert_envelope(response, 400, "invalid_request_error")


def test_no_client_error_is_answered_with_a_5xx(client, headers_for):
    headers = headers_for("free")
    m = b'"model": "42-logic", "messages": '
    x = m + b'[{"role": "user", "content": "x"}]'
    bad_bodies = [
        b"",
        b"[]",
        b"null",
        b'"text"',
        b"{}",
        b'{"model": null, "messages": null}',
        b"{" + m + b'[{"role": "user"}]}',
        b"{" + m + b'[{"role": "user", "content": 5}]}',
        b"{" + m + b'[{"role": "user", "content": []}]}',
        b"{" + m + b'[{"role": "user", "content": [{"type": "video"}]}]}',
        b"{" + x + b', "temperature": 9}',
        b"{" + x + b', "temperature": "0.5"}',
        b"{" + x + b', "stream_options": 1}',
        b"{" + x + b', "max_tokens": 1.5}',
        b"\xff\xfe",
    ]
    for raw in bad_bodies:
        response = client.post(URL, headers={**headers, "Content-Type": "application/json"}, content=raw)
        assert 400 <= response.status_code < 500, (raw, response.status_code, response.text)
        assert "error" in response.json() or "detail" in response.json()
