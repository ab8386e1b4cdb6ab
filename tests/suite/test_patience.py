"""The client's patience rule (``suite.http``): a busy answer (503 + Retry-After, or a 429 the suite's own
requests of the key explain) is waited out as told and sent again, bounded; anything else is returned as
it came, for the test to judge. A target that stays busy ends the test as Skip, never as a Fail.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

import suite.patience
from suite.checks import TargetBusy
from suite.http import Api
from suite.patience import PATIENT_RETRIES
from suite.target import Target

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the client took (none of them real)."""
    waits: list[float] = []
    monkeypatch.setattr("suite.patience.time.sleep", waits.append)
    return waits


def _api(handle: Handler) -> Api:
    target = Target(base_url="http://t", keys={"free": "sk-free", "pro": "sk-pro"})
    api = Api(target, transport=httpx.MockTransport(handle))
    api._tokens = {"free": ("tok-free", float("inf")), "pro": ("tok-pro", float("inf"))}
    return api


def _answers(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``responses`` in turn (the last one for ever) and the requests it saw."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses[min(len(seen), len(responses)) - 1]

    return handle, seen


BUSY_503 = httpx.Response(
    503, headers={"Retry-After": "30"}, json={"error": {"message": "busy", "type": "x"}}
)
OK = httpx.Response(200, json={"ok": True})
LIMIT_429 = httpx.Response(
    429, headers={"Retry-After": "5"}, json={"error": {"message": "limit", "type": "x"}}
)


def test_503_with_retry_after_is_waited_out_and_sent_again(slept: list[float]) -> None:
    handle, seen = _answers(BUSY_503, OK)
    with _api(handle) as api:
        assert api.get("/v1/models").status_code == 200
    assert len(seen) == 2
    assert slept == [30.0]


def test_503_without_retry_after_is_returned_for_the_test_to_judge(slept: list[float]) -> None:
    handle, seen = _answers(httpx.Response(503, json={}), OK)
    with _api(handle) as api:
        assert api.get("/v1/models").status_code == 503
    assert len(seen) == 1 and slept == []


def test_a_target_that_stays_busy_ends_the_test_as_skip(slept: list[float]) -> None:
    handle, seen = _answers(BUSY_503)
    with _api(handle) as api, pytest.raises(TargetBusy, match="stayed busy") as caught:
        api.post("/v1/chat/completions", {"model": "m"})
    assert len(seen) == PATIENT_RETRIES + 1
    assert caught.value.response is not None and caught.value.response.status_code == 503
    # TargetBusy is pytest's Skipped: the plugin reports the test as Skip, not as Fail or Error.
    assert isinstance(caught.value, pytest.skip.Exception)


def test_impatient_returns_the_busy_answer(slept: list[float]) -> None:
    handle, seen = _answers(BUSY_503, OK)
    with _api(handle) as api, api.impatient():
        assert api.get("/v1/models").status_code == 503
    assert len(seen) == 1 and slept == []


def test_a_429_nothing_of_the_suite_explains_is_returned(slept: list[float]) -> None:
    handle, seen = _answers(LIMIT_429, OK)
    with _api(handle) as api:
        assert api.get("/v1/models", tier="free").status_code == 429
    assert len(seen) == 1 and slept == []


def test_a_429_right_after_a_request_of_the_same_key_is_waited_out(slept: list[float]) -> None:
    handle, seen = _answers(OK, LIMIT_429, OK)
    with _api(handle) as api:
        api.get("/v1/models", tier="free")  # ended a moment ago: its slot may not be free yet
        assert api.get("/v1/models", tier="free").status_code == 200
    assert len(seen) == 3 and slept == [5.0]


def test_a_429_of_another_key_is_not_the_suite_s_doing(slept: list[float]) -> None:
    handle, seen = _answers(OK, LIMIT_429, OK)
    with _api(handle) as api:
        api.get("/v1/models", tier="pro")
        assert api.get("/v1/models", tier="free").status_code == 429
    assert len(seen) == 2 and slept == []


def test_a_429_while_a_stream_of_the_key_is_open_is_waited_out(slept: list[float]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions":
            return httpx.Response(200, content=b"data: [DONE]\n\n")
        return LIMIT_429 if not slept else OK

    with _api(handle) as api, api.stream("POST", "/v1/chat/completions", json={}, tier="free"):
        assert api.get("/v1/models", tier="free").status_code == 200
    assert slept == [5.0]


def test_the_busy_stream_is_sent_again_before_it_is_yielded(slept: list[float]) -> None:
    handle, seen = _answers(BUSY_503, httpx.Response(200, content=b"data: [DONE]\n\n"))
    with _api(handle) as api, api.stream("POST", "/v1/chat/completions", json={}, tier="free") as response:
        assert response.status_code == 200
    assert len(seen) == 2 and slept == [30.0]


def test_a_held_stream_judges_its_own_busy_answer(slept: list[float]) -> None:
    handle, seen = _answers(BUSY_503, OK)
    with (
        _api(handle) as api,
        api.stream("POST", "/v1/chat/completions", json={}, tier="free", patient=False) as response,
    ):
        assert response.status_code == 503
    assert len(seen) == 1 and slept == []


def test_every_busy_answer_still_reaches_the_response_hooks(slept: list[float]) -> None:
    handle, _ = _answers(BUSY_503, OK)
    statuses: list[int] = []
    with _api(handle) as api:
        api.on_response(lambda r: statuses.append(r.status_code))
        api.get("/v1/models")
    assert statuses == [503, 200]


def test_the_session_budget_bounds_the_waits(slept: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suite.patience, "PATIENT_BUDGET_S", 45.0)
    handle, _ = _answers(BUSY_503, OK, BUSY_503, OK)
    with _api(handle) as api:
        api.get("/v1/models")  # waits 30 of the 45
        with pytest.raises(TargetBusy):
            api.get("/v1/models")  # another 30 would exceed the budget
    assert slept == [30.0]


def test_impatient_for_429_still_waits_out_a_busy_503(slept: list[float]) -> None:
    handle, seen = _answers(BUSY_503, OK, LIMIT_429)
    with _api(handle) as api, api.impatient(429):
        assert api.get("/v1/models", tier="free").status_code == 200  # the 503 waited out
        assert api.get("/v1/models", tier="free").status_code == 429  # judged by the test
    assert len(seen) == 3 and slept == [30.0]
