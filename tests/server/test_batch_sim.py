"""POST /v1/batch and GET /v1/batch/{id} on the sim engine, in process (TestClient runs the lifespan,
which starts the batch workers)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient

from reference_server.auth import DEMO_EXTRA_KEYS
from reference_server.config import ServerConfig
from reference_server.schemas import MAX_BATCH_TASKS

TASK = [{"role": "user", "content": "Task"}]


def _submit(client, headers, body):
    response = client.post("/v1/batch", headers=headers, json=body)
    assert response.status_code == 202, response.text
    return response.json()


def test_submission_answers_pending_with_id_and_total(client, headers_for, batch_body):
    body = _submit(client, headers_for("pro"), batch_body(2))
    assert body["status"] == "pending"
    assert body["total"] == 2
    assert isinstance(body["batch_id"], str) and body["batch_id"]


def test_batch_completes_with_one_result_per_task(client, headers_for, batch_body, poll_batch):
    headers = headers_for("pro")
    batch_id = _submit(client, headers, batch_body(5))["batch_id"]
    final = poll_batch(client, batch_id, lambda: headers)[-1]
    assert final["batch_id"] == batch_id
    assert final["status"] == "completed"
    assert final["total"] == final["completed"] == 5
    assert final["failed"] == 0
    assert set(final["results"]) == {f"t{i}" for i in range(5)}
    for result in final["results"].values():
        assert result["status"] == "completed"
        assert isinstance(result["content"], str) and result["content"]


def test_two_hundred_tasks_give_exactly_two_hundred_results(client, headers_for, batch_body, poll_batch):
    headers = headers_for("pro")
    batch_id = _submit(client, headers, batch_body(200))["batch_id"]
    final = poll_batch(client, batch_id, lambda: headers, timeout_s=60)[-1]
    assert final["status"] == "completed"
    assert final["completed"] == final["total"] == 200
    assert sorted(final["results"]) == sorted(f"t{i}" for i in range(200))


def test_progress_never_goes_backwards(make_app, batch_body, poll_batch, token_headers):
    with TestClient(make_app(token_delay_s=0.002), raise_server_exceptions=False) as client:
        headers = token_headers(client, "pro")
        batch_id = _submit(client, headers, batch_body(30))["batch_id"]
        seen = poll_batch(client, batch_id, lambda: headers, interval_s=0.01)
    counts = [body["completed"] for body in seen]
    assert counts == sorted(counts)
    assert all(0 <= body["completed"] <= body["total"] == 30 for body in seen)
    assert all(len(body["results"]) == body["completed"] for body in seen)
    assert {body["status"] for body in seen} <= {"pending", "running", "completed"}
    assert len(seen) > 2, "the batch finished too fast to watch its progress"


def test_answers_match_the_spec_schemas(
    make_app, recording_engine, token_headers, poll_batch, assert_matches_42ai_schema
):
    engine = recording_engine(fail_on="BOOM")
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        headers = token_headers(client, "pro")
        tasks = [
            {"id": "ok", "messages": TASK},
            {"id": "bad", "messages": [{"role": "user", "content": "BOOM"}]},
        ]
        submitted = _submit(client, headers, {"model": "42-logic", "tasks": tasks})
        seen = poll_batch(client, submitted["batch_id"], lambda: headers)
        missing = client.get("/v1/batch/batch_nope", headers=headers).json()
    assert_matches_42ai_schema("BatchSubmission", submitted)
    for body in seen:
        assert_matches_42ai_schema("BatchStatus", body)
    assert_matches_42ai_schema("Error", missing)


def test_another_key_gets_404_for_the_batch(client, headers_for, batch_body):
    batch_id = _submit(client, headers_for("pro"), batch_body(1))["batch_id"]
    response = client.get(f"/v1/batch/{batch_id}", headers=headers_for("internal"))
    assert response.status_code == 404
    assert response.json() == {"error": {"message": f"Batch {batch_id!r} not found", "type": "not_found"}}


def test_unknown_batch_is_404_in_the_envelope(client, headers_for):
    response = client.get("/v1/batch/batch_doesnotexist", headers=headers_for("pro"))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


def test_batch_endpoints_need_a_task_token(client, batch_body):
    assert client.post("/v1/batch", json=batch_body(1)).status_code == 401
    assert client.get("/v1/batch/batch_x").status_code == 401


def test_failed_task_is_reported_and_the_rest_complete(make_app, recording_engine, token_headers, poll_batch):
    engine = recording_engine(fail_on="BOOM")
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        headers = token_headers(client, "pro")
        tasks = [
            {"id": "ok", "messages": TASK},
            {"id": "bad", "messages": [{"role": "user", "content": "BOOM"}]},
        ]
        batch_id = _submit(client, headers, {"model": "42-logic", "tasks": tasks})["batch_id"]
        final = poll_batch(client, batch_id, lambda: headers)[-1]
    assert final["status"] == "failed"
    assert final["completed"] == final["total"] == 2
    assert final["failed"] == 1
    assert final["results"]["ok"]["status"] == "completed"
    bad = final["results"]["bad"]
    assert bad["status"] == "failed" and bad["content"] is None
    assert bad["error"]["type"] == "internal_error" and bad["error"]["message"]


@pytest.mark.parametrize(("tier", "workers"), [("free", 1), ("pro", 3)])
def test_batch_runs_at_most_tier_concurrency_tasks_at_once(
    make_app, recording_engine, token_headers, poll_batch, batch_body, tier, workers
):
    engine = recording_engine(token_delay_s=0.003)
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        headers = token_headers(client, tier)
        batch_id = _submit(client, headers, batch_body(3 * workers + 2))["batch_id"]
        assert poll_batch(client, batch_id, lambda: headers)[-1]["status"] == "completed"
    assert engine.max_in_flight == workers


def test_interactive_request_of_the_same_key_is_not_refused_during_a_batch(
    make_app, recording_engine, token_headers, poll_batch, batch_body
):
    # Free tier: one interactive slot, one batch worker, kept apart; the chat must get 200, not 429.
    engine = recording_engine(token_delay_s=0.01)
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        headers = token_headers(client, "free")
        batch_id = _submit(client, headers, batch_body(4))["batch_id"]
        poll_batch(client, batch_id, lambda: headers, until=lambda b: b["status"] == "running")
        assert engine.in_flight == 1  # a batch task runs now
        chat = client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"model": "42-logic", "messages": TASK, "max_tokens": 4},
        )
        assert chat.status_code == 200, chat.text
        assert poll_batch(client, batch_id, lambda: headers)[-1]["status"] == "completed"


def test_batches_of_two_keys_run_side_by_side(
    make_app, recording_engine, token_headers, poll_batch, batch_body
):
    # Each free key has its own worker: two keys' batches overlap, each one task at a time.
    engine = recording_engine(token_delay_s=0.01)
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        first = token_headers(client, "free")
        response = client.post("/api/token", headers={"Authorization": f"Bearer {DEMO_EXTRA_KEYS['free']}"})
        second = {"Authorization": f"Bearer {response.json()['task_token']}"}
        ids = [_submit(client, h, batch_body(3))["batch_id"] for h in (first, second)]
        for batch_id, headers in zip(ids, (first, second), strict=True):
            assert poll_batch(client, batch_id, lambda h=headers: h)[-1]["status"] == "completed"
    assert engine.max_in_flight == 2


def test_batch_state_survives_an_orderly_restart(make_app, tmp_path, token_headers, batch_body, poll_batch):
    config = ServerConfig(data_dir=tmp_path)
    with TestClient(make_app(config), raise_server_exceptions=False) as client:
        headers = token_headers(client, "pro")
        batch_id = _submit(client, headers, batch_body(3))["batch_id"]
        before = poll_batch(client, batch_id, lambda: headers)[-1]
    with TestClient(make_app(config), raise_server_exceptions=False) as client:
        after = client.get(f"/v1/batch/{batch_id}", headers=token_headers(client, "pro"))
    assert after.status_code == 200
    assert after.json() == before


def test_max_tokens_caps_every_task(make_app, recording_engine, token_headers, poll_batch, batch_body):
    engine = recording_engine()
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        headers = token_headers(client, "pro")
        batch_id = _submit(client, headers, batch_body(2, max_tokens=3))["batch_id"]
        final = poll_batch(client, batch_id, lambda: headers)[-1]
    assert [len(r["content"].split()) for r in final["results"].values()] == [3, 3]
    assert {b["max_tokens"] for b in engine.bodies} == {3}


# ------------------------------------------------------------------------------------------ bad input


def _many(n: int) -> dict[str, Any]:
    return {"model": "42-logic", "tasks": [{"id": f"t{i}", "messages": TASK} for i in range(n)]}


BAD_BATCHES = {
    "duplicate-ids": (
        {"model": "42-logic", "tasks": [{"id": "a", "messages": TASK}] * 2},
        422,
        "invalid_request_error",
    ),
    "empty-id": (
        {"model": "42-logic", "tasks": [{"id": "", "messages": TASK}]},
        422,
        "invalid_request_error",
    ),
    "too-many-tasks": (_many(MAX_BATCH_TASKS + 1), 422, "invalid_request_error"),
    "no-tasks": ({"model": "42-logic", "tasks": []}, 422, "invalid_request_error"),
    "missing-tasks": ({"model": "42-logic"}, 422, "invalid_request_error"),
    "empty-messages": (
        {"model": "42-logic", "tasks": [{"id": "a", "messages": []}]},
        422,
        "invalid_request_error",
    ),
    "id-not-a-string": (
        {"model": "42-logic", "tasks": [{"id": 1, "messages": TASK}]},
        422,
        "invalid_request_error",
    ),
    "model-not-a-string": (
        {"model": 42, "tasks": [{"id": "a", "messages": TASK}]},
        422,
        "invalid_request_error",
    ),
    "tasks-not-a-list": ({"model": "42-logic", "tasks": {"a": TASK}}, 422, "invalid_request_error"),
    "bad-role": (
        {"model": "42-logic", "tasks": [{"id": "a", "messages": [{"role": "x", "content": "y"}]}]},
        422,
        "invalid_request_error",
    ),
    "max-tokens-zero": ({**_many(1), "max_tokens": 0}, 422, "invalid_request_error"),
    "unknown-model": ({"model": "42-nope", "tasks": [{"id": "a", "messages": TASK}]}, 404, "model_not_found"),
    "embedding-model": (
        {"model": "42-embed", "tasks": [{"id": "a", "messages": TASK}]},
        400,
        "invalid_request_error",
    ),
    "disallowed-model": (
        {"model": "42-think", "tasks": [{"id": "a", "messages": TASK}]},
        403,
        "permission_error",
    ),
    "too-long-for-context": ({**_many(1), "max_tokens": 5000}, 400, "invalid_request_error"),
}


@pytest.mark.parametrize(("body", "status", "error_type"), BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
def test_bad_batch_is_refused_in_the_envelope(client, headers_for, body, status, error_type):
    response = client.post("/v1/batch", headers=headers_for("free"), json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type and error["message"]


def test_malformed_json_is_400(client, headers_for):
    response = client.post(
        "/v1/batch",
        content=b'{"model": "42-logic", "tasks": [',
        headers={**headers_for("pro"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": "Request body is not valid JSON", "type": "invalid_request_error"}
    }


def test_refused_batch_stores_nothing(make_app, recording_engine, token_headers, tmp_path):
    # One task over the context limit refuses the whole batch: no task of it may ever run.
    engine = recording_engine()
    app = make_app(ServerConfig(data_dir=tmp_path), chat=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        tasks = [
            {"id": "fine", "messages": TASK},
            {"id": "huge", "messages": [{"role": "user", "content": "word " * 3000}]},
        ]
        body = {"model": "42-logic", "tasks": tasks}
        response = c.post("/v1/batch", headers=token_headers(c, "pro"), json=body)
        assert response.status_code == 400
        assert "'huge'" in response.json()["error"]["message"]
    with sqlite3.connect(tmp_path / "batches.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0] == 0
    assert engine.bodies == []
