"""POST /v1/pipeline on the sim engine, in process: the documented design-analysis chain, its errors."""

from __future__ import annotations

import base64
import io
import threading
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from reference_server.config import ServerConfig


def _png_data_url(colour: tuple[int, int, int] = (200, 30, 30)) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


DESIGN = {"template": "design-analysis", "input": {"image_url": _png_data_url()}}


def test_design_analysis_runs_scan_then_plan(client, headers_for):
    response = client.post("/v1/pipeline", headers=headers_for("pro"), json=DESIGN)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert [(s["id"], s["model"]) for s in body["results"]] == [("scan", "42-vision"), ("plan", "42-think")]
    for step in body["results"]:
        assert step["status"] == "completed"
        assert isinstance(step["content"], str) and step["content"]
        assert isinstance(step["duration_ms"], int) and step["duration_ms"] >= 0
    assert body["final_output"] == body["results"][-1]["content"]


def test_answers_match_the_spec_schema(
    tmp_path, make_app, recording_engine, token_headers, assert_matches_42ai_schema
):
    (tmp_path / "two.yaml").write_text(
        "steps:\n  - {id: a, model: 42-logic, prompt: BOOM}\n"
        "  - {id: b, model: 42-logic, prompt: '{{a.content}}'}\n"
    )
    app = make_app(ServerConfig(pipeline_dir=tmp_path), chat=recording_engine(fail_on="BOOM"))
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = token_headers(client, "pro")
        completed = client.post("/v1/pipeline", headers=headers, json=DESIGN).json()
        failed = client.post("/v1/pipeline", headers=headers, json={"template": "two", "input": {}}).json()
    assert (completed["status"], failed["status"]) == ("completed", "failed")
    assert_matches_42ai_schema("PipelineResponse", completed)
    assert_matches_42ai_schema("PipelineResponse", failed)


def test_steps_see_the_image_description_and_the_earlier_output(make_app, recording_engine, token_headers):
    engine = recording_engine()
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        body = client.post("/v1/pipeline", headers=token_headers(client, "pro"), json=DESIGN).json()
    scan_body, plan_body = engine.bodies
    assert scan_body["model"] == "42-vision" and plan_body["model"] == "42-think"
    scan_prompt = scan_body["messages"][-1]["content"]
    assert "[Image 1: PNG image, 40x30 pixels" in scan_prompt
    assert "{{" not in scan_prompt
    plan_prompt = plan_body["messages"][-1]["content"]
    assert body["results"][0]["content"] in plan_prompt  # {{scan.content}} resolved
    assert "{{" not in plan_prompt


def test_step_durations_measure_the_steps(make_app, token_headers):
    # 16 sim tokens x 10 ms: each step takes at least 160 ms.
    with TestClient(make_app(token_delay_s=0.01), raise_server_exceptions=False) as client:
        body = client.post("/v1/pipeline", headers=token_headers(client, "pro"), json=DESIGN).json()
    assert all(160 <= step["duration_ms"] < 5000 for step in body["results"]), body["results"]


def test_free_tier_is_refused_before_any_step_runs(make_app, recording_engine, token_headers):
    engine = recording_engine()
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        response = client.post("/v1/pipeline", headers=token_headers(client, "free"), json=DESIGN)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "permission_error" and "42-vision" in error["message"]
    assert engine.bodies == []


def test_free_tier_may_run_a_template_of_free_models(client, headers_for):
    response = client.post(
        "/v1/pipeline",
        headers=headers_for("free"),
        json={"template": "draft-review", "input": {"text": "tea"}},
    )
    assert response.status_code == 200, response.text
    assert [s["id"] for s in response.json()["results"]] == ["draft", "review"]


def test_a_failing_step_stops_the_chain(tmp_path, make_app, recording_engine, token_headers):
    (tmp_path / "three.yaml").write_text(
        "steps:\n"
        "  - {id: one, model: 42-logic, prompt: 'start {{input.text}}'}\n"
        "  - {id: two, model: 42-logic, prompt: 'BOOM {{one.content}}'}\n"
        "  - {id: three, model: 42-logic, prompt: 'end {{two.content}}'}\n"
    )
    engine = recording_engine(fail_on="BOOM")
    app = make_app(ServerConfig(pipeline_dir=tmp_path), chat=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/pipeline",
            headers=token_headers(client, "pro"),
            json={"template": "three", "input": {"text": "x"}},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed"
    assert body["final_output"] is None
    one, two, three = body["results"]
    assert one["status"] == "completed" and one["content"]
    assert two["status"] == "failed" and two["content"] is None
    assert two["error"]["type"] == "internal_error" and "'two'" in two["error"]["message"]
    assert three == {
        "id": "three",
        "model": "42-logic",
        "status": "skipped",
        "content": None,
        "duration_ms": None,
    }
    assert len(engine.bodies) == 2  # step three never reached the engine


def test_a_step_over_the_context_fails_cleanly(tmp_path, make_app, token_headers):
    (tmp_path / "long.yaml").write_text("steps:\n  - {id: a, model: 42-logic, max_tokens: 5000, prompt: x}\n")
    with TestClient(make_app(ServerConfig(pipeline_dir=tmp_path)), raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/pipeline", headers=token_headers(client, "pro"), json={"template": "long", "input": {}}
        )
    assert response.status_code == 200
    (step,) = response.json()["results"]
    assert step["status"] == "failed" and step["error"]["type"] == "invalid_request_error"


def test_pipeline_holds_one_concurrency_slot_while_it_runs(make_app, recording_engine, token_headers):
    # A free key has one slot: while its pipeline runs, a second request of the key is refused (429).
    engine = recording_engine(token_delay_s=0.05)
    body = {"template": "draft-review", "input": {"text": "x"}}
    with TestClient(make_app(chat=engine), raise_server_exceptions=False) as client:
        headers = token_headers(client, "free")
        results: list[int] = []

        def run() -> None:
            results.append(client.post("/v1/pipeline", headers=headers, json=body).status_code)

        runner = threading.Thread(target=run)
        runner.start()
        deadline = time.monotonic() + 10
        while engine.in_flight == 0:  # wait until the first step is at the engine
            assert time.monotonic() < deadline
            time.sleep(0.005)
        second = client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"model": "42-logic", "messages": [{"role": "user", "content": "hi"}]},
        )
        runner.join(10)
    assert results == [200]
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "5"


# ------------------------------------------------------------------------------------------ bad input

BAD_PIPELINES = {
    "unknown-template": ({"template": "nope", "input": {}}, 404, "not_found"),
    "empty-template-name": ({"template": "", "input": {}}, 404, "not_found"),
    "missing-image-input": ({"template": "design-analysis", "input": {}}, 400, "invalid_request_error"),
    "image-not-a-string": (
        {"template": "design-analysis", "input": {"image_url": 5}},
        400,
        "invalid_request_error",
    ),
    "remote-image": (
        {"template": "design-analysis", "input": {"image_url": "https://example.com/d.png"}},
        400,
        "invalid_request_error",
    ),
    "not-an-image": (
        {"template": "design-analysis", "input": {"image_url": "data:image/png;base64,aGk="}},
        400,
        "invalid_request_error",
    ),
    "missing-input": ({"template": "design-analysis"}, 422, "invalid_request_error"),
    "missing-template": ({"input": {}}, 422, "invalid_request_error"),
    "template-not-a-string": ({"template": 1, "input": {}}, 422, "invalid_request_error"),
    "input-not-an-object": ({"template": "design-analysis", "input": "x"}, 422, "invalid_request_error"),
}


@pytest.mark.parametrize(("body", "status", "error_type"), BAD_PIPELINES.values(), ids=BAD_PIPELINES.keys())
def test_bad_pipeline_request_is_refused_in_the_envelope(client, headers_for, body, status, error_type):
    response = client.post("/v1/pipeline", headers=headers_for("pro"), json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type and error["message"]


def test_malformed_json_is_400(client, headers_for):
    response = client.post(
        "/v1/pipeline",
        content=b'{"template": ',
        headers={**headers_for("pro"), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_pipeline_needs_a_task_token(client):
    assert client.post("/v1/pipeline", json=DESIGN).status_code == 401
