"""The preflight: what the user must fix (problems) vs what the tests judge (notes), against mock targets.

Every target here is an ``httpx.MockTransport``: the checks are pure functions of the answers they get.
The runs of the whole program (exit 2, one line, no test run) are in ``test_preflight_run.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from suite.http import Api
from suite.preflight import PREFLIGHT_TIMEOUT_S, Preflight, check_key, check_reachable, run_preflight
from suite.target import Target

KEYS = {"free": "sk-free", "pro": "sk-pro", "internal": "sk-internal"}
Handler = Callable[[httpx.Request], httpx.Response]


def _42ai(token_status: int = 200, token_body: object = None, refused: tuple[str, ...] = ()) -> Handler:
    """A 42ai target: GET /v1/models is 401 without a token; the exchange refuses the ``refused`` keys."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/token"):
            key = request.headers.get("authorization", "").removeprefix("Bearer ")
            if key in refused:
                return httpx.Response(401, json={"error": {"message": "Invalid API key", "type": "auth"}})
            body = {"task_token": "a.b.c"} if token_body is None else token_body
            return httpx.Response(token_status, json=body)
        return httpx.Response(401, json={"error": {"message": "no token", "type": "auth"}})

    return handle


class Recorder:
    """A transport that records the requests it answers."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def _run(handler: Handler, **target: object) -> tuple[Recorder, Preflight]:
    recorder = Recorder(handler)
    settings: dict[str, object] = {"base_url": "http://t", "keys": KEYS, **target}
    return recorder, run_preflight(Target(**settings), transport=recorder.transport)  # type: ignore[arg-type]


def test_a_good_42ai_target_passes_with_one_request_per_key():
    recorder, result = _run(_42ai())
    assert result.ok and result.notes == ()
    assert result.summary == (
        "target reachable, 3 keys exchanged, models: chat 42-general, embeddings 42-embed"
    )
    assert [f"{r.method} {r.url}" for r in recorder.requests] == [
        "GET http://t/v1/models",
        *["POST http://t/api/token"] * 3,
    ]
    assert recorder.requests[1].headers["authorization"] == "Bearer sk-free"


def test_a_201_created_exchange_with_a_task_token_counts_as_exchanged():
    """000 shows the exchange's body and names no status code: 201 Created is fine."""
    _, result = _run(_42ai(token_status=201))
    assert result.ok and result.notes == ()
    assert "3 keys exchanged" in result.summary


def test_a_refused_key_is_a_problem_naming_the_option():
    _, result = _run(_42ai(refused=("sk-pro",)))
    assert result.problems == (
        "the pro key was refused by POST http://t/api/token (HTTP 401): check --key-pro / CONFORM42_KEY_PRO",
    )


def test_token_url_given_as_the_full_endpoint_is_used_once():
    recorder, result = _run(_42ai(), token_url="http://auth.example/api/token/")
    assert result.ok
    assert {str(r.url) for r in recorder.requests[1:]} == {"http://auth.example/api/token"}


def test_no_exchange_at_the_token_url_is_a_problem_pointing_at_token_url_and_profile():
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404 if request.method == "POST" else 401)

    _, result = _run(handle, token_url="http://auth.example/v2")
    assert len(result.problems) == 1  # the same for every key: said once
    assert result.problems[0].startswith("POST http://auth.example/v2/api/token answered HTTP 404")
    assert "--token-url" in result.problems[0] and "--profile fortytwo" in result.problems[0]


@pytest.mark.parametrize(
    "status, body",
    [(200, {"token": "x"}), (200, {"task_token": ""}), (500, {})],
    ids=["no-task-token", "empty-task-token", "server-error"],
)
def test_a_misbehaving_exchange_is_left_to_the_auth_tests(status, body):
    """The key may be right; the exchange is broken, which AUTH-001 fails (a verdict, not a usage error)."""
    _, result = _run(_42ai(token_status=status, token_body=body))
    assert result.ok and "0 of 3 keys exchanged" in result.summary
    assert any("the AUTH tests judge it" in n and f"HTTP {status}" in n for n in result.notes)


@pytest.mark.parametrize(
    "error, reason",
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "host name not found"),
        (httpx.ConnectTimeout("timed out"), "no connection within the timeout"),
    ],
    ids=["refused", "dns", "connect-timeout"],
)
def test_an_unreachable_target_is_one_problem_and_no_key_is_tried(error, reason):
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    recorder, result = _run(handle)
    assert result.problems == (f"cannot reach the target http://t ({reason}): check --target",)
    assert len(recorder.requests) == 1


def test_an_unreachable_token_host_names_token_url():
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            raise httpx.ConnectError("[Errno 111] Connection refused")
        return httpx.Response(401)

    _, result = _run(handle, token_url="http://auth.example")
    assert result.problems == (
        "cannot reach the token exchange http://auth.example/api/token "
        "(connection refused): check --token-url",
    )


def test_a_target_that_does_not_answer_in_time_is_left_to_the_tests_and_not_asked_again():
    """Accepting the connection and never answering is the target's behaviour (a Fail of the tests),
    and every further check would wait just as long."""

    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    recorder, result = _run(handle, timeout=300.0)
    assert result.ok and len(recorder.requests) == 1
    assert result.summary.startswith("target gave no HTTP answer in time, keys not checked")
    # The preflight waits less than a long request timeout: a slow answer is never a problem anyway.
    timeout = recorder.requests[0].extensions["timeout"]
    assert timeout["read"] == PREFLIGHT_TIMEOUT_S


def test_no_keys_is_not_a_problem():
    _, result = _run(_42ai(), keys={})
    assert result.ok and "no API key given" in result.summary


# ------------------------------------------------------------------------------------- fortytwo
def _fortytwo(models: list[str], accepted: tuple[str, ...] = tuple(KEYS.values())) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key not in accepted:
            return httpx.Response(401, json={"error": {"message": "bad key", "type": "auth"}})
        return httpx.Response(200, json={"object": "list", "data": [{"id": m} for m in models]})

    return handle


def test_fortytwo_keys_are_accepted_and_models_discovered():
    recorder, result = _run(_fortytwo(["ft-chat", "ft-embed"]), profile="fortytwo")
    assert result.ok
    assert result.summary == "target reachable, 3 keys accepted, models: chat 42-general, embeddings 42-embed"
    assert all(r.url.path == "/v1/models" for r in recorder.requests)
    recorder = Recorder(_fortytwo(["ft-chat", "ft-embed"]))
    found = run_preflight(
        Target(base_url="http://t", profile="fortytwo", keys=KEYS),
        discover=True,
        transport=recorder.transport,
    )
    assert (found.target.chat_model, found.target.embed_model) == ("ft-chat", "ft-embed")
    assert len(recorder.requests) == 4  # discovery reuses the first key's listing


def test_fortytwo_one_refused_key_is_a_problem_naming_it():
    _, result = _run(_fortytwo(["m"], accepted=("sk-free", "sk-internal")), profile="fortytwo")
    assert result.problems == (
        "the pro key was refused by GET http://t/v1/models (HTTP 401): check --key-pro / CONFORM42_KEY_PRO",
    )


def test_fortytwo_every_key_refused_suggests_the_profile_too():
    """A 42ai API refuses every raw key as the bearer: the profile is as likely wrong as all keys."""
    _, result = _run(_fortytwo(["m"], accepted=()), profile="fortytwo")
    assert len(result.problems) == 1
    assert result.problems[0].startswith("the free/pro/internal keys were refused by GET http://t/v1/models")
    assert "drop --profile fortytwo" in result.problems[0]


def test_fortytwo_without_a_chat_model_to_discover_is_a_problem_unless_one_is_given():
    target = Target(base_url="http://t", profile="fortytwo", keys={"free": "sk-free"})
    only_embed = httpx.MockTransport(_fortytwo(["ft-embed"]))
    result = run_preflight(target, discover=True, transport=only_embed)
    assert result.problems and "pass --chat-model" in result.problems[0]
    given = run_preflight(target, discover=True, chat_model="mine", transport=only_embed)
    assert given.ok and (given.target.chat_model, given.target.embed_model) == ("mine", "ft-embed")


# ------------------------------------------------------------------------------ the single checks
def test_check_functions_take_the_suites_api():
    target = Target(base_url="http://t", keys={"free": "sk-free"})
    with Api(target, transport=httpx.MockTransport(_42ai(refused=("sk-free",)))) as api:
        assert check_reachable(api).problems == []
        assert check_key(api, "free").problems == [
            "the free key was refused by POST http://t/api/token "
            "(HTTP 401): check --key-free / CONFORM42_KEY_FREE"
        ]
        assert check_key(api, "pro").problems == []  # not given: nothing to check
