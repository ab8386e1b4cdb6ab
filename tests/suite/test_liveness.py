"""The liveness count (``suite.liveness``): a hung endpoint stops being sent to only after strikes from
more than one test with no answer in between, and any answer resets the count."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from suite.http import Api
from suite.liveness import Liveness, TargetStopped, endpoint
from suite.target import Target

CHAT = "POST /v1/chat/completions"
MODELS = "GET /v1/models"


def strike(live: Liveness, key: str, test: str, times: int = 1) -> None:
    live.current_test = test
    for _ in range(times):
        live.struck(key, "no status line within 10 s (ReadTimeout)")


@pytest.mark.parametrize(
    ("method", "url", "key"),
    [
        ("post", "http://h/v1/chat/completions", "POST /v1/chat/completions"),
        ("GET", "http://h/v1/batch/batch_7f3a2c", "GET /v1/batch/{id}"),
        ("GET", "/v1/batch/0f8fad5bd9cb469fa16570867728950e", "GET /v1/batch/{id}"),
        ("POST", "http://h/api/token?x=1", "POST /api/token"),
        ("GET", "http://h/v1/models", "GET /v1/models"),
    ],
)
def test_endpoints_fold_resource_ids(method: str, url: str, key: str) -> None:
    assert endpoint(method, url) == key


def test_strikes_from_one_test_never_stop_an_endpoint() -> None:
    live = Liveness()
    strike(live, CHAT, "t1", times=10)
    live.check(CHAT)
    assert live.stopped() == []


def test_strikes_in_a_row_from_two_tests_stop_the_endpoint() -> None:
    live = Liveness()
    strike(live, CHAT, "t1", times=2)
    live.check(CHAT)
    live.answered(MODELS)  # the target answers elsewhere: only the endpoint stops
    strike(live, CHAT, "t2")
    with pytest.raises(TargetStopped, match=r"POST /v1/chat/completions stopped answering: 3 requests"):
        live.check(CHAT)
    live.check(MODELS)  # another endpoint that answers is still sent to
    assert len(live.stopped()) == 1


def test_an_answer_between_strikes_resets_the_count() -> None:
    live = Liveness()
    strike(live, CHAT, "t1", times=2)
    live.answered(CHAT)
    strike(live, CHAT, "t2", times=2)
    live.check(CHAT)
    assert live.stopped() == []


def test_answers_elsewhere_keep_a_hung_endpoint_counted() -> None:
    live = Liveness()
    strike(live, CHAT, "t1", times=2)
    live.answered(MODELS)
    strike(live, CHAT, "t2")
    with pytest.raises(TargetStopped):
        live.check(CHAT)


def test_no_answer_from_any_endpoint_stops_the_whole_target() -> None:
    live = Liveness()
    strike(live, CHAT, "t1")
    strike(live, MODELS, "t2")
    strike(live, "POST /api/token", "t3")
    with pytest.raises(TargetStopped, match="the target"):
        live.check("GET /v1/batch/{id}")


def _api(handler: httpx.MockTransport, live: Liveness) -> Api:
    target = Target(base_url="http://target", keys={"free": "sk-test"}, profile="fortytwo", timeout=1.0)
    return Api(target, transport=handler, liveness=live)


def test_the_client_stops_sending_to_a_hung_endpoint() -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/v1/chat/completions":
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"object": "list", "data": []})

    live = Liveness()
    with _api(httpx.MockTransport(handler), live) as api:
        for test in ("t1", "t2", "t2"):
            live.current_test = test
            with pytest.raises(Exception, match="did not answer in time"):
                api.post("/v1/chat/completions", json={})
            assert api.get("/v1/models").status_code == 200
        live.current_test = "t3"
        with pytest.raises(TargetStopped):
            api.post("/v1/chat/completions", json={})
        with pytest.raises(TargetStopped), api.stream("POST", "/v1/chat/completions", json={}):
            pass
    assert sent.count("/v1/chat/completions") == 3  # nothing sent after the stop


class _StallingBody(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"id": '
        raise httpx.ReadTimeout("body stalled")


def test_a_status_line_is_an_answer_even_if_the_body_stalls() -> None:
    """A stalled body is judged by the test that reads it (a Fail), not counted as a hung endpoint."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=_StallingBody())

    live = Liveness()
    with _api(httpx.MockTransport(handler), live) as api:
        for test in ("t1", "t2", "t3", "t4"):
            live.current_test = test
            with pytest.raises(Exception, match=r"broke the HTTP exchange|did not answer in time"):
                api.post("/v1/chat/completions", json={})
    assert live.stopped() == []
