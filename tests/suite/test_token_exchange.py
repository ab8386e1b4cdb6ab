"""The token exchange as the suite uses it: ``--token-url`` as base or endpoint, and a failed exchange is an
Error of a test that only needed a token, while a test that judges the exchange still Fails the target.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from suite.checks import TargetUnreachable, TokenExchangeFailed
from suite.http import Api
from suite.target import Target


@pytest.mark.parametrize(
    "given, base",
    [
        ("https://the-42-lab.com/api/token", "https://the-42-lab.com"),
        ("https://the-42-lab.com/api/token/", "https://the-42-lab.com"),
        ("https://the-42-lab.com/", "https://the-42-lab.com"),
        ("https://the-42-lab.com", "https://the-42-lab.com"),
        ("http://gw.example/tenant/api/token", "http://gw.example/tenant"),
        ("http://gw.example/api/tokens", "http://gw.example/api/tokens"),  # only the exact path is stripped
    ],
)
def test_token_url_is_the_base_or_the_full_endpoint(given, base):
    target = Target(base_url="http://t", token_url=given)
    assert target.token_base == base
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"task_token": "a.b.c"})

    with Api(target, transport=httpx.MockTransport(handle)) as api:
        api.exchange("k")
    assert seen == [f"{base}/api/token"]


def _api(handle: object, profile: str = "42ai") -> Api:
    target = Target(base_url="http://t", profile=profile, keys={"free": "sk-free"})  # type: ignore[arg-type]
    return Api(target, transport=httpx.MockTransport(handle))  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [200, 201, 202])
def test_new_token_returns_the_task_token_of_any_2xx(status):
    """000 shows the exchange's body and names no status code: 201 Created is a token too."""
    with _api(lambda request: httpx.Response(status, json={"task_token": "h.p.s"})) as api:
        assert api.new_token("free") == "h.p.s"
        assert api.token("free") == "h.p.s"


def test_a_redirect_with_a_task_token_is_no_token():
    answer = httpx.Response(302, json={"task_token": "h.p.s"})
    with _api(lambda request: answer) as api, pytest.raises(TokenExchangeFailed, match="HTTP 302 instead"):
        api.new_token("free")


@pytest.mark.parametrize(
    "answer, message",
    [
        (httpx.Response(500, text="boom"), "answered HTTP 500 instead of a 2xx"),
        (
            httpx.Response(401, json={"error": {"message": "x", "type": "y"}}),
            "answered HTTP 401 instead of a 2xx",
        ),
        (httpx.Response(200, json={"token": "x"}), "answered HTTP 200 without a task_token string"),
        (httpx.Response(200, text="not json"), "answered HTTP 200 without a task_token string"),
    ],
    ids=["500", "401", "no-member", "not-json"],
)
def test_a_failed_exchange_for_use_is_token_exchange_failed_not_a_conformance_failure(answer, message):
    with _api(lambda request: answer) as api, pytest.raises(TokenExchangeFailed, match=message) as info:
        api.token("free")
    assert not isinstance(info.value, AssertionError)  # so no path can classify it as a Fail
    assert info.value.response is not None and info.value.response.status_code == answer.status_code


def test_an_exchange_that_times_out_for_use_is_token_exchange_failed():
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with _api(handle) as api, pytest.raises(TokenExchangeFailed, match="did not answer in time"):
        api.new_token("free")


def test_an_unreachable_token_host_stays_target_unreachable():
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with _api(handle) as api, pytest.raises(TargetUnreachable):
        api.new_token("free")


def test_fortytwo_needs_no_exchange():
    with _api(lambda request: httpx.Response(500), profile="fortytwo") as api:
        assert api.new_token("free") == "sk-free"


# ------------------------------------------------------------------------- outcomes in a real run
CLASSIFY_MODULE = """
import pytest
from suite.checks import TokenExchangeFailed
from suite.markers import requirement

@pytest.fixture
def token():
    raise TokenExchangeFailed("no task token for the free tier: POST http://t/api/token answered HTTP 500")

@requirement("AUTH-004")
def test_in_the_body():
    raise TokenExchangeFailed("no task token for the free tier")

@requirement("AUTH-008")
def test_in_a_fixture(token):
    pass
"""


def _tested(data: dict[str, Any]) -> dict[str, str]:
    return {r["id"]: r["outcome"] for r in data["requirements"] if r["outcome"] != "Not tested"}


def test_token_exchange_failed_is_an_error_in_a_test_and_in_a_fixture(run_pytest, tmp_path):
    result = run_pytest(CLASSIFY_MODULE, "--target=http://127.0.0.1:9", "--report=report")
    data = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))
    assert _tested(data) == {"AUTH-004": "Error", "AUTH-008": "Error"}
    assert (result.returncode, data["verdict"]) == (2, "INCONCLUSIVE")


JUDGE_AND_USE_MODULE = """
from suite.checks import expect, expect_status
from suite.markers import requirement

@requirement("AUTH-001")
def test_judges_the_exchange(api, target):
    response = api.exchange(target.key("free"))
    expect_status(response, 200)
    body = response.json()
    expect(isinstance(body.get("task_token"), str), "no task token", expected="task_token",
           received=str(body), response=response)

@requirement("AUTH-008")
def test_only_uses_a_token(api):
    api.new_token("free")
"""


def _exchange_without_task_token() -> FastAPI:
    app = FastAPI()

    @app.post("/api/token")
    async def token() -> JSONResponse:
        return JSONResponse({"token": "not the documented member"})

    return app


def test_a_broken_exchange_fails_the_test_that_judges_it_and_errors_the_one_that_uses_it(
    run_pytest, serve_app, tmp_path: Path
):
    """Not a preflight problem either: the key may be right, the exchange is what is broken."""
    with serve_app(_exchange_without_task_token()) as url:
        result = run_pytest(
            JUDGE_AND_USE_MODULE, f"--target={url}", "--key-free=sk-test-free-1", "--report=report"
        )
    data = json.loads((tmp_path / "report" / "results.json").read_text(encoding="utf-8"))
    assert _tested(data) == {"AUTH-001": "Fail", "AUTH-008": "Error"}
    assert (result.returncode, data["verdict"]) == (1, "NON-CONFORMANT"), result.stdout + result.stderr
    assert "the AUTH tests judge it" in result.stdout  # the preflight's note
    assert "sk-test-free-1" not in result.stdout + result.stderr
