"""The reference server as a program: ``python -m reference_server --engine sim`` over a real socket.

Covers what in-process app tests cannot: the command line, the start-up banner with the demo keys, the
port file, the access log on stderr, and a clean exit (code 0, no traceback) on SIGTERM and SIGINT.
The sim engine is the deterministic test double, so this needs no vLLM and runs in a few seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from reference_server.auth import DEMO_KEYS
from tests.support.server_process import REPO_ROOT, ServerProcess


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    # The server's default data folder lives under the cache dir: keep it out of the checkout.
    return tmp_path_factory.mktemp("sim-cache")


@pytest.fixture(scope="module")
def server(cache_dir) -> Iterator[ServerProcess]:
    with ServerProcess(["--engine", "sim", "--cache-dir", str(cache_dir)], startup_timeout=60) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30, trust_env=False) as client:
        yield client


def _task_headers(http: httpx.Client, tier: str = "free") -> dict[str, str]:
    response = http.post("/api/token", headers={"Authorization": f"Bearer {DEMO_KEYS[tier]}"})  # type: ignore[index]
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['task_token']}"}


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_health_names_the_sim_engine(http):
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "engines": {"chat": "sim", "embed": "sim"}}


def test_port_file_and_banner(server):
    assert server.port_file.read_text().strip() == str(server.port)
    out = server.stdout()
    assert f"http://127.0.0.1:{server.port}" in out
    assert "42ai" in out
    assert "sim: deterministic TEST DOUBLE, not a language model" in out
    for tier, key in DEMO_KEYS.items():
        assert any(tier in line and key in line for line in out.splitlines()), (tier, out)


def test_token_exchange_chat_and_stream(http):
    headers = _task_headers(http)
    request = {
        "model": "42-logic",
        "messages": [{"role": "user", "content": "Say something."}],
        "max_tokens": 5,
    }
    response = http.post("/v1/chat/completions", json=request, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "42-logic"
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "length"
    usage = body["usage"]
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    stream_request = {**request, "stream": True, "stream_options": {"include_usage": True}}
    with http.stream("POST", "/v1/chat/completions", json=stream_request, headers=headers) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        data = [line[len("data: ") :] for line in streamed.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == choice["message"]["content"]  # deterministic double: same prompt, same answer
    assert chunks[-1]["usage"] == usage


def test_access_log_is_one_plain_json_line_per_request(server, http):
    assert http.get("/health", headers={"X-Probe": "access-log"}).status_code == 200

    def access_lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in server.stderr().splitlines() if line.startswith("{")]

    assert _wait_for(lambda: any(entry["path"] == "/health" for entry in access_lines()))
    entry = next(e for e in access_lines() if e["path"] == "/health")
    assert entry["method"] == "GET" and entry["status"] == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_0_without_traceback(sig, tmp_path):
    with ServerProcess(["--engine", "sim", "--cache-dir", str(tmp_path)], startup_timeout=60) as srv:
        with httpx.Client(timeout=10, trust_env=False) as client:
            assert client.get(f"{srv.base_url}/health").status_code == 200
        srv.send_signal(sig)
        assert srv.wait(timeout=20) == 0, srv.log_tail()
        stderr = srv.stderr()
    assert "Traceback" not in stderr, stderr
    assert f"{sig.name} received" in stderr


def test_setup_error_exits_2_with_a_message(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reference_server",
            "--engine",
            "sim",
            "--port",
            "0",
            "--keys-file",
            str(tmp_path / "missing.toml"),
            "--cache-dir",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "missing.toml" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_vllm_exits_2_with_the_install_command(tmp_path):
    # Pretend vLLM is absent (it may well be installed here) by hiding it from find_spec.
    code = (
        "import importlib.util as u; find = u.find_spec; "
        "u.find_spec = lambda name, *a: None if name == 'vllm' else find(name, *a); "
        "from reference_server.cli import main; "
        f"raise SystemExit(main(['--engine', 'vllm', '--port', '0', '--cache-dir', {str(tmp_path)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "make vllm" in done.stderr
    assert "pip install -e '.[vllm]'" in done.stderr
    assert "Traceback" not in done.stderr
